#include "formats/step_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <zstd.h>

#include "formats/file_util.h"
#include "formats/json_file.h"

namespace lockstep {
namespace {

constexpr char kMagic[] = "LOCKSTEP-STEPLOG";
constexpr int kFormatVersion = 1;

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
  if (ret != 0 || text->size() > kMaxFrameContent ||
      (content != ZSTD_CONTENTSIZE_UNKNOWN && text->size() != content)) {
    return Status::Corruption(where + ": decompressed size disagrees with the frame");
  }
  return Status::Ok();
}

}  // namespace

StepLogWriter::StepLogWriter(std::string path, int fd, const StepLogOptions& options)
    : path_(std::move(path)), fd_(fd), options_(options) {}

StepLogWriter::~StepLogWriter() { (void)Close(); }

Status StepLogWriter::Create(const std::string& path, const nlohmann::json& header,
                             const StepLogOptions& options, std::unique_ptr<StepLogWriter>* out) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(path + ": cannot create step log: " + ErrnoText());
  std::unique_ptr<StepLogWriter> w(new StepLogWriter(path, fd, options));
  nlohmann::json h = header;
  h["kind"] = "header";
  h["magic"] = kMagic;
  h["format_version"] = kFormatVersion;
  LOCKSTEP_RETURN_IF_ERROR(w->WriteFrame(DumpJson(h) + "\n"));
  *out = std::move(w);
  return Status::Ok();
}

Status StepLogWriter::OpenForAppend(const std::string& path, uint64_t keep_bytes,
                                    const StepLogOptions& options,
                                    std::unique_ptr<StepLogWriter>* out) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open step log: " + ErrnoText());
  if (::ftruncate(fd, static_cast<off_t>(keep_bytes)) != 0 ||
      ::lseek(fd, 0, SEEK_END) != static_cast<off_t>(keep_bytes) || ::fsync(fd) != 0) {
    const std::string err = ErrnoText();
    ::close(fd);
    return Status::IOError(path + ": cannot cut step log to " + std::to_string(keep_bytes) +
                           " bytes: " + err);
  }
  out->reset(new StepLogWriter(path, fd, options));
  (*out)->bytes_written_ = (*out)->last_frame_start_ = keep_bytes;
  return Status::Ok();
}

Status StepLogWriter::Append(const nlohmann::json& record) {
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": step log is closed");
  nlohmann::json r = record;
  r["kind"] = "step";
  pending_ += DumpJson(r);
  pending_ += '\n';
  if (++pending_records_ >= options_.records_per_frame) return Flush();
  return Status::Ok();
}

Status StepLogWriter::AppendEvent(const std::string& kind, const nlohmann::json& body) {
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": step log is closed");
  if (kind == "step" || kind == "header" || kind.empty()) {
    return Status::InvalidArgument(path_ + ": '" + kind + "' is not an event kind");
  }
  nlohmann::json r = body;
  r["kind"] = kind;
  pending_ += DumpJson(r);
  pending_ += '\n';
  return Status::Ok();
}

Status StepLogWriter::Flush(bool sync) {
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": step log is closed");
  if (!pending_.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(WriteFrame(pending_));
    pending_.clear();
    pending_records_ = 0;
  }
  if (sync && ::fsync(fd_) != 0) return Status::IOError(path_ + ": fsync failed: " + ErrnoText());
  return Status::Ok();
}

Status StepLogWriter::Close() {
  if (fd_ < 0) return Status::Ok();
  Status st = Flush(/*sync=*/true);
  ::close(fd_);
  fd_ = -1;
  return st;
}

