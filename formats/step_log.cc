#include "formats/step_log.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <zstd.h>
#include <zstd_errors.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/io.h"
#include "formats/json_file.h"

namespace lockstep {

namespace {

constexpr const char* kMagic = kStepLogMagic;
constexpr int kFormatVersion = kStepLogFormatVersion;

// What every reader may rely on after the header: an object with a string "kind", and
// for a step record an integer "step". Anything else is corruption, named here, so no
// consumer meets a record of the wrong shape.
Status CheckRecord(const nlohmann::json& record, const std::string& where) {
  const auto kind = record.is_object() ? record.find("kind") : record.end();
  if (!record.is_object() || kind == record.end() || !kind->is_string() || *kind == "header") {
    return Status::Corruption(where + ": record without a valid \"kind\"");
  }
  if (*kind == "step") {
    const auto step = record.find("step");
    if (step == record.end() || !step->is_number_integer()) {
      return Status::Corruption(where + ": step record without an integer \"step\"");
    }
  }
  return Status::Ok();
}
Status CheckHeader(const nlohmann::json& record, const std::string& path) {
  // Compared as JSON values: a magic of the wrong type is a mismatch, not an exception.
  if (!record.is_object() || record.value("magic", nlohmann::json()) != kMagic) {
    return Status::Corruption(path + ": not a Lockstep step log (magic '" + std::string(kMagic) +
                              "' missing in the first record)");
  }
  if (record.value("format_version", nlohmann::json()) != kFormatVersion) {
    return Status::Corruption(path + ": step log format version " +
                              DumpJson(record.value("format_version", nlohmann::json())) +
                              " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

constexpr uint64_t kMaxFrameContent = 256ull << 20;  // a frame holds a few KB; refuse absurd ones
constexpr uint64_t kMaxLogBytes = 64ull << 30;

std::string ErrnoText() { return std::strerror(errno); }

// Decompresses one complete frame. Our frames declare their size; frames written by other
// tools (zstd in streaming mode) may not, so those are decoded as a stream, within a cap.
Status DecompressFrame(const char* src, size_t size, const std::string& where, std::string* text) {
  const unsigned long long content = ZSTD_getFrameContentSize(src, size);
  if (content == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption(where + ": bad frame header");
  if (content != ZSTD_CONTENTSIZE_UNKNOWN && content > kMaxFrameContent) {
    return Status::Corruption(where + ": frame claims " + std::to_string(content) + " bytes, over the limit");
  }
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  ZSTD_inBuffer in{src, size, 0};
  std::string chunk(ZSTD_DStreamOutSize(), '\0');
  size_t ret = 1;
  while (in.pos < in.size && ret != 0) {
    ZSTD_outBuffer out{&chunk[0], chunk.size(), 0};
    ret = ZSTD_decompressStream(dctx, &out, &in);
    if (ZSTD_isError(ret)) break;
    text->append(chunk.data(), out.pos);
    if (text->size() > kMaxFrameContent) break;
  }
  ZSTD_freeDCtx(dctx);
  if (ZSTD_isError(ret)) {
    return Status::Corruption(where + ": cannot decompress (" + ZSTD_getErrorName(ret) + ")");
  }
  if (ret != 0 || text->size() > kMaxFrameContent || (content != ZSTD_CONTENTSIZE_UNKNOWN && text->size() != content)) {
    return Status::Corruption(where + ": decompressed size disagrees with the frame");
  }
  return Status::Ok();
}

// Adds one decompressed frame's records to `out`, the header first when `*first`. A frame's
// records are kept only once all of them read, so a damaged frame adds none.
Status AddFrame(const std::string& text, const std::string& where, const std::string& path, uint64_t frame_end,
                bool* first, StepLogContents* out) {
  std::vector<StepRecord> steps;
  std::vector<StepLogEvent> events;
  size_t line_start = 0;
  while (line_start < text.size()) {
    const size_t nl = text.find('\n', line_start);
    if (nl == std::string::npos) return Status::Corruption(where + ": record without newline");
    nlohmann::json record;
    LOCKSTEP_RETURN_IF_ERROR(ParseJson(text.substr(line_start, nl - line_start), where, &record));
    line_start = nl + 1;
    if (*first) {
      LOCKSTEP_RETURN_IF_ERROR(CheckHeader(record, path));
      out->header = std::move(record);
      *first = false;
      continue;
    }
    LOCKSTEP_RETURN_IF_ERROR(CheckRecord(record, where));
    if (record[step_key::kKind] == "step") {
      LOCKSTEP_RETURN_IF_ERROR(ParseStepRecord(record, where, &steps.emplace_back()));
    } else {
      events.push_back({std::move(record), out->records.size() + steps.size()});
    }
  }
  for (auto& step : steps) {
    out->records.push_back(std::move(step));
    out->record_frame_ends.push_back(frame_end);
  }
  for (auto& event : events) out->events.push_back(std::move(event));
  return Status::Ok();
}

}  // namespace

Status ReadStepLog(const std::string& path, StepLogContents* out) {
  *out = StepLogContents();
  std::string data;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &data, kMaxLogBytes));
  out->file_bytes = data.size();
  if (data.empty()) return Status::Corruption(path + ": empty step log (no header frame)");

  size_t pos = 0;
  bool first = true;
  while (pos < data.size()) {
    const char* src = data.data() + pos;
    const size_t remaining = data.size() - pos;
    const size_t frame_size = ZSTD_findFrameCompressedSize(src, remaining);
    if (ZSTD_isError(frame_size) && ZSTD_getErrorCode(frame_size) != ZSTD_error_srcSize_wrong) {
      return Status::Corruption(path + ": frame at byte " + std::to_string(pos) + " is damaged (" +
                                ZSTD_getErrorName(frame_size) + ")");
    }
    if (ZSTD_isError(frame_size)) {
      // Only the last frame can be cut short (each frame is one write); report, don't fail.
      out->truncated_tail = true;
      out->tail_problem = "frame at byte " + std::to_string(pos) + " is incomplete (" + std::to_string(remaining) +
                          " bytes, " + ZSTD_getErrorName(frame_size) + ")";
      break;
    }
    const std::string where = path + ": frame at byte " + std::to_string(pos);
    std::string text;
    LOCKSTEP_RETURN_IF_ERROR(DecompressFrame(src, frame_size, where, &text));
    // The frame header descriptor (the byte after the 4-byte magic) has the checksum flag in bit 2.
    out->frames_checksummed &= frame_size > 4 && ((static_cast<uint8_t>(src[4]) >> 2) & 1) != 0;
    pos += frame_size;
    LOCKSTEP_RETURN_IF_ERROR(AddFrame(text, where, path, pos, &first, out));
    out->frame_ends.push_back(pos);
    out->valid_bytes = pos;
  }
  if (first) return Status::Corruption(path + ": no complete header frame (" + out->tail_problem + ")");
  return Status::Ok();
}

Status ReadStepLogHeader(const std::string& path, nlohmann::json* header) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io::ErrnoStatus(path, "cannot open the step log");
  std::string data(64 << 10, '\0');  // the header frame is a few hundred bytes
  const ssize_t n = ::pread(fd, &data[0], data.size(), 0);
  ::close(fd);
  if (n < 0) return io::ErrnoStatus(path, "cannot read the step log");
  data.resize(static_cast<size_t>(n));
  const size_t frame_size = ZSTD_findFrameCompressedSize(data.data(), data.size());
  if (ZSTD_isError(frame_size)) return Status::Corruption(path + ": not a Lockstep step log (no zstd header frame)");
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(DecompressFrame(data.data(), frame_size, path + ": header frame", &text));
  LOCKSTEP_RETURN_IF_ERROR(ParseJson(text.substr(0, text.find('\n')), path + ": header", header));
  return CheckHeader(*header, path);
}

Status ReadStepLogFrame(const std::string& path, uint64_t begin, uint64_t end, StepLogContents* out) {
  *out = StepLogContents();
  const std::string where = path + ": frame at byte " + std::to_string(begin);
  if (end <= begin || end - begin > kMaxFrameContent) return Status::Corruption(where + ": bad frame range");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open step log: " + ErrnoText());
  std::string data(end - begin, '\0');
  const ssize_t n = ::pread(fd, &data[0], data.size(), static_cast<off_t>(begin));
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    return Status::Corruption(where + ": the file ends before byte " + std::to_string(end));
  if (ZSTD_findFrameCompressedSize(data.data(), data.size()) != data.size()) {
    return Status::Corruption(where + ": bytes " + std::to_string(begin) + ".." + std::to_string(end) +
                              " are not exactly one zstd frame");
  }
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(DecompressFrame(data.data(), data.size(), where, &text));
  bool first = false;  // a frame after the header's
  LOCKSTEP_RETURN_IF_ERROR(AddFrame(text, where, path, end, &first, out));
  out->frame_ends.push_back(end);
  out->valid_bytes = end;
  return Status::Ok();
}

}  // namespace lockstep
