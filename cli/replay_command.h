// `lockstep replay RUN --from CHECKPOINT [--steps K]`: re-execute logged steps and check
// their loss and grad-norm bits against the step log. LibTorch; runs in lockstep-train.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

std::function<int()> AddReplayCommand(CLI::App* app);

}  // namespace lockstep
