#include "cli/exit_codes.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "formats/json_file.h"

namespace lockstep {

int ExitCodeFor(const Status& status, IoRole role) {
  if (status.ok()) return kExitOk;
  if (status.IsInvalidArgument() || status.IsNotFound() || status.IsCorruption() || status.IsBusy() ||
      (status.IsIOError() && role == IoRole::kInput)) {
    return kExitUsage;
  }
  return kExitFailed;
}

int ReportFailure(const std::string& command, const Status& status, bool json, IoRole role) {
  const std::string who = command.empty() ? "lockstep" : "lockstep " + command;
  std::fprintf(stderr, "%s: %s\n", who.c_str(), status.message().c_str());
  const int code = ExitCodeFor(status, role);
  if (json) {
    const nlohmann::json error = {
        {"error", {{"command", command}, {"code", status.CodeName()}, {"message", status.message()}}},
        {"exit_code", code}};
    std::printf("%s\n", DumpJson(error, 2).c_str());
  }
  return code;
}

}  // namespace lockstep
