#include "formats/run_lock.h"

#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <nlohmann/json.hpp>

#include "formats/file_util.h"
#include "formats/io.h"
#include "formats/json_file.h"

namespace lockstep {
namespace {

std::string HostName() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) return "unknown host";
  return host;
}

std::string UtcNow() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "PID 1234 on host-a (lockstep train, since 2026-11-23T12:00:00Z)", from the lock file.
std::string DescribeHolder(int fd) {
  std::string text(4096, '\0');
  const ssize_t n = ::pread(fd, &text[0], text.size(), 0);
  nlohmann::json holder;
  if (n <= 0 || !ParseJson(text.substr(0, static_cast<size_t>(n)), "lock", &holder).ok() || !holder.is_object()) {
    return "another process (its details are not written yet)";
  }
  const auto field = [&](const char* key) {
    const auto it = holder.find(key);
    return it == holder.end() ? std::string("?") : it->is_string() ? it->get<std::string>() : it->dump();
  };
  return "PID " + field("pid") + " on " + field("host") + " (" + field("command") + ", since " + field("since") + ")";
}

}  // namespace

Status RunLock::Acquire(const std::string& dir, const std::string& command, std::unique_ptr<RunLock>* out) {
  LOCKSTEP_RETURN_IF_ERROR(MakeDirs(dir));
  const std::string path = dir + "/" + kRunLockFile;
  int fd = -1;
  LOCKSTEP_RETURN_IF_ERROR(io::OpenOrCreate(path, &fd));
  std::unique_ptr<RunLock> lock(new RunLock(fd));
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return io::ErrnoStatus(path, "cannot take the run lock");
    return Status::Busy(dir + " is in use by " + DescribeHolder(fd) +
                        "; one process writes a run directory at a time: wait for it to finish, "
                        "or choose another --output_dir");
  }
  const nlohmann::json holder = {
      {"pid", static_cast<int64_t>(::getpid())}, {"host", HostName()}, {"command", command}, {"since", UtcNow()}};
  const std::string text = DumpJson(holder) + "\n";
  LOCKSTEP_RETURN_IF_ERROR(io::Truncate(fd, 0, path));
  if (::lseek(fd, 0, SEEK_SET) != 0) return io::ErrnoStatus(path, "cannot seek");
  LOCKSTEP_RETURN_IF_ERROR(io::Write(fd, text.data(), text.size(), path));
  *out = std::move(lock);
  return Status::Ok();
}

RunLock::~RunLock() { ::close(fd_); }  // closing the last descriptor releases the flock

}  // namespace lockstep
