#include "diff/tensor_diff.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "diff/divergence.h"
#include "diff/step_compare.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/checksum.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/tensor_sources.h"
#include "formats/torch_archive.h"
#include "settings/location_settings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

constexpr size_t kMaxStateDifferencesPerFile = 20;

// One side of the diff: its tensors, and its other state as JSON per file.
struct Side {
  std::string kind;
  std::vector<TensorEntry> tensors;
  std::map<std::string, json> state;
};

// A torch.save archive: its tensors (named `prefix` + their place in the pickle) and its
// other values (a learning rate, _last_lr, a step count), compared as JSON.
// `label` names its values in the report (the file's name when empty).
Status AppendTorchFile(const std::string& path, const std::string& prefix, Side* side, const std::string& label = "") {
  LOCKSTEP_RETURN_IF_ERROR(AppendTensorFile(path, prefix, &side->tensors));
  json values;
  LOCKSTEP_RETURN_IF_ERROR(ReadPickledValues(path, &values));
  const std::string name = fs::path(path).filename().string();
  side->state[label.empty() ? name : label] = NormalizeRunJson(name, std::move(values));
  return Status::Ok();
}

// A DeepSpeed tag directory: each rank's shard by its file name, whatever the tag (another
// step's checkpoint has another tag), so rank 1's optimizer shard is compared with rank 1's.
Status AppendDeepSpeedShards(const std::string& tag_dir, Side* side) {
  std::vector<std::string> shards;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tag_dir, ec)) {
    if (e.is_regular_file(ec) && IsTorchArchiveName(e.path().filename().string())) shards.push_back(e.path().string());
  }
  std::sort(shards.begin(), shards.end());
  for (const auto& path : shards) {
    const std::string label = "deepspeed/" + fs::path(path).filename().string();
    LOCKSTEP_RETURN_IF_ERROR(AppendTorchFile(path, label + "/", side, label));
  }
  return Status::Ok();
}

Status LoadCheckpointDir(const std::string& dir, Side* side) {
  std::error_code ec;
  fs::directory_iterator(dir, ec);
  if (ec) return Status::IOError(dir + ": cannot list: " + ec.message());
  // A layout Lockstep does not know (a script's own checkpoint) is compared file by file:
  // torch.save archives tensor by tensor, JSON value by value, anything else by its bytes.
  const std::string layout = CheckpointLayout(dir);
  if (layout.empty() && FilesBelow(dir).empty())
    return Status::InvalidArgument(dir + ": not a checkpoint (it is empty)");
  side->kind = (layout.empty() ? std::string(layout::kOwn) : layout) + " checkpoint";
  if (layout == layout::kDcp) {
    return AppendDcpDirectory(dir, "", &side->tensors, &side->state["the DCP checkpoint's non-tensor entries"]);
  }
  const std::string weights = ModelWeightsFile(dir);
  if (!weights.empty() && IsDcpDirectory(dir + "/" + weights)) {  // FSDP's sharded model
    LOCKSTEP_RETURN_IF_ERROR(AppendDcpDirectory(dir + "/" + weights, "", &side->tensors, &side->state[weights]));
  } else if (!weights.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(AppendTensorFile(dir + "/" + weights, "", &side->tensors));
  }
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == weights || !e.is_directory(ec)) continue;
    if (IsDcpDirectory(e.path().string())) {  // FSDP's sharded optimizer state (accelerate's optimizer_0/)
      LOCKSTEP_RETURN_IF_ERROR(AppendDcpDirectory(e.path().string(), name + "/", &side->tensors, &side->state[name]));
    } else if (name.rfind("global_step", 0) == 0) {  // DeepSpeed's shards, compared shard by shard
      LOCKSTEP_RETURN_IF_ERROR(AppendDeepSpeedShards(e.path().string(), side));
    }
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  if (ec) return Status::IOError(dir + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    if (name == kManifestFile || name == weights) continue;
    if (weights == hf::kSafetensorsIndexFile && HasSuffix(name, ".safetensors")) continue;  // its shards
    if (name == kOptimizerStateFile) {
      LOCKSTEP_RETURN_IF_ERROR(AppendTensorFile(path, "optimizer/", &side->tensors));
    } else if (HasSuffix(name, ".json")) {
      json j;
      LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(path, &j));
      side->state[name] = NormalizeRunJson(name, j);
    } else if (IsTorchArchiveName(name)) {  // its tensors, and every other value it holds
      LOCKSTEP_RETURN_IF_ERROR(AppendTorchFile(path, name == hf::kOptimizerFile ? "optimizer/" : name + "/", side));
    } else {
      std::string hex;
      LOCKSTEP_RETURN_IF_ERROR(FileXxh3Hex(path, &hex));
      side->state[name] = {{"xxh3_128", hex}};
    }
  }
  return Status::Ok();
}

