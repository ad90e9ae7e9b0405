#include "formats/checkpoint_layout.h"

#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/step_log.h"

namespace fs = std::filesystem;

namespace lockstep {
std::string ModelWeightsFile(const std::string& dir) {
  for (const char* name : {kModelFile, hf::kSafetensorsIndexFile, hf::kSafetensorsFile, peft::kAdapterSafetensorsFile,
                           hf::kBinWeightsFile, peft::kAdapterBinFile, fsdp::kModelDir, fsdp::kFullModelFile}) {
    if (Exists(fs::path(dir) / name)) return name;
  }
  return "";
}

bool HasRngStateFile(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsRngStateFile(name, hf::kRngStateExt)) return true;
  }
  return false;
}

bool IsDeepSpeedCheckpoint(const std::string& dir) {
  if (Exists(fs::path(dir) / deepspeed::kLatestFile)) return true;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && e.path().filename().string().rfind(deepspeed::kTagPrefix, 0) == 0) return true;
  }
  return false;
}

std::string MissingModelWeights(const std::string& dir) {
  if (!ModelWeightsFile(dir).empty() || IsDeepSpeedCheckpoint(dir)) return "";
  return kNoModelWeights;
}

bool HasDcpDataFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t rank;
    if (dcp::ParseDataFile(name, &rank)) return true;
  }
  return false;
}

namespace {

bool HasAccelerateFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t rank;
    if (name.rfind(accelerate::kRandomStatesPrefix, 0) == 0 && ParseRankedRngFile(name, &rank)) return true;
  }
  return !Exists(fs::path(dir) / kTrainerStateFile) &&
         (Exists(fs::path(dir) / accelerate::kOptimizerFile) || Exists(fs::path(dir) / accelerate::kSchedulerFile));
}

}  // namespace

std::string CheckpointLayout(const std::string& dir) {
  auto has = [&](const char* f) { return Exists(fs::path(dir) / f); };
  if (has(kManifestFile) || has(kModelFile) || has(kLoopStateFile)) return layout::kLockstep;
  if (has(kTrainerStateFile) && (!ModelWeightsFile(dir).empty() || has(hf::kOptimizerFile) ||
                                 has(deepspeed::kLatestFile) || HasRngStateFile(dir))) {
    return layout::kHf;
  }
  // The files only the Trainer writes: a checkpoint that lost trainer_state.json (or is still
  // being saved) is still the Trainer's. Its rng_state files come after the weights (save_model
  // first), so rng_state_<r>.pth beside no weights is a script's own naming, not the Trainer's.
  if (has(hf::kTrainingArgsFile) || has(hf::kOptimizerFile) || has(hf::kSchedulerFile) || has(hf::kScalerFile) ||
      (HasRngStateFile(dir) && !ModelWeightsFile(dir).empty()) || has(deepspeed::kLatestFile)) {
    return layout::kHf;
  }
  if (IsDcpDirectory(dir) || HasDcpDataFiles(dir)) return layout::kDcp;
  if (HasAccelerateFiles(dir)) return layout::kAccelerate;
  return "";
}

}  // namespace lockstep
