// Shared by the libFuzzer targets: the readers under test take paths, as Lockstep uses
// them, so each input is written to a file on tmpfs (/dev/shm) first. Every target must
// return normally on any input: a Status error is the expected outcome, a crash is a bug.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/file_util.h"

namespace lockstep {
namespace fuzz {

// A per-process scratch directory, made once.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const std::string d = "/dev/shm/lockstep-fuzz-" + std::to_string(::getpid());
    (void)RemoveTree(d);
    (void)MakeDirs(d);
    return d;
  }();
  return dir;
}

// Writes the fuzzer's bytes to `name` in the scratch directory; returns its path.
inline std::string WriteInput(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = ScratchDir() + "/" + name;
  (void)WriteFileDurably(path, std::string(reinterpret_cast<const char*>(data), size));
  return path;
}

}  // namespace fuzz
}  // namespace lockstep
