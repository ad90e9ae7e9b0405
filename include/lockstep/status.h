// lockstep::Status: every fallible call returns one, with a code to branch on (IsNotFound,
// IsCorruption, ...) and a message naming the file and the problem. Never an exception.
// The contract is in formats/status.h.
#pragma once

#include "formats/status.h"
