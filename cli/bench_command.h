// `lockstep bench compare BASE.json NEW.json`: the noise-aware CI gate over two Google
// Benchmark JSON files (bench/gate.h). Torch-free. Exit 0 no regression, 1 a regression,
// 2 bad usage or unreadable or mismatched inputs.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

std::function<int()> AddBenchCommand(CLI::App* app);

}  // namespace lockstep
