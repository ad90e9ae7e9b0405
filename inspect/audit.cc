#include "inspect/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <filesystem>
#include <regex>
#include <set>

#include "formats/checkpoint_layout.h"
#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/torch_archive.h"
#include "formats/rotation.h"
#include "formats/run_lock.h"
#include "formats/safetensors.h"
#include "formats/step_log.h"
#include "formats/zip_archive.h"
#include "inspect/coverage.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

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
    c->bytes += f.size;
    if (HasSuffix(f.path, ".json")) {
      json j;
      st = ReadJsonFile(dir + "/" + f.path, &j);
      if (!st.ok()) Fail(c, "corrupt", st.message());
    }
  }
}

// True when `dir` holds a DeepSpeed tag directory (global_step<N>/).
bool HasTagDirectory(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec) && e.path().filename().string().rfind("global_step", 0) == 0) return true;
  }
  return false;
}

// A DCP directory (FSDP's pytorch_model_fsdp_0/ and optimizer_0/, or a bare checkpoint):
// its .metadata reads, and every .distcp file holds the chunks it names.
void AuditDcp(const std::string& dir, CheckpointAudit* c) {
  DcpCheckpoint checkpoint;
  Status st = ReadDcpMetadata(dir, &checkpoint);
  if (!st.ok()) return Fail(c, st.IsCorruption() ? "corrupt" : "incomplete", st.message());
  if (fs::path(dir).filename() != hf::kFsdpOptimizerDir) c->tensors += static_cast<int64_t>(checkpoint.tensors.size());
  for (const auto& p : CheckDcpFiles(checkpoint)) Fail(c, p.find(": missing") != std::string::npos ? "incomplete" : "corrupt", p);
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
    return Fail(c, "incomplete", dir + "/latest: missing (DeepSpeed reads the checkpoint's tag from it; "
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
    if (std::regex_match(name, m, kOptim)) ranks->insert(std::stoll(m[2].str()));
    else if (std::regex_match(name, m, kRankModel)) model_ranks.insert(std::stoll(m[1].str()));
    else shared_model |= name == "mp_rank_00_model_states.pt";
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
      Fail(c, "incomplete", tag_dir + ": rank " + std::to_string(r) + "'s optimizer shard is missing, though the job had " +
                                std::to_string(world) + " ranks");
    }
    ranks->insert(r);
  }
  const bool zero3 = !model_ranks.empty();
  for (int64_t r = 0; zero3 && r < world; ++r) {
    if (!model_ranks.count(r)) {
      Fail(c, "incomplete", tag_dir + "/zero_pp_rank_" + std::to_string(r) + "_mp_rank_00_model_states.pt: missing (ZeRO-3 "
                                "saves one per rank)");
    }
  }
  if (!zero3 && !shared_model) Fail(c, "incomplete", tag_dir + "/mp_rank_00_model_states.pt: missing");
  c->notes.push_back(tag_dir + ": DeepSpeed " + (zero3 ? "ZeRO-3" : "ZeRO-1/2") + " shards of " + std::to_string(world) +
                     " ranks" + (zero3 ? " (the weights live in them)" : ""));
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
void AuditWeights(const std::string& dir, CheckpointAudit* c) {
  const std::string weights = ModelWeightsFile(dir);
  if (weights.empty()) {
    return Fail(c, "incomplete", dir + ": no model weights (model.safetensors, an index, pytorch_model.bin, "
                                       "or a PEFT adapter_model.safetensors)");
  }
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
      if (!fs::exists(dir + "/" + s)) Fail(c, "incomplete", dir + "/" + s + ": shard named by the index is missing");
      else shards.push_back(s);
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
  const bool deepspeed = has(hf::kDeepSpeedLatestFile) || HasTagDirectory(dir);
  if (deepspeed) {
    std::set<int64_t> ds_ranks;
    AuditDeepSpeed(dir, ranks, c, &ds_ranks);
    for (int64_t r : ds_ranks) {
      if (ds_ranks.size() > 1 && !has("rng_state_" + std::to_string(r) + ".pth")) {
        Fail(c, "incomplete", dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " + std::to_string(r) +
                                  " saved its optimizer shard");
      }
    }
  } else if (!only_model && fsdp) {
    if (has(hf::kFsdpOptimizerDir)) AuditDcp(dir + "/" + hf::kFsdpOptimizerDir, c);
    else if (!has("optimizer.bin")) Fail(c, "incomplete", dir + "/" + hf::kFsdpOptimizerDir + ": missing (accelerate saves the FSDP optimizer there)");
  } else if (!only_model) {
    required.push_back(hf::kOptimizerFile);
  }
  for (const char* f : required) {
    if (!has(f)) Fail(c, "incomplete", dir + "/" + f + ": missing (HF writes it with every checkpoint)");
  }
  // Under FSDP every rank wrote a shard: the job's ranks are known, and each needs its RNG file.
  if (fsdp && has(hf::kFsdpModelDir)) {
    const std::set<int64_t> shard_ranks = DcpRanks(dir + "/" + hf::kFsdpModelDir);
    c->notes.push_back(dir + "/" + hf::kFsdpModelDir + ": FSDP sharded state dict (DCP) of " +
                       std::to_string(shard_ranks.size()) + " ranks");
    for (int64_t r : shard_ranks) {
      if (!has("rng_state_" + std::to_string(r) + ".pth")) {
        Fail(c, "incomplete", dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " +
                                  std::to_string(r) + " wrote its model shard");
      }
    }
  }
  if (only_model) {
    c->resumable = false;
    c->notes.push_back(dir + ": saved with save_only_model: weights only (no optimizer, scheduler or RNG "
                             "state), so a resume from it is not the same run");
  } else if (!rng) {
    Fail(c, "incomplete", dir + "/rng_state.pth: missing (HF writes it with every checkpoint)");
  }
  // Every rank writes its own RNG file; a gap means a process died before it saved, and
  // resuming would give that rank a fresh generator.
  for (int64_t r = 0; !ranks.empty() && r < *ranks.rbegin(); ++r) {
    if (!ranks.count(r)) {
      Fail(c, "incomplete", dir + "/rng_state_" + std::to_string(r) + ".pth: missing, though rank " +
                                std::to_string(*ranks.rbegin()) + " saved its RNG state");
    }
  }
  if (has(hf::kIncompleteMarkerFile)) {
    Fail(c, "incomplete", dir + "/" + hf::kIncompleteMarkerFile + ": the Trainer's JIT save (on SIGTERM) never finished");
  }
  json state;
  if (has(kTrainerStateFile)) {
    Status st = ReadJsonFile(dir + "/" + kTrainerStateFile, &state);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
  if (!(deepspeed && ModelWeightsFile(dir).empty())) AuditWeights(dir, c);  // ZeRO-3: the weights are in the shards
  // Every byte the checkpoint holds, in DeepSpeed's and FSDP's subdirectories too.
  for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::none, ec)) {
    if (e.is_regular_file(ec)) c->bytes += e.file_size(ec);
  }
  // Every torch.save archive, read as data: a truncated one has lost its directory or the
  // end of a storage one of its tensors needs.
  for (const auto& f : files) {
    if (!IsTorchArchiveName(f) || f == ModelWeightsFile(dir)) continue;
    TorchArchive archive;
    Status st = ReadTorchArchive(dir + "/" + f, &archive);
    if (!st.ok()) Fail(c, "corrupt", st.message());
  }
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

