#include "tests/run_helpers.h"

#include <gtest/gtest.h>

#include <memory>

#include "formats/tensor_file.h"

namespace lockstep {
namespace test {

TrainingArgs Tiny(const std::string& model, const std::string& out) {
  TrainingArgs a;
  a.output_dir = out;
  a.model = model;
  a.train_samples = 37;
  a.eval_samples = 16;
  a.per_device_train_batch_size = 5;
  a.num_train_epochs = 2;
  a.learning_rate = 1e-3;
  a.warmup_steps = 2;
  a.logging_steps = 1;
  a.save_steps = 6;
  a.hidden_size = 16;
  a.n_layer = 1;
  a.n_embd = 16;
  a.n_head = 2;
  a.block_size = 8;
  a.vocab_size = 16;
  a.dropout = 0.1;
  return a;
}

// A deterministic clock, so two identical runs write identical wall_time fields.
TrainOptions Quiet() {
  TrainOptions o;
  o.show_progress = false;
  auto ticks = std::make_shared<double>(0.0);
  o.hooks.clock = [ticks] { return *ticks += 0.001; };
  return o;
}

TrainResult Train(const TrainingArgs& a, TrainOptions o) {
  TrainResult r;
  Status st = RunTraining(a, o, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

StepLogContents Log(const std::string& run) {
  StepLogContents c;
  Status st = ReadStepLog(run + "/" + kStepLogFile, &c);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return c;
}

std::map<std::string, std::vector<uint8_t>> Tensors(const std::string& file) {
  std::vector<TensorData> ts;
  Status st = ReadTensorFile(file, &ts);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::map<std::string, std::vector<uint8_t>> out;
  for (auto& t : ts) out[t.name] = t.bytes;
  return out;
}

// Step records without the wall clock: what must match between two runs.
std::vector<nlohmann::json> Comparable(const StepLogContents& log) {
  std::vector<nlohmann::json> out;
  for (const auto& record : log.records) {
    nlohmann::json r = StepRecordJson(record);
    r.erase(step_key::kWallTime);
    out.push_back(r);
  }
  return out;
}

}  // namespace test
}  // namespace lockstep
