#include "formats/checkpoint_layout.h"

#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/dcp.h"
#include "formats/step_log.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {
bool HasSuffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

std::string ModelWeightsFile(const std::string& dir) {
  for (const char* name : {kModelFile, hf::kSafetensorsIndexFile, hf::kSafetensorsFile, "adapter_model.safetensors",
                           "pytorch_model.bin", "adapter_model.bin", hf::kFsdpModelDir, "pytorch_model_fsdp.bin"}) {
    if (fs::exists(fs::path(dir) / name)) return name;
  }
  return "";
}

bool HasRngStateFile(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("rng_state", 0) == 0 && HasSuffix(name, ".pth")) return true;
  }
  return false;
}

bool IsDeepSpeedCheckpoint(const std::string& dir) {
  if (fs::exists(fs::path(dir) / hf::kDeepSpeedLatestFile)) return true;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && e.path().filename().string().rfind("global_step", 0) == 0) return true;
  }
  return false;
}

std::string MissingModelWeights(const std::string& dir) {
  if (!ModelWeightsFile(dir).empty() || IsDeepSpeedCheckpoint(dir)) return "";
  return kNoModelWeights;
}

std::string CheckpointLayout(const std::string& dir) {
  auto has = [&](const char* f) { return fs::exists(fs::path(dir) / f); };
  if (has(kManifestFile) || has(kModelFile) || has(kLoopStateFile)) return "lockstep";
  if (has(kTrainerStateFile) && (!ModelWeightsFile(dir).empty() || has(hf::kOptimizerFile) ||
                                 has(hf::kDeepSpeedLatestFile) || HasRngStateFile(dir))) {
    return "hf";
  }
  if (IsDcpDirectory(dir)) return "dcp";
  return "";
}

bool IsRunDirectory(const std::string& dir) {
  if (fs::exists(fs::path(dir) / kStepLogFile)) return true;
  std::vector<CheckpointDir> dirs;
  if (ListCheckpointDirs(dir, &dirs).ok() && !dirs.empty()) return true;
  return CheckpointLayout(dir).empty() && fs::exists(fs::path(dir) / kTrainerStateFile);
}

}  // namespace lockstep