// HF's save_total_limit, read from training_args.bin as data.
std::optional<int64_t> HfSaveTotalLimit(const std::string& dir) {
  TorchArchive archive;
  if (!ReadTorchArchive(dir + "/" + hf::kTrainingArgsFile, &archive).ok()) return std::nullopt;
  const nlohmann::json limit = PickledScalars(archive).value("save_total_limit", nlohmann::json());
  if (limit.is_number_integer()) return limit.get<int64_t>();
  return std::nullopt;
}

// transformers 4.36 and later stage a save in tmp-checkpoint-N and rename it when done; on
// multi-node runs the other nodes' staging directories have been left behind.
constexpr char kHfStagingPrefix[] = "tmp-checkpoint-";

bool IsKnownRunFile(const std::string& name) {
  static const std::set<std::string> kKnown = {
      kStepLogFile, kRunLockFile, kTrainResultsFile, kEvalResultsFile, kAllResultsFile, kTrainerStateFile,
      hf::kConfigFile, hf::kGenerationConfigFile, hf::kSafetensorsFile, hf::kSafetensorsIndexFile,
      hf::kTrainingArgsFile, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
      "merges.txt", "README.md", "runs", "pytorch_model.bin", "verify_report.json",
      // PEFT's adapter, more tokenizer and processor files, HF's sharded .bin index
      "adapter_model.safetensors", "adapter_model.bin", hf::kAdapterConfigFile, "tokenizer.model", "added_tokens.json",
      "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json",
      "pytorch_model.bin.index.json", "spiece.model", "sentencepiece.bpe.model"};
  return kKnown.count(name) == 1 || (HasSuffix(name, ".safetensors") && name.rfind("model-", 0) == 0) ||
         (HasSuffix(name, ".bin") && name.rfind("pytorch_model-", 0) == 0);
}

}  // namespace

