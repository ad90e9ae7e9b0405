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

// What an IOError means: the command's own work failed (1: a full disk while training), or
// an input it only reads could not be read (2: inspect, diff, bench compare).
enum class IoRole { kWork, kInput };

// Bad settings, missing or corrupt inputs are usage errors (2), as is an IOError of an input
// (IoRole::kInput); anything else failed (1).
int ExitCodeFor(const Status& status, IoRole role = IoRole::kWork);

// How every error leaves the CLI: "lockstep <command>: <message>" on stderr and, when the
// user asked for --json, {"error": {"command", "code", "message"}, "exit_code"} on stdout,
// so a script reading stdout sees the failure too. Returns ExitCodeFor(status).
int ReportFailure(const std::string& command, const Status& status, bool json, IoRole role = IoRole::kWork);

}  // namespace lockstep
