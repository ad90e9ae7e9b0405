#include "cli/save_io_probe.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "formats/step_log.h"

namespace lockstep {

Status ParseCrashPoint(const std::string& text, CrashPoint* out) {
  const size_t colon = text.find(':');
  char* end = nullptr;
  const bool ok = colon != std::string::npos &&
                  (out->save_step = std::strtoll(text.c_str(), &end, 10), end == text.c_str() + colon) &&
                  (out->io_call = std::strtoll(text.c_str() + colon + 1, &end, 10), *end == '\0') &&
                  out->save_step >= 1 && out->io_call >= 1;
  if (ok) return Status::Ok();
  return Status::InvalidArgument(
      "--crash-at-io expects STEP:CALL with both >= 1 (after the CALL-th write, fsync "
      "or rename of the save at STEP), got '" +
      text + "'");
}

void SaveIoProbe::OnEvent(const char* event, int64_t step) {
  if (std::strcmp(event, "save") == 0) {
    calls_ = 0;
    saving_step_ = step;
  } else if (std::strcmp(event, "saved") == 0) {
    if (report_) report_("save-io", calls_.load());
    saving_step_ = -1;
  }
}

void SaveIoProbe::After(IoOp op, const std::string& path) {
  const int64_t saving = saving_step_.load();
  if (saving < 0 || (op != IoOp::kWrite && op != IoOp::kFsync && op != IoOp::kRename)) return;
  // The step log is not the checkpoint: with --save_async its encoder writes while a save
  // runs, as many times as the clock decides, and the count must be the same on a rerun.
  if (std::filesystem::path(path).filename() == kStepLogFile) return;
  const int64_t calls = ++calls_;
  if (saving == crash_.save_step && calls == crash_.io_call) ::kill(::getpid(), SIGKILL);
}

}  // namespace lockstep
