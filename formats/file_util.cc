#include "formats/file_util.h"

#include "formats/io.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace lockstep {
using io::ErrnoStatus;

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

bool IsDirectory(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::vector<std::string> FilesBelow(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) out.push_back(fs::relative(it->path(), dir, fec).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool HasSuffix(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status CheckInputPath(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) == 0) return Status::Ok();
  const int e = errno;
  switch (e) {
    case ENOENT:
      return Status::NotFound(path + ": no such file or directory");
    case ENOTDIR:
      return Status::NotFound(path + ": a component of the path is not a directory");
    case ELOOP:
      return Status::InvalidArgument(path + ": a loop of symbolic links (they never reach a file)");
    default:
      return Status::IOError(path + ": cannot look at it: " + std::strerror(e));
  }
}

Status ReadFileRange(const std::string& path, uint64_t offset, uint64_t n, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  out->assign(static_cast<size_t>(n), '\0');
  const Status st = n == 0 ? Status::Ok() : ReadExactlyAt(fd, offset, &(*out)[0], n, path);
  ::close(fd);
  return st;
}

Status ReadFileToString(const std::string& path, std::string* out, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, "cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return ErrnoStatus(path, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Status::Corruption(path + ": file is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                              std::to_string(max_bytes));
  }
  out->assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(fd, &(*out)[done], out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done != out->size()) return Status::IOError(path + ": short read");
  return Status::Ok();
}

Status ReadExactlyAt(int fd, uint64_t offset, void* dst, uint64_t size, const std::string& where) {
  for (uint64_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd, static_cast<char*>(dst) + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IOError(where + ": read failed: " + std::strerror(errno));
    if (n == 0) return Status::Corruption(where + ": the file ends early (truncated)");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

std::string ExecutableDirectory() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  const std::string exe(path, static_cast<size_t>(n));
  const size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "." : exe.substr(0, slash);
}

Status WriteFileDurably(const std::string& path, const std::string& data) {
  int fd = -1;
  LOCKSTEP_RETURN_IF_ERROR(io::Create(path, &fd));
  Status st = io::Write(fd, data.data(), data.size(), path);
  if (st.ok()) st = io::Fsync(fd, path);
  if (::close(fd) != 0 && st.ok()) st = ErrnoStatus(path, "close failed");
  return st;
}

Status FsyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, "cannot open for fsync");
  Status st = io::Fsync(fd, path);
  ::close(fd);
  return st;
}

Status RenameDurably(const std::string& from, const std::string& to) {
  LOCKSTEP_RETURN_IF_ERROR(io::Rename(from, to));
  std::string parent = std::filesystem::path(to).parent_path().string();
  return FsyncPath(parent.empty() ? "." : parent);
}

Status MakeDirs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : Status::IOError(path + ": exists and is not a directory");
  }
  const std::string parent = std::filesystem::path(path).lexically_normal().parent_path().string();
  if (!parent.empty() && parent != path) LOCKSTEP_RETURN_IF_ERROR(MakeDirs(parent));
  Status made = io::Mkdir(path);
  if (!made.ok() && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();  // raced
  return made;
}

}  // namespace lockstep

namespace lockstep {
namespace {

// nftw's callback: a Status cannot cross it, so the first failure is kept here.
thread_local Status* g_remove_status = nullptr;

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  Status st = io::Remove(path, type == FTW_DP);
  if (st.ok()) return 0;
  if (g_remove_status != nullptr) *g_remove_status = st;
  return -1;
}

}  // namespace

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Status::Ok() : ErrnoStatus(path, "cannot stat");
  }
  if (!S_ISDIR(st.st_mode)) return io::Remove(path, /*is_directory=*/false);
  // Depth first, physical: children before their directory, links never followed.
  Status first_failure;
  g_remove_status = &first_failure;
  const int rc = ::nftw(path.c_str(), RemoveEntry, 32, FTW_DEPTH | FTW_PHYS);
  g_remove_status = nullptr;
  if (!first_failure.ok()) return first_failure;
  return rc == 0 ? Status::Ok() : ErrnoStatus(path, "cannot remove the directory tree");
}

Status CopyTree(const std::string& from, const std::string& to) {
  struct stat st;
  if (::lstat(from.c_str(), &st) != 0) return ErrnoStatus(from, "cannot stat");
  if (S_ISLNK(st.st_mode)) {
    std::string target(4096, '\0');
    const ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
    if (n < 0) return ErrnoStatus(from, "cannot read the link");
    target.resize(static_cast<size_t>(n));
    return ::symlink(target.c_str(), to.c_str()) == 0 ? Status::Ok() : ErrnoStatus(to, "cannot create the link");
  }
  if (S_ISREG(st.st_mode)) {
    std::string data;
    LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(from, &data, UINT64_MAX));
    return WriteFileDurably(to, data);
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(from + ": not a file, directory or link");
  LOCKSTEP_RETURN_IF_ERROR(io::Mkdir(to));
  DIR* dir = ::opendir(from.c_str());
  if (dir == nullptr) return ErrnoStatus(from, "cannot open the directory");
  Status status;
  while (const struct dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    status = CopyTree(from + "/" + name, to + "/" + name);
    if (!status.ok()) break;
  }
  ::closedir(dir);
  return status;
}

}  // namespace lockstep
