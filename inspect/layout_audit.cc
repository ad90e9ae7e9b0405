#include "inspect/layout_audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/checksum.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/rotation.h"
#include "formats/run_lock.h"
#include "formats/safetensors.h"
#include "formats/step_log.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace audit_detail {

// "rng_state_3.pth" -> 3.
bool ParseRankedRngFile(const std::string& name, int64_t* rank) {
  static const std::string kPrefix = "rng_state_";
  if (name.rfind(kPrefix, 0) != 0 || !HasSuffix(name, ".pth")) return false;
  const std::string digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - 4);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *rank = std::stoll(digits);
  return true;
}

void Fail(CheckpointAudit* c, const std::string& status, const std::string& problem) {
  // corrupt outranks unreadable, which outranks incomplete
  if (c->status != "corrupt" && !(c->status == "unreadable" && status == "incomplete")) c->status = status;
  c->problems.push_back(problem);
}

// The cheap checks: the manifest parses, every file it lists is there with its size, and
// the small JSON files parse (which a checksum cannot tell).
void AuditLockstep(const std::string& dir, CheckpointAudit* c) {
  if (!fs::exists(dir + "/" + kManifestFile)) {
    return Fail(c, "incomplete", dir + ": no manifest.json (the save never committed)");
  }
  Manifest manifest;
  Status st = ValidateCheckpoint(dir, VerifyMode::kSizes, &manifest);
  if (!st.ok()) {
    return Fail(c, st.IsNotFound() ? "incomplete" : "corrupt", st.message());
  }
  for (const auto& f : manifest.files) {
    c->bytes += f.content.size;
    if (HasSuffix(f.path, ".json")) {
      json j;
      st = ReadJsonFile(dir + "/" + f.path, &j);
      if (!st.ok()) Fail(c, "corrupt", st.message());
    }
  }
}

// A DCP directory (FSDP's pytorch_model_fsdp_0/ and optimizer_0/, or a bare checkpoint):
// its .metadata reads, and every .distcp file holds the chunks it names.
void AuditDcp(const std::string& dir, CheckpointAudit* c) {
  DcpCheckpoint checkpoint;
  Status st = ReadDcpMetadata(dir, &checkpoint);
  if (!st.ok()) return Fail(c, st.IsCorruption() ? "corrupt" : "incomplete", st.message());
  if (fs::path(dir).filename() != hf::kFsdpOptimizerDir) c->tensors += static_cast<int64_t>(checkpoint.tensors.size());
  for (const auto& p : CheckDcpFiles(checkpoint))
    Fail(c, p.find(": missing") != std::string::npos ? "incomplete" : "corrupt", p);
}

// The ranks whose files a checkpoint holds, from DCP's "__<rank>_<n>.distcp" names.
std::set<int64_t> DcpRanks(const std::string& dir) {
  std::set<int64_t> ranks;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t second = name.find('_', 2);
    if (name.rfind("__", 0) != 0 || !HasSuffix(name, ".distcp") || second == std::string::npos) continue;
    const std::string digits = name.substr(2, second - 2);
    if (!digits.empty() && digits.size() < 9 && digits.find_first_not_of("0123456789") == std::string::npos) {
      ranks.insert(std::stoll(digits));
    }
  }
  return ranks;
}

