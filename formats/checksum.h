// Fast content checksums (XXH3-128) for manifests and RNG-state digests.
// XXH3 runs at memory bandwidth, so verifying a checkpoint costs about as much as reading it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "formats/status.h"

namespace lockstep {

// The 32-hex-digit XXH3-128 digest of `size` bytes at `data`.
std::string Xxh3Hex(const void* data, size_t size);

// The CRC-32 zip archives record (torch.save files), continued from `crc` over `data`;
// start from 0. libdeflate's, with carry-less multiplication where the CPU has it.
uint32_t Crc32(uint32_t crc, const void* data, size_t size);

// Streaming digest for data that does not fit in memory at once. Uses the AVX2 build of
// XXH3 where the CPU has it; the digest is the same either way.
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

// An Xxh3Stream fed on a thread of its own, so that hashing a chunk overlaps the I/O of the
// next (a checkpoint written or read once, hashed on the way). Spans are hashed in the order
// given.
class BackgroundXxh3 {
 public:
  BackgroundXxh3();
  ~BackgroundXxh3();  // hashes what is queued, then stops the thread
  BackgroundXxh3(const BackgroundXxh3&) = delete;
  BackgroundXxh3& operator=(const BackgroundXxh3&) = delete;

  // Queues `size` bytes at `data`, which must stay unchanged until HexDigest, Update or
  // the destructor returns.
  void Add(const void* data, size_t size);
  // Hashes `data` here, after everything queued: for bytes in a buffer about to be reused.
  void Update(const void* data, size_t size);
  std::string HexDigest();  // of everything added so far, once it is hashed

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Called with the number of bytes just read, as a long read goes on.
using ByteProgress = std::function<void(uint64_t bytes)>;

// Reads the open file `fd` from its current offset into `stream`, up to `limit` bytes
// (UINT64_MAX: to the end), in 256 KiB chunks. `*read` gets the bytes read, which is less
// than `limit` when the file ends first; `progress` hears of every chunk. `path` names the
// file in errors.
Status Xxh3Fd(int fd, const std::string& path, uint64_t limit, Xxh3Stream* stream, uint64_t* read,
              const ByteProgress& progress = {});

// Streams the file at `path` through XXH3-128. On success stores the hex digest and the
// number of bytes read in `*hex` and `*size` (size may be null). `progress`, when set,
// hears of every chunk (256 KiB) as it is read.
Status FileXxh3Hex(const std::string& path, std::string* hex, uint64_t* size = nullptr,
                   const ByteProgress& progress = {});

}  // namespace lockstep
