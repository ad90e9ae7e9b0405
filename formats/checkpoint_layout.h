// What a checkpoint directory is, by its files: Lockstep's layout (formats/checkpoint.h) or
// the Hugging Face Trainer's (with PEFT, FSDP and DeepSpeed's parts), accelerate's, DCP's.
// The file names themselves are formats/file_names.h's.
#pragma once

#include <string>

#include "formats/file_names.h"

namespace lockstep {
namespace hf {
// Written by a save before trainer_state.json: a checkpoint-N holding any of them but not
// trainer_state.json is a save that never finished.
inline constexpr const char* kWrittenBeforeTrainerState[] = {
    kConfigFile,    kGenerationConfigFile, peft::kAdapterConfigFile, kOptimizerFile,
    kSchedulerFile, kRngStateFile,         kTrainingArgsFile};
}  // namespace hf

// The layouts a checkpoint (a directory, or a file) can have, as CheckpointLayout and the
// audit name them.
namespace layout {
constexpr char kLockstep[] = "lockstep";
constexpr char kHf[] = "hf";                  // the Trainer's, with PEFT, FSDP and DeepSpeed parts
constexpr char kDcp[] = "dcp";                // torch.distributed.checkpoint
constexpr char kAccelerate[] = "accelerate";  // Accelerator.save_state
constexpr char kLightning[] = "lightning";    // a .ckpt file
constexpr char kTorchSave[] = "torch.save";   // one torch.save file of the user's own dict
constexpr char kOwn[] = "own";  // a checkpoint-N directory in a format Lockstep does not know (a script's own)
}  // namespace layout

// The file holding a checkpoint's (or an output directory's) model weights, the first of:
// model.h5 (Lockstep), model.safetensors.index.json (sharded), model.safetensors,
// adapter_model.safetensors (PEFT: the adapter is the model), pytorch_model.bin and
// adapter_model.bin (save_safetensors=False), pytorch_model_fsdp_0 (FSDP's sharded state
// dict, a DCP directory) and pytorch_model_fsdp.bin (its full one). "" for none.
std::string ModelWeightsFile(const std::string& dir);

// True when `dir` holds an rng_state.pth or an rng_state_<rank>.pth.
bool HasRngStateFile(const std::string& dir);

constexpr char kNoModelWeights[] =
    "no model weights (model.safetensors, an index, pytorch_model.bin, FSDP's pytorch_model_fsdp_0, "
    "or a PEFT adapter_model.safetensors)";

// True when a DeepSpeed engine saved part of the HF checkpoint `dir`: it holds DeepSpeed's
// `latest` file or a global_step<N>/ tag directory.
bool IsDeepSpeedCheckpoint(const std::string& dir);

// The Trainer's rule for an HF checkpoint it can resume (transformers' _load_from_checkpoint):
// it holds model weights (ModelWeightsFile), unless DeepSpeed holds them in its shards
// (ZeRO-3). "" when the rule holds, else kNoModelWeights. One directory listing: cheap enough to poll.
std::string MissingModelWeights(const std::string& dir);

// "lockstep" (manifest.json, model.h5 or loop_state.json), "hf" (trainer_state.json with
// model weights, or any file only the Trainer writes: training_args.bin, optimizer.pt,
// scheduler.pt, scaler.pt, an rng_state*.pth, DeepSpeed's `latest`), "dcp" (a bare
// torch.distributed.checkpoint directory: its .metadata, or .distcp files without one),
// "accelerate" (a random_states_<i>.pkl, or optimizer.bin or scheduler.bin without
// trainer_state.json), or "" for none of them (layout:: names).
std::string CheckpointLayout(const std::string& dir);

// True when `dir` holds DCP's data files (__<rank>_<n>.distcp), with or without .metadata.
bool HasDcpDataFiles(const std::string& dir);

}  // namespace lockstep
