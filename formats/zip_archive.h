// Reading the zip archives PyTorch writes (torch.save: rng_state.pth, optimizer.pt, ...)
// as plain data: the central directory is listed and stored entries are read, each checked
// against the CRC-32 the archive records for it. Nothing is unpickled here. Entry names that
// escape the archive ("..", absolute paths) are refused.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored (what torch.save writes), 8 deflate
  uint64_t compressed_size = 0;
  uint64_t size = 0;                 // uncompressed
  uint32_t crc32 = 0;                // of the uncompressed bytes, as the central directory records it
  uint64_t local_header_offset = 0;  // from the archive's start
  uint64_t archive_base = 0;         // where the archive starts in its file (ListZipAt)
  uint64_t archive_size = UINT64_MAX;
};

// Lists the entries of the archive at `path` (zip64 included). Corruption, naming the file
// and the entry, for a missing end-of-directory record, entries past the end of the file, or
// names that are absolute or contain a ".." component.
Status ListZip(const std::string& path, std::vector<ZipEntry>* entries);

// The same for an archive stored at bytes [base, base + size) of `path` (a DCP .distcp
// file holds one torch.save archive per tensor chunk, back to back).
Status ListZipAt(const std::string& path, uint64_t base, uint64_t size, std::vector<ZipEntry>* entries);

// Reads a stored entry's bytes (at most `max_bytes`), checked against its CRC-32:
// Corruption naming the file and the entry when they differ. InvalidArgument for compressed
// entries.
Status ReadZipEntry(const std::string& path, const ZipEntry& entry, uint64_t max_bytes, std::string* out);

// Where a stored entry's bytes begin in its file (the archive's base included), its local
// header checked against the central directory: what a reader of a part of an entry seeks
// to. Corruption naming the file and the entry.
Status ZipEntryDataOffset(const std::string& path, const ZipEntry& entry, uint64_t* offset);

// Reads every entry of the archive at `path` (stored or deflated) in chunks and checks each
// against its CRC-32 and its local header against the central directory: what a flipped or
// lost byte anywhere in an entry's data, or a truncation, looks like. `progress` hears of
// the bytes read. Corruption naming the file and the entry.
Status VerifyZip(const std::string& path, const std::function<void(uint64_t)>& progress = {});

// The same for an archive stored at bytes [base, base + size) of `path` (a DCP chunk).
Status VerifyZipAt(const std::string& path, uint64_t base, uint64_t size,
                   const std::function<void(uint64_t)>& progress = {});

// True when the file at `path` begins as a zip archive does (a local file header).
bool LooksLikeZip(const std::string& path);

}  // namespace lockstep
