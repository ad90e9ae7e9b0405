// Saving and loading the trainer's checkpoints, as one registry of stateful pieces (after
// torchtitan): each piece of training state names its file and knows how to save itself
// there and load itself back. A checkpoint is the list written in order through a staging
// directory; a resume is the same list loaded in the same order. So a new piece of state
// is one entry in one list (TrainingRun::StateFiles), and reading mirrors writing.
//
// checkpoint-<step>/ holds, besides manifest.json (formats/checkpoint.h):
//   training_args.json  trainer_state.json  model.h5  optimizer.h5
//   scheduler.json  loop_state.json  sampler.json  rng_state.json
// Layout and field meanings: formats/doc/checkpoint_format.md.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/tensor_file.h"
#include "trainer/adamw.h"
#include "trainer/models.h"

namespace lockstep {

constexpr char kModelFile[] = "model.h5";
constexpr char kOptimizerFile[] = "optimizer.h5";

// One piece of training state and the checkpoint file it lives in.
struct StateFile {
  std::string name;  // "model.h5", "scheduler.json"
  // Writes the file at `path`. A saver that wrote it durably and hashed it on the way fills
  // `*written`, so the commit neither fsyncs nor reads it again; others leave it empty.
  std::function<Status(const std::string& path, WrittenFile* written)> save;
  std::function<Status(const std::string& path)> load;  // restores the state from `path`
};

// A StateFile for state that is a JSON document. `from_json` gets the parsed file and its
// path (for messages); malformed fields must come back as Corruption, never throw.
StateFile JsonStateFile(const std::string& name, std::function<nlohmann::json()> to_json,
                        std::function<Status(const nlohmann::json&, const std::string& path)> from_json);

// Saves every piece into run_dir/checkpoint-<step>, atomically (staging, then commit).
// On failure nothing that looks like a checkpoint is left; `*final_dir` gets the path.
Status SaveCheckpoint(const std::string& run_dir, int64_t step, const std::vector<StateFile>& pieces,
                      std::string* final_dir);

// Loads every piece from `checkpoint_dir`, in the list's order; stops at the first failure.
Status LoadCheckpoint(const std::string& checkpoint_dir, const std::vector<StateFile>& pieces);

// model.h5: every parameter and buffer, one dataset each.
Status SaveModelWeights(const std::string& path, Model* model, WrittenFile* written = nullptr);
// Copies the weights of the model file at `path` into `model`, checking names, shapes and
// dtypes (resume, and load_best_model_at_end).
Status LoadModelWeights(const std::string& path, Model* model);

// optimizer.h5: exp_avg/<param>, exp_avg_sq/<param>, step/<param>.
Status SaveOptimizerState(const std::string& path, AdamW* optimizer, WrittenFile* written = nullptr);
// Restores AdamW's moments and step counts onto `device`, checking that every parameter's
// state is present with the parameter's shape.
Status LoadOptimizerState(const std::string& path, const torch::Device& device, AdamW* optimizer);

}  // namespace lockstep
