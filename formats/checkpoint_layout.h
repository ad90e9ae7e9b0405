// What a checkpoint directory is, by its files: Lockstep's layout (formats/checkpoint.h) or
// the Hugging Face Trainer's (with PEFT, FSDP and DeepSpeed's parts), and the names of HF's
// files, written once here for the audit, inspect, diff and verify-resume alike.
#pragma once

#include <string>

namespace lockstep {
namespace hf {

// The files Trainer._save_checkpoint writes. config.json (and generation_config.json) come
// first with the model, trainer_state.json (formats/checkpoint.h's kTrainerStateFile) last.
constexpr char kConfigFile[] = "config.json";
constexpr char kGenerationConfigFile[] = "generation_config.json";
constexpr char kOptimizerFile[] = "optimizer.pt";
constexpr char kSchedulerFile[] = "scheduler.pt";
constexpr char kScalerFile[] = "scaler.pt";        // with fp16 mixed precision
constexpr char kRngStateFile[] = "rng_state.pth";  // one process; rng_state_<rank>.pth for several
constexpr char kTrainingArgsFile[] = "training_args.bin";
constexpr char kSafetensorsFile[] = "model.safetensors";
constexpr char kSafetensorsIndexFile[] = "model.safetensors.index.json";  // sharded weights
constexpr char kAdapterConfigFile[] = "adapter_config.json";              // PEFT, beside the adapter
constexpr char kFsdpModelDir[] = "pytorch_model_fsdp_0";                  // FSDP's sharded state dict (DCP)
constexpr char kFsdpOptimizerDir[] = "optimizer_0";
constexpr char kDeepSpeedLatestFile[] = "latest";  // names DeepSpeed's tag directory
// JIT checkpointing (enable_jit_checkpoint: a save on SIGTERM) writes this marker before its
// save and removes it after: a checkpoint-N holding it is a save that never finished.
constexpr char kIncompleteMarkerFile[] = "checkpoint-is-incomplete.txt";

// Written by a save before trainer_state.json: a checkpoint-N holding any of them but not
// trainer_state.json is a save that never finished.
inline constexpr const char* kWrittenBeforeTrainerState[] = {
    kConfigFile,    kGenerationConfigFile, kAdapterConfigFile, kOptimizerFile,
    kSchedulerFile, kRngStateFile,         kTrainingArgsFile};

}  // namespace hf

// accelerate's Accelerator.save_state(dir): per prepared object model.safetensors (or
// pytorch_model.bin; model_<i> for the i-th), optimizer.bin, scheduler.bin, sampler.bin and
// custom_checkpoint_<i>.pkl, and one random_states_<process>.pkl per process. With
// automatic_checkpoint_naming the saves are project_dir/checkpoints/checkpoint_<i>.
namespace accelerate {
constexpr char kRandomStatesPrefix[] = "random_states_";  // + <process index> + ".pkl"
constexpr char kCheckpointsDir[] = "checkpoints";
constexpr char kCheckpointPrefix[] = "checkpoint_";  // + <i>, counting saves from 0
}  // namespace accelerate

// Lightning: Trainer(default_root_dir=R) keeps R/lightning_logs/version_<n>/checkpoints/
// with ModelCheckpoint's "epoch=E-step=S.ckpt" files, each one torch.save of a dict.
namespace lightning {
constexpr char kLogsDir[] = "lightning_logs";
constexpr char kCheckpointsDir[] = "checkpoints";
constexpr char kExtension[] = ".ckpt";
}  // namespace lightning

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

// "rng_state_3.pth" -> 3, "random_states_1.pkl" -> 1: the files one process of a job saves
// of its own generators (HF's Trainer, accelerate). False for any other name.
bool ParseRankedRngFile(const std::string& name, int64_t* rank);

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
