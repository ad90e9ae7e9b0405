// The data-parallel job (data_parallel.h): the gradients are averaged after the last
// micro-batch of each window (never on the inner ones), and rank 0's decisions reach the
// other ranks through the job's store.
#include "trainer/data_parallel.h"

#include <torch/torch.h>

#include <chrono>
#include <filesystem>

#include "formats/file_names.h"
#include "formats/json_file.h"
#include "trainer/scope_seconds.h"
#include "trainer/torch_bridge.h"

namespace fs = std::filesystem;

namespace lockstep {

using nlohmann::json;

Status DataParallelJob::Join(TrainingArgs* args, c10::Device* device) {
  JobEnv env;
  LOCKSTEP_RETURN_IF_ERROR(ReadJobEnv(&env));
  if (args->world_size && *args->world_size != env.world_size) {
    return Status::InvalidArgument("--world_size " + std::to_string(*args->world_size) + ", but the launcher started " +
                                   std::to_string(env.world_size) + " process(es) (WORLD_SIZE); use --nproc_per_node " +
                                   std::to_string(*args->world_size) + " or torchrun");
  }
  args->world_size = env.world_size;  // recorded resolved: it decides the run
  rank_ = env.rank;
  world_ = env.world_size;
  LOCKSTEP_RETURN_IF_ERROR(ResolveDevice(args->device, env.local_rank, device));
  if (world_ == 1) return Status::Ok();
  return ProcessGroup::Connect(env, device->is_cuda(), std::chrono::seconds(args->ddp_timeout), &group_);
}

Status DataParallelJob::ShareRankZeroDecision(const std::string& key, const Status& st, std::string* decision,
                                              const std::string& what) {
  if (IsRankZero()) {
    if (world_ > 1) LOCKSTEP_RETURN_IF_ERROR(group_->StoreSet(key, st.ok() ? "ok:" + *decision : "failed"));
    return st;
  }
  std::string value;
  LOCKSTEP_RETURN_IF_ERROR(group_->StoreGet(key, &value));
  if (value.rfind("ok:", 0) != 0)
    return Status::IOError("rank " + std::to_string(rank_) + ": rank 0 could not " + what + " (its error is above)");
  *decision = value.substr(3);
  return Status::Ok();
}

// Every rank starts from rank 0's weights, as DDP's constructor makes sure.
Status DataParallelJob::BroadcastParameters(const std::vector<at::Tensor>& parameters) {
  if (world_ == 1) return Status::Ok();
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters) {
    at::Tensor t = p.detach();
    LOCKSTEP_RETURN_IF_ERROR(group_->Broadcast(&t, "broadcasting the initial weights"));
  }
  return Status::Ok();
}

