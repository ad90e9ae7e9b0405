#include "cli/exit_codes.h"

namespace lockstep {

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  if (status.IsInvalidArgument() || status.IsNotFound() || status.IsCorruption() ||
      status.IsBusy()) {
    return kExitUsage;
  }
  return kExitFailed;
}

}  // namespace lockstep
