#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include "diff/run_side.h"
#include "diff/tensor_diff.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "inspect/audit.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// The last step a run reached: its last step record, else its last log_history entry.
int64_t LastStep(const RunSide& side) {
  if (side.has_log) return side.log.records.empty() ? 0 : side.log.records.back().step;
  int64_t last = 0;
  for (const auto& e : side.log_history) last = std::max(last, IntField(e, "step", 0));
  return last;
}

// `has`'s last checkpoint, which `lacks` does not hold though it ran that far: a run that
// ended without its final save (killed inside it) is not the run that made it.
void LastCheckpointLacked(const RunSide& has, const RunSide& lacks, bool reference_lacks, RunDiff* out) {
  if (has.checkpoint_steps.empty()) return;
  const int64_t step = has.checkpoint_steps.back();
  const std::string name = CheckpointDirName(step);
  if (std::binary_search(lacks.checkpoint_steps.begin(), lacks.checkpoint_steps.end(), step) ||
      LastStep(lacks) < step || CheckpointLayout(has.dir + "/" + name).empty()) {
    return;
  }
  CheckpointSummary s{name, false, false, 0, 0, std::nullopt};
  s.first = MakeDivergence(step, cause::kWeights, name, "(directory)", reference_lacks ? "(absent)" : "present",
                           reference_lacks ? "present" : "(absent)");
  out->checkpoints.push_back(s);
}

// Whether two JSON documents differ only in numbers the tolerance accepts.
bool JsonWithinTolerance(const json& a, const json& b, const Tolerance& tol) {
  for (const auto& d : JsonDifferences(a, b, 1000)) {
    if (!NumbersWithinTolerance(d.a, d.b, tol)) return false;
  }
  return true;
}

}  // namespace

// The final model an HF output directory holds at its top level (trainer.save_model()),
// tensor by tensor, as one more checkpoint row.
Status CompareTopLevelModels(const RunSide& a, const RunSide& b, RunDiff* out) {
  const std::string wa = ModelWeightsFile(a.dir), wb = ModelWeightsFile(b.dir);
  if (wa.empty() || wb.empty() || CheckpointLayout(a.dir) == "lockstep") return Status::Ok();
  CheckpointDiff diff;
  LOCKSTEP_RETURN_IF_ERROR(DiffCheckpoints(a.dir + "/" + wa, b.dir + "/" + wb, out->tolerance, &diff));
  const int64_t step = a.checkpoint_steps.empty() ? 0 : a.checkpoint_steps.back();
  CheckpointSummary s{"final model (" + wa + ")", diff.identical(), diff.within_tolerance(), 0, 0, std::nullopt};
  s.tensors_compared = static_cast<int64_t>(diff.tensors.size());
  for (const auto& t : diff.tensors) {
    if (t.identical()) continue;
    if (!s.first) s.first = TensorDivergence(t, step, wa);
    ++s.tensors_differing;
  }
  if (!s.first && !diff.state.empty()) {
    s.first =
        MakeDivergence(step, cause::kWeights, wa, diff.state.front().field, diff.state.front().a, diff.state.front().b);
  }
  out->checkpoints.push_back(s);
  return Status::Ok();
}