Status LoadSide(const std::string& path, Side* side) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return Status::NotFound(path + ": no such file or directory");
  if (fs::is_directory(st)) return LoadCheckpointDir(path, side);
  side->kind = "tensor file";
  // Two files of any names are one file compared: its values go by one label.
  if (IsTorchArchiveName(path)) return AppendTorchFile(path, "", side, "the pickle");
  return AppendTensorFile(path, "", &side->tensors);
}

std::string Shape(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
  return t + "]";
}

// The pieces of both sides in flight, reused from tensor to tensor.
struct Buffers {
  std::vector<uint8_t> a, b;
};

Status CompareEntries(const TensorEntry& a, const TensorEntry& b, const Tolerance& tol, TensorDiff* d,
                      uint64_t* bytes_compared, Buffers* buffers) {
  d->dtype_a = DTypeName(a.dtype);
  d->dtype_b = DTypeName(b.dtype);
  d->shape_a = a.shape;
  d->shape_b = b.shape;
  d->numel = a.numel();
  if (a.shape != b.shape) {
    d->status = "shape_mismatch";
    return Status::Ok();
  }
  std::vector<uint8_t>&buf_a = buffers->a, &buf_b = buffers->b;
  const uint8_t *pa = nullptr, *pb = nullptr;
  if (a.dtype != b.dtype) {  // whole tensors, decoded: rare, and never the fast path
    d->status = "dtype_mismatch";
    LOCKSTEP_RETURN_IF_ERROR(a.Read(0, a.bytes, &buf_a, &pa));
    LOCKSTEP_RETURN_IF_ERROR(b.Read(0, b.bytes, &buf_b, &pb));
    CompareAcrossDTypes(a.dtype, pa, b.dtype, pb, a.numel(), d);
    *bytes_compared += a.bytes + b.bytes;
    return Status::Ok();
  }
  const size_t elem = DTypeSize(a.dtype);
  const size_t chunk = kTensorPieceBytes / elem * elem;
  TensorComparer comparer(a.dtype, tol);
  for (uint64_t at = 0; at < a.bytes; at += chunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, a.bytes - at));
    LOCKSTEP_RETURN_IF_ERROR(a.Read(at, n, &buf_a, &pa));
    LOCKSTEP_RETURN_IF_ERROR(b.Read(at, n, &buf_b, &pb));
    comparer.Add(pa, pb, n);
  }
  *bytes_compared += a.bytes + b.bytes;
  comparer.Finish(d);
  return Status::Ok();
}

void CompareState(const Side& a, const Side& b, const Tolerance& tol, std::vector<StateDifference>* out,
                  std::vector<std::string>* compared) {
  const bool same_kind = a.kind == b.kind;
  for (const auto& [file, ja] : a.state) {
    const auto it = b.state.find(file);
    if (it == b.state.end()) {
      if (same_kind) out->push_back({file, "(file)", "present", "(absent)"});
      continue;
    }
    compared->push_back(file);
    for (const auto& d : JsonDifferences(ja, it->second, kMaxStateDifferencesPerFile)) {
      out->push_back({file, d.path.empty() ? "(value)" : d.path, Abbreviate(d.a), Abbreviate(d.b),
                      NumbersWithinTolerance(d.a, d.b, tol)});
    }
  }
  for (const auto& [file, jb] : b.state) {
    if (same_kind && !a.state.count(file)) out->push_back({file, "(file)", "(absent)", "present"});
  }
}

}  // namespace

json StateDifference::ToJson() const {
  return {{"file", file}, {"field", field}, {"a", a}, {"b", b}, {"within_tolerance", within_tolerance}};
}

bool CheckpointDiff::identical() const {
  return state.empty() &&
         std::all_of(tensors.begin(), tensors.end(), [](const TensorDiff& t) { return t.identical(); });
}

bool NumbersWithinTolerance(const json& a, const json& b, const Tolerance& tolerance) {
  if (!tolerance.any()) return false;
  if (a.is_number() && b.is_number()) return FloatClose(a.get<float>(), b.get<float>(), tolerance);
  // float32 bits as the step log and loop_state.json spell them: "0x40117f02".
  const bool bits =
      a.is_string() && b.is_string() && a.get<std::string>().size() == 10 && b.get<std::string>().size() == 10;
  if (!bits) return false;
  const float fa = BitsToFloat(a), fb = BitsToFloat(b);
  return !std::isnan(fa) && !std::isnan(fb) && FloatClose(fa, fb, tolerance);
}

