// Small, durable file primitives over formats/io.h. Everything that commits data to disk
// goes through here, so the fsync discipline lives in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

// True when the file name `name` ends with `suffix` (".safetensors", ".index.json").
bool HasSuffix(const std::string& name, const std::string& suffix);

// OK when `path` names something that exists (links followed); otherwise why not, in the
// system's words and naming the path: NotFound (no such file or directory, or a path
// component is not a directory), InvalidArgument (a loop of symbolic links), IOError (the
// permission to look is missing, or another error). For checking a command's inputs.
Status CheckInputPath(const std::string& path);

// Whether `path` exists (links followed) or is a directory; false, never an exception, when
// it cannot be looked at (a loop of links, no permission): what audits of hostile trees use.
bool Exists(const std::string& path);
bool IsDirectory(const std::string& path);

// Every regular file below `dir` (links to directories not followed), as paths relative to
// it, sorted; what cannot be listed is left out.
std::vector<std::string> FilesBelow(const std::string& dir);

// Reads the whole file into `*out`. Refuses files larger than `max_bytes` (hostile input).
Status ReadFileToString(const std::string& path, std::string* out, uint64_t max_bytes);

// Reads bytes [offset, offset + n) of the file at `path`: IOError when it cannot be opened
// or read, Corruption when it ends first.
Status ReadFileRange(const std::string& path, uint64_t offset, uint64_t n, std::string* out);

// Reads exactly `size` bytes at `offset` of the open file `fd` into `dst` (pread, retried):
// IOError when a read fails, Corruption when the file ends first. `where` names the bytes.
Status ReadExactlyAt(int fd, uint64_t offset, void* dst, uint64_t size, const std::string& where);

// The directory of the running executable (from /proc/self/exe), so what ships beside it
// is found whatever the working directory or PATH; "." when it cannot be read.
std::string ExecutableDirectory();

// Writes `data` to `path` (truncating) and fsyncs it before returning.
Status WriteFileDurably(const std::string& path, const std::string& data);

// fsyncs an existing file or directory so its contents or entries survive a crash.
Status FsyncPath(const std::string& path);

// rename(2), then fsync of the destination's parent directory: after a crash the rename
// is either fully visible or not at all.
Status RenameDurably(const std::string& from, const std::string& to);

// Creates the directory `path` and any missing parents (mkdir -p). An existing directory
// is OK; an existing file is an IOError.
Status MakeDirs(const std::string& path);

// Removes `path` and everything below it, never following symbolic links (a link is
// removed, not its target). A missing path is OK. Written on POSIX nftw rather than
// std::filesystem::remove_all: LibTorch 2.x exports its own copy of remove_all whose
// directory iterator resolves to null, so calling it from a binary linked with LibTorch
// crashes.
Status RemoveTree(const std::string& path);

// Copies the tree at `from` to `to` (which must not exist): directories, regular files
// and symbolic links (as links). For tests and for verify-resume's run copies.
Status CopyTree(const std::string& from, const std::string& to);

}  // namespace lockstep
