// `lockstep verify-resume`: prove bit-exact resume in one command (replay/verify_resume.h).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

// Registers the subcommand on `app`; the returned function runs it after parsing and
// yields the exit code: 0 bit-exact, 1 a divergence, 2 bad usage or unreadable input.
std::function<int()> AddVerifyResumeCommand(CLI::App* app);

}  // namespace lockstep
