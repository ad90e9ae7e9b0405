#include "formats/zip_archive.h"

#include "formats/checksum.h"
#include "formats/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace lockstep {
namespace {

constexpr uint64_t kMaxEntries = 1u << 20;

uint64_t Le(const std::string& b, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

// Reads bytes [offset, offset + n) of the archive at [base, base + window) of `path` (the
// whole file for base 0 and window UINT64_MAX); Corruption when it is shorter. offset
// UINT64_MAX reads its last n bytes; `archive_size` gets its size.
Status ReadRange(const std::string& path, uint64_t base, uint64_t window, uint64_t offset, uint64_t n, std::string* out,
                 uint64_t* archive_size = nullptr) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Corruption(path + ": not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (base > file_size || (window != UINT64_MAX && window > file_size - base)) {
    ::close(fd);
    return Status::Corruption(path + ": bytes " + std::to_string(base) + "+" + std::to_string(window) +
                              " lie past the end of the " + std::to_string(file_size) + "-byte file");
  }
  const uint64_t size = window == UINT64_MAX ? file_size - base : window;
  if (archive_size) *archive_size = size;
  if (offset == UINT64_MAX) offset = size > n ? size - n : 0, n = std::min(n, size);  // the tail
  if (offset > size || n > size - offset) {
    ::close(fd);
    return Status::Corruption(path + ": bytes " + std::to_string(base + offset) + "+" + std::to_string(n) +
                              " lie past the end of the " + std::to_string(size) + "-byte archive");
  }
  out->assign(n, '\0');
  const bool read = n == 0 || ReadExactlyAt(fd, base + offset, &(*out)[0], n, path).ok();
  ::close(fd);
  return read ? Status::Ok() : Status::IOError(path + ": read failed");
}

bool UnsafeName(const std::string& name) {
  if (name.empty() || name[0] == '/' || name[0] == '\\' || name.find('\\') != std::string::npos ||
      (name.size() > 1 && name[1] == ':')) {
    return true;
  }
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = std::min(name.find('/', start), name.size());
    if (name.compare(start, slash - start, "..") == 0 && slash - start == 2) return true;
    start = slash + 1;
  }
  return false;
}

std::string Hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

Status CrcMismatch(const std::string& path, const ZipEntry& entry, uint32_t crc) {
  return Status::Corruption(path + ": entry '" + entry.name + "' has CRC-32 " + Hex32(crc) +
                            " but the archive records " + Hex32(entry.crc32) +
                            " (its bytes changed after it was written)");
}

// Where an entry's data begins: after its local header, whose name must be the central
// directory's.
Status EntryDataStart(const std::string& path, const ZipEntry& entry, uint64_t* start) {
  std::string header;
  LOCKSTEP_RETURN_IF_ERROR(
      ReadRange(path, entry.archive_base, entry.archive_size, entry.local_header_offset, 30, &header));
  if (Le(header, 0, 4) != 0x04034b50) {
    return Status::Corruption(path + ": entry '" + entry.name + "' has no local header");
  }
  const uint64_t name_len = Le(header, 26, 2);
  std::string name;
  LOCKSTEP_RETURN_IF_ERROR(
      ReadRange(path, entry.archive_base, entry.archive_size, entry.local_header_offset + 30, name_len, &name));
  if (name != entry.name) {
    return Status::Corruption(path + ": entry '" + entry.name + "' has the local header of '" + name + "'");
  }
  *start = entry.local_header_offset + 30 + name_len + Le(header, 28, 2);
  if (*start > entry.archive_size || entry.compressed_size > entry.archive_size - *start) {
    return Status::Corruption(path + ": entry '" + entry.name + "' runs past the end of the file");
  }
  return Status::Ok();
}

