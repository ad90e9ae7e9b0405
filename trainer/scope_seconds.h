// ScopeSeconds: adds the seconds its scope lasts, on the steady clock, to a total (what
// recording the steps, saving or all-reducing cost the loop). Internal to trainer/.
#pragma once

#include <chrono>

namespace lockstep {

class ScopeSeconds {
 public:
  explicit ScopeSeconds(double* total) : total_(total) {}
  ~ScopeSeconds() { *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  ScopeSeconds(const ScopeSeconds&) = delete;
  ScopeSeconds& operator=(const ScopeSeconds&) = delete;

 private:
  double* total_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace lockstep
