// Every file name a checkpoint or run directory holds, Lockstep's and the other libraries'
// (the Hugging Face Trainer's with PEFT, FSDP and DeepSpeed's parts, accelerate's, DCP's,
// Lightning's), written once here; per-rank names are made and recognised by the functions
// below. Writers, the audit, inspect, diff and verify-resume all take names from here.
#pragma once

#include <cstdint>
#include <string>

namespace lockstep {

// ---- Lockstep's (formats/doc/checkpoint_format.md, step_log_format.md) ------------------
inline constexpr char kStepLogFile[] = "steps.jsonl.zst";
inline constexpr char kManifestFile[] = "manifest.json";  // a checkpoint's, written last
// A Lockstep checkpoint's tensor files ...
inline constexpr char kModelFile[] = "model.h5";
inline constexpr char kOptimizerStateFile[] = "optimizer.h5";
// ... and the JSON state beside them (trainer/training_state.cc lists every piece).
inline constexpr char kTrainingArgsJsonFile[] = "training_args.json";
inline constexpr char kSchedulerStateFile[] = "scheduler.json";
inline constexpr char kLoopStateFile[] = "loop_state.json";
inline constexpr char kSamplerStateFile[] = "sampler.json";
inline constexpr char kRngStateJsonExt[] = ".json";  // rng_state.json; rng_state_<rank>.json in a job
// What a finished run writes at the top of output_dir, as HF's Trainer does.
inline constexpr char kTrainResultsFile[] = "train_results.json";
inline constexpr char kEvalResultsFile[] = "eval_results.json";
inline constexpr char kAllResultsFile[] = "all_results.json";
inline constexpr char kTrainerStateFile[] = "trainer_state.json";  // HF's name, and ours
inline constexpr char kVerifyReportFile[] = "verify_report.json";  // verify-resume's, in its output_dir
inline constexpr char kVerifyConfigFile[] = "config.json";         // ... and the settings it ran

// The generators' file of process `rank` of a job of `world` processes: rng_state<ext> for
// one process, rng_state_<rank><ext> for several (the Trainer's ".pth", Lockstep's ".json").
std::string RngStateFileName(int64_t rank, int64_t world, const std::string& ext);
// True for rng_state<ext> and rng_state_<digits><ext>.
bool IsRngStateFile(const std::string& name, const std::string& ext);

// ---- The Hugging Face Trainer's (Trainer._save_checkpoint) ------------------------------
namespace hf {
// config.json (and generation_config.json) come first with the model, trainer_state.json
// (kTrainerStateFile) last.
inline constexpr char kConfigFile[] = "config.json";
inline constexpr char kGenerationConfigFile[] = "generation_config.json";
inline constexpr char kOptimizerFile[] = "optimizer.pt";
inline constexpr char kSchedulerFile[] = "scheduler.pt";
inline constexpr char kScalerFile[] = "scaler.pt";  // with fp16 mixed precision
inline constexpr char kRngStateExt[] = ".pth";      // rng_state.pth; rng_state_<rank>.pth for several
inline constexpr char kRngStateFile[] = "rng_state.pth";
inline constexpr char kTrainingArgsFile[] = "training_args.bin";
inline constexpr char kSafetensorsFile[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFile[] = "model.safetensors.index.json";  // sharded weights
inline constexpr char kBinWeightsFile[] = "pytorch_model.bin";                   // save_safetensors=False
inline constexpr char kBinWeightsIndexFile[] = "pytorch_model.bin.index.json";
// The shards of sharded weights: model-00001-of-00002.safetensors, pytorch_model-00001-of-00002.bin.
inline constexpr char kSafetensorsShardPrefix[] = "model-", kBinShardPrefix[] = "pytorch_model-";
// JIT checkpointing (enable_jit_checkpoint: a save on SIGTERM) writes this marker before its
// save and removes it after: a checkpoint-N holding it is a save that never finished.
inline constexpr char kIncompleteMarkerFile[] = "checkpoint-is-incomplete.txt";
}  // namespace hf

// PEFT: save_pretrained writes the adapter, which is then the model.
namespace peft {
inline constexpr char kAdapterConfigFile[] = "adapter_config.json";
inline constexpr char kAdapterSafetensorsFile[] = "adapter_model.safetensors";
inline constexpr char kAdapterBinFile[] = "adapter_model.bin";
inline constexpr char kAdapterPrefix[] = "adapter_model";  // the adapter's weights, in either format
inline constexpr char kModelCardFile[] = "README.md";      // written with every save, before the adapter
}  // namespace peft

// FSDP through the Trainer: a sharded state dict is a DCP directory, a full one a .bin.
namespace fsdp {
inline constexpr char kModelDir[] = "pytorch_model_fsdp_0";
inline constexpr char kOptimizerDir[] = "optimizer_0";
inline constexpr char kFullModelFile[] = "pytorch_model_fsdp.bin";
}  // namespace fsdp

// DeepSpeed: `latest` names the tag directory (global_step<N>) that holds the engine's files.
namespace deepspeed {
inline constexpr char kLatestFile[] = "latest";
inline constexpr char kTagPrefix[] = "global_step";
inline constexpr char kModelStatesFile[] = "mp_rank_00_model_states.pt";  // ZeRO-1/2: the whole model
// ZeRO's per-rank shards: [bf16_]zero_pp_rank_<rank>_mp_rank_00_optim_states.pt, and with
// ZeRO-3 zero_pp_rank_<rank>_mp_rank_00_model_states.pt.
std::string OptimStatesFile(int64_t rank, bool bf16);
std::string RankModelStatesFile(int64_t rank);
// Regular expressions over those names: the rank is group 2 (optimizer) or 1 (model).
inline constexpr char kOptimStatesPattern[] = "(bf16_)?zero_pp_rank_([0-9]{1,6})_mp_rank_[0-9]+_optim_states\\.pt";
inline constexpr char kRankModelStatesPattern[] = "zero_pp_rank_([0-9]{1,6})_mp_rank_[0-9]+_model_states\\.pt";
}  // namespace deepspeed

// torch.distributed.checkpoint: .metadata (written last) and __<rank>_<n>.distcp data files.
namespace dcp {
inline constexpr char kMetadataFile[] = ".metadata";
inline constexpr char kDataExt[] = ".distcp";
// True for __<rank>_<n>.distcp, with the rank.
bool ParseDataFile(const std::string& name, int64_t* rank);
}  // namespace dcp

// accelerate's Accelerator.save_state(dir): per prepared object model.safetensors (or
// pytorch_model.bin; model_<i> for the i-th), optimizer.bin, scheduler.bin, sampler.bin and
// custom_checkpoint_<i>.pkl, and one random_states_<process>.pkl per process. With
// automatic_checkpoint_naming the saves are project_dir/checkpoints/checkpoint_<i>.
namespace accelerate {
inline constexpr char kOptimizerFile[] = "optimizer.bin";
inline constexpr char kSchedulerFile[] = "scheduler.bin";
inline constexpr char kRandomStatesPrefix[] = "random_states_";
inline constexpr char kPickleExt[] = ".pkl";
inline constexpr char kCheckpointsDir[] = "checkpoints";
inline constexpr char kCheckpointPrefix[] = "checkpoint_";  // + <i>, counting saves from 0
std::string RandomStatesFile(int64_t process);              // random_states_<process>.pkl
}  // namespace accelerate

// Lightning: Trainer(default_root_dir=R) keeps R/lightning_logs/version_<n>/checkpoints/
// with ModelCheckpoint's "epoch=E-step=S.ckpt" files, each one torch.save of a dict.
namespace lightning {
inline constexpr char kLogsDir[] = "lightning_logs";
inline constexpr char kCheckpointsDir[] = "checkpoints";
inline constexpr char kExtension[] = ".ckpt";
}  // namespace lightning

// "rng_state_3.pth" -> 3, "random_states_1.pkl" -> 1, "rng_state_2.json" -> 2: the files one
// process of a job saves of its own generators (HF's Trainer, accelerate, Lockstep). False for
// any other name.
bool ParseRankedRngFile(const std::string& name, int64_t* rank);

}  // namespace lockstep
