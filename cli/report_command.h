// `lockstep report RUN [RUN ...] --out FILE.html`: one self-contained HTML page of the runs'
// curves and tables (report/report.h). Torch-free. Exit 0 when the page is written and every
// run compares identical to the first (or within the tolerance; one run: written), 1 when
// written and runs differ or a comparison could not be made, 2 bad usage or unreadable input
// (no page written).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

std::function<int()> AddReportCommand(CLI::App* app);

}  // namespace lockstep
