#include "formats/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lockstep {
namespace {

IoHook* g_hook = nullptr;

// Runs `call` (which returns -1 and sets errno on failure) unless the hook fails it first.
template <typename Call>
int Hooked(IoOp op, const std::string& path, Call call) {
  if (g_hook != nullptr) {
    if (const int err = g_hook->Before(op, path)) {
      errno = err;
      return -1;
    }
  }
  const int rc = call();
  if (rc >= 0 && g_hook != nullptr) {
    const int saved = errno;
    g_hook->After(op, path);
    errno = saved;
  }
  return rc;
}

}  // namespace

const char* IoOpName(IoOp op) {
  switch (op) {
    case IoOp::kCreate:
      return "create";
    case IoOp::kWrite:
      return "write";
    case IoOp::kFsync:
      return "fsync";
    case IoOp::kTruncate:
      return "truncate";
    case IoOp::kRename:
      return "rename";
    case IoOp::kMkdir:
      return "mkdir";
    case IoOp::kRemove:
      return "remove";
  }
  return "?";
}

void SetIoHook(IoHook* hook) { g_hook = hook; }

namespace io {

Status ErrnoStatus(const std::string& path, const std::string& what) {
  const int err = errno;
  std::string msg = path + ": " + what + ": " + std::strerror(err);
  return err == ENOENT ? Status::NotFound(msg) : Status::IOError(msg);
}

Status Create(const std::string& path, int* fd) {
  *fd =
      Hooked(IoOp::kCreate, path, [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); });
  return *fd >= 0 ? Status::Ok() : ErrnoStatus(path, "cannot create");
}

Status OpenOrCreate(const std::string& path, int* fd) {
  *fd = Hooked(IoOp::kCreate, path, [&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644); });
  return *fd >= 0 ? Status::Ok() : ErrnoStatus(path, "cannot open or create");
}

// One hooked call for the whole buffer: a fault lands before any byte of it, and the
// retries of a short write are the same call.
Status Write(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  const int rc = Hooked(IoOp::kWrite, path, [&] {
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, p + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -1;
      done += static_cast<size_t>(n);
    }
    return 0;
  });
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "write failed");
}

Status Fsync(int fd, const std::string& path) {
  const int rc = Hooked(IoOp::kFsync, path, [&] { return ::fsync(fd); });
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "fsync failed");
}

Status Truncate(int fd, uint64_t size, const std::string& path) {
  const int rc = Hooked(IoOp::kTruncate, path, [&] { return ::ftruncate(fd, static_cast<off_t>(size)); });
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "cannot truncate to " + std::to_string(size) + " bytes");
}

Status Rename(const std::string& from, const std::string& to) {
  const int rc = Hooked(IoOp::kRename, to, [&] { return ::rename(from.c_str(), to.c_str()); });
  return rc == 0 ? Status::Ok() : ErrnoStatus(from, "cannot rename to " + to);
}

Status Exchange(const std::string& a, const std::string& b) {
  const int rc = Hooked(IoOp::kRename, b, [&] {
#ifdef SYS_renameat2
    constexpr unsigned kRenameExchange = 1u << 1;
    return static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), kRenameExchange));
#else
    errno = ENOSYS;
    return -1;
#endif
  });
  return rc == 0 ? Status::Ok() : ErrnoStatus(b, "cannot be replaced atomically by " + a);
}

Status Mkdir(const std::string& path) {
  const int rc = Hooked(IoOp::kMkdir, path, [&] { return ::mkdir(path.c_str(), 0755); });
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "cannot create the directory");
}

Status Remove(const std::string& path, bool is_directory) {
  const int rc = Hooked(IoOp::kRemove, path, [&] {
    const int r = is_directory ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
    return r != 0 && errno == ENOENT ? 0 : r;
  });
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "cannot remove");
}

}  // namespace io
}  // namespace lockstep
