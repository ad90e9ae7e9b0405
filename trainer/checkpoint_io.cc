#include "trainer/checkpoint_io.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "trainer/torch_bridge.h"

namespace lockstep {
namespace {

// Views of the tensors to save, and the tensors that own their memory (for a CPU model,
// the parameters themselves: nothing is copied).
// With `copies`, every tensor is copied there, so the list stays valid while training goes on.
struct SaveList {
  SnapshotBuffers* copies = nullptr;
  std::vector<torch::Tensor> keep;
  std::vector<TensorView> views;

  Status Add(const std::string& name, const torch::Tensor& t) {
    keep.emplace_back();
    views.emplace_back();
    return ToTensorView(name, copies ? copies->BufferFor(name, t) : t, &keep.back(), &views.back());
  }
};

// A writer of `tensors` into one tensor file; it owns the list (and so the memory viewed).
PieceWriter TensorFileWriter(std::shared_ptr<SaveList> tensors) {
  return [tensors](const std::string& path, WrittenFile* written) {
    return WriteTensorFile(path, tensors->views, written);
  };
}

Status ModelTensors(Model* model, SaveList* out) {
  for (const auto& p : model->named_parameters()) LOCKSTEP_RETURN_IF_ERROR(out->Add(p.key(), p.value()));
  for (const auto& b : model->named_buffers()) LOCKSTEP_RETURN_IF_ERROR(out->Add(b.key(), b.value()));
  return Status::Ok();
}

Status OptimizerTensors(AdamW* opt, SaveList* out) {
  for (auto& [name, s] : opt->state()) {
    if (!s.exp_avg.defined()) continue;
    LOCKSTEP_RETURN_IF_ERROR(out->Add("exp_avg/" + name, s.exp_avg));
    LOCKSTEP_RETURN_IF_ERROR(out->Add("exp_avg_sq/" + name, s.exp_avg_sq));
    LOCKSTEP_RETURN_IF_ERROR(out->Add("step/" + name, torch::tensor(s.step, torch::kInt64)));
  }
  return Status::Ok();
}

// ReadTensorFileInto, or ReadTensorFileVerifying when the file is still `unverified`.
Status ReadTensors(const std::string& path, const WrittenFile* unverified, const TensorPlacer& place) {
  return unverified != nullptr ? ReadTensorFileVerifying(path, *unverified, place) : ReadTensorFileInto(path, place);
}

bool SameShape(const TensorExtent& e, const torch::Tensor& t) {
  return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()) == e.shape;
}

// Where a stored tensor lands: `target` itself when its memory is CPU and contiguous,
// otherwise a CPU tensor copied into `target` afterwards (a CUDA model).
void* LandingFor(const torch::Tensor& target, std::vector<std::pair<torch::Tensor, torch::Tensor>>* copies) {
  if (target.device().is_cpu() && target.is_contiguous()) return target.data_ptr();
  copies->emplace_back(torch::empty(target.sizes(), target.options().device(torch::kCPU)), target);
  return copies->back().first.data_ptr();
}

}  // namespace

StateFile JsonStateFile(const std::string& name, std::function<nlohmann::json()> to_json,
                        std::function<Status(const nlohmann::json&, const std::string& path)> from_json) {
  StateFile f;
  f.name = name;
  f.snapshot = [to_json](SnapshotBuffers*, PieceWriter* writer) {
    *writer = [doc = to_json()](const std::string& path, WrittenFile*) { return WriteJsonFile(path, doc); };
    return Status::Ok();
  };
  f.load = [from_json](const std::string& path, const WrittenFile*) {  // a JSON file: verified whole before
    nlohmann::json j;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(path, &j));
    if (!j.is_object()) return Status::Corruption(path + ": not a JSON object");
    try {
      return from_json(j, path);
    } catch (const nlohmann::json::exception& e) {  // a field missing or of the wrong type
      return Status::Corruption(path + ": malformed: " + e.what());
    }
  };
  return f;
}

StateFile ModelStateFile(Model* model) {
  return {kModelFile,
          [model](SnapshotBuffers* copies, PieceWriter* writer) { return SnapshotModelWeights(model, copies, writer); },
          [model](const std::string& path, const WrittenFile* unverified) {
            return LoadModelWeights(path, model, unverified);
          }};
}