// DeepSpeed's checkpoint inside an HF one (transformers' _save_checkpoint calls the engine's
// save_checkpoint): `latest` names the tag directory, which holds every data-parallel
// rank's optimizer shard (zero_pp_rank_<r>_mp_rank_00_optim_states.pt, "bf16_" before it
// under bf16) and the model states: mp_rank_00_model_states.pt, or under ZeRO-3 one per
// rank. Checked as DeepSpeed's load_checkpoint reads them; the ranks found go to `ranks`.
void AuditDeepSpeed(const std::string& dir, const std::set<int64_t>& rng_ranks, CheckpointAudit* c,
                    std::set<int64_t>* ranks) {
  std::string tag;
  if (!ReadFileToString(dir + "/latest", &tag, 4096).ok()) {
    return Fail(c, "incomplete",
                dir +
                    "/latest: missing (DeepSpeed reads the checkpoint's tag from it; "
                    "without it a resume fails)");
  }
  while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.pop_back();
  const std::string tag_dir = dir + "/" + tag;
  if (tag.empty() || tag.find('/') != std::string::npos || !fs::is_directory(tag_dir)) {
    return Fail(c, "incomplete", dir + "/latest names '" + tag + "', which is not a directory of this checkpoint");
  }
  static const std::regex kOptim("(bf16_)?zero_pp_rank_([0-9]{1,6})_mp_rank_[0-9]+_optim_states\\.pt");
  static const std::regex kRankModel("zero_pp_rank_([0-9]{1,6})_mp_rank_[0-9]+_model_states\\.pt");
  std::set<int64_t> model_ranks;
  bool shared_model = false;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tag_dir, ec)) {
    const std::string name = e.path().filename().string();
    std::smatch m;
    if (std::regex_match(name, m, kOptim))
      ranks->insert(std::stoll(m[2].str()));
    else if (std::regex_match(name, m, kRankModel))
      model_ranks.insert(std::stoll(m[1].str()));
    else
      shared_model |= name == "mp_rank_00_model_states.pt";
    if (!IsTorchArchiveName(name)) continue;
    TorchArchive archive;
    Status st = ReadTorchArchive(e.path().string(), &archive);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
  if (ranks->empty()) return Fail(c, "incomplete", tag_dir + ": no optimizer shard (zero_pp_rank_*_optim_states.pt)");
  // The job's size is the most ranks any of its files show: the shards, ZeRO-3's model
  // states, or the processes' RNG files beside them.
  int64_t world = *ranks->rbegin() + 1;
  if (!model_ranks.empty()) world = std::max(world, *model_ranks.rbegin() + 1);
  if (!rng_ranks.empty()) world = std::max(world, *rng_ranks.rbegin() + 1);
  for (int64_t r = 0; r < world; ++r) {
    if (!ranks->count(r)) {
      Fail(c, "incomplete",
           tag_dir + ": rank " + std::to_string(r) + "'s optimizer shard is missing, though the job had " +
               std::to_string(world) + " ranks");
    }
    ranks->insert(r);
  }
  const bool zero3 = !model_ranks.empty();
  for (int64_t r = 0; zero3 && r < world; ++r) {
    if (!model_ranks.count(r)) {
      Fail(c, "incomplete",
           tag_dir + "/zero_pp_rank_" + std::to_string(r) +
               "_mp_rank_00_model_states.pt: missing (ZeRO-3 "
               "saves one per rank)");
    }
  }
  if (!zero3 && !shared_model) Fail(c, "incomplete", tag_dir + "/mp_rank_00_model_states.pt: missing");
  c->notes.push_back(tag_dir + ": DeepSpeed " + (zero3 ? "ZeRO-3" : "ZeRO-1/2") + " shards of " +
                     std::to_string(world) + " ranks" + (zero3 ? " (the weights live in them)" : ""));
}

// TrainingArguments.save_only_model, read from training_args.bin as data.
bool HfSaveOnlyModel(const std::string& dir) {
  TorchArchive archive;
  return ReadTorchArchive(dir + "/" + hf::kTrainingArgsFile, &archive).ok() &&
         PickledScalars(archive).value("save_only_model", json()) == true;
}

