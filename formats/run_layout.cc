#include "formats/run_layout.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/step_log.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// Lightning's "epoch=0-step=4.ckpt": the number after "step=", else the name's last number.
int64_t LightningStep(const std::string& name) {
  const size_t at = name.rfind("step=");
  if (at != std::string::npos) {
    size_t end = at + 5;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
    if (end > at + 5 && end - at - 5 < 16) return std::stoll(name.substr(at + 5, end - at - 5));
  }
  return TrailingNumber(name.substr(0, name.size() - std::string(lightning::kExtension).size()));
}

void AddLightningFiles(const std::string& run_dir, const std::string& folder, std::vector<RunCheckpoint>* out) {
  std::error_code ec;
  const std::string where = folder.empty() ? run_dir : run_dir + "/" + folder;
  for (const auto& e : fs::directory_iterator(where, ec)) {
    const std::string name = e.path().filename().string();
    if (!HasSuffix(name, lightning::kExtension) || e.is_directory(ec)) continue;
    RunCheckpoint c;
    c.name = folder.empty() ? name : folder + "/" + name;
    c.path = run_dir + "/" + c.name;
    c.step = LightningStep(name);
    c.order = c.step;
    c.is_file = true;
    out->push_back(c);
  }
}

void AddAccelerateCheckpoints(const std::string& run_dir, const std::string& folder, std::vector<RunCheckpoint>* out) {
  std::error_code ec;
  const std::string where = folder.empty() ? run_dir : run_dir + "/" + folder;
  const std::string prefix = accelerate::kCheckpointPrefix;
  for (const auto& e : fs::directory_iterator(where, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() || name.size() > prefix.size() + 9 ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) {
      continue;
    }
    RunCheckpoint c;
    c.name = folder.empty() ? name : folder + "/" + name;
    c.path = run_dir + "/" + c.name;
    c.order = std::stoll(name.substr(prefix.size()));
    c.is_file = !e.is_directory(ec);
    out->push_back(c);
  }
}

}  // namespace

int64_t TrailingNumber(const std::string& name) {
  size_t end = name.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(name[end - 1]))) --end;
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(name[begin - 1]))) --begin;
  if (begin == end || end - begin > 15) return -1;
  return std::stoll(name.substr(begin, end - begin));
}

Status ListRunCheckpoints(const std::string& run_dir, std::vector<RunCheckpoint>* out) {
  out->clear();
  std::error_code ec;
  std::vector<std::string> lightning_versions;
  // An HF checkpoint's FSDP parts (pytorch_model_fsdp_0/, optimizer_0/) are DCP directories
  // inside one checkpoint, not a run's checkpoints.
  const bool is_checkpoint = !CheckpointLayout(run_dir).empty();
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    std::error_code dec;
    const bool dir = e.is_directory(dec);
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) {
      out->push_back({step, step, name, e.path().string(), !dir});
    } else if (dir && name == accelerate::kCheckpointsDir) {
      AddAccelerateCheckpoints(run_dir, name, out);
      AddLightningFiles(run_dir, name, out);
    } else if (dir && name == lightning::kLogsDir) {
      for (const auto& v : fs::directory_iterator(e.path(), dec)) {
        if (v.is_directory(dec)) lightning_versions.push_back(name + "/" + v.path().filename().string());
      }
    } else if (dir && !is_checkpoint && (IsDcpDirectory(e.path().string()) || HasDcpDataFiles(e.path().string()))) {
      const int64_t n = TrailingNumber(name);
      out->push_back({n, n, name, e.path().string(), false});
    }
  }
  if (ec) return Status::IOError(run_dir + ": cannot list: " + ec.message());
  AddAccelerateCheckpoints(run_dir, "", out);  // run_dir is accelerate's checkpoints/ itself
  AddLightningFiles(run_dir, "", out);
  std::sort(lightning_versions.begin(), lightning_versions.end());
  for (const auto& v : lightning_versions) AddLightningFiles(run_dir, v + "/" + lightning::kCheckpointsDir, out);
  std::stable_sort(out->begin(), out->end(), [](const RunCheckpoint& a, const RunCheckpoint& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  return Status::Ok();
}

std::set<std::string> CheckpointFileSet(const std::string& checkpoint_dir) {
  static const std::regex kTag("global_step[0-9]+");
  static const std::regex kRanked(
      "(rng_state(_[0-9]+)?\\.pth|rng_state_[0-9]+\\.json|random_states_[0-9]+\\.pkl|__[0-9]+_[0-9]+\\.distcp|"
      ".*zero_pp_rank_[0-9]+_.*)");
  std::set<std::string> files;
  for (const auto& rel : FilesBelow(checkpoint_dir)) {
    const std::string name = fs::path(rel).filename().string();
    if (std::regex_match(name, kRanked) || name[0] == '.' || name == hf::kIncompleteMarkerFile) continue;
    files.insert(std::regex_replace(rel, kTag, "global_step*"));
  }
  return files;
}

bool IsRunDirectory(const std::string& dir) {
  if (Exists(fs::path(dir) / kStepLogFile)) return true;
  std::vector<RunCheckpoint> checkpoints;
  if (ListRunCheckpoints(dir, &checkpoints).ok() && !checkpoints.empty()) return true;
  return CheckpointLayout(dir).empty() && Exists(fs::path(dir) / kTrainerStateFile);
}

}  // namespace lockstep
