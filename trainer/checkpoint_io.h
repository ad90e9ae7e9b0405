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
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/checkpoint.h"
#include "formats/status.h"
#include "formats/tensor_file.h"
#include "trainer/adamw.h"
#include "trainer/models.h"

namespace lockstep {

// CPU copies of tensors for snapshots that must outlive the step (--save_async), kept and
// reused from one save to the next: copying into memory already touched costs a memcpy,
// where fresh memory would page-fault all of it in again. Only one snapshot may use them
// at a time: take the next one after the last writer of the previous one has finished.
//
// The copies are made by Fill, not when a buffer is handed out, so that they can be made
// off the training thread while the next step's forward and backward run (CheckFreq's
// pipelined snapshot): the tensors copied must not change until Fill returns.
class SnapshotBuffers {
 public:
  // The CPU buffer named `name` for a copy of `t` (any device), replaced when its shape or
  // dtype changed. Its content is `t`'s once Fill has run.
  torch::Tensor BufferFor(const std::string& name, const torch::Tensor& t);

  // Copies each tensor given to BufferFor since the last Fill into its buffer. Any thread.
  Status Fill();

 private:
  std::map<std::string, torch::Tensor> buffers_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> unfilled_;  // (buffer, source)
};

// Writes one piece's file at `path` from the state captured when it was made. A writer
// that wrote the file durably and hashed it on the way fills `*written`, so the commit
// neither fsyncs nor reads it again; others leave it empty.
using PieceWriter = std::function<Status(const std::string& path, WrittenFile* written)>;

// One piece of training state and the checkpoint file it lives in.
struct StateFile {
  std::string name;  // "model.h5", "scheduler.json"
  // Captures the state as it is now and returns what writes it. With `copies`, the writer
  // reads tensors copied there (by copies->Fill, before it runs), so it may run on another
  // thread while training goes on; without (nullptr), it may view live memory and must run
  // before the state changes. JSON state is captured here either way.
  std::function<Status(SnapshotBuffers* copies, PieceWriter* writer)> snapshot;
  // Restores the state from `path`. `unverified`, when set, is what the manifest says of a
  // tensor file whose checksum nobody has checked yet (VerifyMode::kChecksumsOnLoad): the
  // load verifies it as it reads it (ReadTensorFileVerifying).
  std::function<Status(const std::string& path, const WrittenFile* unverified)> load;
};

// A StateFile for state that is a JSON document. `from_json` gets the parsed file and its
// path (for messages); malformed fields must come back as Corruption, never throw.
StateFile JsonStateFile(const std::string& name, std::function<nlohmann::json()> to_json,
                        std::function<Status(const nlohmann::json&, const std::string& path)> from_json);

// model.h5 and optimizer.h5 as pieces of state (the Save/Snapshot/Load functions below).
StateFile ModelStateFile(Model* model);
StateFile OptimizerStateFile(AdamW* optimizer, const torch::Device& device);

// A checkpoint's content at one step boundary: each piece's file name and writer.
using CheckpointSnapshot = std::vector<std::pair<std::string, PieceWriter>>;

// Snapshots every piece, in the list's order (see StateFile::snapshot for `copies`).
Status SnapshotCheckpoint(const std::vector<StateFile>& pieces, SnapshotBuffers* copies, CheckpointSnapshot* out);

// Writes `snapshot` into run_dir/checkpoint-<step>, atomically (staging, then commit). On
// failure nothing that looks like a checkpoint is left; `*final_dir` gets the path.
Status WriteCheckpoint(const std::string& run_dir, int64_t step, const CheckpointSnapshot& snapshot,
                       std::string* final_dir);

// The same into a staging directory already begun, into which other ranks may have written
// their files: those are committed with it.
Status CommitSnapshot(CheckpointStaging* staging, const CheckpointSnapshot& snapshot, std::string* final_dir);

// Snapshots every piece without copies and writes them at once (WriteCheckpoint).
Status SaveCheckpoint(const std::string& run_dir, int64_t step, const std::vector<StateFile>& pieces,
                      std::string* final_dir);

// Loads every piece from `checkpoint_dir`, in the list's order; stops at the first failure.
// `verified` is how the checkpoint was validated (ValidateCheckpoint) before: kChecksums,
// or kChecksumsOnLoad, and then each tensor file the manifest describes is verified as it
// is read, once. A Corruption then means the checkpoint is damaged and the state loaded so
// far is garbage: load another checkpoint, or stop.
Status LoadCheckpoint(const std::string& checkpoint_dir, const std::vector<StateFile>& pieces, VerifyMode verified);

// model.h5: every parameter and buffer, one dataset each. SnapshotModelWeights captures it
// for the save (`copies` as in StateFile::snapshot).
Status SnapshotModelWeights(Model* model, SnapshotBuffers* copies, PieceWriter* writer);
// Copies the weights of the model file at `path` into `model`, checking names, shapes and
// dtypes (resume, and load_best_model_at_end). `unverified` as in StateFile::load.
Status LoadModelWeights(const std::string& path, Model* model, const WrittenFile* unverified = nullptr);

// optimizer.h5: exp_avg/<param>, exp_avg_sq/<param>, step/<param>.
Status SnapshotOptimizerState(AdamW* optimizer, SnapshotBuffers* copies, PieceWriter* writer);
// Restores AdamW's moments and step counts onto `device`, checking that every parameter's
// state is present with the parameter's shape. Moments the optimizer already holds on the
// CPU in the right shape are read into in place. `unverified` as in StateFile::load.
Status LoadOptimizerState(const std::string& path, const torch::Device& device, AdamW* optimizer,
                          const WrittenFile* unverified = nullptr);

}  // namespace lockstep
