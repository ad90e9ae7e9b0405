// `lockstep inspect PATH`: audit a run directory, or show a checkpoint or tensor file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

// Registers the subcommand; the returned function yields the exit code: 0 healthy (or
// shown), 1 problems found, 2 bad usage or unreadable input.
std::function<int()> AddInspectCommand(CLI::App* app);

}  // namespace lockstep
