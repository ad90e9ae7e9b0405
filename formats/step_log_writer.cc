// StepLogWriter: the step log's writer (format: doc/step_log_format.md).
//
// Recording must cost the training loop next to nothing (lockstep bench measures it), so
// the loop only moves each record into a queue. One encoder thread serializes records in
// order, compresses a frame every `records_per_frame` records and writes it; the bytes are
// exactly those a synchronous writer would produce. The caller takes over the encoder's
// state only while it is parked (WaitIdle): Flush and Close write the last partial frame
// themselves, so a checkpoint's log position, digest and fsync are exact.
#include <fcntl.h>
#include <unistd.h>

#include <zstd.h>

#include "formats/checksum.h"
#include "formats/io.h"
#include "formats/json_file.h"
#include "formats/step_log.h"

namespace lockstep {
namespace {

constexpr std::chrono::milliseconds kEncodeEvery(20);  // the encoder's own pace
constexpr size_t kMaxQueued = 4096;                    // then the loop wakes it

}  // namespace

void DigestRawStates(nlohmann::json* value) {
  if (value->is_binary()) {
    const auto& bytes = value->get_binary();
    *value = {{step_key::kStateSize, bytes.size()}, {step_key::kStateDigest, Xxh3Hex(bytes.data(), bytes.size())}};
  } else if (value->is_structured()) {
    for (auto& child : *value) DigestRawStates(&child);
  }
}

StepLogWriter::StepLogWriter(std::string path, int fd, const StepLogOptions& options)
    : path_(std::move(path)),
      fd_(fd),
      options_(options),
      digest_(new Xxh3Stream),
      cctx_(ZSTD_createCCtx(), [](ZSTD_CCtx* c) { ZSTD_freeCCtx(c); }) {
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, options_.compression_level);
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_contentSizeFlag, 1);
  encoder_ = std::thread([this] { EncodeLoop(); });
}

StepLogWriter::~StepLogWriter() {
  (void)Close();
  StopEncoder();
}

void StepLogWriter::StopEncoder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (encoder_.joinable()) encoder_.join();
}

Status StepLogWriter::Create(const std::string& path, const nlohmann::json& header, const StepLogOptions& options,
                             std::unique_ptr<StepLogWriter>* out) {
  int fd = -1;
  LOCKSTEP_RETURN_IF_ERROR(io::Create(path, &fd));
  std::unique_ptr<StepLogWriter> w(new StepLogWriter(path, fd, options));
  nlohmann::json h = header;
  h["kind"] = "header";
  h["magic"] = kStepLogMagic;
  h["format_version"] = kStepLogFormatVersion;
  LOCKSTEP_RETURN_IF_ERROR(w->WriteFrame(DumpJson(h) + "\n"));  // the encoder is parked: nothing queued
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
  record["kind"] = "step";
  return Enqueue(Queued(std::move(record)));
}

Status StepLogWriter::Append(StepRecord record) { return Enqueue(Queued(std::move(record))); }

Status StepLogWriter::Enqueue(Queued step) {
  bool backlog = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    LOCKSTEP_RETURN_IF_ERROR(Writable());
    queue_.push_back(std::move(step));
    backlog = queue_.size() >= kMaxQueued;
  }
  // The encoder wakes on its own timer: waking it from here costs the loop a system call,
  // and on a busy machine the woken encoder preempts the loop on its own core. Only a
  // backlog (an encoder starved of CPU) wakes it.
  if (backlog) work_cv_.notify_one();
  return Status::Ok();
}

Status StepLogWriter::AppendEvent(const std::string& kind, const nlohmann::json& body) {
  if (kind == "step" || kind == "header" || kind.empty()) {
    return Status::InvalidArgument(path_ + ": '" + kind + "' is not an event kind");
  }
  nlohmann::json r = body;
  r["kind"] = kind;
  std::lock_guard<std::mutex> lock(mu_);
  LOCKSTEP_RETURN_IF_ERROR(Writable());
  queue_.push_back(std::move(r));  // encoded with the next frame's records, or at a drain
  return Status::Ok();
}

