#include "trainer/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace lockstep {

ProgressDisplay::ProgressDisplay(bool enabled, bool interactive, int64_t max_steps)
    : enabled_(enabled), interactive_(interactive), max_steps_(max_steps) {}

bool ProgressDisplay::StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string ProgressDisplay::Line(int64_t step, double epoch, double loss, double lr, double elapsed_s) const {
  const double rate = elapsed_s > 0 ? static_cast<double>(step) / elapsed_s : 0.0;
  const double eta = rate > 0 ? static_cast<double>(max_steps_ - step) / rate : 0.0;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "step %lld/%lld | epoch %.2f | loss %.4f | lr %.3g | %.1f steps/s | ETA %.0fs",
                static_cast<long long>(step), static_cast<long long>(max_steps_), epoch, loss, lr, rate, eta);
  return buf;
}

void ProgressDisplay::Update(int64_t step, double epoch, double loss, double lr, double elapsed_s, bool log_line) {
  if (!enabled_) return;
  if (interactive_) {
    std::fprintf(stderr, "\r\033[K%s", Line(step, epoch, loss, lr, elapsed_s).c_str());
    std::fflush(stderr);
    line_open_ = true;
  } else if (log_line || step == max_steps_ || step % std::max<int64_t>(1, max_steps_ / 10) == 0) {
    // Plain mode: logging steps, plus every tenth of the run so a log shows progress.
    std::fprintf(stderr, "%s\n", Line(step, epoch, loss, lr, elapsed_s).c_str());
  }
}

void ProgressDisplay::Note(const std::string& message) {
  if (!enabled_) return;
  if (line_open_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", message.c_str());
  line_open_ = false;
}

void ProgressDisplay::Finish() {
  if (enabled_ && line_open_) std::fprintf(stderr, "\n");
  line_open_ = false;
}

}  // namespace lockstep
