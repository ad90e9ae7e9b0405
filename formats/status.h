// Status: the outcome of an operation on the formats, as a value (after leveldb).
// Errors never fly through the format layer as exceptions; every message names the file
// and the problem so a user can act on it without a debugger.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace lockstep {

class Status {
 public:
  enum class Code { kOk, kNotFound, kCorruption, kInvalidArgument, kIOError, kBusy, kInternal };

  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
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

// Returns early from the calling function when `expr` yields a non-ok Status.
#define LOCKSTEP_RETURN_IF_ERROR(expr) \
  do {                                 \
    ::lockstep::Status _st = (expr);   \
    if (!_st.ok()) return _st;         \
  } while (0)

}  // namespace lockstep
