// ReadTensorFileVerifying: a checkpoint's tensor file read once, verified on the way.
//
// The manifest, not the file, says where each tensor lies (the writer recorded it), so the
// file is read front to back without libhdf5: tensors straight into their destinations,
// the metadata between them into scratch, every byte through XXH3 (on a second thread, as
// the next chunk is read). Only a file whose digest matched is then handed to libhdf5, to prove that the
// manifest's tensor list is the file's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/tensor_file.h"

namespace lockstep {
namespace {

bool SameExtent(const TensorExtent& a, const TensorExtent& b) {
  return a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes &&
         (a.bytes == 0 || a.offset == b.offset);
}

// Reads the file's bytes in order into their destinations (or scratch) and hashes them: a
// destination's bytes on the background thread while the next chunk is read, scratch
// inline (it is reused at once), after the thread has caught up, so the order holds.
class HashingReader {
 public:
  HashingReader(int fd, const std::string& path) : fd_(fd), path_(path), scratch_(new char[kChunk]) {}

  // Reads up to `offset` into scratch (the metadata between tensors), then `bytes` into
  // `dst` (scratch when null).
  Status ReadTo(uint64_t offset, uint64_t bytes, char* dst, const std::string& what) {
    LOCKSTEP_RETURN_IF_ERROR(Read(offset - at_, nullptr, "HDF5 metadata"));
    return Read(bytes, dst, what);
  }

  uint64_t at() const { return at_; }
  std::string HexDigest() { return hash_.HexDigest(); }

 private:
  // 1 MiB: few system calls and hand-offs, and still in cache when the hash reads it back.
  static constexpr uint64_t kChunk = 1 << 20;

  Status Read(uint64_t bytes, char* dst, const std::string& what) {
    for (uint64_t done = 0; done < bytes;) {
      const uint64_t n = std::min(kChunk, bytes - done);
      char* into = dst != nullptr ? dst + done : scratch_.get();
      LOCKSTEP_RETURN_IF_ERROR(ReadExactlyAt(fd_, at_, into, n, path_ + ": " + what));
      if (dst != nullptr) {
        hash_.Add(into, static_cast<size_t>(n));  // the destination stays as it is
      } else {
        hash_.Update(into, static_cast<size_t>(n));  // scratch is read into again next
      }
      at_ += n;
      done += n;
    }
    return Status::Ok();
  }

  int fd_;
  const std::string& path_;
  std::unique_ptr<char[]> scratch_;
  BackgroundXxh3 hash_;  // holds only destinations' spans: scratch is hashed in place
  uint64_t at_ = 0;
};

// Every tensor's destination, asked of `place` in the manifest's (name) order.
Status PlaceAll(const std::vector<TensorExtent>& tensors, const TensorPlacer& place, std::vector<char*>* dst) {
  dst->assign(tensors.size(), nullptr);
  for (size_t i = 0; i < tensors.size(); ++i) {
    void* p = nullptr;
    LOCKSTEP_RETURN_IF_ERROR(place(tensors[i], &p));
    (*dst)[i] = static_cast<char*>(p);
  }
  return Status::Ok();
}

Status ReadAllHashing(int fd, const std::string& path, const WrittenFile& written, const std::vector<char*>& dst,
                      std::string* hex) {
  std::vector<size_t> order;
  for (size_t i = 0; i < written.tensors.size(); ++i) {
    if (written.tensors[i].bytes > 0) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return written.tensors[a].offset < written.tensors[b].offset; });
  HashingReader reader(fd, path);
  for (const size_t i : order) {
    const TensorExtent& t = written.tensors[i];
    if (t.offset < reader.at() || t.offset + t.bytes > written.size)  // ParseManifest checks; so does this
      return Status::Corruption(path + ": the manifest places tensor '" + t.name +
                                "' outside the file or over another");
    LOCKSTEP_RETURN_IF_ERROR(reader.ReadTo(t.offset, t.bytes, dst[i], "tensor '" + t.name + "'"));
  }
  LOCKSTEP_RETURN_IF_ERROR(reader.ReadTo(written.size, 0, nullptr, "the file's end"));
  *hex = reader.HexDigest();
  return Status::Ok();
}

}  // namespace

Status ReadTensorFileVerifying(const std::string& path, const WrittenFile& written, const TensorPlacer& place) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  struct stat info;
  Status st = ::fstat(fd, &info) == 0 ? Status::Ok() : Status::IOError(path + ": cannot stat: " + std::strerror(errno));
  if (st.ok() && static_cast<uint64_t>(info.st_size) != written.size) {
    st = Status::Corruption(path + ": size " + std::to_string(info.st_size) + " but the manifest says " +
                            std::to_string(written.size));
  }
  std::vector<char*> dst;
  if (st.ok()) st = PlaceAll(written.tensors, place, &dst);
  std::string hex;
  if (st.ok()) st = ReadAllHashing(fd, path, written, dst, &hex);
  ::close(fd);
  LOCKSTEP_RETURN_IF_ERROR(st);
  if (hex != written.xxh3_128) {
    return Status::Corruption(path + ": checksum " + hex + " but the manifest says " + written.xxh3_128);
  }
  // Vouched for now: libhdf5 may parse it, and must find the tensors the manifest listed.
  std::vector<TensorExtent> actual;
  bool all_raw = true;
  LOCKSTEP_RETURN_IF_ERROR(LocateTensorExtents(path, &actual, &all_raw));
  if (!all_raw || actual.size() != written.tensors.size() ||
      !std::equal(actual.begin(), actual.end(), written.tensors.begin(), SameExtent)) {
    return Status::Corruption(path + ": the manifest's list of tensors is not what the file holds");
  }
  return Status::Ok();
}

}  // namespace lockstep
