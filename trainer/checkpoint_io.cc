#include "trainer/checkpoint_io.h"

#include <filesystem>
#include <map>
#include <set>
#include <memory>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "trainer/torch_bridge.h"

namespace lockstep {
namespace {

// Views of the tensors to save, and the tensors that own their memory (for a CPU model,
// the parameters themselves: nothing is copied).
struct SaveList {
  std::vector<torch::Tensor> keep;
  std::vector<TensorView> views;

  Status Add(const std::string& name, const torch::Tensor& t) {
    keep.emplace_back();
    views.emplace_back();
    return ToTensorView(name, t, &keep.back(), &views.back());
  }
};

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
  f.save = [to_json](const std::string& path, WrittenFile*) { return WriteJsonFile(path, to_json()); };
  f.load = [from_json](const std::string& path) {
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

Status SaveCheckpoint(const std::string& run_dir, int64_t step, const std::vector<StateFile>& pieces,
                      std::string* final_dir) {
  std::unique_ptr<CheckpointStaging> staging;
  LOCKSTEP_RETURN_IF_ERROR(CheckpointStaging::Begin(run_dir, step, &staging));
  for (const auto& piece : pieces) {
    WrittenFile written;
    LOCKSTEP_RETURN_IF_ERROR(piece.save(staging->FilePath(piece.name), &written));
    if (!written.xxh3_128.empty()) staging->NoteWritten(piece.name, written.size, written.xxh3_128);
  }
  return staging->Commit(final_dir);
}

Status LoadCheckpoint(const std::string& checkpoint_dir, const std::vector<StateFile>& pieces) {
  for (const auto& piece : pieces) {
    LOCKSTEP_RETURN_IF_ERROR(piece.load((std::filesystem::path(checkpoint_dir) / piece.name).string()));
  }
  return Status::Ok();
}

Status SaveModelWeights(const std::string& path, Model* model, WrittenFile* written) {
  SaveList tensors;
  LOCKSTEP_RETURN_IF_ERROR(ModelTensors(model, &tensors));
  return WriteTensorFile(path, tensors.views, written);
}

Status SaveOptimizerState(const std::string& path, AdamW* optimizer, WrittenFile* written) {
  SaveList tensors;
  LOCKSTEP_RETURN_IF_ERROR(OptimizerTensors(optimizer, &tensors));
  return WriteTensorFile(path, tensors.views, written);
}

Status LoadModelWeights(const std::string& path, Model* model) {
  std::map<std::string, torch::Tensor> params;
  for (auto& p : model->named_parameters()) params[p.key()] = p.value();
  std::set<std::string> loaded;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (landed on CPU, parameter)
  torch::NoGradGuard no_grad;
  LOCKSTEP_RETURN_IF_ERROR(ReadTensorFileInto(path, [&](const TensorExtent& e, void** dst) {
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

Status LoadOptimizerState(const std::string& path, const torch::Device& device, AdamW* optimizer) {
  std::map<std::string, torch::Tensor> read;  // every stored tensor, on the CPU
  LOCKSTEP_RETURN_IF_ERROR(ReadTensorFileInto(path, [&](const TensorExtent& e, void** dst) {
    torch::Tensor& t = read[e.name];
    t = torch::empty(e.shape, torch::TensorOptions().dtype(ScalarTypeOf(e.dtype)));
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
