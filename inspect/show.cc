#include "inspect/show.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "formats/base64.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "formats/step_log.h"
#include "formats/tensor_bytes.h"
#include "formats/tensor_file.h"
#include "formats/tensor_sources.h"
#include "formats/torch_archive.h"
#include "formats/torch_rng.h"
#include "formats/zip_archive.h"
#include "inspect/tensor_stats.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

struct Context {
  const ShowOptions& options;
  std::regex filter;
  json* report;
  void Problem(const Status& st) { (*report)["problems"].push_back(st.message()); }
  bool Wanted(const std::string& name) const { return options.filter.empty() || std::regex_search(name, filter); }
};

// One tensor row: stats from a single pass, values when asked for.
json TensorRow(Context* ctx, const std::string& file, const std::string& name, const std::string& dtype,
               const std::vector<int64_t>& shape, uint64_t bytes,
               const std::function<Status(const std::function<void(const uint8_t*, size_t)>&)>& stream) {
  TensorStats stats(dtype);
  const bool want_values = name == ctx->options.tensor;
  std::vector<double> first, last;
  uint64_t seen = 0;
  const size_t elem = std::max<size_t>(1, CanonicalDTypeSize(dtype));
  const uint64_t numel = bytes / elem, head = static_cast<uint64_t>(std::max<int64_t>(0, ctx->options.head));
  Status st = stream([&](const uint8_t* data, size_t n) {
    stats.Add(data, n);
    if (!want_values) return;
    for (size_t i = 0; i < n / elem; ++i, ++seen) {
      if (seen < head) first.push_back(DecodeElement(dtype, data, i));
      if (seen + head >= numel && seen >= head) last.push_back(DecodeElement(dtype, data, i));
    }
  });
  if (!st.ok()) ctx->Problem(st);
  json row = {{"file", file}, {"name", name}, {"dtype", dtype}, {"shape", shape}, {"bytes", bytes}};
  row.update(stats.ToJson());
  if (want_values) (*ctx->report)["values"] = {{"name", name}, {"file", file}, {"first", first}, {"last", last}};
  return row;
}

// A Lockstep .h5 file's tensors, each read in pieces (formats/tensor_sources.h: libhdf5
// parses in this process only a file its checkpoint's manifest vouches for, anything else in
// a child process).
void ShowTensorFileH5(Context* ctx, const std::string& path, const std::string& label) {
  std::vector<TensorEntry> tensors;
  Status st = AppendTensorFile(path, "", &tensors);
  if (!st.ok()) return ctx->Problem(st);
  for (const auto& t : tensors) {
    if (!ctx->Wanted(t.name)) continue;
    (*ctx->report)["tensors"].push_back(TensorRow(
        ctx, label, t.name, DTypeName(t.dtype), t.shape, t.bytes,
        [&](const auto& consume) { return StreamTensorBytes(*t.source, t.bytes, DTypeSize(t.dtype), consume); }));
  }
}

void ShowSafetensors(Context* ctx, const std::string& path, const std::string& label) {
  SafetensorsFile file;
  Status st = ReadSafetensorsHeader(path, &file);
  if (!st.ok()) return ctx->Problem(st);
  if (!file.metadata.empty()) (*ctx->report)["safetensors_metadata"][label] = file.metadata;
  for (const auto& t : file.tensors) {
    if (!ctx->Wanted(t.name)) continue;
    (*ctx->report)["tensors"].push_back(
        TensorRow(ctx, label, t.name, CanonicalDType(t.dtype), t.shape, t.end - t.begin,
                  [&](const auto& consume) { return StreamSafetensorsTensor(file, t, consume); }));
  }
}

// A torch.save archive, read as data: its entries, the globals its pickle would import,
// and how many tensors it rebuilds. `archive` holds what was read, empty on a problem.
json ScanTorchArchive(Context* ctx, const std::string& path, TorchArchive* archive) {
  json j = {{"file", fs::path(path).filename().string()}, {"pickle", "evaluated as data, never executed"}};
  Status st = ReadTorchArchive(path, archive);
  if (!st.ok()) ctx->Problem(st);
  for (const auto& e : archive->entries) j["entries"].push_back({{"name", e.name}, {"bytes", e.size}});
  j["globals"] = archive->globals;
  j["tensors"] = archive->tensors.size();
  return j;
}