void StepLogWriter::EncodeLoop() {
  // The encoder paces itself (every kEncodeEvery) at normal priority. Running it at idle
  // priority measured no better here (1.6% against 1.8% of an mlp step, within noise), and
  // an idle thread can starve on a busy machine, stalling a checkpoint's drain.
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait_for(lock, kEncodeEvery,
                      [this] { return stop_ || (draining_ && !queue_.empty()) || queue_.size() >= kMaxQueued; });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    std::vector<Queued> batch;
    batch.swap(queue_);
    busy_ = true;
    lock.unlock();
    for (auto& record : batch) Encode(record);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

// Runs on the encoder. After a failure the records are dropped: the log ends at its last
// whole frame and every call reports the failure.
void StepLogWriter::Encode(Queued& queued) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) return;
  }
  if (auto* typed = std::get_if<StepRecord>(&queued)) {
    nlohmann::json j = StepRecordJson(std::move(*typed));
    j["kind"] = "step";
    queued = std::move(j);
  }
  nlohmann::json& record = std::get<nlohmann::json>(queued);
  DigestRawStates(&record);
  pending_ += DumpJson(record);
  pending_ += '\n';
  const auto kind = record.find("kind");
  if (kind == record.end() || *kind != "step" || ++pending_records_ < options_.records_per_frame) return;
  (void)WriteFrame(pending_);
  pending_.clear();
  pending_records_ = 0;
}

void StepLogWriter::WaitIdle() const {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() && !busy_) return;
  draining_ = true;
  work_cv_.notify_one();
  idle_cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  draining_ = false;
}

Status StepLogWriter::Writable() const {  // mu_ held
  if (!failure_.ok()) return failure_;
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": step log is closed");
  return Status::Ok();
}

Status StepLogWriter::Drain() {
  WaitIdle();
  std::lock_guard<std::mutex> lock(mu_);
  return Writable();
}

Status StepLogWriter::Flush(bool sync) {
  LOCKSTEP_RETURN_IF_ERROR(Drain());
  if (!pending_.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(WriteFrame(pending_));
    pending_.clear();
    pending_records_ = 0;
  }
  if (sync) return Fail(io::Fsync(fd_, path_));
  return Status::Ok();
}

Status StepLogWriter::Close() {
  WaitIdle();
  if (fd_ < 0) {
    std::lock_guard<std::mutex> lock(mu_);
    return failure_;
  }
  Status failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failed = failure_;
  }
  Status st = failed.ok() ? Flush(/*sync=*/true) : failed;
  ::close(fd_);
  std::lock_guard<std::mutex> lock(mu_);
  fd_ = -1;
  return st;
}

std::string StepLogWriter::digest() const {
  WaitIdle();
  return digest_->HexDigest();
}
uint64_t StepLogWriter::bytes_written() const {
  WaitIdle();
  return bytes_written_;
}
uint64_t StepLogWriter::last_frame_start() const {
  WaitIdle();
  return last_frame_start_;
}

// After a failed write or fsync the file may end inside a frame, and what reached the
// disk is unknown: the writer refuses all further work (a later frame after a partial one
// would be unreadable) and cuts the file back to its last whole frame.
Status StepLogWriter::Fail(Status st) {
  if (st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  if (!failure_.ok()) return st;
  failure_ = st;
  (void)io::Truncate(fd_, bytes_written_, path_);
  return st;
}

// Compresses `text` into one frame (with content size and checksum) and writes it with a
// single write(2), so a crash leaves at worst a prefix of this frame at the end of the file.
Status StepLogWriter::WriteFrame(const std::string& text) {
  if (!cctx_) return Fail(Status::IOError(path_ + ": zstd: cannot create a compression context"));
  frame_.resize(ZSTD_compressBound(text.size()));
  const size_t n = ZSTD_compress2(cctx_.get(), &frame_[0], frame_.size(), text.data(), text.size());
  if (ZSTD_isError(n)) return Fail(Status::IOError(path_ + ": zstd: " + ZSTD_getErrorName(n)));
  LOCKSTEP_RETURN_IF_ERROR(Fail(io::Write(fd_, frame_.data(), n, path_)));
  digest_->Update(frame_.data(), n);
  last_frame_start_ = bytes_written_;
  bytes_written_ += n;
  return Status::Ok();
}

}  // namespace lockstep
