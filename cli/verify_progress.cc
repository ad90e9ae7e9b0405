#include "cli/verify_progress.h"

#include <utility>

namespace lockstep {

VerifyProgress::VerifyProgress(FILE* out, bool terminal, std::function<double()> now_s)
    : out_(out), terminal_(terminal), now_s_(std::move(now_s)) {}

void VerifyProgress::Update(uint64_t done, uint64_t total, const std::string& checkpoint) {
  if (total < kQuietBelowBytes) return;
  const double now = now_s_();
  if (start_s_ < 0) start_s_ = now;
  if (done > total) done = total;  // a file grew between the size check and the read
  const int tenth = static_cast<int>(done * 10 / total);
  if (terminal_) {
    if (done < total && last_draw_s_ >= 0 && now - last_draw_s_ < 0.1) return;
  } else if (tenth <= last_tenth_) {
    return;
  }
  last_draw_s_ = now;
  last_tenth_ = tenth;
  const double elapsed = now - start_s_;
  const double rate = elapsed > 0 ? done / elapsed : 0;  // bytes per second
  char eta[32] = "";
  if (rate > 0 && done < total) std::snprintf(eta, sizeof(eta), ", %.0f s left", (total - done) / rate);
  std::fprintf(out_, "%sverifying %s: %.2f / %.2f GiB (%3.0f%%), %.2f GB/s%s%s", terminal_ ? "\r\033[K" : "",
               checkpoint.c_str(), done / 1073741824.0, total / 1073741824.0, 100.0 * done / total, rate / 1e9, eta,
               terminal_ ? "" : "\n");
  std::fflush(out_);
  drawn_ = true;
}

void VerifyProgress::Finish() {
  if (terminal_ && drawn_) std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
}

}  // namespace lockstep