// Every tensor of a torch archive, as rows with their stats, each read in pieces; then each
// storage's CRC-32 over what the rows read and the rest.
void ShowTorchTensors(Context* ctx, const TorchArchive& archive, const std::string& label) {
  TorchArchiveBytes sources(archive);
  std::vector<std::shared_ptr<const TensorBytes>> read;
  for (const auto& t : archive.tensors) {
    if (!ctx->Wanted(t.name)) continue;
    std::shared_ptr<const TensorBytes> source;
    const Status st = sources.Of(t, &source);
    if (!st.ok()) return ctx->Problem(st);
    read.push_back(source);
    (*ctx->report)["tensors"].push_back(TensorRow(
        ctx, label, t.name, DTypeName(t.dtype), t.shape, t.bytes(),
        [&](const auto& consume) { return StreamTensorBytes(*source, t.bytes(), DTypeSize(t.dtype), consume); }));
  }
  for (const auto& source : read) {
    const Status st = source->Finish();
    if (!st.ok()) return ctx->Problem(st);
  }
}

// A DCP directory: every tensor, assembled from its ranks' chunks as it is read, with its stats.
void ShowDcp(Context* ctx, const std::string& dir, const std::string& label) {
  if (!IsDcpDirectory(dir)) return;  // .distcp files without their .metadata: the audit names it missing
  DcpCheckpoint checkpoint;
  Status st = ReadDcpMetadata(dir, &checkpoint);
  if (!st.ok()) return ctx->Problem(st);
  for (const auto& p : CheckDcpFiles(checkpoint)) ctx->Problem(Status::Corruption(p));
  (*ctx->report)["dcp"].push_back({{"dir", label.empty() ? "." : label},
                                   {"files", checkpoint.files},
                                   {"tensors", checkpoint.tensors.size()},
                                   {"values", checkpoint.values.size()}});
  if (!(*ctx->report)["problems"].empty()) return;
  for (const auto& t : checkpoint.tensors) {
    if (!ctx->Wanted(t.fqn)) continue;
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype);
    const auto source = DcpTensorBytes(checkpoint, t);
    (*ctx->report)["tensors"].push_back(TensorRow(
        ctx, label.empty() ? "dcp" : label, t.fqn, DTypeName(t.dtype), t.size, bytes, [&](const auto& consume) {
          LOCKSTEP_RETURN_IF_ERROR(StreamTensorBytes(*source, bytes, DTypeSize(t.dtype), consume));
          return source->Finish();
        }));
  }
}

void ShowHfRng(Context* ctx, const std::string& dir) {
  std::vector<std::string> files;  // rng_state.pth, or rng_state_<rank>.pth per process
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsRngStateFile(name, hf::kRngStateExt)) files.push_back(name);
  }
  // By rank: rng_state_2.pth before rng_state_10.pth.
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  for (const auto& name : files) {
    const std::string path = dir + "/" + name;
    TorchArchive archive;
    (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, path, &archive));
    for (const auto& t : archive.tensors) {  // "cpu", "cuda" (or "cuda.0", ... per device)
      std::vector<uint8_t> bytes;
      Status st = ReadTorchTensor(archive, t, &bytes);
      if (!st.ok()) {
        ctx->Problem(st);
        continue;
      }
      json g = DescribeGeneratorState(std::string(bytes.begin(), bytes.end()));
      g["generator"] = t.name;
      g["file"] = name;
      (*ctx->report)["rng"].push_back(g);
    }
  }
}

// A tensor's stats, read in pieces, and its first element (a step count's value).
Status StreamedStats(const TensorBytes& source, uint64_t bytes, DType dtype, json* stats, double* first) {
  const std::string name = DTypeName(dtype);
  TensorStats s(name);
  bool at_start = true;
  LOCKSTEP_RETURN_IF_ERROR(StreamTensorBytes(source, bytes, DTypeSize(dtype), [&](const uint8_t* data, size_t n) {
    if (at_start && n > 0) *first = DecodeElement(name, data, 0);
    at_start = false;
    s.Add(data, n);
  }));
  *stats = s.ToJson();
  return Status::Ok();
}