// Streams one entry's data through CRC-32, inflating a deflated one.
Status VerifyEntry(const std::string& path, int fd, const ZipEntry& entry,
                   const std::function<void(uint64_t)>& progress) {
  if (entry.method != 0 && entry.method != 8) {
    return Status::Corruption(path + ": entry '" + entry.name + "' uses compression method " +
                              std::to_string(entry.method) + ", which zip readers of torch archives do not know");
  }
  uint64_t start = 0;
  LOCKSTEP_RETURN_IF_ERROR(EntryDataStart(path, entry, &start));
  constexpr size_t kChunk = 1 << 20;
  std::unique_ptr<unsigned char[]> in(new unsigned char[kChunk]), out;
  z_stream z{};
  const bool deflated = entry.method == 8;
  if (deflated) {
    out.reset(new unsigned char[kChunk]);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return Status::Internal(path + ": zlib cannot start inflating");
  }
  const std::unique_ptr<z_stream, void (*)(z_stream*)> end(deflated ? &z : nullptr, [](z_stream* s) { inflateEnd(s); });
  uint32_t crc = 0;
  uint64_t produced = 0;
  for (uint64_t done = 0; done < entry.compressed_size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, entry.compressed_size - done));
    LOCKSTEP_RETURN_IF_ERROR(ReadExactlyAt(fd, entry.archive_base + start + done, in.get(), n, path));
    done += n;
    if (progress) progress(n);
    if (!deflated) {
      crc = Crc32(crc, in.get(), n);
      produced += n;
      continue;
    }
    z.next_in = in.get();
    z.avail_in = static_cast<uInt>(n);
    while (z.avail_in > 0) {
      z.next_out = out.get();
      z.avail_out = static_cast<uInt>(kChunk);
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        return Status::Corruption(path + ": entry '" + entry.name + "' does not inflate (its bytes are damaged)");
      }
      const size_t got = kChunk - z.avail_out;
      crc = Crc32(crc, out.get(), got);
      produced += got;
      if (rc == Z_STREAM_END) break;
    }
  }
  if (produced != entry.size) {
    return Status::Corruption(path + ": entry '" + entry.name + "' holds " + std::to_string(produced) +
                              " bytes but the archive records " + std::to_string(entry.size));
  }
  if (static_cast<uint32_t>(crc) != entry.crc32) return CrcMismatch(path, entry, static_cast<uint32_t>(crc));
  return Status::Ok();
}

}  // namespace

bool LooksLikeZip(const std::string& path) {
  std::string head;
  return ReadRange(path, 0, UINT64_MAX, 0, 4, &head).ok() && Le(head, 0, 4) == 0x04034b50;
}

Status VerifyZip(const std::string& path, const std::function<void(uint64_t)>& progress) {
  return VerifyZipAt(path, 0, UINT64_MAX, progress);
}

Status VerifyZipAt(const std::string& path, uint64_t base, uint64_t size,
                   const std::function<void(uint64_t)>& progress) {
  std::vector<ZipEntry> entries;
  LOCKSTEP_RETURN_IF_ERROR(ListZipAt(path, base, size, &entries));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  Status st;
  for (const auto& e : entries) {
    st = VerifyEntry(path, fd, e, progress);
    if (!st.ok()) break;
  }
  ::close(fd);
  return st;
}

Status ListZip(const std::string& path, std::vector<ZipEntry>* entries) {
  return ListZipAt(path, 0, UINT64_MAX, entries);
}

