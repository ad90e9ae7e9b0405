#include "formats/status.h"

namespace lockstep {

std::string Status::ToString() const {
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound: " + message_;
    case Code::kCorruption:
      return "Corruption: " + message_;
    case Code::kInvalidArgument:
      return "InvalidArgument: " + message_;
    case Code::kIOError:
      return "IOError: " + message_;
    case Code::kBusy:
      return "Busy: " + message_;
    case Code::kInternal:
      return "Internal: " + message_;
  }
  return message_;
}

const char* Status::CodeName() const {
  switch (code_) {
    case Code::kOk:
      return "ok";
    case Code::kNotFound:
      return "not_found";
    case Code::kCorruption:
      return "corruption";
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kIOError:
      return "io_error";
    case Code::kBusy:
      return "busy";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace lockstep