bool CheckpointDiff::within_tolerance() const {
  return std::all_of(state.begin(), state.end(), [](const StateDifference& s) { return s.within_tolerance; }) &&
         std::all_of(tensors.begin(), tensors.end(), [](const TensorDiff& t) { return t.within_tolerance(); });
}

static Status DiffCheckpointsUnchecked(const std::string& a, const std::string& b, const Tolerance& tolerance,
                                       CheckpointDiff* out) {
  *out = CheckpointDiff();
  Side sa, sb;
  LOCKSTEP_RETURN_IF_ERROR(LoadSide(a, &sa));
  LOCKSTEP_RETURN_IF_ERROR(LoadSide(b, &sb));
  out->kind_a = sa.kind;
  out->kind_b = sb.kind;
  std::map<std::string, const TensorEntry*> by_name;
  for (const auto& t : sb.tensors) by_name[t.name] = &t;
  Buffers buffers;
  for (const auto& ta : sa.tensors) {
    TensorDiff d;
    d.name = ta.name;
    d.file_a = ta.file;
    const auto it = by_name.find(ta.name);
    if (it == by_name.end()) {
      d.status = "missing_in_b";
      d.dtype_a = DTypeName(ta.dtype);
      d.shape_a = ta.shape;
    } else {
      d.file_b = it->second->file;
      LOCKSTEP_RETURN_IF_ERROR(CompareEntries(ta, *it->second, tolerance, &d, &out->bytes_compared, &buffers));
      by_name.erase(it);
    }
    out->tensors.push_back(std::move(d));
  }
  for (const auto& tb : sb.tensors) {
    if (!by_name.count(tb.name)) continue;
    TensorDiff d;
    d.name = tb.name;
    d.file_b = tb.file;
    d.status = "missing_in_a";
    d.dtype_b = DTypeName(tb.dtype);
    d.shape_b = tb.shape;
    out->tensors.push_back(std::move(d));
  }
  // Each archive storage's CRC-32, over what the comparisons read and the bytes they did not.
  for (const Side* side : {&sa, &sb}) {
    for (const auto& t : side->tensors) LOCKSTEP_RETURN_IF_ERROR(t.Finish());
  }
  CompareState(sa, sb, tolerance, &out->state, &out->state_files);
  return Status::Ok();
}

// A value of the wrong JSON type anywhere in the inputs is corruption, never an exception.
nlohmann::json NormalizeRunJson(const std::string& file_name, nlohmann::json value) {
  if (!value.is_object()) return value;
  // training_args.bin holds TrainingArguments as a pickled object: its fields are its state.
  nlohmann::json* args = file_name == kTrainingArgsJsonFile                              ? &value
                         : file_name == hf::kTrainingArgsFile && value.contains("state") ? &value["state"]
                                                                                         : nullptr;
  if (args && args->is_object()) {
    *args = WithoutOutputLocations(std::move(*args));
  }
  if (file_name == kLoopStateFile) {  // where this run's own log file ends: resume records move it
    value.erase("step_log_bytes");
    value.erase("step_log_last_frame");
    value.erase("step_log_xxh3_128");
  }
  // A Lightning checkpoint's ModelCheckpoint state names where this run wrote: its directory
  // is dropped, its files are kept by name.
  if (HasSuffix(file_name, lightning::kExtension) && value.contains("callbacks") && value["callbacks"].is_object()) {
    const auto base = [](const nlohmann::json& path) {
      return path.is_string() ? nlohmann::json(fs::path(path.get<std::string>()).filename().string()) : path;
    };
    for (auto& [name, state] : value["callbacks"].items()) {
      if (!state.is_object()) continue;
      state.erase("dirpath");  // the run's own directory
      for (const char* key : {"best_model_path", "last_model_path", "kth_best_model_path"}) {
        if (state.contains(key)) state[key] = base(state[key]);
      }
      if (state.contains("best_k_models") && state["best_k_models"].is_object()) {
        nlohmann::json kept = nlohmann::json::object();
        for (const auto& [path, score] : state["best_k_models"].items()) kept[base(path).get<std::string>()] = score;
        state["best_k_models"] = kept;
      }
    }
  }
  if (file_name == kTrainerStateFile && value.contains("best_model_checkpoint") &&
      value["best_model_checkpoint"].is_string()) {
    value["best_model_checkpoint"] = fs::path(value["best_model_checkpoint"].get<std::string>()).filename().string();
  }
  return value;
}

