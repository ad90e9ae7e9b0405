// Small, durable file primitives. Everything that commits data to disk goes through here,
// so the fsync discipline lives in one place.
#pragma once

#include <cstdint>
#include <string>

#include "formats/status.h"

namespace lockstep {

// Reads the whole file into `*out`. Refuses files larger than `max_bytes` (hostile input).
Status ReadFileToString(const std::string& path, std::string* out, uint64_t max_bytes);

// Writes `data` to `path` (truncating) and fsyncs it before returning.
Status WriteFileDurably(const std::string& path, const std::string& data);

// fsyncs an existing file or directory so its contents or entries survive a crash.
Status FsyncPath(const std::string& path);

// rename(2), then fsync of the destination's parent directory: after a crash the rename
// is either fully visible or not at all.
Status RenameDurably(const std::string& from, const std::string& to);

}  // namespace lockstep
