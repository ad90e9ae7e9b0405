// Helpers shared by the inspect test binaries: safetensors files written by hand, the HF
// fixture unpacked once, small Lockstep runs made by the lockstep binary, and audits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"
#include "inspect/audit.h"

namespace lockstep {
namespace test {

// A safetensors file from a header (as JSON text) and a data section. `claimed_len`, when
// not -1, is written as the header length instead of the true one.
void WriteSafetensors(const std::string& path, const std::string& header, const std::string& data,
                      int64_t claimed_len = -1);

// ReadSafetensorsHeader's status for the file at `path`.
Status HeaderOf(const std::string& path);

// Expects Corruption with `needle` in its message.
void ExpectCorrupt(const Status& st, const std::string& needle);

// The HF fixture (real transformers 5.17 output), unpacked once per test binary.
std::string HfRun();

// A small Lockstep run made by the lockstep binary in `dir`: 16 steps, saves at 4, 8, 12, 16.
std::string Train(const std::string& dir, const std::string& extra = "", int hidden_size = 16);

// AuditRun on `dir`, expected to succeed.
AuditReport Audit(const std::string& dir, bool verify = false);

// The checkpoint at `step` in `r`; a test failure when there is none.
const CheckpointAudit& Find(const AuditReport& r, int64_t step);

// True when one of `lines` (an audit's problems or notes) holds `needle`.
bool Mentions(const std::vector<std::string>& lines, const std::string& needle);

}  // namespace test
}  // namespace lockstep