// Compresses `text` into one frame (with content size and checksum) and writes it with a
// single write(2), so a crash leaves at worst a prefix of this frame at the end of the file.
Status StepLogWriter::WriteFrame(const std::string& text) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, options_.compression_level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  std::string frame(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, &frame[0], frame.size(), text.data(), text.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) return Status::IOError(path_ + ": zstd: " + ZSTD_getErrorName(n));
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd_, frame.data() + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::IOError(path_ + ": write failed: " + ErrnoText());
    done += static_cast<size_t>(w);
  }
  last_frame_start_ = bytes_written_;
  bytes_written_ += n;
  return Status::Ok();
}

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
    if (ZSTD_isError(frame_size)) {
      // Only the last frame can be cut short (each frame is one write); report, don't fail.
      out->truncated_tail = true;
      out->tail_problem = "frame at byte " + std::to_string(pos) + " is incomplete (" +
                          std::to_string(remaining) + " bytes, " + ZSTD_getErrorName(frame_size) + ")";
      break;
    }
    const std::string where = path + ": frame at byte " + std::to_string(pos);
    std::string text;
    LOCKSTEP_RETURN_IF_ERROR(DecompressFrame(src, frame_size, where, &text));
    size_t line_start = 0;
    while (line_start < text.size()) {
      size_t nl = text.find('\n', line_start);
      if (nl == std::string::npos) return Status::Corruption(where + ": record without newline");
      nlohmann::json record;
      LOCKSTEP_RETURN_IF_ERROR(ParseJson(text.substr(line_start, nl - line_start), where, &record));
      if (first) {
        // Compared as JSON values: a magic of the wrong type is a mismatch, not an exception.
        if (!record.is_object() || record.value("magic", nlohmann::json()) != kMagic) {
          return Status::Corruption(path + ": not a Lockstep step log (magic '" + std::string(kMagic) +
                                    "' missing in the first record)");
        }
        if (record.value("format_version", nlohmann::json()) != kFormatVersion) {
          return Status::Corruption(path + ": step log format version " +
                                    DumpJson(record.value("format_version", nlohmann::json())) +
                                    " is not supported (this build reads version " +
                                    std::to_string(kFormatVersion) + ")");
        }
        out->header = std::move(record);
        first = false;
      } else {
        LOCKSTEP_RETURN_IF_ERROR(CheckRecord(record, where));
        if (record["kind"] == "step") {
          out->records.push_back(std::move(record));
          out->record_frame_ends.push_back(pos + frame_size);
        } else {
          out->events.push_back({std::move(record), out->records.size()});
        }
      }
      line_start = nl + 1;
    }
    pos += frame_size;
    out->frame_ends.push_back(pos);
  }
  out->valid_bytes = pos;
  if (first) return Status::Corruption(path + ": no complete header frame (" + out->tail_problem + ")");
  return Status::Ok();
}

Status ReadStepLogFrame(const std::string& path, uint64_t begin, uint64_t end,
                        std::vector<nlohmann::json>* records) {
  records->clear();
  const std::string where = path + ": frame at byte " + std::to_string(begin);
  if (end <= begin || end - begin > kMaxFrameContent) return Status::Corruption(where + ": bad frame range");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open step log: " + ErrnoText());
  std::string data(end - begin, '\0');
  const ssize_t n = ::pread(fd, &data[0], data.size(), static_cast<off_t>(begin));
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) return Status::Corruption(where + ": the file ends before byte " + std::to_string(end));
  if (ZSTD_findFrameCompressedSize(data.data(), data.size()) != data.size()) {
    return Status::Corruption(where + ": bytes " + std::to_string(begin) + ".." + std::to_string(end) +
                              " are not exactly one zstd frame");
  }
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(DecompressFrame(data.data(), data.size(), where, &text));
  size_t line_start = 0;
  while (line_start < text.size()) {
    const size_t nl = text.find('\n', line_start);
    if (nl == std::string::npos) return Status::Corruption(where + ": record without newline");
    nlohmann::json record;
    LOCKSTEP_RETURN_IF_ERROR(ParseJson(text.substr(line_start, nl - line_start), where, &record));
    LOCKSTEP_RETURN_IF_ERROR(CheckRecord(record, where));
    records->push_back(std::move(record));
    line_start = nl + 1;
  }
  return Status::Ok();
}

}  // namespace lockstep
