#include "trainer/distributed.h"

#include <torch/torch.h>

// Which process groups this build has (trainer/CMakeLists.txt decides, from its LibTorch).
#ifndef LOCKSTEP_NO_GLOO
#define USE_C10D_GLOO 1  // the header is guarded; LibTorch itself was built with Gloo
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef LOCKSTEP_WITH_NCCL
#define USE_C10D_NCCL 1  // likewise: LibTorch was built with NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#if !defined(LOCKSTEP_NO_GLOO) || defined(LOCKSTEP_WITH_NCCL)
#define LOCKSTEP_HAS_PROCESS_GROUP 1
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <cstdlib>

namespace lockstep {
namespace {

[[maybe_unused]] bool IsLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

}  // namespace

std::string DataParallelUnavailable(bool cuda) {
#ifdef LOCKSTEP_WITH_NCCL
  if (cuda) return "";
#endif
#ifdef LOCKSTEP_NO_GLOO
  return std::string("this build's LibTorch ") + TORCH_VERSION + " has Gloo built in but no headers for it" +
         (cuda ? " and no NCCL, so it runs no data-parallel job"
               : ", so it runs no data-parallel job on CPU (a CUDA job uses NCCL where LibTorch has it)") +
         "; build against Debian's LibTorch (scripts/build.sh) for CPU jobs";
#else
  (void)cuda;
  return "";
#endif
}

#ifndef LOCKSTEP_HAS_PROCESS_GROUP
// Built without a process group (trainer/CMakeLists.txt): one process only.
struct ProcessGroup::Impl {};
#else
struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
#ifndef LOCKSTEP_NO_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef LOCKSTEP_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  // Runs `op` on the job's group: whichever of the two this build and this job have.
  template <typename Op>
  auto Run(Op op) {
#ifdef LOCKSTEP_WITH_NCCL
    if (nccl) return op(nccl.get());
#endif
#ifndef LOCKSTEP_NO_GLOO
    return op(gloo.get());
#else
    TORCH_CHECK(nccl, "no process group");  // Connect refuses a job this build has none for
    return op(nccl.get());
#endif
  }
  // Where the collectives' tensors live: NCCL's on this rank's GPU, Gloo's in host memory.
  torch::Device device() const {
#ifdef LOCKSTEP_WITH_NCCL
    if (nccl) return torch::Device(torch::kCUDA, c10::cuda::current_device());
#endif
    return torch::Device(torch::kCPU);
  }
};
#endif

ProcessGroup::ProcessGroup(JobEnv env, std::unique_ptr<Impl> impl) : env_(std::move(env)), impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

#ifndef LOCKSTEP_HAS_PROCESS_GROUP
Status ProcessGroup::Connect(const JobEnv& env, bool cuda, std::chrono::milliseconds, std::unique_ptr<ProcessGroup>*) {
  return Status::InvalidArgument("WORLD_SIZE=" + std::to_string(env.world_size) + ": " + DataParallelUnavailable(cuda));
}
const char* ProcessGroup::backend() const { return "none"; }
Status ProcessGroup::Fail(const char* what, const std::exception& e) const {
  return Status::IOError(std::string(what) + ": " + e.what());
}
Status ProcessGroup::AllReduceSum(at::Tensor*, const char*) { return Status::Ok(); }
Status ProcessGroup::Broadcast(at::Tensor*, const char*) { return Status::Ok(); }
Status ProcessGroup::Barrier(const char*) { return Status::Ok(); }
Status ProcessGroup::AllGather(const at::Tensor& mine, std::vector<at::Tensor>* all, const char*) {
  *all = {mine};
  return Status::Ok();
}
Status ProcessGroup::AllGatherBytes(const std::string& mine, std::vector<std::string>* all, const char*) {
  *all = {mine};
  return Status::Ok();
}
Status ProcessGroup::StoreSet(const std::string&, const std::string&) { return Status::Ok(); }
Status ProcessGroup::StoreGet(const std::string&, std::string*) { return Status::Ok(); }
#else
Status ProcessGroup::Connect(const JobEnv& env, bool cuda, std::chrono::milliseconds timeout,
                             std::unique_ptr<ProcessGroup>* out) {
  if (const std::string why = DataParallelUnavailable(cuda); !why.empty()) {
    return Status::InvalidArgument("WORLD_SIZE=" + std::to_string(env.world_size) + ": " + why);
  }
  auto impl = std::make_unique<Impl>();
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(env.master_port);
    store_options.isServer = env.rank == 0;
    store_options.numWorkers = static_cast<size_t>(env.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
    bool connected = false;
#ifdef LOCKSTEP_WITH_NCCL
    if (cuda) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      impl->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, static_cast<int>(env.rank),
                                                               static_cast<int>(env.world_size), options);
      connected = true;
    }
#endif
#ifndef LOCKSTEP_NO_GLOO
    if (!connected) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (IsLoopback(env.master_addr)) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      options->threads = 1;
      impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, static_cast<int>(env.rank),
                                                               static_cast<int>(env.world_size), options);
    }
