// Exit codes shared by every subcommand:
//   0  ok
//   1  a check failed, or differences were found, or the work itself failed
//   2  bad usage or unreadable input
#pragma once

#include <string>

#include "formats/status.h"

namespace lockstep {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Bad settings, missing or corrupt inputs are usage errors (2); anything else failed (1).
int ExitCodeFor(const Status& status);

// How every error leaves the CLI: "lockstep <command>: <message>" on stderr and, when the
// user asked for --json, {"error": {"command", "code", "message"}, "exit_code"} on stdout,
// so a script reading stdout sees the failure too. Returns ExitCodeFor(status).
int ReportFailure(const std::string& command, const Status& status, bool json);

}  // namespace lockstep
