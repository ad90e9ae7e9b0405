// `lockstep inspect CHECKPOINT` / `lockstep inspect FILE`: what is inside a checkpoint,
// Lockstep's or Hugging Face's, or a single tensor file, without a framework and without
// executing a pickle. The report is JSON; the CLI prints it as aligned tables.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct ShowOptions {
  std::string filter;  // ECMAScript regex: only tensors whose name it finds are listed
  std::string tensor;  // print this tensor's values
  int64_t head = 5;    // ... its first and last `head` values
};

// The file holding a checkpoint's (or an output directory's) model weights, the first of:
// model.h5 (Lockstep), model.safetensors.index.json (sharded), model.safetensors,
// adapter_model.safetensors (PEFT: the adapter is the model), pytorch_model.bin and
// adapter_model.bin (save_safetensors=False), pytorch_model_fsdp_0 (FSDP's sharded state
// dict, a DCP directory) and pytorch_model_fsdp.bin (its full one). "" for none.
std::string ModelWeightsFile(const std::string& dir);

// "lockstep" (manifest.json, model.h5 or loop_state.json), "hf" (trainer_state.json with
// model weights, optimizer.pt, an rng_state*.pth or DeepSpeed's `latest`), "dcp" (a bare
// torch.distributed.checkpoint directory), or "" for none of them.
std::string CheckpointLayout(const std::string& dir);

// True when `dir` is a run's output directory rather than one checkpoint: it holds a step
// log or checkpoint-N directories (an HF output_dir after save_model() and save_state()
// also holds a model and trainer_state.json at its top), or trainer_state.json without the
// files of a checkpoint.
bool IsRunDirectory(const std::string& dir);

// Fills `*report` for `path`: a checkpoint directory or a .h5/.safetensors/.pt/.pth/.bin
// file. Keys: kind, path, trainer_state, training_args, rng, sampler, tensors, optimizer,
// pickles, values, problems. In a checkpoint directory, a damaged part is listed under
// "problems" (file and reason) and the rest is still shown. A single file that cannot be
// read is Corruption naming it; a path that is none of these is InvalidArgument.
Status ShowPath(const std::string& path, const ShowOptions& options, nlohmann::json* report);

}  // namespace lockstep