// HF's optimizer.pt: a torch optimizer's state_dict, {"state": {N: {"step", "exp_avg",
// "exp_avg_sq"}}, "param_groups": [...]}, grouped by parameter index N.
void ShowHfOptimizer(Context* ctx, const std::string& path) {
  TorchArchive archive;
  (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, path, &archive));
  TorchArchiveBytes sources(archive);
  std::vector<std::shared_ptr<const TensorBytes>> read;
  std::map<int64_t, json> params;
  for (const auto& t : archive.tensors) {
    const size_t dot = t.name.find('.', 6);
    if (t.name.rfind("state.", 0) != 0 || dot == std::string::npos) continue;
    const std::string index = t.name.substr(6, dot - 6), part = t.name.substr(dot + 1);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 9) continue;
    std::shared_ptr<const TensorBytes> source;
    json stats;
    double first = 0;
    Status st = sources.Of(t, &source);
    if (st.ok()) st = StreamedStats(*source, t.bytes(), t.dtype, &stats, &first);
    if (!st.ok()) {
      ctx->Problem(st);
      continue;
    }
    read.push_back(source);
    json& group = params[std::stoll(index)];
    group[part] = stats;
    if (part == "step" && t.numel() == 1) group["step"]["value"] = first;
  }
  for (const auto& source : read) {  // each storage's CRC-32, over what was read and the rest
    const Status st = source->Finish();
    if (!st.ok()) {
      ctx->Problem(st);
      break;
    }
  }
  for (auto& [index, group] : params) {
    group["param"] = index;
    (*ctx->report)["optimizer"].push_back(group);
  }
  const json groups = archive.values.is_object() ? archive.values.value("param_groups", json()) : json();
  if (groups.is_array()) (*ctx->report)["optimizer_param_groups"] = groups;
}

// Lockstep's optimizer.h5: exp_avg/<param>, exp_avg_sq/<param>, step/<param>, each read in pieces.
void ShowLockstepOptimizer(Context* ctx, const std::string& path) {
  std::vector<TensorEntry> tensors;
  Status st = AppendTensorFile(path, "", &tensors);
  if (!st.ok()) return ctx->Problem(st);
  std::map<std::string, json> params;
  for (const auto& t : tensors) {
    const size_t slash = t.name.find('/');
    if (slash == std::string::npos) continue;
    const std::string part = t.name.substr(0, slash), param = t.name.substr(slash + 1);
    if (!ctx->Wanted(param)) continue;
    json stats;
    double first = 0;
    st = StreamedStats(*t.source, t.bytes, t.dtype, &stats, &first);
    if (!st.ok()) return ctx->Problem(st);
    params[param][part] = stats;
    if (part == "step" && t.numel() == 1) params[param]["step"]["value"] = first;
  }
  for (auto& [param, j] : params) {
    j["param"] = param;
    (*ctx->report)["optimizer"].push_back(j);
  }
}

void ShowTrainerState(Context* ctx, const std::string& path) {
  json state;
  Status st = ReadJsonFile(path, &state);
  if (!st.ok()) return ctx->Problem(st);
  if (!state.is_object()) return ctx->Problem(Status::Corruption(path + ": not a JSON object"));
  json out = json::object();
  // Every field is optional: transformers versions add and drop them.
  for (const char* key : {"global_step", "epoch", "max_steps", "best_metric", "best_global_step",
                          "best_model_checkpoint", "logging_steps", "eval_steps", "save_steps", "train_batch_size"}) {
    if (state.contains(key)) out[key] = state[key];
  }
  if (state.contains("log_history") && state["log_history"].is_array()) {
    const json& h = state["log_history"];
    out["log_entries"] = h.size();
    for (size_t i = h.size() > 3 ? h.size() - 3 : 0; i < h.size(); ++i) out["last_log"].push_back(h[i]);
  }
  (*ctx->report)["trainer_state"] = out;
}

