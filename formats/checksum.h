// Fast content checksums (XXH3-128) for manifests and RNG-state digests.
// XXH3 runs at memory bandwidth, so verifying a checkpoint costs about as much as reading it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "formats/status.h"

namespace lockstep {

// The 32-hex-digit XXH3-128 digest of `size` bytes at `data`.
std::string Xxh3Hex(const void* data, size_t size);

// Streaming digest for data that does not fit in memory at once.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;

  void Update(const void* data, size_t size);
  std::string HexDigest() const;  // digest of everything fed so far

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Streams the file at `path` through XXH3-128. On success stores the hex digest and the
// number of bytes read in `*hex` and `*size` (size may be null).
Status FileXxh3Hex(const std::string& path, std::string* hex, uint64_t* size = nullptr);

}  // namespace lockstep
