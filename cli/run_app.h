// Parses the command line of a `lockstep` binary and runs the chosen subcommand, mapping
// CLI11's help, version and parse errors onto the shared exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>

namespace lockstep {

// Subcommand name -> the function that runs it after parsing and yields the exit code.
using CommandTable = std::map<std::string, std::function<int()>>;

// Parses argv into `app` and runs the one subcommand given. --help and --version exit 0;
// a parse error prints CLI11's message and yields kExitUsage (2).
int RunApp(CLI::App* app, const CommandTable& commands, int argc, char** argv);

}  // namespace lockstep