#endif
    (void)connected;
  } catch (const std::exception& e) {
    return Status::IOError("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                           ": cannot join the job at " + env.master_addr + ":" + std::to_string(env.master_port) +
                           ": " + e.what());
  }
  out->reset(new ProcessGroup(env, std::move(impl)));
  return Status::Ok();
}

const char* ProcessGroup::backend() const {
#ifdef LOCKSTEP_WITH_NCCL
  if (impl_->nccl) return "nccl";
#endif
  return "gloo";
}

Status ProcessGroup::Fail(const char* what, const std::exception& e) const {
  std::string why = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) why = c10->what_without_backtrace();
  return Status::IOError("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + ": " + what +
                         " failed (a peer rank died or timed out): " + why);
}

// Runs the in-place collective `op` on `tensor`, through a copy where the group's tensors
// live elsewhere (Gloo works on host memory; NCCL on this rank's GPU).
template <typename Op>
Status ProcessGroup::InPlace(at::Tensor* tensor, const char* what, Op op) {
  try {
    const bool staged = tensor->device() != impl_->device();
    std::vector<at::Tensor> tensors = {staged ? tensor->to(impl_->device()) : *tensor};
    impl_->Run([&](auto* g) { return op(g, tensors); })->wait();
    if (staged) tensor->copy_(tensors[0]);
  } catch (const std::exception& e) {
    return Fail(what, e);
  }
  return Status::Ok();
}

Status ProcessGroup::AllReduceSum(at::Tensor* tensor, const char* what) {
  return InPlace(tensor, what, [](auto* g, std::vector<at::Tensor>& t) { return g->allreduce(t); });
}

Status ProcessGroup::Broadcast(at::Tensor* tensor, const char* what) {
  return InPlace(tensor, what, [](auto* g, std::vector<at::Tensor>& t) { return g->broadcast(t); });
}

Status ProcessGroup::Barrier(const char* what) {
  try {
    impl_->Run([](auto* g) { return g->barrier(); })->wait();
  } catch (const std::exception& e) {
    return Fail(what, e);
  }
  return Status::Ok();
}

Status ProcessGroup::AllGather(const at::Tensor& mine, std::vector<at::Tensor>* all, const char* what) {
  try {
    const torch::Device device = impl_->device();
    std::vector<at::Tensor> input = {mine.to(device).contiguous()};
    std::vector<std::vector<at::Tensor> > gathered(1);
    for (int64_t r = 0; r < env_.world_size; ++r) gathered[0].push_back(torch::empty_like(input[0]));
    impl_->Run([&](auto* g) { return g->allgather(gathered, input); })->wait();
    all->clear();
    for (auto& t : gathered[0]) all->push_back(t.to(mine.device()));
  } catch (const std::exception& e) {
    return Fail(what, e);
  }
  return Status::Ok();
}

Status ProcessGroup::AllGatherBytes(const std::string& mine, std::vector<std::string>* all, const char* what) {
  try {
    // Collectives gather equal sizes: the longest length first, then every rank's bytes padded.
    const torch::Device device = impl_->device();
    std::vector<at::Tensor> size = {torch::tensor({static_cast<int64_t>(mine.size())}, torch::kInt64).to(device)};
    std::vector<std::vector<at::Tensor> > sizes(1);
    for (int64_t r = 0; r < env_.world_size; ++r) sizes[0].push_back(torch::empty_like(size[0]));
    impl_->Run([&](auto* g) { return g->allgather(sizes, size); })->wait();
    int64_t longest = 0;
    for (const auto& s : sizes[0]) longest = std::max(longest, s.item<int64_t>());
    at::Tensor host = torch::zeros({std::max<int64_t>(longest, 1)}, torch::kUInt8);
    std::memcpy(host.data_ptr(), mine.data(), mine.size());
    std::vector<at::Tensor> bytes = {host.to(device)};
    std::vector<std::vector<at::Tensor> > gathered(1);
    for (int64_t r = 0; r < env_.world_size; ++r) gathered[0].push_back(torch::empty_like(bytes[0]));
    impl_->Run([&](auto* g) { return g->allgather(gathered, bytes); })->wait();
    all->clear();
    for (int64_t r = 0; r < env_.world_size; ++r) {
      const at::Tensor got = gathered[0][static_cast<size_t>(r)].cpu();
      all->emplace_back(static_cast<const char*>(got.data_ptr()),
                        static_cast<size_t>(sizes[0][static_cast<size_t>(r)].item<int64_t>()));
    }
  } catch (const std::exception& e) {
    return Fail(what, e);
  }
  return Status::Ok();
}

Status ProcessGroup::StoreSet(const std::string& key, const std::string& value) {
  try {
    impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  } catch (const std::exception& e) {
    return Fail("publishing a value to the job's store", e);
  }
  return Status::Ok();
}

Status ProcessGroup::StoreGet(const std::string& key, std::string* value) {
  try {
    const std::vector<uint8_t> v = impl_->store->get(key);  // waits up to the store's timeout
    value->assign(v.begin(), v.end());
  } catch (const std::exception& e) {
    return Fail("waiting for rank 0's value in the job's store", e);
  }
  return Status::Ok();
}

#endif  // LOCKSTEP_HAS_PROCESS_GROUP

}  // namespace lockstep
