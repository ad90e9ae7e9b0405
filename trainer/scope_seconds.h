// Seconds on the steady clock: now, and ScopeSeconds, which adds the seconds its scope
// lasts to a total (what recording the steps, saving or all-reducing cost the loop).
// Internal to trainer/.
#pragma once

#include <chrono>

namespace lockstep {

inline double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

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
