#include "inspect/layout_audit.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "formats/zip_archive.h"
#include "inspect/pickle_safety.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace audit_detail {
namespace {

int Rank(const std::string& status) {
  if (status == kCorrupt) return 3;
  if (status == kUnreadable) return 2;
  if (status == kIncomplete) return 1;
  return 0;
}

bool Has(const std::string& dir, const std::string& file) { return Exists(dir + "/" + file); }

// The ranks whose files a DCP checkpoint holds, from "__<rank>_<n>.distcp" names.
std::set<int64_t> DcpFileRanks(const std::vector<std::string>& names) {
  std::set<int64_t> ranks;
  for (const auto& name : names) {
    int64_t rank;
    if (dcp::ParseDataFile(name, &rank)) ranks.insert(rank);
  }
  return ranks;
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The number of processes training_args.bin says the job had (accelerate's PartialState,
// pickled in TrainingArguments.distributed_state), or 0 when it does not say.
int64_t HfTrainingArgsWorld(const std::string& dir) {
  TorchArchive archive;
  if (!ReadTorchArchive(dir + "/" + hf::kTrainingArgsFile, &archive).ok()) return 0;
  const json& v = archive.values;
  const json& fields = v.is_object() && v.contains("state") ? v["state"] : v;
  const json state = fields.is_object() ? fields.value("distributed_state", json()) : json();
  const json processes = state.is_object() ? state.value("state", json()).value("num_processes", json()) : json();
  return processes.is_number_integer() ? processes.get<int64_t>() : 0;
}

// TrainingArguments.save_only_model, read from training_args.bin as data.
bool HfSaveOnlyModel(const std::string& dir) {
  TorchArchive archive;
  return ReadTorchArchive(dir + "/" + hf::kTrainingArgsFile, &archive).ok() &&
         PickledScalars(archive).value("save_only_model", json()) == true;
}

// A file a save always writes is missing.
void Missing(CheckpointAudit* c, const std::string& path, const std::string& why) {
  Fail(c, kIncomplete, path + ": missing (" + why + ")");
}

// Every rank 0..world-1 has its generator file `name(r)`: a gap means a process died before
// it saved, or the file was lost, and resuming would give that rank a fresh generator.
void RequireRankFiles(const std::string& dir, int64_t world, const std::function<std::string(int64_t)>& name,
                      const std::string& evidence, CheckpointAudit* c) {
  for (int64_t r = 0; r < world; ++r) {
    if (!Has(dir, name(r))) {
      Missing(c, dir + "/" + name(r),
              "rank " + std::to_string(r) + " of the job's " + std::to_string(world) + " saves it; " + evidence);
    }
  }
}

}  // namespace

void Fail(CheckpointAudit* c, const std::string& status, const std::string& problem) {
  if (Rank(status) >= Rank(c->status)) c->status = status;
  c->problems.push_back(problem);
}

bool AuditTorchArchive(const std::string& path, CheckpointAudit* c, TorchArchive* archive) {
  TorchArchive local;
  TorchArchive* a = archive ? archive : &local;
  const Status st = ReadTorchArchive(path, a);
  if (!st.ok()) {
    Fail(c, kCorrupt, st.message());
    return false;
  }
  for (const auto& g : DangerousGlobals(a->globals)) {
    Fail(c, kCorrupt,
         path + ": its pickle calls " + g +
             " when loaded: torch.load(weights_only=False) or pickle.load would run it (Lockstep read it as data "
             "and ran nothing)");
  }
  return true;
}

// The cheap checks: the manifest parses, every file it lists is there with its size, and
// the small JSON files parse (which a checksum cannot tell).
void AuditLockstep(const std::string& dir, CheckpointAudit* c) {
  if (!Has(dir, kManifestFile))
    return Fail(c, kIncomplete, dir + "/" + kManifestFile + ": missing (the save never committed)");
  Manifest manifest;
  Status st = ValidateCheckpoint(dir, VerifyMode::kSizes, &manifest);
  if (!st.ok()) return Fail(c, st.IsNotFound() ? kIncomplete : kCorrupt, st.message());
  std::error_code ec;
  c->bytes += fs::file_size(dir + "/" + kManifestFile, ec);
  for (const auto& f : manifest.files) {
    c->bytes += f.content.size;
    if (HasSuffix(f.path, ".json")) {
      json j;
      st = ReadJsonFile(dir + "/" + f.path, &j);
      if (!st.ok()) Fail(c, kCorrupt, st.message());
      // The processes that saved it: each wrote its generator file (a resume at another
      // world size saves another set of them than the run's earlier checkpoints).
      if (f.path == kTrainingArgsJsonFile && j.is_object() && j.value("world_size", json()).is_number_integer()) {
        c->ranks = j["world_size"].get<int64_t>();
      }
      if (f.path == kTrainingArgsJsonFile && j.is_object() && j.value("save_only_model", false) == true) {
        c->resumable = false;
        c->notes.push_back(dir +
                           ": saved with save_only_model: the model alone (no optimizer, scheduler, sampler "
                           "or generator state), so no resume from it continues the run");
      }
    }
  }
}

// A DCP directory (FSDP's pytorch_model_fsdp_0/ and optimizer_0/, or a bare checkpoint):
// its .metadata reads, and every .distcp file holds the chunks it names.
void AuditDcp(const std::string& dir, CheckpointAudit* c) {
  if (!IsDcpDirectory(dir)) {
    return Missing(c, dir + "/" + dcp::kMetadataFile,
                   "torch.distributed.checkpoint writes it last, once every rank's .distcp file is whole: without it "
                   "nothing can load the shards");
  }
  DcpCheckpoint checkpoint;
  Status st = ReadDcpMetadata(dir, &checkpoint);
  if (!st.ok()) return Fail(c, st.IsCorruption() ? kCorrupt : kIncomplete, st.message());
  if (fs::path(dir).filename() != fsdp::kOptimizerDir) c->tensors += static_cast<int64_t>(checkpoint.tensors.size());
  const std::set<int64_t> ranks = DcpFileRanks(checkpoint.files);
  if (!ranks.empty()) c->ranks = std::max(c->ranks, *ranks.rbegin() + 1);
  for (const auto& p : CheckDcpFiles(checkpoint))
    Fail(c, p.find(": missing") != std::string::npos ? kIncomplete : kCorrupt, p);
}

namespace {

// A safetensors file's header read and checked against the file's size: a problem when it
// does not hold; the tensors it lists (0 then).
int64_t AuditSafetensors(const std::string& path, CheckpointAudit* c) {
  SafetensorsFile file;
  const Status st = ReadSafetensorsHeader(path, &file);
  if (!st.ok()) {
    Fail(c, kCorrupt, st.message());
    return 0;
  }
  return static_cast<int64_t>(file.tensors.size());
}

}  // namespace

// The model weights of an HF checkpoint or output directory, read as their format says: a
// safetensors header against the file's size (every shard an index names), a torch archive
// against its storages. A PEFT adapter is the model, and needs its adapter_config.json.
void AuditWeights(const std::string& dir, const std::string& weights, CheckpointAudit* c) {
  if (weights.rfind(peft::kAdapterPrefix, 0) == 0 && !Has(dir, peft::kAdapterConfigFile)) {
    Missing(c, dir + "/" + peft::kAdapterConfigFile, "PEFT saves it beside " + weights);
  }
  if (IsDcpDirectory(dir + "/" + weights) || HasDcpDataFiles(dir + "/" + weights)) {
    return AuditDcp(dir + "/" + weights, c);  // FSDP, sharded
  }
  std::vector<std::string> shards;
  if (weights == hf::kSafetensorsIndexFile) {
    std::map<std::string, std::string> weight_map;
    Status st = ReadSafetensorsIndex(dir + "/" + weights, &weight_map);
    if (!st.ok()) return Fail(c, kCorrupt, st.message());
    std::set<std::string> unique;
    for (const auto& [name, shard] : weight_map) unique.insert(shard);
    for (const auto& s : unique) {
      if (!Has(dir, s))
        Fail(c, kIncomplete, dir + "/" + s + ": shard named by the index is missing");
      else
        shards.push_back(s);
    }
  } else {
    shards.push_back(weights);
  }
  for (const auto& s : shards) {
    if (HasSuffix(s, ".safetensors")) {
      c->tensors += AuditSafetensors(dir + "/" + s, c);
    } else {
      TorchArchive archive;
      if (AuditTorchArchive(dir + "/" + s, c, &archive)) c->tensors += static_cast<int64_t>(archive.tensors.size());
    }
  }
}

namespace {

// DeepSpeed's checkpoint inside an HF one (transformers' _save_checkpoint calls the engine's
// save_checkpoint): `latest` names the tag directory, which holds every data-parallel
// rank's optimizer shard (zero_pp_rank_<r>_mp_rank_00_optim_states.pt, "bf16_" before it
// under bf16) and the model states: mp_rank_00_model_states.pt, or under ZeRO-3 one per
// rank, each recording dp_world_size. Checked as DeepSpeed's load_checkpoint reads them.
// Returns whether it is ZeRO-3 (the weights live in the shards).
bool AuditDeepSpeed(const std::string& dir, CheckpointAudit* c) {
  // The recovery scripts DeepSpeed copies into every checkpoint: zero_to_fp32.py, and since
  // it defines OUTPUT_DTYPE_NAMES, zero_to_torch.py, which imports them.
  std::string fp32;
  const bool has_fp32 = ReadFileToString(dir + "/zero_to_fp32.py", &fp32, 1 << 20).ok();
  if (!has_fp32) {
    Missing(c, dir + "/zero_to_fp32.py",
            "DeepSpeed copies it into every checkpoint: the script that consolidates the shards");
  }
  if (has_fp32 && fp32.find("OUTPUT_DTYPE_NAMES") != std::string::npos && !Has(dir, "zero_to_torch.py")) {
    Missing(c, dir + "/zero_to_torch.py",
            "DeepSpeed copies it beside the zero_to_fp32.py that defines OUTPUT_DTYPE_NAMES");
  }
  std::string tag;
  if (!ReadFileToString(dir + "/" + deepspeed::kLatestFile, &tag, 4096).ok()) {
    Missing(c, dir + "/" + deepspeed::kLatestFile,
            "DeepSpeed reads the checkpoint's tag from it; without it a resume fails");
    return false;
  }
  while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.pop_back();
  const std::string tag_dir = dir + "/" + tag;
  if (tag.empty() || tag.find('/') != std::string::npos || !IsDirectory(tag_dir)) {
    Fail(c, kIncomplete, dir + "/latest names '" + tag + "', which is not a directory of this checkpoint");
    return false;
  }
  static const std::regex kOptim(deepspeed::kOptimStatesPattern);
  static const std::regex kRankModel(deepspeed::kRankModelStatesPattern);
  std::set<int64_t> optim_ranks, model_ranks;
  bool bf16 = false;  // the optimizer shards' names say bf16_
  bool shared_model = false;
  int64_t world = 0;  // dp_world_size, as the model states record it
  for (const auto& name : Names(tag_dir)) {
    std::smatch m;
    if (std::regex_match(name, m, kOptim)) {
      optim_ranks.insert(std::stoll(m[2].str()));
      bf16 = m[1].matched;
    } else if (std::regex_match(name, m, kRankModel)) {
      model_ranks.insert(std::stoll(m[1].str()));
    } else {
      shared_model |= name == deepspeed::kModelStatesFile;
    }
    if (!IsTorchArchiveName(name)) continue;
    TorchArchive archive;
    if (!AuditTorchArchive(tag_dir + "/" + name, c, &archive)) continue;
    const json recorded = archive.values.is_object() ? archive.values.value("dp_world_size", json()) : json();
    if (recorded.is_number_integer()) world = std::max(world, recorded.get<int64_t>());
  }
  const bool zero3 = !model_ranks.empty();
  if (!zero3 && !shared_model)
    Missing(c, tag_dir + "/" + deepspeed::kModelStatesFile, "DeepSpeed saves the model states there");
  // The job's size: what the model states record, else the most ranks any file shows.
  std::string evidence = "the model states record dp_world_size " + std::to_string(world);
  if (world == 0) {
    for (const auto* ranks : {&optim_ranks, &model_ranks}) {
      if (!ranks->empty()) world = std::max(world, *ranks->rbegin() + 1);
    }
    evidence = "the job's highest rank file says so";
  }
  c->ranks = std::max(c->ranks, world);
  for (int64_t r = 0; r < world; ++r) {
    const std::string rank = std::to_string(r);
    if (!optim_ranks.count(r)) {
      Missing(c, tag_dir + "/" + deepspeed::OptimStatesFile(r, bf16),
              "rank " + rank + "'s optimizer shard; " + evidence);
    }
    if (zero3 && !model_ranks.count(r)) {
      Missing(c, tag_dir + "/" + deepspeed::RankModelStatesFile(r),
              "ZeRO-3 saves the model states of every rank; " + evidence);
    }
  }
  c->notes.push_back(tag_dir + ": DeepSpeed " + (zero3 ? "ZeRO-3" : "ZeRO-1/2") + " shards of " +
                     std::to_string(world) + " ranks" + (zero3 ? " (the weights live in them)" : ""));
  return zero3;
}

// How many processes wrote an HF checkpoint, and how we know: the most that any of its
// parts says. training_args.bin's distributed_state; DeepSpeed's dp_world_size and FSDP's
// shard files (already in c.ranks); and the RNG files: any rng_state_<r>.pth means the job
// had at least 2 processes (one process saves rng_state.pth) and at least r + 1.
int64_t HfWorld(const std::string& dir, const std::set<int64_t>& rng_ranks, const CheckpointAudit& c,
                std::string* evidence) {
  int64_t world = 1;
  *evidence = "";
  const auto consider = [&](int64_t n, const std::string& why) {
    if (n > world) world = n, *evidence = why;
  };
  const int64_t args = HfTrainingArgsWorld(dir);
  consider(args, "training_args.bin says the job had " + std::to_string(args) + " processes");
  consider(c.ranks, "its shards were written by " + std::to_string(c.ranks) + " ranks");
  if (!rng_ranks.empty()) {
    const int64_t n = std::max<int64_t>(2, *rng_ranks.rbegin() + 1);
    consider(n, RngStateFileName(*rng_ranks.rbegin(), n, hf::kRngStateExt) + " is there, and a job of " +
                    std::to_string(n) + " or more processes saves one per process");
  }
  return world;
}

// What the Trainer's save_model writes beside the weights: config.json with a
// PreTrainedModel (generation_config.json, when there is one, only with it), a PEFT
// adapter's model card.
void AuditHfModelFiles(const std::string& dir, const std::string& weights, CheckpointAudit* c) {
  if (Has(dir, hf::kGenerationConfigFile) && !Has(dir, hf::kConfigFile)) {
    Missing(c, dir + "/" + hf::kConfigFile, "save_pretrained writes it with " + std::string(hf::kGenerationConfigFile));
  }
  if (weights.rfind(peft::kAdapterPrefix, 0) == 0 && !Has(dir, peft::kModelCardFile)) {
    Missing(c, dir + "/" + peft::kModelCardFile,
            "PEFT writes the adapter's model card with every save, before the adapter");
  }
}

}  // namespace

// Hugging Face's rules: what Trainer._save_checkpoint writes, read without a framework.
void AuditHf(const std::string& dir, CheckpointAudit* c) {
  const std::vector<std::string> names = Names(dir);
  std::set<int64_t> rng_ranks;  // rng_state_<rank>.pth: one per process of a multi-process run
  for (const auto& f : names) {
    int64_t rank;
    if (IsRngStateFile(f, hf::kRngStateExt) && ParseRankedRngFile(f, &rank)) rng_ranks.insert(rank);
  }
  if (Has(dir, hf::kIncompleteMarkerFile)) {
    Fail(c, kIncomplete,
         dir + "/" + hf::kIncompleteMarkerFile + ": the Trainer's JIT save (on SIGTERM) never finished");
  }
  // save_only_model: HF saves the weights alone; a resume then starts a fresh optimizer,
  // scheduler and generators, so it is not the same run.
  const bool only_model = Has(dir, hf::kTrainingArgsFile) && HfSaveOnlyModel(dir);
  for (const char* f : {kTrainerStateFile, hf::kTrainingArgsFile}) {
    if (!Has(dir, f)) Missing(c, dir + "/" + f, "the Trainer writes it with every checkpoint");
  }
  if (Has(dir, kTrainerStateFile)) {
    json state;
    const Status st = ReadJsonFile(dir + "/" + kTrainerStateFile, &state);
    if (!st.ok()) Fail(c, kCorrupt, st.message());
    // The Trainer names the folder by the global_step it saves beside it: another step says
    // the folder was renamed or copied, and a resume from it continues from that step.
    const json* saved = st.ok() && state.is_object() && state.contains("global_step") ? &state["global_step"] : nullptr;
    if (saved != nullptr && saved->is_number_integer() && c->step >= 0 && saved->get<int64_t>() != c->step) {
      Fail(c, kCorrupt,
           dir + "/" + kTrainerStateFile + ": global_step " + std::to_string(saved->get<int64_t>()) +
               ", but the folder is named for step " + std::to_string(c->step) +
               " (renamed or copied: a resume from it continues from step " + std::to_string(saved->get<int64_t>()) +
               ")");
    }
  }
  const std::string weights = ModelWeightsFile(dir);
  const bool deepspeed = IsDeepSpeedCheckpoint(dir);
  // DeepSpeed holds the optimizer, and under ZeRO-3 the weights, in its shards; under ZeRO-1/2
  // the Trainer's save_model writes the weights beside them.
  const bool zero3 = deepspeed && AuditDeepSpeed(dir, c);
  if (!weights.empty()) {
    AuditWeights(dir, weights, c);
  } else if (deepspeed && !zero3) {
    Missing(c, dir + "/" + hf::kSafetensorsFile, "the Trainer's save_model writes the weights beside ZeRO-1/2 shards");
  } else if (const std::string missing = MissingModelWeights(dir); !missing.empty()) {  // verify-resume's rule too
    Fail(c, kIncomplete, dir + ": " + missing);
  }
  AuditHfModelFiles(dir, weights, c);
  const bool fsdp = Has(dir, fsdp::kModelDir) || Has(dir, fsdp::kFullModelFile);
  if (!deepspeed && !only_model && fsdp) {
    if (Has(dir, fsdp::kOptimizerDir))
      AuditDcp(dir + "/" + fsdp::kOptimizerDir, c);
    else if (!Has(dir, accelerate::kOptimizerFile))
      Missing(c, dir + "/" + fsdp::kOptimizerDir, "accelerate saves the FSDP optimizer there");
  } else if (!deepspeed && !only_model && !Has(dir, hf::kOptimizerFile)) {
    Missing(c, dir + "/" + hf::kOptimizerFile, "the Trainer writes it with every checkpoint");
  }
  if (only_model) {
    c->resumable = false;
    c->notes.push_back(dir +
                       ": saved with save_only_model: weights only (no optimizer, scheduler or RNG state), so "
                       "a resume from it is not the same run");
  } else {
    if (!Has(dir, hf::kSchedulerFile))
      Missing(c, dir + "/" + hf::kSchedulerFile, "the Trainer writes it with every checkpoint");
    std::string evidence;
    const int64_t world = HfWorld(dir, rng_ranks, *c, &evidence);
    c->ranks = world;
    if (world == 1 && !Has(dir, hf::kRngStateFile)) {
      Missing(c, dir + "/" + hf::kRngStateFile, "the Trainer writes it with every checkpoint");
    } else if (world > 1) {
      RequireRankFiles(
          dir, world, [world](int64_t r) { return RngStateFileName(r, world, hf::kRngStateExt); }, evidence, c);
    }
  }
  if (fsdp && Has(dir, fsdp::kModelDir)) {
    c->notes.push_back(dir + "/" + fsdp::kModelDir + ": FSDP sharded state dict (DCP) of " + std::to_string(c->ranks) +
                       " ranks");
  }
  // Every other torch.save archive, read as data: a truncated one has lost its directory or
  // the end of a storage one of its tensors needs.
  for (const auto& f : names) {
    if (IsTorchArchiveName(f) && f != weights) AuditTorchArchive(dir + "/" + f, c);
  }
}

// accelerate's save_state: the weights, the generators of every process, and each
// optimizer, scheduler and sampler state as torch.save archives.
void AuditAccelerate(const std::string& dir, CheckpointAudit* c) {
  const std::vector<std::string> names = Names(dir);
  std::set<int64_t> ranks;
  for (const auto& f : names) {
    int64_t rank;
    if (f.rfind(accelerate::kRandomStatesPrefix, 0) == 0 && ParseRankedRngFile(f, &rank)) ranks.insert(rank);
  }
  const std::string weights = ModelWeightsFile(dir);
  if (weights.empty()) {
    Fail(c, kIncomplete, dir + ": no model weights (accelerate saves model.safetensors, or pytorch_model.bin)");
  } else {
    AuditWeights(dir, weights, c);
  }
  const int64_t world = ranks.empty() ? 1 : *ranks.rbegin() + 1;
  c->ranks = world;
  RequireRankFiles(
      dir, world, [](int64_t r) { return accelerate::RandomStatesFile(r); }, "accelerate saves one per process", c);
  for (const auto& f : names) {
    if (f != weights && (IsTorchArchiveName(f) || HasSuffix(f, accelerate::kPickleExt))) {
      AuditTorchArchive(dir + "/" + f, c);
    }
  }
}

// A Lightning checkpoint: one torch.save of {state_dict, optimizer_states, lr_schedulers,
// loops, callbacks, epoch, global_step, pytorch-lightning_version, ...}. Saved with
// save_weights_only it holds the weights alone.
void AuditLightning(const std::string& file, CheckpointAudit* c) {
  TorchArchive archive;
  if (!AuditTorchArchive(file, c, &archive)) return;
  c->tensors = static_cast<int64_t>(archive.tensors.size());
  const json& v = archive.values;
  if (!v.is_object() || !v.contains("state_dict")) {
    return Fail(c, kCorrupt, file + ": not a Lightning checkpoint (its pickle holds no state_dict)");
  }
  const json step = v.value("global_step", json());
  if (step.is_number_integer()) c->step = step.get<int64_t>();
  const json optimizers = v.value("optimizer_states", json());
  if (!optimizers.is_array() || optimizers.empty() || !v.contains("loops")) {
    c->resumable = false;
    c->notes.push_back(file +
                       ": weights only (save_weights_only): no optimizer or loop state, so a resume from it "
                       "is not the same run");
  }
}

// A single torch.save file of the user's own: it reads as data.
void AuditTorchSave(const std::string& file, CheckpointAudit* c) {
  TorchArchive archive;
  if (AuditTorchArchive(file, c, &archive)) c->tensors = static_cast<int64_t>(archive.tensors.size());
}

// A checkpoint-N directory in a format Lockstep does not know (a recorded loop's own
// files): listed as it is, each file of a format Lockstep reads checked as that format says
// (torch.save archives read as data, safetensors headers against the file's size); never
// called complete.
void AuditOwn(const std::string& dir, CheckpointAudit* c) {
  c->status = kNotChecked;
  c->resumable = false;
  const std::vector<std::string> files = FilesBelow(dir);
  if (files.empty()) return Fail(c, kIncomplete, dir + ": holds no files");
  for (const auto& f : files) {
    if (IsTorchArchiveName(f) || LooksLikeZip(dir + "/" + f)) {
      AuditTorchArchive(dir + "/" + f, c);
    } else if (HasSuffix(f, ".safetensors")) {
      AuditSafetensors(dir + "/" + f, c);
    }
  }
}

}  // namespace audit_detail
}  // namespace lockstep
