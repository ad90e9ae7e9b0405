#include "formats/checksum.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace lockstep {
namespace {

std::string HashToHex(XXH128_hash_t h) {
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  static const char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[canon.digest[i] >> 4];
    out[2 * i + 1] = kDigits[canon.digest[i] & 0xf];
  }
  return out;
}

}  // namespace

std::string Xxh3Hex(const void* data, size_t size) {
  return HashToHex(XXH3_128bits(data, size));
}

struct Xxh3Stream::State {
  XXH3_state_t xxh;
};

Xxh3Stream::Xxh3Stream() : state_(new State) { XXH3_128bits_reset(&state_->xxh); }
Xxh3Stream::~Xxh3Stream() = default;

void Xxh3Stream::Update(const void* data, size_t size) {
  XXH3_128bits_update(&state_->xxh, data, size);
}

std::string Xxh3Stream::HexDigest() const { return HashToHex(XXH3_128bits_digest(&state_->xxh)); }

Status FileXxh3Hex(const std::string& path, std::string* hex, uint64_t* size) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  Xxh3Stream stream;
  std::vector<char> buf(256 << 10);  // stays in L2 between the read and the hash
  uint64_t total = 0;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    stream.Update(buf.data(), n);
    total += n;
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::IOError(path + ": read error");
  *hex = stream.HexDigest();
  if (size != nullptr) *size = total;
  return Status::Ok();
}

}  // namespace lockstep
