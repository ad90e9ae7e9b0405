// The step log: one JSON record per optimizer step, in zstd frames.
// Format: doc/step_log_format.md. `zstdcat steps.jsonl.zst | jq` reads it.
//
// Records are buffered and written as one zstd frame every `records_per_frame` records, at
// every Flush() and at Close(), by a background thread that also serializes them. A killed process loses at most the
// unflushed records; the reader accepts a truncated last frame and reports it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/checksum.h"
#include "formats/file_names.h"
#include "formats/status.h"
#include "formats/step_record.h"
#include "lockstep/step_log.h"  // StepLogContents, ReadStepLog

struct ZSTD_CCtx_s;  // zstd.h stays out of this header

namespace lockstep {

constexpr char kStepLogMagic[] = "LOCKSTEP-STEPLOG";  // the header record's "magic"
// The header's key naming what recorded a user's own loop (StepRecorder, the Python
// Recorder, the HF callback); the reference trainer's header has none.
constexpr char kStepLogRecorderKey[] = "recorder";
constexpr int kStepLogFormatVersion = 1;

struct StepLogOptions {
  int records_per_frame = 16;  // frame boundaries are deterministic: same run, same bytes
  int compression_level = 3;
};

// Replaces every binary value in `record` (json::binary: a raw RNG state) with its digest,
// {"size": n, "xxh3_128": hex}: what the log stores for it. The writer does this off the
// training loop; a replay does it to compare a step with its logged record.
void DigestRawStates(nlohmann::json* record);  // (a typed record's: formats/step_record.h)

// Where a checkpoint's step ends in the step log: the log's first `bytes` bytes hold every
// step up to it, the last of their frames begins at `last_frame`, and `xxh3_128` is the
// digest of those bytes (empty in checkpoints written before it was recorded).
struct StepLogPosition {
  uint64_t bytes = 0;
  uint64_t last_frame = 0;
  std::string xxh3_128;
};

class StepLogWriter {
 public:
  // Creates (truncating) the log at `path`; its first frame holds `header` with the
  // "kind", "magic" and "format_version" fields added.
  static Status Create(const std::string& path, const nlohmann::json& header, const StepLogOptions& options,
                       std::unique_ptr<StepLogWriter>* out);

  // Opens an existing log for appending after its first `keep_bytes` bytes, which must end
  // on a frame boundary (StepLogContents::valid_bytes or a frame end). Those bytes are read
  // once: when `expected_xxh3` is not empty, Corruption unless their XXH3-128 equals it
  // (damage anywhere before the cut is found before the log is continued). Bytes after
  // the cut are then removed and the file fsynced.
  static Status OpenForAppend(const std::string& path, uint64_t keep_bytes, const std::string& expected_xxh3,
                              const StepLogOptions& options, std::unique_ptr<StepLogWriter>* out);
  ~StepLogWriter();  // flushes, best effort; nothing after a failure

  // Queues `record` (its "kind" is set to "step") and returns: a background thread
  // serializes it, and writes a frame when `records_per_frame` records are buffered, so
  // the training loop pays for a move and a queue push. Taken by value: a caller done with
  // its record moves it in, and nothing is copied. A binary value (json::binary, such as a
  // raw RNG state) is stored as its digest {"size": n, "xxh3_128": hex}, hashed off the
  // loop. A failed background write is returned by the next call (the writer refuses all
  // work after it, as below).
  Status Append(nlohmann::json record);
  // The same for a typed record: the encoder builds its JSON (StepRecordJson), so the loop
  // pays for a move and a queue push only. The bytes written are Append(StepRecordJson(r)).
  Status Append(StepRecord record);

  // Queues an event record between steps, such as {"kind": "resume", ...}. `kind` must
  // not be "step" or "header". Readers list events apart from the step records.
  Status AppendEvent(const std::string& kind, const nlohmann::json& body);

  // Waits until every queued record is serialized (and every full frame written); writes
  // nothing else. A caller that counts its own I/O calls (a save under a crash probe)
  // drains first, so no background write falls among them.
  Status Drain();

  // Drains, then writes the buffered records as one frame. With `sync`, also fsyncs the
  // file (used when a checkpoint commits, so the log durably covers it).
  Status Flush(bool sync = false);

  // Flushes, fsyncs and closes. After any failed write or fsync every call returns that
  // failure and the file has been cut back to its last whole frame.
  Status Close();

  // XXH3-128 of the file's first bytes_written() bytes: a checkpoint stores it so a resume
  // can prove the log it continues is the log the checkpoint saw.
  std::string digest() const;

  // The file's size after the frames written so far (buffered records not included), and
  // where the last of those frames begins. A checkpoint stores both right after Flush(), so
  // a resume can check the one frame that ends at its step and cut the log there in O(1).
  // Each waits for queued records first, so the figures are never a moment's snapshot.
  uint64_t bytes_written() const;
  uint64_t last_frame_start() const;
  // All three at once: what a checkpoint records (StepLogPosition).
  StepLogPosition position() const { return {bytes_written(), last_frame_start(), digest()}; }

 private:
  StepLogWriter(std::string path, int fd, const StepLogOptions& options);
  void EncodeLoop();  // the background thread
  // A record queued as JSON, or typed (a step, made JSON by the encoder).
  using Queued = std::variant<nlohmann::json, StepRecord>;
  Status Enqueue(Queued step);  // a step record, for the encoder
  void Encode(Queued& queued);  // serializes one record; frames when full
  Status WriteFrame(const std::string& text);
  Status Writable() const;
  Status Fail(Status st);
  void WaitIdle() const;  // until the queue is empty and the encoder parked
  void StopEncoder();

  std::string path_;
  int fd_;
  StepLogOptions options_;
  // Owned by the encoder while it runs, by the caller while it is parked (WaitIdle).
  std::string pending_;
  int pending_records_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t last_frame_start_ = 0;
  std::unique_ptr<Xxh3Stream> digest_;  // of bytes [0, bytes_written_)
  // One compression context and output buffer for every frame: making a context per frame
  // cost more than compressing the frame.
  std::unique_ptr<ZSTD_CCtx_s, void (*)(ZSTD_CCtx_s*)> cctx_;
  std::string frame_;
  // Guarded by mu_: the queue, the encoder's state, and the first failed write or fsync.
  mutable std::mutex mu_;
  mutable std::condition_variable work_cv_, idle_cv_;
  std::vector<Queued> queue_;
  bool busy_ = false, stop_ = false;
  mutable bool draining_ = false;  // a caller waits for the queue to empty
  Status failure_;
  std::thread encoder_;
};

// Reads the single frame in bytes [begin, end) of the log into `*out`: its step records and
// events (frame_ends and valid_bytes relative to the file). Corruption when the range is not
// exactly one intact frame.
Status ReadStepLogFrame(const std::string& path, uint64_t begin, uint64_t end, StepLogContents* out);

// Whether the last record read is a step record (not an event after it).
inline bool EndsWithStep(const StepLogContents& log) {
  return !log.records.empty() && (log.events.empty() || log.events.back().steps_before < log.records.size());
}

}  // namespace lockstep
