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

// Checks argv (cli/arg_check.h), parses it into `app` and runs the one subcommand given.
// --help and --version exit 0; a bad command line is reported in Lockstep's words
// (ReportFailure) and yields kExitUsage (2).
int RunApp(CLI::App* app, const CommandTable& commands, int argc, char** argv);

}  // namespace lockstep