// The model weights of an HF checkpoint or output directory, read as their format says: a
// safetensors header against the file's size (every shard an index names), a torch archive
// against its storages. A PEFT adapter is the model, and needs its adapter_config.json.
// `weights`: the checkpoint's ModelWeightsFile, not empty.
void AuditWeights(const std::string& dir, const std::string& weights, CheckpointAudit* c) {
  if (weights.rfind("adapter_model", 0) == 0 && !fs::exists(dir + "/" + hf::kAdapterConfigFile)) {
    Fail(c, "incomplete", dir + "/" + hf::kAdapterConfigFile + ": missing (PEFT saves it beside " + weights + ")");
  }
  if (IsDcpDirectory(dir + "/" + weights)) return AuditDcp(dir + "/" + weights, c);  // FSDP, sharded
  std::vector<std::string> shards;
  if (weights == hf::kSafetensorsIndexFile) {
    std::map<std::string, std::string> weight_map;
    Status st = ReadSafetensorsIndex(dir + "/" + weights, &weight_map);
    if (!st.ok()) return Fail(c, "corrupt", st.message());
    std::set<std::string> unique;
    for (const auto& [name, shard] : weight_map) unique.insert(shard);
    for (const auto& s : unique) {
      if (!fs::exists(dir + "/" + s))
        Fail(c, "incomplete", dir + "/" + s + ": shard named by the index is missing");
      else
        shards.push_back(s);
    }
  } else {
    shards.push_back(weights);
  }
  for (const auto& s : shards) {
    Status st;
    if (HasSuffix(s, ".safetensors")) {
      SafetensorsFile file;
      st = ReadSafetensorsHeader(dir + "/" + s, &file);
      if (st.ok()) c->tensors += static_cast<int64_t>(file.tensors.size());
    } else {
      TorchArchive archive;
      st = ReadTorchArchive(dir + "/" + s, &archive);
      if (st.ok()) c->tensors += static_cast<int64_t>(archive.tensors.size());
    }
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
}

// Hugging Face's rules: what Trainer._save_checkpoint writes, read without a framework.
// The RNG files: one per rank of the job (its ranks known from FSDP's shards, or the highest
// rank that saved one), and none needed for a weights-only save, which is noted as not
// resumable.
void AuditHfRngFiles(const std::string& dir, const std::set<int64_t>& ranks, bool rng, bool only_model, bool fsdp,
                     CheckpointAudit* c) {
  auto has = [&](const std::string& f) { return fs::exists(dir + "/" + f); };
  // Under FSDP every rank wrote a shard: the job's ranks are known, and each needs its RNG file.
  if (fsdp && has(hf::kFsdpModelDir)) {
    const std::set<int64_t> shard_ranks = DcpRanks(dir + "/" + hf::kFsdpModelDir);
    c->notes.push_back(dir + "/" + hf::kFsdpModelDir + ": FSDP sharded state dict (DCP) of " +
                       std::to_string(shard_ranks.size()) + " ranks");
    for (int64_t r : shard_ranks) {
      if (!has("rng_state_" + std::to_string(r) + ".pth")) {
        Fail(c, "incomplete",
             dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " + std::to_string(r) +
                 " wrote its model shard");
      }
    }
  }
  if (only_model) {
    c->resumable = false;
    c->notes.push_back(dir +
                       ": saved with save_only_model: weights only (no optimizer, scheduler or RNG "
                       "state), so a resume from it is not the same run");
  } else if (!rng) {
    Fail(c, "incomplete", dir + "/rng_state.pth: missing (HF writes it with every checkpoint)");
  }
  // Every rank writes its own RNG file; a gap means a process died before it saved, and
  // resuming would give that rank a fresh generator.
  for (int64_t r = 0; !ranks.empty() && r < *ranks.rbegin(); ++r) {
    if (!ranks.count(r)) {
      Fail(c, "incomplete",
           dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " + std::to_string(*ranks.rbegin()) +
               " saved its RNG state");
    }
  }
}

// What the cheap checks read: the JIT save's marker, trainer_state.json, the weights'
// headers, every torch.save archive's directory; and the checkpoint's size.
void ReadHfFiles(const std::string& dir, const std::vector<std::string>& files, CheckpointAudit* c) {
  auto has = [&](const std::string& f) { return fs::exists(dir + "/" + f); };
  std::error_code ec;
  if (has(hf::kIncompleteMarkerFile)) {
    Fail(c, "incomplete",
         dir + "/" + hf::kIncompleteMarkerFile + ": the Trainer's JIT save (on SIGTERM) never finished");
  }
  json state;
  if (has(kTrainerStateFile)) {
    Status st = ReadJsonFile(dir + "/" + kTrainerStateFile, &state);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
  const std::string weights = ModelWeightsFile(dir);
  if (!weights.empty()) {
    AuditWeights(dir, weights, c);
  } else if (const std::string missing = MissingModelWeights(dir); !missing.empty()) {  // verify-resume's rule too
    Fail(c, "incomplete", dir + ": " + missing);
  }  // else ZeRO-3: the weights are in DeepSpeed's shards
  // Every byte the checkpoint holds, in DeepSpeed's and FSDP's subdirectories too.
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::none, ec)) {
    if (e.is_regular_file(ec)) c->bytes += e.file_size(ec);
  }
  // Every torch.save archive, read as data: a truncated one has lost its directory or the
  // end of a storage one of its tensors needs.
  for (const auto& f : files) {
    if (!IsTorchArchiveName(f) || f == weights) continue;
    TorchArchive archive;
    Status st = ReadTorchArchive(dir + "/" + f, &archive);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
}

void AuditHf(const std::string& dir, CheckpointAudit* c) {
  auto has = [&](const std::string& f) { return fs::exists(dir + "/" + f); };
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) files.push_back(e.path().filename().string());
  bool rng = false;
  std::set<int64_t> ranks;  // rng_state_<rank>.pth: one per process of a multi-process run
  for (const auto& f : files) {
    rng |= f.rfind("rng_state", 0) == 0 && HasSuffix(f, ".pth");
    int64_t rank;
    if (ParseRankedRngFile(f, &rank)) ranks.insert(rank);
  }
  // save_only_model: HF saves the weights alone; a resume then starts a fresh optimizer,
  // scheduler and generators, so it is not the same run.
  const bool only_model = has(hf::kTrainingArgsFile) && HfSaveOnlyModel(dir);
  std::vector<const char*> required = {kTrainerStateFile, hf::kTrainingArgsFile};
  if (!only_model) required.push_back(hf::kSchedulerFile);
  // The optimizer: optimizer.pt, or under FSDP accelerate's optimizer_0/ (sharded, DCP) or
  // optimizer.bin (full state dict).
  const bool fsdp = has(hf::kFsdpModelDir) || has("pytorch_model_fsdp.bin");
  // DeepSpeed holds the optimizer (and under ZeRO-3 the weights) in its own shards.
  const bool deepspeed = IsDeepSpeedCheckpoint(dir);
  if (deepspeed) {
    std::set<int64_t> ds_ranks;
    AuditDeepSpeed(dir, ranks, c, &ds_ranks);
    for (int64_t r : ds_ranks) {
      if (ds_ranks.size() > 1 && !has("rng_state_" + std::to_string(r) + ".pth")) {
        Fail(c, "incomplete",
             dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " + std::to_string(r) +
                 " saved its optimizer shard");
      }
    }
  } else if (!only_model && fsdp) {
    if (has(hf::kFsdpOptimizerDir))
      AuditDcp(dir + "/" + hf::kFsdpOptimizerDir, c);
    else if (!has("optimizer.bin"))
      Fail(c, "incomplete",
           dir + "/" + hf::kFsdpOptimizerDir + ": missing (accelerate saves the FSDP optimizer there)");
  } else if (!only_model) {
    required.push_back(hf::kOptimizerFile);
  }
  for (const char* f : required) {
    if (!has(f)) Fail(c, "incomplete", dir + "/" + f + ": missing (HF writes it with every checkpoint)");
  }
  AuditHfRngFiles(dir, ranks, rng, only_model, fsdp, c);
  ReadHfFiles(dir, files, c);
}

// --verify, after the cheap checks passed: Lockstep checkpoints have every checksum
// recomputed; HF keeps no checksums, so every byte is read, which finds what the disk
// cannot give back.
void VerifyCheckpoint(const std::string& dir, const ByteProgress& progress, CheckpointAudit* c) {
  if (c->layout == "lockstep") {
    Status st = ValidateCheckpoint(dir, VerifyMode::kChecksums, nullptr, progress);
    if (!st.ok()) Fail(c, "corrupt", st.message());
    return;
  }
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::none, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::string hex;
    Status st = FileXxh3Hex(e.path().string(), &hex, nullptr, progress);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
}

}  // namespace audit_detail
}  // namespace lockstep
