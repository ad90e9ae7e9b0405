// Status inside Lockstep: the public class (include/lockstep/status.h, its contract) and the
// early return every fallible internal call uses. Errors never fly through the format layer
// as exceptions.
#pragma once

#include "lockstep/status.h"

namespace lockstep {

// Returns early from the calling function when `expr` yields a non-ok Status.
#define LOCKSTEP_RETURN_IF_ERROR(expr) \
  do {                                 \
    ::lockstep::Status _st = (expr);   \
    if (!_st.ok()) return _st;         \
  } while (0)

}  // namespace lockstep
