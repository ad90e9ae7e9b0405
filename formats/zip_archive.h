// Reading the zip archives PyTorch writes (torch.save: rng_state.pth, optimizer.pt, ...)
// as plain data: the central directory is listed and stored entries are read. Nothing is
// unpickled here. Entry names that escape the archive ("..", absolute paths) are refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;           // 0 stored (what torch.save writes), 8 deflate
  uint64_t compressed_size = 0;
  uint64_t size = 0;             // uncompressed
  uint64_t local_header_offset = 0;
};

// Lists the entries of the archive at `path` (zip64 included). Corruption, naming the file
// and the entry, for a missing end-of-directory record, entries past the end of the file, or
// names that are absolute or contain a ".." component.
Status ListZip(const std::string& path, std::vector<ZipEntry>* entries);

// Reads a stored entry's bytes (at most `max_bytes`). NotSupported-style InvalidArgument
// for compressed entries.
Status ReadZipEntry(const std::string& path, const ZipEntry& entry, uint64_t max_bytes, std::string* out);

}  // namespace lockstep