bool AuditReport::healthy() const {
  if (!problems.empty()) return false;
  for (const auto& c : checkpoints) {
    if (!c.problems.empty()) return false;
  }
  return true;
}

Status AuditRun(const std::string& run_dir, const AuditOptions& options, AuditReport* report) {
  *report = AuditReport();
  report->run_dir = run_dir;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return Status::NotFound(run_dir + ": not a directory");
  // Every entry named like a checkpoint, whatever it is: a file or a broken link named
  // checkpoint-N is a problem to report, not something to skip.
  std::vector<CheckpointDir> dirs;
  bool run_like = false;  // anything a Lockstep or HF run leaves at its top level
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) dirs.push_back({step, e.path().string()});
    run_like |= IsKnownRunFile(name) || IsCheckpointLeftover(name) || name.rfind(kHfStagingPrefix, 0) == 0;
  }
  if (ec) return Status::IOError(run_dir + ": cannot list: " + ec.message());
  if (dirs.empty() && !run_like) {
    return Status::InvalidArgument(run_dir + ": not a run directory (no checkpoint-N, no " + kStepLogFile +
                                   ", no trainer_state.json); pass a run directory, a checkpoint directory, "
                                   "or a .h5/.safetensors/.pt file");
  }
  std::sort(dirs.begin(), dirs.end(), [](const CheckpointDir& a, const CheckpointDir& b) { return a.step < b.step; });

  // 1. Every checkpoint, by step.
  for (const auto& d : dirs) {
    CheckpointAudit c;
    c.step = d.step;
    c.name = fs::path(d.path).filename().string();
    c.status = "complete";
    std::error_code sec;
    const auto st = fs::status(d.path, sec);
    if (sec || !fs::is_directory(st)) {
      c.layout = "unknown";
      Fail(&c, "corrupt", d.path + ": cannot be read as a directory" + (sec ? " (" + sec.message() + ")" : ""));
    } else {
      c.layout = CheckpointLayout(d.path);
      if (c.layout == "lockstep") AuditLockstep(d.path, &c);
      else if (c.layout == "hf") AuditHf(d.path, &c);
      else if (c.layout == "dcp") AuditDcp(d.path, &c);
      else {
        c.layout = "unknown";
        Fail(&c, "incomplete", d.path + ": holds no Lockstep or Hugging Face checkpoint files");
      }
    }
    // The cheap checks read headers and sizes only: a file this user may not read is found
    // here, never taken for healthy.
    std::error_code rec;
    for (const auto& e : fs::directory_iterator(d.path, rec)) {
      if (!e.is_regular_file(rec)) continue;
      const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        Fail(&c, "unreadable", e.path().string() + ": cannot read: " + std::strerror(errno));
      } else {
        ::close(fd);
      }
    }
    // A checkpoint whose layout gave no size (no manifest): what its files hold, as found.
    if (c.bytes == 0) {
      std::error_code fec;
      for (const auto& e : fs::directory_iterator(d.path, fec)) {
        if (e.is_regular_file(fec)) c.bytes += e.file_size(fec);
      }
    }
    report->checkpoints.push_back(c);
  }
  if (options.verify) {
    // The cheap pass gave every checkpoint's size, so progress runs over the whole run.
    uint64_t total = 0, done = 0;
    for (const auto& c : report->checkpoints) total += c.status == "complete" ? c.bytes : 0;
    for (auto& c : report->checkpoints) {
      if (c.status != "complete") continue;
      ByteProgress progress;
      if (options.progress) {
        progress = [&](uint64_t bytes) { options.progress(done += bytes, total, c.name); };
      }
      VerifyCheckpoint(run_dir + "/" + c.name, progress, &c);
    }
  }
  std::vector<int64_t> complete;
  for (const auto& c : report->checkpoints) {
    if (c.status != "complete") continue;
    complete.push_back(c.step);
    if (c.resumable) report->latest_resumable = c.name;
  }
  // An HF output directory after trainer.save_model(): the final model at its top level.
  if (!ModelWeightsFile(run_dir).empty() && CheckpointLayout(run_dir) != "lockstep") {
    CheckpointAudit top;
    top.status = "complete";
    AuditWeights(run_dir, &top);
    report->findings["final_model"] = {{"file", ModelWeightsFile(run_dir)}, {"tensors", top.tensors},
                                       {"status", top.status}};
    for (const auto& p : top.problems) report->problems.push_back(p);
  }
  if (report->latest_resumable.empty()) {
    report->problems.push_back(run_dir + (complete.empty() ? ": no resumable checkpoint"
                                                           : ": no checkpoint a resume continues exactly (the complete "
                                                             "ones hold weights only: save_only_model)"));
  }

  // 2. Leftovers and strays.
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) continue;
    if (name.rfind(kStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover staging directory of a save that never committed");
    } else if (name.rfind(kDeletingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover of a checkpoint delete that never finished");
    } else if (name.rfind(kHfStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover staging directory of a Hugging Face save "
                                                     "that was never renamed to checkpoint-N");
    } else if (!IsKnownRunFile(name)) {
      report->notes.push_back(e.path().string() + ": stray entry, not part of a run");
    }
  }

  // 3. The trainer state: best checkpoint, rotation.
  json state;
  std::string state_origin = run_dir + "/" + kTrainerStateFile;
  if (!fs::exists(state_origin) && !report->latest_resumable.empty()) {
    state_origin = run_dir + "/" + report->latest_resumable + "/" + kTrainerStateFile;
  }
  int64_t best_step = kNoBestStep;
  if (fs::exists(state_origin)) {
    Status st = ReadJsonFile(state_origin, &state);
    if (st.ok() && !state.is_object()) st = Status::Corruption(state_origin + ": not a JSON object");
    if (!st.ok()) report->problems.push_back(st.message());
  }
  const json best = state.is_object() ? state.value("best_model_checkpoint", json()) : json();
  if (!best.is_null() && !best.is_string()) {
    report->problems.push_back(state_origin + ": best_model_checkpoint is " + DumpJson(best) + ", not a path");
  } else if (best.is_string()) {
    // HF records an absolute path from the machine that trained; match it by name.
    std::string recorded = best.get<std::string>();
    while (recorded.size() > 1 && recorded.back() == '/') recorded.pop_back();
    const std::string name = fs::path(recorded).filename().string();
    int64_t step = kNoBestStep;
    const bool names_checkpoint = ParseCheckpointDirName(name, &step);
    const bool exists = names_checkpoint && fs::is_directory(run_dir + "/" + name);
    report->findings["best_model_checkpoint"] = {{"recorded", best}, {"in_this_run", name}, {"exists", exists}};
    if (!names_checkpoint) {
      report->problems.push_back(state_origin + ": best_model_checkpoint '" + best.get<std::string>() +
                                 "' does not name a checkpoint-N directory");
    } else if (!exists) {
      report->problems.push_back(state_origin + ": best_model_checkpoint " + best.get<std::string>() +
                                 " does not exist in this run");
    } else {
      best_step = step;
    }
  }
  std::optional<int64_t> limit;
  const std::string newest = report->checkpoints.empty() ? "" : run_dir + "/" + report->checkpoints.back().name;
  json args;
  if (!newest.empty() && ReadJsonFile(newest + "/training_args.json", &args).ok() && args.is_object() &&
      args.value("save_total_limit", json()).is_number_integer()) {
    limit = args["save_total_limit"].get<int64_t>();
  } else if (!newest.empty() && fs::exists(newest + "/" + hf::kTrainingArgsFile)) {
    limit = HfSaveTotalLimit(newest);
  }
  json rotation = {{"kept", complete}, {"best_step", best_step == kNoBestStep ? json() : json(best_step)}};
  if (limit) {
    rotation["save_total_limit"] = *limit;
    const auto extra = CheckpointsToDelete(complete, best_step, *limit);
    rotation["holds"] = extra.empty();
    for (int64_t s : extra) {
      report->problems.push_back(run_dir + "/" + CheckpointDirName(s) + ": save_total_limit " + std::to_string(*limit) +
                                 " (best protected) should have rotated it out");
    }
  } else {
    rotation["save_total_limit"] = nullptr;
  }
  report->findings["rotation"] = rotation;

  // 4. The step log covers every checkpoint (Lockstep runs).
  const std::string log_path = run_dir + "/" + kStepLogFile;
  if (fs::exists(log_path)) {
    StepLogContents log;
    Status st = ReadStepLog(log_path, &log);
    if (!st.ok()) {
      report->problems.push_back(st.message());
    } else {
      std::set<int64_t> steps;
      for (const auto& r : log.records) steps.insert(r.value("step", int64_t{-1}));
      json uncovered = json::array();
      for (const auto& c : report->checkpoints) {
        if (c.layout == "lockstep" && !steps.count(c.step)) {
          uncovered.push_back(c.step);
          report->problems.push_back(log_path + ": no record of step " + std::to_string(c.step) + " (" + c.name + ")");
        }
      }
      report->findings["step_log"] = {{"records", log.records.size()}, {"resumes", log.events.size()},
                                      {"last_step", log.records.empty() ? 0 : log.records.back().value("step", 0)},
                                      {"truncated_tail", log.truncated_tail}, {"uncovered_checkpoints", uncovered}};
      if (log.truncated_tail) report->notes.push_back(log_path + ": " + log.tail_problem + " (a killed writer)");
      // Which samples each epoch saw, from the ids every record holds.
      const CoverageReport coverage = ComputeCoverage(log, log_path);
      report->findings["coverage"] = CoverageJson(coverage);
      for (const auto& p : coverage.problems) report->problems.push_back(log_path + ": " + p);
      for (const auto& n : coverage.notes) report->notes.push_back(log_path + ": " + n);
    }
  } else if (std::any_of(report->checkpoints.begin(), report->checkpoints.end(),
                         [](const CheckpointAudit& c) { return c.layout == "lockstep"; })) {
    report->problems.push_back(log_path + ": missing, so no checkpoint's steps are recorded");
  }
  return Status::Ok();
}

json AuditReportJson(const AuditReport& r) {
  json checkpoints = json::array();
  for (const auto& c : r.checkpoints) {
    checkpoints.push_back({{"step", c.step}, {"name", c.name}, {"layout", c.layout}, {"status", c.status},
                           {"bytes", c.bytes}, {"resumable", c.resumable}, {"problems", c.problems},
                           {"notes", c.notes}});
  }
  return {{"run_dir", r.run_dir}, {"healthy", r.healthy()}, {"checkpoints", checkpoints},
          {"latest_resumable", r.latest_resumable.empty() ? json() : json(r.latest_resumable)},
          {"problems", r.problems}, {"notes", r.notes}, {"findings", r.findings}};
}

}  // namespace lockstep
