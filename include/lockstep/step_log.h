// Reading a Lockstep step log (steps.jsonl.zst) from C++: ReadStepLog gives its header,
// records and events, and says whether a killed writer left a truncated last frame.
// Target Lockstep::formats. The format: formats/doc/step_log_format.md; the contract of
// each call: formats/step_log.h.
#pragma once

#include "formats/step_log.h"
#include "lockstep/status.h"
