// ReadUntrustedTensorFile: libhdf5 parses the file in a forked child, which sends the
// tensors back through a pipe as
//   'T' name_len:u32 name dtype:u8 rank:u32 dims:i64[rank] nbytes:u64 bytes   (per tensor)
//   'E' message_len:u32 message    (the reader's Status message)   or   'D'   (done)
// A child that dies (a signal, or a sanitizer's exit) leaves no 'D' or 'E': Corruption.
#include <fcntl.h>
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

[[noreturn]] void ChildRead(const std::string& path, int fd) {
  std::vector<TensorData> tensors;
  const Status st = ReadTensorFile(path, &tensors);
  for (const auto& t : tensors) {
    std::string head = "T";
    Put<uint32_t>(&head, static_cast<uint32_t>(t.name.size()));
    head += t.name;
    Put<uint8_t>(&head, static_cast<uint8_t>(t.dtype));
    Put<uint32_t>(&head, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) Put<int64_t>(&head, d);
    Put<uint64_t>(&head, t.bytes.size());
    if (!WriteAll(fd, head) || !WriteAll(fd, std::string(t.bytes.begin(), t.bytes.end()))) ::_exit(3);
  }
  std::string tail = st.ok() ? "D" : "E";
  if (!st.ok()) {
    Put<uint32_t>(&tail, static_cast<uint32_t>(st.message().size()));
    tail += st.message();
  }
  ::_exit(WriteAll(fd, tail) ? 0 : 3);
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

// Parses the stream into `*tensors`; the reader's own Status, or Corruption if it ended early.
Status ParseStream(const std::string& data, const std::string& path, std::vector<TensorData>* tensors) {
  Reader in(data);
  char kind;
  while (in.Get(&kind)) {
    uint32_t n = 0;
    std::string text;
    if (kind == 'D') return Status::Ok();
    if (kind == 'E') return in.Get(&n) && in.Bytes(n, &text) ? Status::Corruption(text) : Status::Corruption(path);
    TensorData t;
    uint8_t dtype;
    uint32_t rank;
    uint64_t nbytes;
    if (kind != 'T' || !in.Get(&n) || !in.Bytes(n, &t.name) || !in.Get(&dtype) || !in.Get(&rank)) break;
    t.dtype = static_cast<DType>(dtype);
    t.shape.resize(rank);
    for (auto& d : t.shape) if (!in.Get(&d)) return Status::Corruption(path);
    if (!in.Get(&nbytes) || !in.Bytes(nbytes, &text)) break;
    t.bytes.assign(text.begin(), text.end());
    tensors->push_back(std::move(t));
  }
  return Status::Corruption(path + ": the reader stopped before the end");
}

}  // namespace

Status ReadUntrustedTensorFile(const std::string& path, std::vector<TensorData>* tensors) {
  tensors->clear();
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
    ChildRead(path, fds[1]);
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
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ParseStream(data, path, tensors);
  tensors->clear();  // the child did not finish: what it sent is incomplete
  const std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                              : "exit code " + std::to_string(WEXITSTATUS(status));
  return Status::Corruption(path + ": libhdf5 crashed reading this file (" + how +
                            "): it is damaged or hostile, and was read in a separate process");
}

}  // namespace lockstep
