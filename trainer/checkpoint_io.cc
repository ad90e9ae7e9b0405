#include "trainer/checkpoint_io.h"

#include <filesystem>
#include <map>
#include <memory>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "trainer/torch_bridge.h"

namespace lockstep {
namespace {

Status ModelTensors(Model* model, std::vector<TensorData>* out) {
  for (const auto& p : model->named_parameters()) {
    out->emplace_back();
    LOCKSTEP_RETURN_IF_ERROR(ToTensorData(p.key(), p.value(), &out->back()));
  }
  for (const auto& b : model->named_buffers()) {
    out->emplace_back();
    LOCKSTEP_RETURN_IF_ERROR(ToTensorData(b.key(), b.value(), &out->back()));
  }
  return Status::Ok();
}

Status OptimizerTensors(AdamW* opt, std::vector<TensorData>* out) {
  for (auto& [name, s] : opt->state()) {
    if (!s.exp_avg.defined()) continue;
    out->emplace_back();
    LOCKSTEP_RETURN_IF_ERROR(ToTensorData("exp_avg/" + name, s.exp_avg, &out->back()));
    out->emplace_back();
    LOCKSTEP_RETURN_IF_ERROR(ToTensorData("exp_avg_sq/" + name, s.exp_avg_sq, &out->back()));
    out->emplace_back();
    LOCKSTEP_RETURN_IF_ERROR(ToTensorData("step/" + name, torch::tensor(s.step, torch::kInt64), &out->back()));
  }
  return Status::Ok();
}

}  // namespace

StateFile JsonStateFile(const std::string& name, std::function<nlohmann::json()> to_json,
                        std::function<Status(const nlohmann::json&, const std::string& path)> from_json) {
  StateFile f;
  f.name = name;
  f.save = [to_json](const std::string& path) { return WriteJsonFile(path, to_json()); };
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
  for (const auto& piece : pieces) LOCKSTEP_RETURN_IF_ERROR(piece.save(staging->FilePath(piece.name)));
  return staging->Commit(final_dir);
}

Status LoadCheckpoint(const std::string& checkpoint_dir, const std::vector<StateFile>& pieces) {
  for (const auto& piece : pieces) {
    LOCKSTEP_RETURN_IF_ERROR(piece.load((std::filesystem::path(checkpoint_dir) / piece.name).string()));
  }
  return Status::Ok();
}

Status SaveModelWeights(const std::string& path, Model* model) {
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(ModelTensors(model, &tensors));
  return WriteTensorFile(path, tensors);
}

Status SaveOptimizerState(const std::string& path, AdamW* optimizer) {
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(OptimizerTensors(optimizer, &tensors));
  return WriteTensorFile(path, tensors);
}

Status LoadModelWeights(const std::string& path, Model* model) {
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(ReadTensorFile(path, &tensors));
  std::map<std::string, const TensorData*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const auto it = by_name.find(p.key());
    if (it == by_name.end()) return Status::Corruption(path + ": parameter '" + p.key() + "' missing");
    torch::Tensor src = FromTensorData(*it->second);
    if (src.sizes() != p.value().sizes() || src.scalar_type() != p.value().scalar_type()) {
      return Status::Corruption(path + ": parameter '" + p.key() + "' has another shape or dtype than the model");
    }
    p.value().copy_(src.to(p.value().device()));
  }
  return Status::Ok();
}

Status LoadOptimizerState(const std::string& path, const torch::Device& device, AdamW* optimizer) {
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(ReadTensorFile(path, &tensors));
  std::map<std::string, const TensorData*> by_name;
  for (const auto& t : tensors) by_name[t.name] = &t;
  optimizer->state().clear();
  for (const auto& [name, param] : optimizer->params()) {
    const auto m = by_name.find("exp_avg/" + name), v = by_name.find("exp_avg_sq/" + name),
               step = by_name.find("step/" + name);
    if (m == by_name.end() && v == by_name.end() && step == by_name.end()) continue;  // never updated
    if (m == by_name.end() || v == by_name.end() || step == by_name.end()) {
      return Status::Corruption(path + ": incomplete AdamW state for '" + name + "'");
    }
    AdamWParamState st;
    st.exp_avg = FromTensorData(*m->second).to(device);
    st.exp_avg_sq = FromTensorData(*v->second).to(device);
    const torch::Tensor s = FromTensorData(*step->second);
    if (st.exp_avg.sizes() != param.sizes() || st.exp_avg_sq.sizes() != param.sizes() ||
        s.numel() != 1 || s.scalar_type() != torch::kInt64) {
      return Status::Corruption(path + ": AdamW state for '" + name + "' does not fit the parameter");
    }
    st.step = s.item<int64_t>();
    optimizer->state()[name] = std::move(st);
  }
  return Status::Ok();
}

}  // namespace lockstep
