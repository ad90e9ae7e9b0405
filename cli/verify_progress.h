// The progress display of `lockstep inspect --verify`. A large run takes seconds to
// minutes to read, so the user sees how far it got: redrawn in place on a terminal, at
// most ten times a second; a plain line per tenth otherwise (CI logs). Runs under
// kQuietBelowBytes verify in well under a second and show nothing.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace lockstep {

class VerifyProgress {
 public:
  static constexpr uint64_t kQuietBelowBytes = 256ull << 20;

  // Writes to `out`. `terminal` chooses redrawing over plain lines. `now_s` is the clock
  // in seconds (steady); tests pass their own.
  VerifyProgress(FILE* out, bool terminal, std::function<double()> now_s);

  // (bytes verified so far, bytes in all, the checkpoint being read): AuditOptions::progress.
  void Update(uint64_t done, uint64_t total, const std::string& checkpoint);

  // Clears a redrawn line, so the report starts on a clean one.
  void Finish();

 private:
  FILE* out_;
  bool terminal_;
  std::function<double()> now_s_;
  double start_s_ = -1;
  double last_draw_s_ = -1;
  int last_tenth_ = 0;
  bool drawn_ = false;
};

}  // namespace lockstep