Divergence TensorDivergence(const TensorDiff& t, int64_t step, const std::string& where) {
  const auto differ = [&](const std::string& field, const std::string& ref, const std::string& cand) {
    return MakeDivergence(step, cause::kWeights, where, field, ref, cand);
  };
  if (t.status == "missing_in_b") return differ(t.name, "present", "(absent)");
  if (t.status == "missing_in_a") return differ(t.name, "(absent)", "present");
  if (t.status == "dtype_mismatch") return differ(t.name + " dtype", t.dtype_a, t.dtype_b);
  if (t.status == "shape_mismatch") return differ(t.name + " shape", DumpJson(t.shape_a), DumpJson(t.shape_b));
  return differ(t.name + "[" + std::to_string(t.first_index) + "] (" + std::to_string(t.differing) + " of " +
                    std::to_string(t.numel) + " elements differ)",
                t.first_a, t.first_b);
}

Status DiffCheckpoints(const std::string& a, const std::string& b, const Tolerance& tolerance, CheckpointDiff* out) {
  try {
    return DiffCheckpointsUnchecked(a, b, tolerance, out);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(a + " or " + b + ": malformed value (" + e.what() + ")");
  }
}

json CheckpointDiffJson(const CheckpointDiff& d, const Tolerance& tolerance) {
  json tensors = json::array(), state = json::array();
  for (const auto& t : d.tensors) tensors.push_back(t.ToJson());
  for (const auto& s : d.state) state.push_back(s.ToJson());
  int64_t equal = 0;
  for (const auto& t : d.tensors) equal += t.identical();
  return {{"identical", d.identical()},
          {"within_tolerance", d.within_tolerance()},
          {"tolerance", tolerance.ToJson()},
          {"kind_a", d.kind_a},
          {"kind_b", d.kind_b},
          {"tensors_compared", d.tensors.size()},
          {"tensors_equal", equal},
          {"bytes_compared", d.bytes_compared},
          {"tensors", tensors},
          {"state_files_compared", d.state_files},
          {"state_differences", state}};
}

std::string CheckpointDiffText(const CheckpointDiff& d, const Tolerance& tolerance) {
  int64_t equal = 0, within = 0;
  for (const auto& t : d.tensors) {
    equal += t.identical();
    within += !t.identical() && t.within_tolerance();
  }
  std::string out;
  if (!d.compared_anything()) {
    out = "NOTHING COMPARED: neither side holds a tensor or another value Lockstep reads; no verdict\n";
  } else if (d.identical()) {
    std::string files;
    for (const auto& f : d.state_files) files += (files.empty() ? "" : ", ") + f;
    out = "IDENTICAL: " + std::to_string(d.tensors.size()) + " tensors bit for bit" +
          (files.empty() ? std::string(" (no other values held)") : ", and every other value in " + files) + "\n";
  } else if (d.within_tolerance() && tolerance.any()) {
    out = "WITHIN TOLERANCE (" + tolerance.ToString() + "): " + std::to_string(within) + " of " +
          std::to_string(d.tensors.size()) + " tensors differ in their bits, all within it\n";
  } else {
    out = "DIFFERENT: " + std::to_string(d.tensors.size() - equal) + " of " + std::to_string(d.tensors.size()) +
          " tensors differ, and " + std::to_string(d.state.size()) +
          (d.state.size() == 1 ? " other value\n" : " other values\n");
  }
  if (d.kind_a != d.kind_b) out += "  (a is a " + d.kind_a + ", b is a " + d.kind_b + ": tensors compared by name)\n";
  char line[512];
  bool header = false;
  for (const auto& t : d.tensors) {
    if (t.identical()) continue;
    if (!header) {
      std::snprintf(line, sizeof(line), "\n  %-36s %-15s %12s %12s %12s %12s %10s\n", "tensor", "status", "differing",
                    "first index", "max abs", "max rel", "max ulp");
      out += line;
      header = true;
    }
    std::string status = t.status;
    if (t.status == "shape_mismatch") status += " " + Shape(t.shape_a) + " vs " + Shape(t.shape_b);
    if (t.status == "dtype_mismatch") status += " " + t.dtype_a + " vs " + t.dtype_b;
    if (t.status == "differ" && tolerance.any()) status += t.within_tolerance() ? " (within)" : " (OUTSIDE)";
    const std::string ulp = t.dtype_a != t.dtype_b ? "-" : t.max_ulp == UINT64_MAX ? "nan" : std::to_string(t.max_ulp);
    std::snprintf(line, sizeof(line), "  %-36s %-15s %12lld %12lld %12.4g %12.4g %10s\n", t.name.c_str(),
                  status.c_str(), static_cast<long long>(t.differing), static_cast<long long>(t.first_index), t.max_abs,
                  t.max_rel, ulp.c_str());
    out += line;
  }
  if (!d.state.empty()) out += "\n  other values:\n";
  for (const auto& s : d.state) out += "    " + s.file + ": " + s.field + "  a " + s.a + ", b " + s.b + "\n";
  return out;
}

}  // namespace lockstep
