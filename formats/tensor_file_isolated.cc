// ReadUntrustedTensorFile and LocateUntrustedTensorFile: libhdf5 parses the file in a forked
// child, which sends the tensors (or only where they lie) back through a pipe as
//   'T' name_len:u32 name dtype:u8 rank:u32 dims:i64[rank] nbytes:u64 bytes   (per tensor)
//   'X' name_len:u32 name dtype:u8 rank:u32 dims:i64[rank] offset:u64 nbytes:u64  (per extent)
//   'R' raw:u8                     (extents: whether every tensor is stored raw)
//   'E' message_len:u32 message    (the reader's Status message)   or   'D'   (done)
// A child that dies (a signal, or a sanitizer's exit) leaves no 'D' or 'E': Corruption.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "formats/io.h"
#include "formats/tensor_file.h"

namespace lockstep {
namespace {

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// kind, name, dtype and shape: the head of a 'T' or 'X' record.
std::string Head(char kind, const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  std::string head(1, kind);
  Put<uint32_t>(&head, static_cast<uint32_t>(name.size()));
  head += name;
  Put<uint8_t>(&head, static_cast<uint8_t>(dtype));
  Put<uint32_t>(&head, static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) Put<int64_t>(&head, d);
  return head;
}

[[noreturn]] void ExitWithStatus(int fd, const Status& st) {
  std::string tail = st.ok() ? "D" : "E";
  if (!st.ok()) {
    Put<uint32_t>(&tail, static_cast<uint32_t>(st.message().size()));
    tail += st.message();
  }
  ::_exit(WriteAll(fd, tail) ? 0 : 3);
}

[[noreturn]] void ChildRead(const std::string& path, int fd) {
  std::vector<TensorData> tensors;
  const Status st = ReadTensorFile(path, &tensors);
  for (const auto& t : tensors) {
    std::string head = Head('T', t.name, t.dtype, t.shape);
    Put<uint64_t>(&head, t.bytes.size());
    if (!WriteAll(fd, head) || !WriteAll(fd, std::string(t.bytes.begin(), t.bytes.end()))) ::_exit(3);
  }
  ExitWithStatus(fd, st);
}

[[noreturn]] void ChildLocate(const std::string& path, int fd) {
  std::vector<TensorExtent> extents;
  bool raw = true;
  const Status st = LocateTensorExtents(path, &extents, &raw);
  std::string out;
  for (const auto& e : extents) {
    out += Head('X', e.name, e.dtype, e.shape);
    Put<uint64_t>(&out, e.offset);
    Put<uint64_t>(&out, e.bytes);
  }
  out += 'R';
  Put<uint8_t>(&out, raw ? 1 : 0);
  if (!WriteAll(fd, out)) ::_exit(3);
  ExitWithStatus(fd, st);
}

// Reads the child's stream; false when it ends early or is malformed.
class Reader {
 public:
  explicit Reader(const std::string& data) : data_(data) {}
  template <typename T>
  bool Get(T* value) {
    if (data_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Bytes(uint64_t n, std::string* out) {
    if (data_.size() - pos_ < n) return false;
    out->assign(data_, pos_, n);
    pos_ += n;
    return true;
  }

 private:
  const std::string& data_;
  size_t pos_ = 0;
};

// What the child sent, parsed.
struct ChildOutput {
  std::vector<TensorData> tensors;
  std::vector<TensorExtent> extents;
  bool raw = true;
};

// Parses the stream into `*out`; the reader's own Status, or Corruption if it ended early.
Status ParseStream(const std::string& data, const std::string& path, ChildOutput* out) {
  Reader in(data);
  char kind;
  while (in.Get(&kind)) {
    uint32_t n = 0;
    std::string text;
    if (kind == 'D') return Status::Ok();
    if (kind == 'E') return in.Get(&n) && in.Bytes(n, &text) ? Status::Corruption(text) : Status::Corruption(path);
    if (kind == 'R') {
      uint8_t raw = 0;
      if (!in.Get(&raw)) break;
      out->raw = raw != 0;
      continue;
    }
    TensorData t;
    uint8_t dtype;
    uint32_t rank;
    uint64_t nbytes, offset = 0;
    if ((kind != 'T' && kind != 'X') || !in.Get(&n) || !in.Bytes(n, &t.name) || !in.Get(&dtype) || !in.Get(&rank))
      break;
    t.dtype = static_cast<DType>(dtype);
    t.shape.resize(rank);
    for (auto& d : t.shape)
      if (!in.Get(&d)) return Status::Corruption(path);
    if (kind == 'X') {
      if (!in.Get(&offset) || !in.Get(&nbytes)) break;
      out->extents.push_back({t.name, t.dtype, t.shape, offset, nbytes});
      continue;
    }
    if (!in.Get(&nbytes) || !in.Bytes(nbytes, &text)) break;
    t.bytes.assign(text.begin(), text.end());
    out->tensors.push_back(std::move(t));
  }
  return Status::Corruption(path + ": the reader stopped before the end");
}

// Runs `child_body(path, write_fd)` in a forked child and parses what it sends.
Status RunIsolated(const std::string& path, void (*child_body)(const std::string&, int), ChildOutput* out) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return io::ErrnoStatus(path, "cannot make a pipe");
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return io::ErrnoStatus(path, "cannot fork a reader");
  }
  if (child == 0) {
    ::close(fds[0]);
    child_body(path, fds[1]);
    ::_exit(3);
  }
  ::close(fds[1]);
  std::string data;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ParseStream(data, path, out);
  const std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                              : "exit code " + std::to_string(WEXITSTATUS(status));
  return Status::Corruption(path + ": libhdf5 crashed reading this file (" + how +
                            "): it is damaged or hostile, and was read in a separate process");
}

}  // namespace

Status ReadUntrustedTensorFile(const std::string& path, std::vector<TensorData>* tensors) {
  tensors->clear();
  ChildOutput out;
  LOCKSTEP_RETURN_IF_ERROR(RunIsolated(path, ChildRead, &out));
  *tensors = std::move(out.tensors);
  return Status::Ok();
}

Status LocateUntrustedTensorFile(const std::string& path, std::vector<TensorExtent>* extents, bool* all_raw) {
  extents->clear();
  ChildOutput out;
  LOCKSTEP_RETURN_IF_ERROR(RunIsolated(path, ChildLocate, &out));
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return io::ErrnoStatus(path, "cannot stat");
  const uint64_t size = static_cast<uint64_t>(info.st_size);
  for (const auto& e : out.extents) {  // the child's word is checked, never trusted
    if (e.bytes > 0 && (e.offset > size || e.bytes > size - e.offset)) {
      return Status::Corruption(path + ": tensor '" + e.name + "' lies past the end of the file");
    }
    TensorData shape_only;
    shape_only.shape = e.shape;
    if (DTypeSize(e.dtype) == 0 || shape_only.numel() < 0 ||
        static_cast<uint64_t>(shape_only.numel()) * DTypeSize(e.dtype) != e.bytes) {
      return Status::Corruption(path + ": tensor '" + e.name + "': dtype, shape and size disagree");
    }
  }
  *extents = std::move(out.extents);
  *all_raw = out.raw;
  return Status::Ok();
}

}  // namespace lockstep
