// The system calls by which Lockstep changes the disk: create, write, fsync, truncate,
// rename, mkdir and remove. Everything that writes a run directory goes through these, so
// the errno-to-Status mapping lives in one place and one hook sees every call:
//   - tests make the N-th call fail with ENOSPC or EIO (tests/fault/fault_injection.h, after
//     leveldb's FaultInjectionTestEnv) and check that nothing committed is lost;
//   - `verify-resume --crash-points` makes a child kill itself right after one, so a crash
//     lands at an exact point of a save, the same one on every rerun.
// Reads are not hooked: they change nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/status.h"

namespace lockstep {

enum class IoOp { kCreate, kWrite, kFsync, kTruncate, kRename, kMkdir, kRemove };

// "create", "write", "fsync", "truncate", "rename", "mkdir", "remove".
const char* IoOpName(IoOp op);

class IoHook {
 public:
  virtual ~IoHook() = default;
  // Called before `op` on `path`. Returns 0 to let the call run, or an errno value to make
  // it fail with, exactly as if the system had refused it.
  virtual int Before(IoOp op, const std::string& path) = 0;
  // Called after `op` on `path` succeeded.
  virtual void After(IoOp op, const std::string& path) = 0;
};

// Installs the hook every call below consults (nullptr, the default: none). Install it
// before the work starts; it is not synchronised with calls in flight.
void SetIoHook(IoHook* hook);

namespace io {

// open(2) with O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode 0644; the descriptor in `*fd`.
Status Create(const std::string& path, int* fd);
// open(2) with O_RDWR | O_CREAT | O_CLOEXEC, mode 0644: an existing file keeps its bytes
// (the run lock, whose holder record must survive a second writer's attempt).
Status OpenOrCreate(const std::string& path, int* fd);
// Writes all `size` bytes (retrying short writes and EINTR). `path` names the file in errors.
Status Write(int fd, const void* data, size_t size, const std::string& path);
Status Fsync(int fd, const std::string& path);
Status Truncate(int fd, uint64_t size, const std::string& path);
// rename(2). The parent directories are not fsynced: see RenameDurably (file_util.h).
Status Rename(const std::string& from, const std::string& to);
// Swaps two existing paths atomically (Linux renameat2 RENAME_EXCHANGE); a kRename call.
Status Exchange(const std::string& a, const std::string& b);
// mkdir(2), mode 0755. An existing directory is an IOError (EEXIST), not success.
Status Mkdir(const std::string& path);
// unlink(2) for a file or link, rmdir(2) for an (empty) directory. Missing is OK.
Status Remove(const std::string& path, bool is_directory);

// The Status for the current errno after `what` failed on `path`: NotFound for ENOENT,
// IOError otherwise, with the system's text ("No space left on device").
Status ErrnoStatus(const std::string& path, const std::string& what);

}  // namespace io
}  // namespace lockstep