Status ListZipAt(const std::string& path, uint64_t base, uint64_t window, std::vector<ZipEntry>* entries) {
  entries->clear();
  // The end-of-directory record sits in the last 64 KiB + 22 bytes; only it and the
  // central directory are read, never the entries' data.
  std::string tail;
  uint64_t file_size = 0;
  LOCKSTEP_RETURN_IF_ERROR(ReadRange(path, base, window, UINT64_MAX, 22 + 65535 + 20, &tail, &file_size));
  if (tail.size() < 22) return Status::Corruption(path + ": too short to be a zip archive");
  size_t eocd = std::string::npos;
  for (size_t p = tail.size() - 22 + 1; p-- > 0;) {
    if (Le(tail, p, 4) == 0x06054b50) {
      eocd = p;
      break;
    }
  }
  if (eocd == std::string::npos)
    return Status::Corruption(path + ": no zip end-of-directory record (not a zip archive, or truncated)");
  uint64_t count = Le(tail, eocd + 10, 2), cd_size = Le(tail, eocd + 12, 4), cd_offset = Le(tail, eocd + 16, 4);
  if ((count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) && eocd >= 20 &&
      Le(tail, eocd - 20, 4) == 0x07064b50) {
    std::string z64;
    LOCKSTEP_RETURN_IF_ERROR(ReadRange(path, base, window, Le(tail, eocd - 20 + 8, 8), 56, &z64));
    if (Le(z64, 0, 4) != 0x06064b50) return Status::Corruption(path + ": bad zip64 directory record");
    count = Le(z64, 32, 8);
    cd_size = Le(z64, 40, 8);
    cd_offset = Le(z64, 48, 8);
  }
  if (count > kMaxEntries) return Status::Corruption(path + ": claims " + std::to_string(count) + " entries");
  if (cd_offset > file_size || cd_size > file_size - cd_offset || cd_size > (256u << 20)) {
    return Status::Corruption(path + ": central directory runs past the end of the file");
  }
  std::string data;
  LOCKSTEP_RETURN_IF_ERROR(ReadRange(path, base, window, cd_offset, cd_size, &data));
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > data.size() || Le(data, p, 4) != 0x02014b50) {
      return Status::Corruption(path + ": central directory entry " + std::to_string(i) + " is damaged");
    }
    ZipEntry e;
    e.archive_base = base;
    e.archive_size = file_size;
    e.method = static_cast<uint16_t>(Le(data, p + 10, 2));
    e.crc32 = static_cast<uint32_t>(Le(data, p + 16, 4));
    e.compressed_size = Le(data, p + 20, 4);
    e.size = Le(data, p + 24, 4);
    const size_t name_len = Le(data, p + 28, 2), extra_len = Le(data, p + 30, 2), comment_len = Le(data, p + 32, 2);
    e.local_header_offset = Le(data, p + 42, 4);
    if (p + 46 + name_len + extra_len + comment_len > data.size()) {
      return Status::Corruption(path + ": central directory entry " + std::to_string(i) + " runs past the end");
    }
    e.name = data.substr(p + 46, name_len);
    // zip64 sizes and offset live in extra field 0x0001, in this order, when saturated.
    for (size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const uint64_t id = Le(data, x, 2), len = Le(data, x + 2, 2);
      if (x + 4 + len > p + 46 + name_len + extra_len) break;
      if (id == 1) {
        size_t q = x + 4;
        if (e.size == 0xFFFFFFFF && q + 8 <= x + 4 + len) e.size = Le(data, q, 8), q += 8;
        if (e.compressed_size == 0xFFFFFFFF && q + 8 <= x + 4 + len) e.compressed_size = Le(data, q, 8), q += 8;
        if (e.local_header_offset == 0xFFFFFFFF && q + 8 <= x + 4 + len) e.local_header_offset = Le(data, q, 8);
      }
      x += 4 + len;
    }
    if (UnsafeName(e.name)) {
      return Status::Corruption(path + ": entry '" + e.name + "' escapes the archive (absolute path or '..')");
    }
    if (e.local_header_offset > file_size || e.compressed_size > file_size - e.local_header_offset) {
      return Status::Corruption(path + ": entry '" + e.name + "' runs past the end of the file");
    }
    entries->push_back(e);
    p += 46 + name_len + extra_len + comment_len;
  }
  return Status::Ok();
}

Status ZipEntryDataOffset(const std::string& path, const ZipEntry& entry, uint64_t* offset) {
  uint64_t start = 0;
  LOCKSTEP_RETURN_IF_ERROR(EntryDataStart(path, entry, &start));
  *offset = entry.archive_base + start;
  return Status::Ok();
}

Status ReadZipEntry(const std::string& path, const ZipEntry& entry, uint64_t max_bytes, std::string* out) {
  if (entry.method != 0) {
    return Status::InvalidArgument(path + ": entry '" + entry.name + "' is compressed (method " +
                                   std::to_string(entry.method) + "); only stored entries are read");
  }
  if (entry.size > max_bytes)
    return Status::InvalidArgument(path + ": entry '" + entry.name + "' is over the size limit");
  uint64_t start = 0;
  LOCKSTEP_RETURN_IF_ERROR(EntryDataStart(path, entry, &start));
  LOCKSTEP_RETURN_IF_ERROR(ReadRange(path, entry.archive_base, entry.archive_size, start, entry.size, out));
  const uint32_t sum = Crc32(0, out->data(), out->size());
  if (sum != entry.crc32) return CrcMismatch(path, entry, sum);
  return Status::Ok();
}

}  // namespace lockstep
