#include "formats/step_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <zstd.h>
#include <zstd_errors.h>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/io.h"
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
  if (ret != 0 || text->size() > kMaxFrameContent ||
      (content != ZSTD_CONTENTSIZE_UNKNOWN && text->size() != content)) {
    return Status::Corruption(where + ": decompressed size disagrees with the frame");
  }
  return Status::Ok();
}

}  // namespace

StepLogWriter::StepLogWriter(std::string path, int fd, const StepLogOptions& options)
    : path_(std::move(path)),
      fd_(fd),
      options_(options),
      digest_(new Xxh3Stream),
      cctx_(ZSTD_createCCtx(), [](ZSTD_CCtx* c) { ZSTD_freeCCtx(c); }) {
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, options_.compression_level);
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_contentSizeFlag, 1);
}

StepLogWriter::~StepLogWriter() { (void)Close(); }

Status StepLogWriter::Create(const std::string& path, const nlohmann::json& header,
                             const StepLogOptions& options, std::unique_ptr<StepLogWriter>* out) {
  int fd = -1;
  LOCKSTEP_RETURN_IF_ERROR(io::Create(path, &fd));
  std::unique_ptr<StepLogWriter> w(new StepLogWriter(path, fd, options));
  nlohmann::json h = header;
  h["kind"] = "header";
  h["magic"] = kMagic;
  h["format_version"] = kFormatVersion;
  LOCKSTEP_RETURN_IF_ERROR(w->WriteFrame(DumpJson(h) + "\n"));
  *out = std::move(w);
  return Status::Ok();
}

Status StepLogWriter::OpenForAppend(const std::string& path, uint64_t keep_bytes, const std::string& expected_xxh3,
                                    const StepLogOptions& options, std::unique_ptr<StepLogWriter>* out) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return io::ErrnoStatus(path, "cannot open the step log");
  std::unique_ptr<StepLogWriter> w(new StepLogWriter(path, fd, options));
  // The kept bytes are read once, into the running digest the writer goes on with.
  uint64_t done = 0;
  LOCKSTEP_RETURN_IF_ERROR(Xxh3Fd(fd, path, keep_bytes, w->digest_.get(), &done));
  if (done < keep_bytes) {
    return Status::Corruption(path + ": ends at byte " + std::to_string(done) + ", but the checkpoint covers " +
                              std::to_string(keep_bytes) + " bytes of it (the log was cut short)");
  }
  if (!expected_xxh3.empty() && w->digest_->HexDigest() != expected_xxh3) {
    return Status::Corruption(path + ": its first " + std::to_string(keep_bytes) +
                              " bytes, which the checkpoint covers, differ from the checkpoint's digest of them "
                              "(the log was damaged or replaced after the checkpoint was saved)");
  }
  LOCKSTEP_RETURN_IF_ERROR(io::Truncate(fd, keep_bytes, path));
  LOCKSTEP_RETURN_IF_ERROR(io::Fsync(fd, path));
  if (::lseek(fd, 0, SEEK_END) != static_cast<off_t>(keep_bytes)) return io::ErrnoStatus(path, "cannot seek");
  w->bytes_written_ = w->last_frame_start_ = keep_bytes;
  *out = std::move(w);
  return Status::Ok();
}

Status StepLogWriter::Append(nlohmann::json record) {
  LOCKSTEP_RETURN_IF_ERROR(Writable());
  record["kind"] = "step";
  pending_ += DumpJson(record);
  pending_ += '\n';
  if (++pending_records_ >= options_.records_per_frame) return Flush();
  return Status::Ok();
}

Status StepLogWriter::AppendEvent(const std::string& kind, const nlohmann::json& body) {
  LOCKSTEP_RETURN_IF_ERROR(Writable());
  if (kind == "step" || kind == "header" || kind.empty()) {
    return Status::InvalidArgument(path_ + ": '" + kind + "' is not an event kind");
  }
  nlohmann::json r = body;
  r["kind"] = kind;
  pending_ += DumpJson(r);
  pending_ += '\n';
  return Status::Ok();
}

Status StepLogWriter::Writable() const {
  if (!failure_.ok()) return failure_;
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": step log is closed");
  return Status::Ok();
}

Status StepLogWriter::Flush(bool sync) {
  LOCKSTEP_RETURN_IF_ERROR(Writable());
  if (!pending_.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(WriteFrame(pending_));
    pending_.clear();
    pending_records_ = 0;
  }
  if (sync) return Fail(io::Fsync(fd_, path_));
  return Status::Ok();
}

Status StepLogWriter::Close() {
  if (fd_ < 0) return failure_;
  Status st = failure_.ok() ? Flush(/*sync=*/true) : failure_;
  ::close(fd_);
  fd_ = -1;
  return st;
}

std::string StepLogWriter::digest() const { return digest_->HexDigest(); }

// After a failed write or fsync the file may end inside a frame, and what reached the
// disk is unknown: the writer refuses all further work (a later frame after a partial one
// would corrupt the middle of the log), after cutting the file back to its last whole frame.
Status StepLogWriter::Fail(Status st) {
  if (st.ok() || !failure_.ok()) return st;
  failure_ = st;
  (void)io::Truncate(fd_, bytes_written_, path_);
  return st;
}

// Compresses `text` into one frame (with content size and checksum) and writes it with a
// single write(2), so a crash leaves at worst a prefix of this frame at the end of the file.
Status StepLogWriter::WriteFrame(const std::string& text) {
  if (!cctx_) return Status::IOError(path_ + ": zstd: cannot create a compression context");
  frame_.resize(ZSTD_compressBound(text.size()));
  const size_t n = ZSTD_compress2(cctx_.get(), &frame_[0], frame_.size(), text.data(), text.size());
  if (ZSTD_isError(n)) return Status::IOError(path_ + ": zstd: " + ZSTD_getErrorName(n));
  const std::string& frame = frame_;
  LOCKSTEP_RETURN_IF_ERROR(Fail(io::Write(fd_, frame.data(), n, path_)));
  digest_->Update(frame.data(), n);
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
    if (ZSTD_isError(frame_size) && ZSTD_getErrorCode(frame_size) != ZSTD_error_srcSize_wrong) {
      return Status::Corruption(path + ": frame at byte " + std::to_string(pos) + " is damaged (" +
                                ZSTD_getErrorName(frame_size) + ")");
    }
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
    // A frame's records are kept only once all of them read, so a damaged frame adds none.
    std::vector<nlohmann::json> frame_records;
    size_t line_start = 0;
    while (line_start < text.size()) {
      size_t nl = text.find('\n', line_start);
      if (nl == std::string::npos) return Status::Corruption(where + ": record without newline");
      nlohmann::json record;
      LOCKSTEP_RETURN_IF_ERROR(ParseJson(text.substr(line_start, nl - line_start), where, &record));
      if (first) {
        LOCKSTEP_RETURN_IF_ERROR(CheckHeader(record, path));
        out->header = std::move(record);
        first = false;
      } else {
        LOCKSTEP_RETURN_IF_ERROR(CheckRecord(record, where));
        frame_records.push_back(std::move(record));
      }
      line_start = nl + 1;
    }
    pos += frame_size;
    for (auto& record : frame_records) {
      if (record["kind"] == "step") {
        out->records.push_back(std::move(record));
        out->record_frame_ends.push_back(pos);
      } else {
        out->events.push_back({std::move(record), out->records.size()});
      }
    }
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
