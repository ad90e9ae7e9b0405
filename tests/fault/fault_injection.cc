#include "tests/fault/fault_injection.h"

namespace lockstep {
namespace test {

int FaultInjector::Before(IoOp op, const std::string& path) {
  if (++calls_ != fail_at_) return 0;
  failed_call_ = std::string(IoOpName(op)) + " " + path;
  return error_;
}

}  // namespace test
}  // namespace lockstep