// One all-reduce of every gradient, flattened into one buffer (one collective per step,
// in parameter order, so its summation order is the same on every run), then / world_size.
Status DataParallelJob::AllReduceGradients(const std::vector<std::pair<std::string, at::Tensor>>& params) {
  if (world_ == 1) return Status::Ok();
  ScopeSeconds cost(&allreduce_s_);
  std::vector<torch::Tensor> grads;
  for (const auto& [name, p] : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  torch::Tensor flat = torch::cat([&] {
    std::vector<torch::Tensor> views;
    for (const auto& g : grads) views.push_back(g.reshape({-1}));
    return views;
  }());
  LOCKSTEP_RETURN_IF_ERROR(group_->AllReduceSum(&flat, "all-reducing the gradients"));
  flat.div_(static_cast<double>(world_));
  int64_t at = 0;
  for (auto& g : grads) {
    g.copy_(flat.narrow(0, at, g.numel()).view_as(g));
    at += g.numel();
  }
  return Status::Ok();
}

Status DataParallelJob::AllGather(const at::Tensor& mine, std::vector<at::Tensor>* all) {
  if (world_ == 1) {
    *all = {mine};
    return Status::Ok();
  }
  ScopeSeconds cost(&allreduce_s_);
  return group_->AllGather(mine, all, "gathering the units' gradients");
}

// After a step: the loss every rank logs is the mean over the ranks (HF gathers and
// averages it), and a stop signal that reached any rank stops them all after this step.
Status DataParallelJob::AgreeOnStep(float* loss, bool signal_arrived) {
  if (world_ == 1) return Status::Ok();
  torch::Tensor v = torch::tensor({static_cast<double>(*loss), signal_arrived ? 1.0 : 0.0}, torch::kFloat64);
  LOCKSTEP_RETURN_IF_ERROR(group_->AllReduceSum(&v, "agreeing on the step's loss"));
  *loss = static_cast<float>(v[0].item<double>() / static_cast<double>(world_));
  stop_agreed_ = v[1].item<double>() > 0;
  return Status::Ok();
}

Status DataParallelJob::AnyRankSays(bool* stop, const char* what) {
  if (world_ == 1) return Status::Ok();
  torch::Tensor flag = torch::tensor({*stop ? 1.0 : 0.0}, torch::kFloat64);
  LOCKSTEP_RETURN_IF_ERROR(group_->AllReduceSum(&flag, what));
  *stop = flag.item<double>() > 0;
  return Status::Ok();
}

// The other ranks' sample ids and generator digests, for rank 0's step record:
// batches_other_ranks[r - 1] and rng_other_ranks[r - 1] are rank r's.
// Each rank sends its own as a step record would hold them (`rng`: this rank's states, for
// a rank other than 0).
Status DataParallelJob::GatherRankRecords(const GeneratorStates& rng, StepRecord* record) {
  if (world_ == 1) return Status::Ok();
  const json mine = {{step_key::kBatches, record->batches}, {step_key::kRng, GeneratorStatesJson(rng)}};
  std::vector<std::string> all;
  LOCKSTEP_RETURN_IF_ERROR(group_->AllGatherBytes(mine.dump(), &all, "gathering the ranks' step records"));
  if (!IsRankZero()) return Status::Ok();
  for (size_t r = 1; r < all.size(); ++r) {
    json theirs;
    const std::string where = "rank " + std::to_string(r) + "'s step record";
    LOCKSTEP_RETURN_IF_ERROR(ParseJson(all[r], where, &theirs));
    if (!theirs.is_object()) return Status::Corruption(where + ": not a JSON object");
    Batches batches;
    GeneratorStates rng;
    LOCKSTEP_RETURN_IF_ERROR(ParseBatches(theirs[step_key::kBatches], where, &batches));
    LOCKSTEP_RETURN_IF_ERROR(ParseGeneratorStates(theirs[step_key::kRng], where, &rng));
    record->batches_other_ranks.push_back(std::move(batches));
    record->rng_other_ranks.push_back(std::move(rng));
  }
  return Status::Ok();
}

Status DataParallelJob::SumOverRanks(std::vector<double>* values) {
  if (world_ == 1) return Status::Ok();
  torch::Tensor v = torch::tensor(*values, torch::kFloat64);
  LOCKSTEP_RETURN_IF_ERROR(group_->AllReduceSum(&v, "summing the evaluation over the ranks"));
  for (size_t i = 0; i < values->size(); ++i) (*values)[i] = v[static_cast<int64_t>(i)].item<double>();
  return Status::Ok();
}

// A checkpoint of the job: rank 0 begins the staging directory and publishes where it is;
// every other rank writes its own files there; once all have (a barrier), rank 0 may write
// its own and commit, and the manifest covers every rank's files.
Status DataParallelJob::StageRankFiles(const std::string& output_dir, int64_t step, const CheckpointSnapshot& mine,
                                       std::unique_ptr<CheckpointStaging>* staging) {
  const std::string key = "staging/" + std::to_string(step);
  std::string dir;
  if (IsRankZero()) {
    Status st = CheckpointStaging::Begin(output_dir, step, staging);
    if (world_ == 1) return st;
    LOCKSTEP_RETURN_IF_ERROR(group_->StoreSet(key, st.ok() ? (*staging)->staging_dir() : ""));
    LOCKSTEP_RETURN_IF_ERROR(st);
  } else {
    LOCKSTEP_RETURN_IF_ERROR(group_->StoreGet(key, &dir));
    if (dir.empty())
      return Status::IOError("rank " + std::to_string(rank_) + ": rank 0 could not begin checkpoint-" +
                             std::to_string(step));
    for (const auto& [name, write] : mine) {
      WrittenFile written;
      LOCKSTEP_RETURN_IF_ERROR(write((fs::path(dir) / name).string(), &written));
    }
  }
  return group_->Barrier("waiting for every rank's checkpoint files");
}

std::string DataParallelJob::RngFileName() const { return lockstep::RngStateFileName(rank_, world_, kRngStateJsonExt); }

}  // namespace lockstep
