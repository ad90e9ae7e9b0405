// lockstep::Status: the outcome of every fallible call in Lockstep's API, as a value (after
// leveldb's). Nothing in the API throws: a call that fails returns a Status whose code says
// what kind of failure it was, to branch on, and whose message names the file and the
// problem, for a user to act on without a debugger.
//
//   lockstep::Status st = lockstep::ReadStepLog("runs/a/steps.jsonl.zst", &log);
//   if (st.IsNotFound()) ...            // no such file
//   else if (!st.ok()) std::cerr << st.ToString() << "\n";
//
// Part of Lockstep's installed API (find_package(Lockstep), target Lockstep::formats).
#pragma once

#include <string>
#include <utility>

namespace lockstep {

class Status {
 public:
  enum class Code { kOk, kNotFound, kCorruption, kInvalidArgument, kIOError, kBusy, kInternal };

  Status() = default;  // ok
  static Status Ok() { return Status(); }
  // What was asked for is not there: a file, a step a log has no record of.
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  // A file is not what its format says it must be (a damaged frame, a field of the wrong type).
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  // The caller's request is wrong (a setting out of range, a call out of order).
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  // The operating system refused a read, a write or an fsync (a full disk, a permission).
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  // Another process holds what this one needs (a run directory's writer lock).
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  // An exception caught where no Status was expected (a LibTorch error, out of memory, a
  // bug): neither the input's fault nor the disk's, so no caller reads it as either.
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsInternal() const { return code_ == Code::kInternal; }
  Code code() const { return code_; }
  // Empty when ok.
  const std::string& message() const { return message_; }

  // The same code with another message: for a caller that names a file better (a scratch
  // copy's path replaced by the original's). OK stays OK.
  Status WithMessage(std::string msg) const { return ok() ? Status() : Status(code_, std::move(msg)); }

  // "Corruption: run/checkpoint-3/manifest.json: ..." ; "OK" when ok.
  std::string ToString() const;
  // "ok", "not_found", "corruption", "invalid_argument", "io_error", "busy", "internal": for
  // JSON output.
  const char* CodeName() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace lockstep