void ShowLockstepCheckpoint(Context* ctx, const std::string& dir) {
  ShowTrainerState(ctx, dir + "/" + kTrainerStateFile);
  json args, rng, sampler;
  Status st = ReadJsonFile(dir + "/" + kTrainingArgsJsonFile, &args);
  if (st.ok())
    (*ctx->report)["training_args"] = args;
  else
    ctx->Problem(st);
  st = ReadJsonFile(dir + "/" + RngStateFileName(0, 1, kRngStateJsonExt), &rng);
  if (!st.ok()) ctx->Problem(st);
  auto describe = [&](const json& saved, const std::string& generator, const std::string& file) {
    std::vector<uint8_t> bytes;
    if (!saved.is_object() || !saved.contains(step_key::kStateBase64) || !saved[step_key::kStateBase64].is_string() ||
        !Base64Decode(saved[step_key::kStateBase64].get<std::string>(), &bytes)) {
      return ctx->Problem(Status::Corruption(dir + "/" + file + ": " + generator + " state is missing or not base64"));
    }
    json g = DescribeGeneratorState(std::string(bytes.begin(), bytes.end()));
    g["generator"] = generator;
    g["file"] = file;
    (*ctx->report)["rng"].push_back(g);
  };
  if (rng.is_object()) {
    for (const auto& [name, saved] : rng.items()) describe(saved, name, RngStateFileName(0, 1, kRngStateJsonExt));
  }
  st = ReadJsonFile(dir + "/" + kSamplerStateFile, &sampler);
  if (st.ok() && sampler.is_object()) {
    json s = sampler;
    if (s.contains("generator_state_at_epoch_start")) {
      describe(s["generator_state_at_epoch_start"], "sampler (at epoch start)", kSamplerStateFile);
      s.erase("generator_state_at_epoch_start");
    }
    (*ctx->report)["sampler"] = s;
  } else if (!st.ok()) {
    ctx->Problem(st);
  }
  // Every file against the manifest first: the one way to see a flipped bit in data, and
  // what lets libhdf5 read the tensors in this process.
  const Status verified = ValidateCheckpoint(dir, VerifyMode::kChecksums);
  ShowTensorFileH5(ctx, dir + "/" + kModelFile, kModelFile);
  ShowLockstepOptimizer(ctx, dir + "/" + kOptimizerStateFile);
  (*ctx->report)["manifest"] = verified.ok() ? "every checksum matches" : "MISMATCH";
  if (!verified.ok()) ctx->Problem(verified);
}

