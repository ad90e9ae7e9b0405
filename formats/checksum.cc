#include "formats/checksum.h"

#include <libdeflate.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "formats/xxh3_avx2.h"

namespace lockstep {
namespace {

// Streaming updates go through the AVX2 build where the CPU has it (x86-64 builds only).
bool HaveAvx2() {
#if defined(LOCKSTEP_HAVE_XXH3_AVX2)
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
#else
  return false;
#endif
}

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

std::string Xxh3Hex(const void* data, size_t size) { return HashToHex(XXH3_128bits(data, size)); }

struct Xxh3Stream::State {
  XXH3_state_t xxh;
};

Xxh3Stream::Xxh3Stream() : state_(new State) { XXH3_128bits_reset(&state_->xxh); }
Xxh3Stream::~Xxh3Stream() = default;

void Xxh3Stream::Update(const void* data, size_t size) {
#if defined(LOCKSTEP_HAVE_XXH3_AVX2)
  if (HaveAvx2()) return internal::Xxh3Avx2Update128(&state_->xxh, data, size);
#endif
  XXH3_128bits_update(&state_->xxh, data, size);
}

std::string Xxh3Stream::HexDigest() const { return HashToHex(XXH3_128bits_digest(&state_->xxh)); }

struct BackgroundXxh3::State {
  Xxh3Stream hash;  // the thread's while spans are queued or in hand; the caller's after Drain
  std::mutex mu;
  std::condition_variable wake, idle;
  std::deque<std::pair<const void*, size_t>> spans;
  bool busy = false, stop = false;
  std::thread thread;  // started by the first Add: a file of small pieces never needs it

  void Run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      wake.wait(lock, [this] { return stop || !spans.empty(); });
      if (spans.empty()) return;  // stopped, and nothing left
      const auto [data, size] = spans.front();
      spans.pop_front();
      busy = true;
      lock.unlock();
      hash.Update(data, size);
      lock.lock();
      busy = false;
      if (spans.empty()) idle.notify_all();
    }
  }

  void Drain() {
    std::unique_lock<std::mutex> lock(mu);
    idle.wait(lock, [this] { return spans.empty() && !busy; });
  }
};

BackgroundXxh3::BackgroundXxh3() : state_(new State) {}

BackgroundXxh3::~BackgroundXxh3() {
  if (!state_->thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->wake.notify_all();
  state_->thread.join();
}

void BackgroundXxh3::Add(const void* data, size_t size) {
  if (!state_->thread.joinable()) state_->thread = std::thread([state = state_.get()] { state->Run(); });
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->spans.emplace_back(data, size);
  }
  state_->wake.notify_all();
}

void BackgroundXxh3::Update(const void* data, size_t size) {
  state_->Drain();
  state_->hash.Update(data, size);
}

std::string BackgroundXxh3::HexDigest() {
  state_->Drain();
  return state_->hash.HexDigest();
}

Status Xxh3Fd(int fd, const std::string& path, uint64_t limit, Xxh3Stream* stream, uint64_t* read,
              const ByteProgress& progress) {
  // 256 KiB stays in L2 between the read and the hash. Left uninitialised: zeroing it
  // cost as much as hashing a small file.
  constexpr size_t kChunk = 256 << 10;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  *read = 0;
  while (*read < limit) {
    const ssize_t n = ::read(fd, buf.get(), static_cast<size_t>(std::min<uint64_t>(kChunk, limit - *read)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Status::IOError(path + ": read error after " + std::to_string(*read) + " bytes: " + std::strerror(errno));
    }
    if (n == 0) break;
    stream->Update(buf.get(), static_cast<size_t>(n));
    *read += static_cast<uint64_t>(n);
    if (progress) progress(static_cast<uint64_t>(n));
  }
  return Status::Ok();
}

Status FileXxh3Hex(const std::string& path, std::string* hex, uint64_t* size, const ByteProgress& progress) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // cold files: read ahead further
  Xxh3Stream stream;
  uint64_t total = 0;
  const Status st = Xxh3Fd(fd, path, UINT64_MAX, &stream, &total, progress);
  ::close(fd);
  LOCKSTEP_RETURN_IF_ERROR(st);
  *hex = stream.HexDigest();
  if (size != nullptr) *size = total;
  return Status::Ok();
}

uint32_t Crc32(uint32_t crc, const void* data, size_t size) { return libdeflate_crc32(crc, data, size); }

}  // namespace lockstep