StateFile OptimizerStateFile(AdamW* optimizer, const torch::Device& device) {
  return {kOptimizerStateFile,
          [optimizer](SnapshotBuffers* copies, PieceWriter* writer) {
            return SnapshotOptimizerState(optimizer, copies, writer);
          },
          [optimizer, device](const std::string& path, const WrittenFile* unverified) {
            return LoadOptimizerState(path, device, optimizer, unverified);
          }};
}

torch::Tensor SnapshotBuffers::BufferFor(const std::string& name, const torch::Tensor& t) {
  torch::Tensor& buffer = buffers_[name];
  if (!buffer.defined() || buffer.sizes() != t.sizes() || buffer.scalar_type() != t.scalar_type()) {
    buffer = torch::empty(t.sizes(), t.options().device(torch::kCPU));
  }
  unfilled_.emplace_back(buffer, t.detach());
  return buffer;
}

Status SnapshotBuffers::Fill() {
  torch::NoGradGuard no_grad;
  try {
    for (auto& [buffer, source] : unfilled_) buffer.copy_(source);
  } catch (const c10::Error& e) {
    unfilled_.clear();
    return Status::Internal(std::string("copying the checkpoint's tensors failed: ") + e.what_without_backtrace());
  }
  unfilled_.clear();
  return Status::Ok();
}

Status SnapshotCheckpoint(const std::vector<StateFile>& pieces, SnapshotBuffers* copies, CheckpointSnapshot* out) {
  out->clear();
  for (const auto& piece : pieces) {
    PieceWriter writer;
    LOCKSTEP_RETURN_IF_ERROR(piece.snapshot(copies, &writer));
    out->emplace_back(piece.name, std::move(writer));
  }
  return Status::Ok();
}

Status WriteCheckpoint(const std::string& run_dir, int64_t step, const CheckpointSnapshot& snapshot,
                       std::string* final_dir) {
  std::unique_ptr<CheckpointStaging> staging;
  LOCKSTEP_RETURN_IF_ERROR(CheckpointStaging::Begin(run_dir, step, &staging));
  return CommitSnapshot(staging.get(), snapshot, final_dir);
}

Status CommitSnapshot(CheckpointStaging* staging, const CheckpointSnapshot& snapshot, std::string* final_dir) {
  for (const auto& [name, write] : snapshot) {
    WrittenFile written;
    LOCKSTEP_RETURN_IF_ERROR(write(staging->FilePath(name), &written));
    if (!written.xxh3_128.empty()) staging->NoteWritten(name, written);
  }
  return staging->Commit(final_dir);
}

Status SaveCheckpoint(const std::string& run_dir, int64_t step, const std::vector<StateFile>& pieces,
                      std::string* final_dir) {
  CheckpointSnapshot snapshot;
  LOCKSTEP_RETURN_IF_ERROR(SnapshotCheckpoint(pieces, /*copies=*/nullptr, &snapshot));
  return WriteCheckpoint(run_dir, step, snapshot, final_dir);
}

Status LoadCheckpoint(const std::string& checkpoint_dir, const std::vector<StateFile>& pieces, VerifyMode verified) {
  Manifest manifest;
  if (verified == VerifyMode::kChecksumsOnLoad)
    LOCKSTEP_RETURN_IF_ERROR(ValidateCheckpoint(checkpoint_dir, VerifyMode::kSizes, &manifest));
  for (const auto& piece : pieces) {
    const auto entry = std::find_if(manifest.files.begin(), manifest.files.end(),
                                    [&](const ManifestEntry& e) { return e.path == piece.name; });
    const bool left_to_load = entry != manifest.files.end() && ChecksumLeftToLoad(*entry, verified);
    LOCKSTEP_RETURN_IF_ERROR(piece.load((std::filesystem::path(checkpoint_dir) / piece.name).string(),
                                        left_to_load ? &entry->content : nullptr));
  }
  return Status::Ok();
}