void ShowHfCheckpoint(Context* ctx, const std::string& dir) {
  ShowTrainerState(ctx, dir + "/" + kTrainerStateFile);
  if (Exists(dir + "/" + hf::kTrainingArgsFile)) {
    TorchArchive archive;
    (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, dir + "/" + hf::kTrainingArgsFile, &archive));
    (*ctx->report)["training_args"] = PickledScalars(archive);  // read from the pickle's data, not by running it
  }
  ShowHfRng(ctx, dir);
  (*ctx->report)["sampler"] = {{"note",
                                "Hugging Face saves no sampler state: a resume re-derives the data "
                                "position from global_step and skips batches to reach it"}};
  std::map<std::string, std::string> weight_map;
  if (Exists(dir + "/" + hf::kSafetensorsIndexFile)) {
    Status st = ReadSafetensorsIndex(dir + "/" + hf::kSafetensorsIndexFile, &weight_map);
    if (!st.ok()) ctx->Problem(st);
    std::set<std::string> shards;
    for (const auto& [name, shard] : weight_map) shards.insert(shard);
    for (const auto& shard : shards) ShowSafetensors(ctx, dir + "/" + shard, shard);
  } else if (const std::string weights = ModelWeightsFile(dir); HasSuffix(weights, ".safetensors")) {
    ShowSafetensors(ctx, dir + "/" + weights, weights);  // model.safetensors, or a PEFT adapter
  } else if (HasSuffix(weights, ".bin")) {
    TorchArchive archive;
    (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, dir + "/" + weights, &archive));
    ShowTorchTensors(ctx, archive, weights);
  } else if (!weights.empty() && IsDcpDirectory(dir + "/" + weights)) {
    ShowDcp(ctx, dir + "/" + weights, weights);  // FSDP's sharded model
  }
  if (Exists(dir + "/" + hf::kOptimizerFile)) ShowHfOptimizer(ctx, dir + "/" + hf::kOptimizerFile);
  // DeepSpeed's shards (global_stepN/): every rank's model and optimizer state, by file.
  std::error_code ec;
  std::vector<std::string> shards;
  for (const auto& tag : fs::directory_iterator(dir, ec)) {
    if (!tag.is_directory(ec) || tag.path().filename().string().rfind("global_step", 0) != 0) continue;
    for (const auto& e : fs::directory_iterator(tag.path(), ec)) {
      if (IsTorchArchiveName(e.path().filename().string())) shards.push_back(e.path().string());
    }
  }
  std::sort(shards.begin(), shards.end());
  for (const auto& shard : shards) {
    TorchArchive archive;
    (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, shard, &archive));
    ShowTorchTensors(ctx, archive,
                     fs::path(shard).parent_path().filename().string() + "/" + fs::path(shard).filename().string());
  }
  for (const char* pickle : {hf::kSchedulerFile, hf::kScalerFile}) {
    if (!Exists(dir + "/" + pickle)) continue;
    TorchArchive archive;
    (*ctx->report)["pickles"].push_back(ScanTorchArchive(ctx, dir + "/" + pickle, &archive));
  }
}

}  // namespace

Status ShowPath(const std::string& path, const ShowOptions& options, json* report) {
  *report = {{"path", path}, {"problems", json::array()}, {"tensors", json::array()}};
  Context ctx{options, std::regex(), report};
  try {
    if (!options.filter.empty()) ctx.filter = std::regex(options.filter);
  } catch (const std::regex_error& e) {
    return Status::InvalidArgument("--filter " + options.filter + ": not a valid regular expression (" + e.what() +
                                   ")");
  }
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec) return Status::NotFound(path + ": " + ec.message());
  const std::string name = fs::path(path).filename().string();
  if (fs::is_directory(status)) {
    const std::string layout = CheckpointLayout(path);
    if (layout.empty()) return Status::InvalidArgument(path + ": not a checkpoint (no Lockstep or Hugging Face files)");
    (*report)["kind"] = layout + " checkpoint";
    if (layout == layout::kLockstep)
      ShowLockstepCheckpoint(&ctx, path);
    else if (layout == layout::kDcp)
      ShowDcp(&ctx, path, "");
    else
      ShowHfCheckpoint(&ctx, path);  // the Trainer's files, and accelerate's of the same names
  } else if (HasSuffix(name, ".h5")) {
    (*report)["kind"] = "lockstep tensor file";
    ShowTensorFileH5(&ctx, path, name);
  } else if (HasSuffix(name, ".safetensors")) {
    (*report)["kind"] = "safetensors file";
    ShowSafetensors(&ctx, path, name);
  } else if (IsTorchArchiveName(name) || LooksLikeZip(path)) {
    (*report)["kind"] = "torch archive (pickle, not executed)";
    TorchArchive archive;
    (*report)["pickles"].push_back(ScanTorchArchive(&ctx, path, &archive));
    ShowTorchTensors(&ctx, archive, name);
    (*report)["pickled_values"] = archive.values;
  } else {
    return Status::InvalidArgument(path +
                                   ": not a checkpoint directory or a .h5/.safetensors/.pt/.pth/.bin/.ckpt file");
  }
  // A single file that cannot be read is unreadable input, not a finding about a run.
  if (!fs::is_directory(status) && !(*report)["problems"].empty()) {
    return Status::Corruption((*report)["problems"][0].get<std::string>());
  }
  if (!options.tensor.empty() && !report->contains("values")) {
    return Status::NotFound(path + ": no tensor named '" + options.tensor + "' (lockstep inspect " + path +
                            " lists the tensors)");
  }
  return Status::Ok();
}

}  // namespace lockstep
