// The checkpoint audits of inspect/audit.cc, one per layout, each by its writer's own rules:
// Lockstep's manifest and checksums, the Hugging Face Trainer's files (with PEFT, FSDP and
// DeepSpeed's parts), a torch.distributed.checkpoint directory, accelerate's save_state, a
// Lightning .ckpt, a single torch.save file, and a script's own format. Internal to
// lockstep_inspect: the public contract is audit.h.
#pragma once

#include <string>
#include <vector>

#include "formats/checksum.h"
#include "formats/torch_archive.h"
#include "inspect/audit.h"

namespace lockstep {
namespace audit_detail {

// Status names, worst last (Fail keeps the worst).
constexpr char kComplete[] = "complete";
constexpr char kNotChecked[] = "not checked";  // a script's own format: Lockstep cannot tell
constexpr char kIncomplete[] = "incomplete";
constexpr char kUnreadable[] = "unreadable";
constexpr char kCorrupt[] = "corrupt";

// Records `problem` on `c` and raises its status to `status` (incomplete, unreadable,
// corrupt): corrupt outranks unreadable, which outranks incomplete.
void Fail(CheckpointAudit* c, const std::string& status, const std::string& problem);

// The cheap checks of each layout: the files its writer commits are there, with their
// sizes; the small JSON files, every tensor file's header and every pickle parse. `path` is
// a directory but for AuditLightning and AuditTorchSave, which take one file.
void AuditLockstep(const std::string& dir, CheckpointAudit* c);
void AuditHf(const std::string& dir, CheckpointAudit* c);
void AuditDcp(const std::string& dir, CheckpointAudit* c);
void AuditAccelerate(const std::string& dir, CheckpointAudit* c);
void AuditLightning(const std::string& file, CheckpointAudit* c);
void AuditTorchSave(const std::string& file, CheckpointAudit* c);
void AuditOwn(const std::string& dir, CheckpointAudit* c);

// The model weights `weights` of `dir` (its ModelWeightsFile, not empty) read as a whole:
// headers, shards, sizes.
void AuditWeights(const std::string& dir, const std::string& weights, CheckpointAudit* c);

// Reads the torch.save archive at `path` as data (its directory, its pickle, every tensor's
// storage bounds): a problem when it does not read, and one for every global its pickle
// names that would run code when loaded (pickle_safety.h). `archive` gets what was read.
bool AuditTorchArchive(const std::string& path, CheckpointAudit* c, TorchArchive* archive = nullptr);

}  // namespace audit_detail
}  // namespace lockstep