Status SnapshotModelWeights(Model* model, SnapshotBuffers* copies, PieceWriter* writer) {
  auto tensors = std::make_shared<SaveList>();
  tensors->copies = copies;
  LOCKSTEP_RETURN_IF_ERROR(ModelTensors(model, tensors.get()));
  *writer = TensorFileWriter(std::move(tensors));
  return Status::Ok();
}

Status SnapshotOptimizerState(AdamW* optimizer, SnapshotBuffers* copies, PieceWriter* writer) {
  auto tensors = std::make_shared<SaveList>();
  tensors->copies = copies;
  LOCKSTEP_RETURN_IF_ERROR(OptimizerTensors(optimizer, tensors.get()));
  *writer = TensorFileWriter(std::move(tensors));
  return Status::Ok();
}

Status LoadModelWeights(const std::string& path, Model* model, const WrittenFile* unverified) {
  std::map<std::string, torch::Tensor> params;
  for (auto& p : model->named_parameters()) params[p.key()] = p.value();
  std::set<std::string> loaded;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (landed on CPU, parameter)
  torch::NoGradGuard no_grad;
  LOCKSTEP_RETURN_IF_ERROR(ReadTensors(path, unverified, [&](const TensorExtent& e, void** dst) {
    const auto it = params.find(e.name);
    if (it == params.end()) return Status::Ok();  // a buffer, or a tensor this model lacks
    if (!SameShape(e, it->second) || ScalarTypeOf(e.dtype) != it->second.scalar_type()) {
      return Status::Corruption(path + ": parameter '" + e.name + "' has another shape or dtype than the model");
    }
    loaded.insert(e.name);
    *dst = LandingFor(it->second, &copies);
    return Status::Ok();
  }));
  for (const auto& [name, p] : params) {
    if (!loaded.count(name)) return Status::Corruption(path + ": parameter '" + name + "' missing");
  }
  for (auto& [landed, param] : copies) param.copy_(landed);
  return Status::Ok();
}

Status LoadOptimizerState(const std::string& path, const torch::Device& device, AdamW* optimizer,
                          const WrittenFile* unverified) {
  // The moments held now, where the stored ones land in place when they fit: memory already
  // touched costs a copy, fresh memory a page fault per page on top.
  std::map<std::string, torch::Tensor> held;
  for (const auto& [name, s] : optimizer->state()) {
    if (!s.exp_avg.defined()) continue;
    held["exp_avg/" + name] = s.exp_avg;
    held["exp_avg_sq/" + name] = s.exp_avg_sq;
  }
  std::map<std::string, torch::Tensor> read;  // every stored tensor, on the CPU
  LOCKSTEP_RETURN_IF_ERROR(ReadTensors(path, unverified, [&](const TensorExtent& e, void** dst) {
    const auto dtype = ScalarTypeOf(e.dtype);
    const auto h = held.find(e.name);
    const bool fits = h != held.end() && h->second.device().is_cpu() && h->second.is_contiguous() &&
                      h->second.scalar_type() == dtype && SameShape(e, h->second);
    torch::Tensor& t = read[e.name];
    t = fits ? h->second : torch::empty(e.shape, torch::TensorOptions().dtype(dtype));
    *dst = t.data_ptr();
    return Status::Ok();
  }));
  optimizer->state().clear();
  for (const auto& [name, param] : optimizer->params()) {
    const auto m = read.find("exp_avg/" + name), v = read.find("exp_avg_sq/" + name), step = read.find("step/" + name);
    if (m == read.end() && v == read.end() && step == read.end()) continue;  // never updated
    if (m == read.end() || v == read.end() || step == read.end()) {
      return Status::Corruption(path + ": incomplete AdamW state for '" + name + "'");
    }
    if (m->second.sizes() != param.sizes() || v->second.sizes() != param.sizes() || step->second.numel() != 1 ||
        step->second.scalar_type() != torch::kInt64) {
      return Status::Corruption(path + ": AdamW state for '" + name + "' does not fit the parameter");
    }
    AdamWParamState st;
    st.exp_avg = m->second.to(device);
    st.exp_avg_sq = v->second.to(device);
    st.step = step->second.item<int64_t>();
    optimizer->state()[name] = std::move(st);
  }
  return Status::Ok();
}

}  // namespace lockstep
