// The checkpoint audits of inspect/audit.cc, one per layout, each by its writer's own rules:
// Lockstep's manifest and checksums, the Hugging Face Trainer's files (with PEFT, FSDP and
// DeepSpeed's parts) and a bare torch.distributed.checkpoint directory. Internal to
// lockstep_inspect: the public contract is audit.h.
#pragma once

#include <string>

#include "formats/checksum.h"
#include "inspect/audit.h"

namespace lockstep {
namespace audit_detail {

// Records `problem` on `c` and raises its status to `status` ("incomplete", "unreadable",
// "corrupt"): corrupt outranks unreadable, which outranks incomplete.
void Fail(CheckpointAudit* c, const std::string& status, const std::string& problem);

// The cheap checks of each layout: the files its writer commits are there, with their
// sizes; the small JSON files and every tensor file's header parse.
void AuditLockstep(const std::string& dir, CheckpointAudit* c);
void AuditHf(const std::string& dir, CheckpointAudit* c);
void AuditDcp(const std::string& dir, CheckpointAudit* c);

// The model weights `weights` of `dir` (its ModelWeightsFile, not empty) read as a whole:
// headers, shards, sizes.
void AuditWeights(const std::string& dir, const std::string& weights, CheckpointAudit* c);

// --verify, after the cheap checks passed: Lockstep checkpoints have every checksum
// recomputed; HF keeps no checksums, so every byte is read.
void VerifyCheckpoint(const std::string& dir, const ByteProgress& progress, CheckpointAudit* c);

}  // namespace audit_detail
}  // namespace lockstep
