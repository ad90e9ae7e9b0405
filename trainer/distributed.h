// Data-parallel training's communication: PyTorch's own c10d runtime, a TCPStore for the
// rendezvous and a process group for the collectives (ProcessGroupNCCL for a CUDA job where
// LibTorch has it, else ProcessGroupGloo), behind a small interface so the loop reads as
// "all-reduce the gradients", and so torch's c10d headers stay in one file.
//
// What a build has depends on its LibTorch (trainer/CMakeLists.txt): Debian's 1.13 has Gloo
// (CPU jobs; CUDA tensors staged through host memory) and no CUDA; the PyPI wheel's 2.x has
// NCCL (with its headers, in the nvidia-nccl wheel) but ships no headers for its built-in
// Gloo, so that build runs CUDA jobs only.
//
// The job's shape comes from torchrun's contract (process/job_env.h), so any launcher works: `lockstep train
// --nproc_per_node N`, torchrun --no-python, srun with a wrapper. Every collective and store wait has the run's
// ddp_timeout; a dead peer surfaces as an IOError naming this rank and the call, never as a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/status.h"
#include "process/job_env.h"

namespace at {
class Tensor;
}

namespace lockstep {

// Why this build cannot run a job of several ranks on a `cuda` (or CPU) device, naming what
// it lacks; "" when it can.
std::string DataParallelUnavailable(bool cuda);

class ProcessGroup {
 public:
  // Connects to the job's store (rank 0 hosts it on MASTER_PORT) and creates the group:
  // NCCL for a `cuda` job where this build has it, else Gloo. Fails with IOError when the
  // peers do not all arrive within `timeout`, InvalidArgument when this build has no backend
  // for the job (DataParallelUnavailable).
  static Status Connect(const JobEnv& env, bool cuda, std::chrono::milliseconds timeout,
                        std::unique_ptr<ProcessGroup>* out);
  ~ProcessGroup();

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  const char* backend() const;  // "nccl" or "gloo"

  // In place, on every rank: the element-wise sum over the ranks. Under Gloo, CUDA tensors
  // are staged through host memory.
  Status AllReduceSum(at::Tensor* tensor, const char* what);
  // In place: rank 0's values on every rank.
  Status Broadcast(at::Tensor* tensor, const char* what);
  Status Barrier(const char* what);
  // Every rank's `mine` (the same shape and dtype on every rank), in rank order, on mine's device.
  Status AllGather(const at::Tensor& mine, std::vector<at::Tensor>* all, const char* what);
  // Every rank's `mine`, in rank order (sizes may differ).
  Status AllGatherBytes(const std::string& mine, std::vector<std::string>* all, const char* what);
  // The job's store: rank 0 publishes a value under `key`, the others wait for it.
  Status StoreSet(const std::string& key, const std::string& value);
  Status StoreGet(const std::string& key, std::string* value);

 private:
  struct Impl;
  ProcessGroup(JobEnv env, std::unique_ptr<Impl> impl);
  Status Fail(const char* what, const std::exception& e) const;
  template <typename Op>
  Status InPlace(at::Tensor* tensor, const char* what, Op op);

  JobEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
