#include "replay/checkpoint_diff.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Element `i` of `t` as text: the value for floats (with its bits), the integer otherwise.
std::string ElementText(const TensorData& t, int64_t i) {
  const uint8_t* p = t.bytes.data() + i * static_cast<int64_t>(DTypeSize(t.dtype));
  char buf[64];
  switch (t.dtype) {
    case DType::kFloat32: {
      float f;
      uint32_t bits;
      std::memcpy(&f, p, 4);
      std::memcpy(&bits, p, 4);
      std::snprintf(buf, sizeof(buf), "%.9g (0x%08" PRIx32 ")", f, bits);
      break;
    }
    case DType::kFloat64: {
      double d;
      std::memcpy(&d, p, 8);
      std::snprintf(buf, sizeof(buf), "%.17g", d);
      break;
    }
    case DType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      std::snprintf(buf, sizeof(buf), "%" PRId64, v);
      break;
    }
    default: {
      std::string hex = "0x";
      for (size_t b = DTypeSize(t.dtype); b-- > 0;) {
        std::snprintf(buf, sizeof(buf), "%02x", p[b]);
        hex += buf;
      }
      return hex;
    }
  }
  return buf;
}

void CompareTensorFiles(const std::string& where, const std::vector<TensorData>& a,
                        const std::vector<TensorData>& b, int64_t step, CheckpointComparison* out) {
  std::map<std::string, const TensorData*> candidate;
  for (const auto& t : b) candidate[t.name] = &t;
  auto differ = [&](const std::string& field, const std::string& ref, const std::string& cand) {
    out->differences.push_back({step, where, field, ref, cand});
  };
  for (const auto& ref : a) {
    ++out->tensors_compared;
    const auto it = candidate.find(ref.name);
    if (it == candidate.end()) {
      differ(ref.name, "present", "(absent)");
      continue;
    }
    const TensorData& cand = *it->second;
    candidate.erase(it);
    if (ref.dtype != cand.dtype) {
      differ(ref.name + " dtype", DTypeName(ref.dtype), DTypeName(cand.dtype));
    } else if (ref.shape != cand.shape) {
      differ(ref.name + " shape", ShapeText(ref.shape), ShapeText(cand.shape));
    } else if (ref.bytes != cand.bytes) {
      const size_t elem = DTypeSize(ref.dtype);
      size_t k = 0;
      while (k < ref.bytes.size() && ref.bytes[k] == cand.bytes[k]) ++k;
      const int64_t index = static_cast<int64_t>(k / elem);
      int64_t count = 0;
      for (int64_t i = 0; i < ref.numel(); ++i) {
        count += std::memcmp(ref.bytes.data() + i * elem, cand.bytes.data() + i * elem, elem) != 0;
      }
      differ(ref.name + "[" + std::to_string(index) + "] (" + std::to_string(count) + " of " +
                 std::to_string(ref.numel()) + " elements differ)",
             ElementText(ref, index), ElementText(cand, index));
    } else {
      ++out->tensors_identical;
    }
  }
  for (const auto& [name, t] : candidate) differ(name, "(absent)", "present");
}

}  // namespace

nlohmann::json NormalizeRunJson(const std::string& file_name, nlohmann::json value) {
  if (!value.is_object()) return value;
  if (file_name == "training_args.json") {
    value.erase("output_dir");
    value.erase("overwrite_output_dir");
  }
  if (file_name == "loop_state.json") {  // where this run's own log file ends: resume records move it
    value.erase("step_log_bytes");
    value.erase("step_log_last_frame");
    value.erase("step_log_xxh3_128");
  }
  if (file_name == "trainer_state.json" && value.contains("best_model_checkpoint") &&
      value["best_model_checkpoint"].is_string()) {
    value["best_model_checkpoint"] = fs::path(value["best_model_checkpoint"].get<std::string>()).filename().string();
  }
  return value;
}

Status CompareCheckpoints(const std::string& reference, const std::string& candidate, int64_t step,
                          CheckpointComparison* out) {
  *out = CheckpointComparison();
  const std::string label = fs::path(reference).filename().string();
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(reference, ec)) {
    if (e.is_regular_file() && e.path().filename() != kManifestFile) names.push_back(e.path().filename().string());
  }
  if (ec) return Status::IOError(reference + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    const std::string a = reference + "/" + name, b = candidate + "/" + name;
    const std::string where = label + "/" + name;
    ++out->files_compared;
    if (!fs::exists(b)) {
      out->differences.push_back({step, where, "(file)", "present", "(absent)"});
      continue;
    }
    const std::string ext = fs::path(name).extension().string();
    if (ext == ".h5") {
      std::vector<TensorData> ta, tb;
      // Two runs' files, verified by nothing here: libhdf5 reads them in a child process.
      LOCKSTEP_RETURN_IF_ERROR(ReadUntrustedTensorFile(a, &ta));
      LOCKSTEP_RETURN_IF_ERROR(ReadUntrustedTensorFile(b, &tb));
      CompareTensorFiles(where, ta, tb, step, out);
    } else if (ext == ".json") {
      nlohmann::json ja, jb;
      LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(a, &ja));
      LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(b, &jb));
      if (auto d = FirstJsonDifference(NormalizeRunJson(name, ja), NormalizeRunJson(name, jb))) {
        out->differences.push_back({step, where, d->path, Abbreviate(d->a), Abbreviate(d->b)});
      }
    } else {
      std::string da, db;
      LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(a, &da, UINT64_MAX));
      LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(b, &db, UINT64_MAX));
      if (da != db) out->differences.push_back({step, where, "(bytes)", std::to_string(da.size()) + " bytes",
                                                 std::to_string(db.size()) + " bytes"});
    }
  }
  return Status::Ok();
}

}  // namespace lockstep