namespace {

// The first file one checkpoint holds and the other lacks, as a divergence of cause missing
// at `step`; hidden files are left out, and with `ranks_apart` the generator files of ranks
// (saved by jobs of different sizes: WorldsApart).
std::optional<Divergence> MissingFile(const std::string& a_dir, const std::string& b_dir, int64_t step,
                                      const std::string& name, bool ranks_apart = false) {
  const auto listed = [ranks_apart](const std::string& dir) {
    std::set<std::string> files;
    for (const auto& f : FilesBelow(dir)) {
      const std::string base = fs::path(f).filename().string();
      if (base[0] != '.' && !(ranks_apart && IsRngStateFile(base, kRngStateJsonExt))) files.insert(f);
    }
    return files;
  };
  const std::set<std::string> fa = listed(a_dir), fb = listed(b_dir);
  for (const auto& f : fa) {
    if (!fb.count(f)) return MakeDivergence(step, cause::kMissing, name, f, "present", "(absent)");
  }
  for (const auto& f : fb) {
    if (!fa.count(f)) return MakeDivergence(step, cause::kMissing, name, f, "(absent)", "present");
  }
  return std::nullopt;
}

// The world size a Lockstep checkpoint was saved at (its training_args.json; 1 when it says none).
int64_t SavedWorldSize(const std::string& checkpoint_dir) {
  json args;
  if (!ReadJsonFile(checkpoint_dir + "/" + kTrainingArgsJsonFile, &args).ok() || !args.is_object()) return 1;
  const json w = args.value("world_size", json());
  return w.is_number_integer() ? w.get<int64_t>() : 1;
}

// Two world_invariant runs' checkpoints saved by jobs of different sizes (a resume at another
// size): each rank saved its generators, and every rank's are rank 0's (the resume checks
// they are alike), so rank 0's files are compared and the others are not. The sizes, or
// nullopt when the checkpoints were saved alike or the runs are not world_invariant.
std::optional<std::pair<int64_t, int64_t>> WorldsApart(const RunSide& a, const RunSide& b, const std::string& a_dir,
                                                       const std::string& b_dir) {
  if (!a.world_invariant || !b.world_invariant) return std::nullopt;
  const int64_t wa = SavedWorldSize(a_dir), wb = SavedWorldSize(b_dir);
  if (wa == wb) return std::nullopt;
  return std::make_pair(wa, wb);
}

// Rank 0's generator file of each side, compared; the other ranks' left out, and said so.
std::optional<Divergence> CompareRankZeroGenerators(const std::string& a_dir, const std::string& b_dir, int64_t step,
                                                    const std::string& name, std::pair<int64_t, int64_t> worlds,
                                                    RunDiff* out) {
  const std::string fa = RngStateFileName(0, worlds.first, kRngStateJsonExt),
                    fb = RngStateFileName(0, worlds.second, kRngStateJsonExt);
  const std::string note = name + " (and any later checkpoint saved so) was saved by " + std::to_string(worlds.first) +
                           " rank(s) in the reference and " + std::to_string(worlds.second) +
                           " in the candidate (world_invariant): the generators "
                           "compared are rank 0's (" +
                           fa + " with " + fb +
                           "); the other ranks' files were not compared (each is rank 0's, which a resume checks)";
  const bool said = std::any_of(out->notes.begin(), out->notes.end(), [](const std::string& n) {
    return n.find(" (and any later checkpoint saved so) was saved by ") != std::string::npos;
  });
  if (!said) out->notes.push_back(note);
  json ja, jb;
  const Status ra = ReadJsonFile(a_dir + "/" + fa, &ja), rb = ReadJsonFile(b_dir + "/" + fb, &jb);
  if (!ra.ok() || !rb.ok()) {
    return MakeDivergence(step, cause::kMissing, name, ra.ok() ? fb : fa, ra.ok() ? "present" : "(absent)",
                          rb.ok() ? "present" : "(absent)");
  }
  if (ja == jb) return std::nullopt;
  const auto d = FirstJsonDifference(ja, jb, fa);
  return MakeDivergence(step, cause::kRng, name + "/" + fa, d ? d->path : fa, d ? Abbreviate(d->a) : "",
                        d ? Abbreviate(d->b) : "");
}

// A checkpoint that differs where the step logs agree may not have been trained apart at
// all: its bytes may have changed after the save. Each side is read as `inspect --verify`
// reads it, each file against the checksum its format carries; the first side whose file
// fails is the cause (damaged), named with the file, rather than a divergence of training.
std::optional<Divergence> DamagedSide(const std::string& a_dir, const std::string& b_dir, int64_t step,
                                      const std::string& name) {
  for (const bool reference : {true, false}) {
    const Status st = FindCorruption(reference ? a_dir : b_dir);
    if (st.ok()) continue;
    const std::string problem = st.message(), sound = "(verifies)";
    return MakeDivergence(step, cause::kDamaged, name, "checksum", reference ? problem : sound,
                          reference ? sound : problem);
  }
  return std::nullopt;
}

// The key a JSON path ends in: "log_history[4].train_loss" -> "train_loss".
std::string LastKey(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

std::optional<JsonDifference> FirstDifferenceBesideBookkeeping(const json& a, const json& b, const std::string& where,
                                                               bool keeps_loss_sums, RunDiff* out) {
  for (const auto& d : JsonDifferences(a, b, 1000)) {
    if (keeps_loss_sums || LastKey(d.path) != "train_loss") return d;
    static const std::string kWhy =
        ": resume bookkeeping, not a divergence. The Hugging Face Trainer averages train_loss from "
        "_total_loss_scalar, which starts at 0 in every process and is not saved in a checkpoint, so a resumed run's "
        "train_loss covers only the steps it trained itself";
    const bool said = std::any_of(out->notes.begin(), out->notes.end(),
                                  [](const std::string& n) { return n.find(kWhy) != std::string::npos; });
    if (!said) {
      out->notes.push_back("train_loss differs (reference " + Abbreviate(d.a) + ", candidate " + Abbreviate(d.b) +
                           ", first in " + where + (where.find(d.path) == std::string::npos ? " " + d.path : "") + ")" +
                           kWhy);
    }
  }
  return std::nullopt;
}

Status CompareCommonCheckpoints(const RunSide& a, const RunSide& b, RunDiff* out) {
  for (int64_t step : a.checkpoint_steps) {
    if (!std::binary_search(b.checkpoint_steps.begin(), b.checkpoint_steps.end(), step)) continue;
    const std::string name = CheckpointDirName(step);
    // A trainer's own checkpoint format (a layout Lockstep does not know) is compared file by
    // file, as DiffCheckpoints reads any directory.
    CheckpointDiff diff;
    LOCKSTEP_RETURN_IF_ERROR(DiffCheckpoints(a.dir + "/" + name, b.dir + "/" + name, out->tolerance, &diff));
    // Its training_args.json restates the settings, which the run diff reports on their own.
    diff.state.erase(std::remove_if(diff.state.begin(), diff.state.end(),
                                    [](const StateDifference& d) { return d.file == kTrainingArgsJsonFile; }),
                     diff.state.end());
    // A recorded loop's own format: what its step records hold (generators, counters) the
    // step logs compared; its other values differing is a note, its tensors are the weights.
    if (a.has_log && b.has_log && CheckpointLayout(a.dir + "/" + name).empty() && !diff.state.empty()) {
      const StateDifference& d = diff.state.front();
      out->notes.push_back(name + "/" + d.file + ": " + d.field + " differs (reference " + d.a + ", candidate " + d.b +
                           "), a value the script saved beside its tensors; the step records, which hold the "
                           "generators and the schedule, were compared on their own");
      diff.state.clear();
    }
    const auto worlds = WorldsApart(a, b, a.dir + "/" + name, b.dir + "/" + name);
    if (worlds) {  // per-rank files and the per-device batch differ by the job's size, by design
      diff.state.erase(std::remove_if(diff.state.begin(), diff.state.end(),
                                      [](const StateDifference& d) {
                                        return IsRngStateFile(d.file, kRngStateJsonExt) ||
                                               (d.file == kTrainerStateFile && d.field == "train_batch_size");
                                      }),
                       diff.state.end());
    }
    CheckpointSummary s{name, diff.identical(), diff.within_tolerance(), 0, 0, std::nullopt};
    s.tensors_compared = static_cast<int64_t>(diff.tensors.size());
    // A file one side lacks explains the tensors it held: its absence comes first.
    s.first = MissingFile(a.dir + "/" + name, b.dir + "/" + name, step, name, worlds.has_value());
    if (!s.first && worlds)
      s.first = CompareRankZeroGenerators(a.dir + "/" + name, b.dir + "/" + name, step, name, *worlds, out);
    if (s.first) s.identical = s.within_tolerance = false;
    for (const auto& t : diff.tensors) {
      if (t.identical()) continue;
      if (!s.first) s.first = TensorDivergence(t, step, name + "/" + (t.file_a.empty() ? t.file_b : t.file_a));
      ++s.tensors_differing;
    }
    if (!s.first && !diff.state.empty()) {
      const auto& d = diff.state.front();
      s.first = MakeDivergence(step, cause::kState, name + "/" + d.file, d.field, d.a, d.b);
    }
    const bool logs_agree_here = !out->first_divergence || out->first_divergence->step > step;
    if (!s.identical && logs_agree_here) {
      if (auto damaged = DamagedSide(a.dir + "/" + name, b.dir + "/" + name, step, name)) s.first = damaged;
    }
    out->checkpoints.push_back(s);
  }
  LastCheckpointLacked(a, b, /*reference_lacks=*/false, out);
  LastCheckpointLacked(b, a, /*reference_lacks=*/true, out);
  // Checkpoints of other names, by name: a directory file by file, a file (Lightning's .ckpt)
  // tensor by tensor; one the other run lacks is a difference.
  for (const auto& ca : a.named_checkpoints) {
    const auto cb = std::find_if(b.named_checkpoints.begin(), b.named_checkpoints.end(),
                                 [&](const RunCheckpoint& c) { return c.name == ca.name; });
    const int64_t step = std::max<int64_t>(ca.step, 0);
    CheckpointSummary s{ca.name, false, false, 0, 0, std::nullopt};
    if (cb == b.named_checkpoints.end()) {
      s.first = MakeDivergence(step, cause::kMissing, ca.name, "(the checkpoint)", "present", "(absent)");
      out->checkpoints.push_back(s);
      continue;
    }
    CheckpointDiff diff;
    LOCKSTEP_RETURN_IF_ERROR(DiffCheckpoints(ca.path, cb->path, out->tolerance, &diff));
    s.identical = diff.identical();
    s.within_tolerance = diff.within_tolerance();
    s.tensors_compared = static_cast<int64_t>(diff.tensors.size());
    if (!ca.is_file) s.first = MissingFile(ca.path, cb->path, step, ca.name);
    if (s.first) s.identical = s.within_tolerance = false;
    for (const auto& t : diff.tensors) {
      if (t.identical()) continue;
      if (!s.first) s.first = TensorDivergence(t, step, ca.name + (ca.is_file ? "" : "/" + t.file_a));
      ++s.tensors_differing;
    }
    if (!s.first && !diff.state.empty()) {
      const auto& d = diff.state.front();
      s.first = MakeDivergence(step, cause::kState, ca.name + "/" + d.file, d.field, d.a, d.b);
    }
    out->checkpoints.push_back(s);
  }
  for (const auto& cb : b.named_checkpoints) {
    const bool in_a = std::any_of(a.named_checkpoints.begin(), a.named_checkpoints.end(),
                                  [&](const RunCheckpoint& c) { return c.name == cb.name; });
    if (in_a) continue;
    CheckpointSummary s{cb.name, false, false, 0, 0, std::nullopt};
    s.first = MakeDivergence(std::max<int64_t>(cb.step, 0), cause::kMissing, cb.name, "(the checkpoint)", "(absent)",
                             "present");
    out->checkpoints.push_back(s);
  }
  return Status::Ok();
}

Status CompareResults(const RunSide& a, const RunSide& b, RunDiff* out, bool* within) {
  *within = true;
  const int64_t final_step = a.has_log ? static_cast<int64_t>(a.log.records.size()) : 0;
  for (const char* name : {kTrainResultsFile, kEvalResultsFile, kAllResultsFile, kTrainerStateFile}) {
    const std::string pa = a.dir + "/" + name, pb = b.dir + "/" + name;
    const bool has_a = fs::exists(pa), has_b = fs::exists(pb);
    if (!has_a && !has_b) continue;
    if (has_a != has_b) {
      out->results.push_back(MakeDivergence(final_step, cause::kState, name, "(file)", has_a ? "present" : "(absent)",
                                            has_b ? "present" : "(absent)"));
      *within = false;
      continue;
    }
    json ja, jb;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(pa, &ja));
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(pb, &jb));
    ja = NormalizeRunJson(name, ja);
    jb = NormalizeRunJson(name, jb);
    if (a.world_invariant && b.world_invariant && std::string(name) == kTrainerStateFile &&
        ja.value("train_batch_size", json()) != jb.value("train_batch_size", json())) {
      // Per device: it differs by the job's size; the job's batches are in the step records.
      ja.erase("train_batch_size");
      jb.erase("train_batch_size");
      out->notes.push_back(std::string(kTrainerStateFile) +
                           ": train_batch_size (per device) differs with the world size; the samples of every step "
                           "were compared in the step records");
    }
    if (auto d = FirstDifferenceBesideBookkeeping(ja, jb, name, a.keeps_loss_sums && b.keeps_loss_sums, out)) {
      out->results.push_back(
          MakeDivergence(final_step, cause::kState, name, d->path, Abbreviate(d->a), Abbreviate(d->b)));
      *within = *within && JsonWithinTolerance(ja, jb, out->tolerance);
    }
  }
  return Status::Ok();
}

}  // namespace lockstep
