// libFuzzer: Lockstep's HDF5 tensor files as untrusted bytes reach them: through
// ReadUntrustedTensorFile, which lets libhdf5 parse in a forked child.
//
// libhdf5 1.10.8 is not safe on hostile bytes (this target found a heap-buffer-overflow
// in H5O__msg_iterate_real, reached from H5Aexists, on a malformed object header:
// tests/fixtures/hostile/hdf5_heap_overflow.h5). What this target checks is Lockstep's
// contract: whatever libhdf5 does in the child, the caller gets a Status and goes on.
// Inputs on which the child died are counted and reported when the fuzzer exits.
// (The child's own sanitizer reports of libhdf5's faults go to stderr.)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "formats/tensor_file.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

long g_children_died = 0;

void Report() {
  std::fprintf(stderr,
               "tensor_file_fuzz: libhdf5 died in the isolated reader on %ld inputs, each "
               "reported as Corruption\n",
               g_children_died);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool registered = (std::atexit(Report), true);
  (void)registered;
  const std::string path = lockstep::fuzz::WriteInput(data, size, "model.h5");
  std::vector<lockstep::TensorData> tensors;
  const lockstep::Status st = lockstep::ReadUntrustedTensorFile(path, &tensors);
  if (!st.ok() && st.message().find("libhdf5 crashed") != std::string::npos) ++g_children_died;
  return 0;
}
