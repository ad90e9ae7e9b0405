// Fault injection for tests, after leveldb's FaultInjectionTestEnv and ErrorEnv: an IoHook
// (formats/io.h) that counts every disk-changing call and makes the N-th fail with a
// chosen errno, as a full disk (ENOSPC) or a failing one (EIO) would.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "formats/io.h"

namespace lockstep {
namespace test {

class FaultInjector : public IoHook {
 public:
  // Fails call number `fail_at` (1-based; 0: none, only count) with `error`.
  explicit FaultInjector(int64_t fail_at = 0, int error = ENOSPC) : fail_at_(fail_at), error_(error) {}

  int Before(IoOp op, const std::string& path) override;
  void After(IoOp, const std::string&) override {}

  int64_t calls() const { return calls_; }  // every call seen, the failed one included
  bool fired() const { return !failed_call_.empty(); }
  const std::string& failed_call() const { return failed_call_; }  // "write run/steps.jsonl.zst"

 private:
  int64_t fail_at_;
  int error_;
  int64_t calls_ = 0;
  std::string failed_call_;
};

// Installs a hook for the life of the scope.
class ScopedIoHook {
 public:
  explicit ScopedIoHook(IoHook* hook) { SetIoHook(hook); }
  ~ScopedIoHook() { SetIoHook(nullptr); }
  ScopedIoHook(const ScopedIoHook&) = delete;
  ScopedIoHook& operator=(const ScopedIoHook&) = delete;
};

}  // namespace test
}  // namespace lockstep
