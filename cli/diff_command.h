// `lockstep diff A B`: where two runs part and why, or how two checkpoints, tensor files or
// module traces differ. Torch-free; exit 0 identical or within tolerance, 1 different,
// 2 bad usage or unreadable input.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

std::function<int()> AddDiffCommand(CLI::App* app);

}  // namespace lockstep
