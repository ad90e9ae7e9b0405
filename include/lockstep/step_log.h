// Reading a Lockstep step log from C++: the file `steps.jsonl.zst` that the reference
// trainer, StepRecorder (lockstep/recorder.h) and the Python package's Recorder write in a
// run directory, one record per optimizer step (lockstep/step_record.h) in zstd frames that
// each carry a checksum. The format: formats/doc/step_log_format.md.
//
//   lockstep::StepLogContents log;
//   lockstep::Status st = lockstep::ReadStepLog("runs/a/steps.jsonl.zst", &log);
//   if (!st.ok()) { std::cerr << st.ToString() << "\n"; return 1; }
//   for (const lockstep::StepRecord& r : log.records) std::cout << r.step << " " << r.loss << "\n";
//
// nlohmann::json is part of this API (see lockstep/step_record.h): the header and the
// events are JSON objects, as stored.
// Part of Lockstep's installed API (find_package(Lockstep), target Lockstep::formats).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lockstep/status.h"
#include "lockstep/step_record.h"

namespace lockstep {

// A non-step record (for example a resume) and where it sits among the step records.
struct StepLogEvent {
  nlohmann::json record;    // as stored: {"kind": "resume", "after_step": 10, ...}
  size_t steps_before = 0;  // how many step records precede it
};

// A log as read: its header, its records and events, and where its frames end.
struct StepLogContents {
  nlohmann::json header;                    // the first record: the writer, its settings ("training_args")
  std::vector<StepRecord> records;          // the step records, in file order
  std::vector<StepLogEvent> events;         // the other records (resumes), in file order
  std::vector<uint64_t> frame_ends;         // byte offset after each complete frame
  std::vector<uint64_t> record_frame_ends;  // per record: the end of the frame holding it
  uint64_t valid_bytes = 0;                 // bytes covered by complete frames
  uint64_t file_bytes = 0;
  bool truncated_tail = false;  // the file ends inside a frame
  // Every frame read carries zstd's content checksum (XXH64), which decompressing checked:
  // what lets --verify call the log's bytes verified.
  bool frames_checksummed = true;
  std::string tail_problem;  // why the tail was not read, when truncated_tail
};

// Reads the whole log at `path`. A truncated last frame (a writer killed mid-write) is
// accepted and reported in `*out` (truncated_tail, tail_problem). Damage anywhere else (a
// frame whose checksum fails, bad JSON, a header without the log's magic, a record field of
// the wrong type) is Corruption naming the file, the offset and the field, and `*out` then
// holds what precedes the damaged frame (valid_bytes ends where it begins). NotFound when
// there is no file; IOError when it cannot be read.
Status ReadStepLog(const std::string& path, StepLogContents* out);

// Reads only the header frame: cheap, for telling a Lockstep step log from another file
// (Corruption when `path` is not one).
Status ReadStepLogHeader(const std::string& path, nlohmann::json* header);

}  // namespace lockstep
