#include "cli/inspect_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "cli/verify_progress.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/run_layout.h"
#include "formats/step_record.h"
#include "formats/torch_archive.h"
#include "inspect/audit.h"
#include "inspect/coverage.h"
#include "inspect/show.h"
#include "inspect/step_log_view.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

struct InspectFlags {
  std::string path;
  bool verify = false;
  bool json = false;
  ShowOptions show;
  std::string head = "5";
  std::string steps;                         // step log: --steps A:B
  std::string fields = "loss,lr,grad_norm";  // step log: --fields
};

std::vector<std::string> SplitFields(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    if (comma > at) out.push_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// InvalidArgument when a flag of `flags` was given for a path it does not apply to
// (`what`: "a run directory"), naming the flag and what it is for.
Status RefuseFlags(const CLI::App& cmd, std::initializer_list<const char*> flags, const std::string& path,
                   const std::string& what) {
  for (const char* flag : flags) {
    const CLI::Option* opt = cmd.get_option_no_throw(flag);
    if (opt != nullptr && opt->count() > 0) {
      return Status::InvalidArgument(std::string(flag) + " does not apply to " + path + ", " + what + " (" + flag +
                                     ": " + opt->get_description() + ")");
    }
  }
  return Status::Ok();
}

int InspectStepLog(const InspectFlags& flags) {
  const auto fail = [&](const Status& st) { return ReportFailure("inspect", st, flags.json, IoRole::kInput); };
  StepLogViewOptions options;
  if (!flags.steps.empty()) {
    Status st = ParseStepRange(flags.steps, &options);
    if (!st.ok()) return fail(st);
  }
  options.fields = SplitFields(flags.fields);
  if (options.fields.empty()) return fail(Status::InvalidArgument("--fields: name at least one field, e.g. loss,lr"));
  json report;
  Status st = ViewStepLog(flags.path, options, &report);
  if (!st.ok()) return fail(st);
  if (flags.json)
    std::printf("%s\n", DumpJson(report, 2).c_str());
  else
    std::fputs(StepLogViewText(report).c_str(), stdout);
  return report["truncated_tail"].get<bool>() ? kExitFailed : kExitOk;
}

std::string Text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", v.get<double>());
    return buf;
  }
  return DumpJson(v);
}

std::string Bytes(uint64_t b) {
  char buf[32];
  if (b >= (1u << 20))
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1048576.0);
  else if (b >= 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

// `paths` with `prefix` + "/" taken off each, comma-separated.
std::string Listed(const std::vector<std::string>& paths, const std::string& prefix) {
  std::string out;
  for (const auto& p : paths) {
    const bool inside = !prefix.empty() && p.rfind(prefix + "/", 0) == 0;
    out += (out.empty() ? "" : ", ") + (inside ? p.substr(prefix.size() + 1) : p);
  }
  return out;
}

// "1 file", "8 files".
std::string Files(size_t n) { return std::to_string(n) + (n == 1 ? " file" : " files"); }

// What --verify read of some files: how many a checksum covered, and which have none.
void PrintVerification(const FileVerification& v, const std::string& prefix, const char* indent) {
  if (!v.verified.empty()) std::printf("%sverified by checksum: %s\n", indent, Files(v.verified.size()).c_str());
  if (!v.unverifiable.empty()) {
    std::printf("%snot verifiable, no checksum (read whole; a changed byte in them cannot be seen): %s\n", indent,
                Listed(v.unverifiable, prefix).c_str());
  }
}

void PrintAudit(const AuditReport& r) {
  std::printf("run %s: %zu checkpoint%s\n\n", r.run_dir.c_str(), r.checkpoints.size(),
              r.checkpoints.size() == 1 ? "" : "s");
  size_t width = 18;
  for (const auto& c : r.checkpoints) width = std::max(width, c.name.size());
  const int w = static_cast<int>(width);
  std::printf("  %-10s %-*s %-10s %-11s %10s\n", "step", w, "checkpoint", "layout", "status", "size");
  size_t verified = 0, unverifiable = r.verification.unverifiable.size();
  for (const auto& c : r.checkpoints) {
    std::printf("  %-10s %-*s %-10s %-11s %10s\n", c.step < 0 ? "-" : std::to_string(c.step).c_str(), w, c.name.c_str(),
                c.layout.c_str(), c.status.c_str(), Bytes(c.bytes).c_str());
    for (const auto& p : c.problems) std::printf("      ! %s\n", p.c_str());
    for (const auto& n : c.notes) std::printf("      note: %s\n", n.c_str());
    if (r.verified && !c.verified) {
      std::printf("      not read by --verify: the cheap checks found it %s\n", c.status.c_str());
    } else if (r.verified) {
      PrintVerification(c.verification, c.name, "      ");
    }
    verified += c.verification.verified.size();
    unverifiable += c.verification.unverifiable.size();
  }
  verified += r.verification.verified.size();
  const std::string resumable = !r.latest_resumable.empty() ? r.latest_resumable
                                : r.not_checked() > 0       ? "not known (checkpoints in no layout Lockstep knows)"
                                                            : "(none)";
  std::printf("\n  %-24s %s\n", "latest resumable", resumable.c_str());
  if (r.findings.contains("best_model_checkpoint")) {
    const json& b = r.findings["best_model_checkpoint"];
    std::printf("  %-24s %s (%s)\n", "best checkpoint", Text(b["in_this_run"]).c_str(),
                b["exists"].get<bool>() ? "exists" : "MISSING");
  }
  const json& rot = r.findings.value("rotation", json::object());
  std::printf("  %-24s %s\n", "save_total_limit",
              rot.value("save_total_limit", json()).is_null()
                  ? "not set"
                  : (Text(rot["save_total_limit"]) + (rot.value("holds", true) ? ", holds" : ", VIOLATED") +
                     (rot["best_step"].is_null() ? "" : " (best checkpoint-" + Text(rot["best_step"]) + " protected)"))
                        .c_str());
  if (r.findings.contains("final_model")) {
    const json& m = r.findings["final_model"];
    std::printf("  %-24s %s, %s tensors (%s)\n", "final model (top level)", Text(m["file"]).c_str(),
                Text(m["tensors"]).c_str(), Text(m["status"]).c_str());
  }
  if (r.findings.contains("step_log")) {
    const json& l = r.findings["step_log"];
    std::string worlds;
    for (const auto& w : l.value("world_size_changes", json::array())) {
      worlds += ", world size " + Text(w[event_key::kWorldSizeFrom]) + " -> " + Text(w[event_key::kWorldSizeTo]) +
                " after step " + Text(w[event_key::kAfterStep]);
    }
    const std::string resumes = Text(l["resumes"]) + (l["resumes"] == 1 ? " resume" : " resumes");
    std::printf("  %-24s %s records to step %s, %s%s%s\n", "step log", Text(l["records"]).c_str(),
                Text(l["last_step"]).c_str(), resumes.c_str(), worlds.c_str(),
                l["uncovered_checkpoints"].empty() ? ", covers every checkpoint" : ", MISSES checkpoints");
  }
  if (r.findings.contains("coverage")) std::printf("%s", CoverageText(r.findings["coverage"]).c_str());
  if (r.verified && !r.verification.empty()) {
    std::printf("  run files (outside the checkpoints)\n");
    PrintVerification(r.verification, "", "    ");
  }
  for (const auto& n : r.notes) std::printf("  note: %s\n", n.c_str());
  for (const auto& p : r.problems) std::printf("  ! %s\n", p.c_str());
  if (!r.healthy()) {
    std::printf("\nPROBLEMS FOUND\n");
    return;
  }
  if (!r.verified) {
    std::printf("\nhealthy (sizes, headers and pickles checked; --verify reads every byte against its checksum)\n");
  } else {
    std::printf("\nhealthy: %s verified by checksum", Files(verified).c_str());
    if (unverifiable > 0) std::printf("; %s with no checksum: read whole, not verified", Files(unverifiable).c_str());
    std::printf("\n");
  }
  if (const size_t own = r.not_checked(); own > 0) {
    std::printf(
        "not judged: %zu checkpoint%s in no layout Lockstep knows (a script's own format, or a save cut "
        "short): files read as data; whether each is whole is not known\n",
        own, own == 1 ? "" : "s");
  }
}

void PrintShow(const json& r) {
  std::printf("%s: %s\n", Text(r["kind"]).c_str(), Text(r["path"]).c_str());
  if (r.contains("manifest")) std::printf("  %-24s %s\n", "manifest", Text(r["manifest"]).c_str());
  if (r.contains("trainer_state")) {
    std::printf("\ntrainer state\n");
    for (const auto& [k, v] : r["trainer_state"].items()) {
      if (k != "last_log") std::printf("  %-24s %s\n", k.c_str(), Text(v).c_str());
    }
    for (const auto& e : r["trainer_state"].value("last_log", json::array()))
      std::printf("  log  %s\n", DumpJson(e).c_str());
  }
  if (r.contains("training_args")) {
    std::printf("\ntraining args (%zu)\n", r["training_args"].size());
    for (const char* k : {"model", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
                          "num_train_epochs", "max_steps", "seed", "lr_scheduler_type", "save_total_limit"}) {
      if (r["training_args"].contains(k)) std::printf("  %-28s %s\n", k, Text(r["training_args"][k]).c_str());
    }
  }
  if (r.contains("rng")) {
    std::printf("\nrng\n  %-26s %-13s %-34s %s\n", "generator", "kind", "xxh3_128", "position");
    for (const auto& g : r["rng"]) {
      std::string pos = g.contains("mt19937_next") ? "seed " + Text(g["initial_seed"]) + ", mt19937 next " +
                                                         Text(g["mt19937_next"]) + ", left " + Text(g["mt19937_left"])
                        : g.contains("offset") ? "seed " + Text(g["seed"]) + ", offset " + Text(g["offset"])
                                               : "";
      std::printf("  %-26s %-13s %-34s %s\n", Text(g["generator"]).c_str(), Text(g["kind"]).c_str(),
                  Text(g["xxh3_128"]).c_str(), pos.c_str());
    }
  }
  if (r.contains("sampler")) std::printf("\nsampler\n  %s\n", DumpJson(r["sampler"]).c_str());
  std::printf("\ntensors (%zu)\n  %-44s %-9s %-14s %9s %10s %12s %12s %12s %12s %4s %4s\n", r["tensors"].size(), "name",
              "dtype", "shape", "numel", "bytes", "min", "max", "mean", "std", "nan", "inf");
  for (const auto& t : r["tensors"]) {
    std::string name =
        t["file"].get<std::string>() == kModelFile || t["file"].get<std::string>() == hf::kSafetensorsFile
            ? Text(t["name"])
            : Text(t["file"]) + ":" + Text(t["name"]);
    std::printf("  %-44s %-9s %-14s %9s %10s %12s %12s %12s %12s %4s %4s\n", name.c_str(), Text(t["dtype"]).c_str(),
                DumpJson(t["shape"]).c_str(), Text(t["numel"]).c_str(), Text(t["bytes"]).c_str(),
                Text(t["min"]).c_str(), Text(t["max"]).c_str(), Text(t["mean"]).c_str(), Text(t["std"]).c_str(),
                Text(t["nan"]).c_str(), Text(t["inf"]).c_str());
  }
  if (r.contains("optimizer")) {
    std::printf("\noptimizer state (%zu parameters)\n  %-40s %8s %13s %13s\n", r["optimizer"].size(), "param", "step",
                "|exp_avg| max", "exp_avg_sq max");
    for (const auto& p : r["optimizer"]) {
      const json step = p.contains("step") ? p["step"].value("value", json()) : json();
      std::printf("  %-40s %8s %13s %13s\n", Text(p["param"]).c_str(), Text(step).c_str(),
                  p.contains("exp_avg") ? Text(p["exp_avg"]["max"]).c_str() : "-",
                  p.contains("exp_avg_sq") ? Text(p["exp_avg_sq"]["max"]).c_str() : "-");
    }
  }
  if (r.contains("pickles")) {
    std::printf("\npickles (evaluated as data, never executed)\n");
    for (const auto& p : r["pickles"]) {
      std::printf("  %-20s %zu entries, %s tensors, names %zu globals\n", Text(p["file"]).c_str(),
                  p.value("entries", json::array()).size(), Text(p.value("tensors", json())).c_str(),
                  p.value("globals", json::array()).size());
    }
  }
  if (r.contains("values")) {
    std::printf("\n%s values: first %s, last %s\n", Text(r["values"]["name"]).c_str(),
                DumpJson(r["values"]["first"]).c_str(), DumpJson(r["values"]["last"]).c_str());
  }
  if (r.contains("audit")) {
    const json& a = r["audit"];
    std::printf("\naudit: %s (%s)\n", Text(a["status"]).c_str(), Text(a["layout"]).c_str());
    for (const auto& n : a["notes"]) std::printf("  note: %s\n", Text(n).c_str());
    if (a.contains("verification")) {
      FileVerification v;
      v.verified = a["verification"]["verified"].get<std::vector<std::string>>();
      v.unverifiable = a["verification"]["unverifiable"].get<std::vector<std::string>>();
      PrintVerification(v, "", "  ");
    }
  }
  for (const auto& p : r["problems"]) std::printf("\n! %s", Text(p).c_str());
  if (!r["problems"].empty()) std::printf("\n");
}

// One checkpoint (a directory, or a torch.save file such as a Lightning .ckpt) audited by
// its layout's rules beside what ShowPath shows, and with --verify any file read whole
// against the checksum its format carries: report["audit"], its problems in report["problems"].
void AuditShown(const std::string& path, bool is_dir, bool verify, json* report) {
  const std::string name = fs::path(path).filename().string();
  CheckpointAudit c;
  if (is_dir || IsTorchArchiveName(name)) {
    c = AuditCheckpoint(path);
  } else {
    c.status = "complete";
    c.layout = "file";
  }
  c.name = is_dir ? "" : name;  // what it verifies is named relative to the path inspected
  // Showing a Lockstep checkpoint checks every file against its manifest: a mismatch found
  // there is the audit's too, never "complete" beside it.
  const bool shown_mismatch = report->value("manifest", json()) == "MISMATCH";
  if ((verify || shown_mismatch) && c.problems.empty()) VerifyCheckpoint(path, {}, &c);
  json audit = {{"layout", c.layout}, {"status", c.status}, {"problems", c.problems}, {"notes", c.notes}};
  if (verify)
    audit["verification"] = {{"verified", c.verification.verified}, {"unverifiable", c.verification.unverifiable}};
  for (const auto& p : c.problems) {
    const json& known = (*report)["problems"];
    if (std::find(known.begin(), known.end(), json(p)) == known.end()) (*report)["problems"].push_back(p);
  }
  (*report)["audit"] = audit;
}

}  // namespace

std::function<int()> AddInspectCommand(CLI::App* app) {
  auto flags = std::make_shared<InspectFlags>();
  CLI::App* cmd = app->add_subcommand(
      "inspect",
      "Audit a run directory (every checkpoint's status, the latest resumable one, the best checkpoint,\n"
      "rotation, step-log coverage, leftovers), or show a checkpoint or tensor file: trainer state, args,\n"
      "RNG, sampler, tensor statistics, optimizer state. Lockstep and Hugging Face layouts; pickles are\n"
      "evaluated as data, never executed. Or read a step log (steps.jsonl.zst): header, resumes, overrides and a\n"
      "table of steps. Exit 0 healthy, 1 problems found, 2 unreadable input.");
  cmd->add_option("path", flags->path,
                  "Run directory, checkpoint directory, .h5/.safetensors/.pt file, or step log (steps.jsonl.zst)")
      ->required();
  cmd->add_flag("--verify", flags->verify, "Audit: recompute every checksum / read every byte, streaming");
  cmd->add_option("--filter", flags->show.filter, "Show: only tensors whose name matches this regex");
  cmd->add_option("--tensor", flags->show.tensor, "Show: print this tensor's first and last values");
  cmd->add_option("--head", flags->head, "Show: how many first and last values --tensor prints")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--steps", flags->steps, "Step log: the steps to list, A:B inclusive (A:, :B, A)")->type_name("A:B");
  cmd->add_option("--fields", flags->fields, "Step log: the record fields to list, comma-separated")
      ->type_name("LIST")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  return [flags, cmd]() {
    const auto fail = [&](const Status& st) { return ReportFailure("inspect", st, flags->json, IoRole::kInput); };
    int64_t head = 0;
    Status parsed = ParseWholeNumber("--head", flags->head, 0, &head);
    if (!parsed.ok()) return fail(parsed);
    flags->show.head = head;
    std::error_code ec;
    const bool is_dir = fs::is_directory(flags->path, ec);
    if (Status there = CheckInputPath(flags->path); !there.ok()) return fail(there);
    if (!is_dir && HasSuffix(flags->path, ".zst")) {
      Status st = RefuseFlags(*cmd, {"--filter", "--tensor", "--head", "--verify"}, flags->path, "a step log");
      return st.ok() ? InspectStepLog(*flags) : fail(st);
    }
    if (is_dir && (IsRunDirectory(flags->path) || CheckpointLayout(flags->path).empty())) {
      Status refused = RefuseFlags(*cmd, {"--filter", "--tensor", "--head", "--steps", "--fields"}, flags->path,
                                   "a directory audited as a run (inspect one of its checkpoints or its step log)");
      if (!refused.ok()) return fail(refused);
      AuditOptions options;
      options.verify = flags->verify;
      VerifyProgress progress(stderr, ::isatty(STDERR_FILENO), [] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
      });
      options.progress = [&](uint64_t done, uint64_t total, const std::string& checkpoint) {
        progress.Update(done, total, checkpoint);
      };
      AuditReport report;
      Status st = AuditRun(flags->path, options, &report);
      progress.Finish();
      if (!st.ok()) return fail(st);
      if (flags->json)
        std::printf("%s\n", DumpJson(AuditReportJson(report), 2).c_str());
      else
        PrintAudit(report);
      return report.healthy() ? kExitOk : kExitFailed;
    }
    Status refused = RefuseFlags(*cmd, {"--steps", "--fields"}, flags->path, "not a step log");
    if (!refused.ok()) return fail(refused);
    json report;
    Status st = ShowPath(flags->path, flags->show, &report);
    if (!st.ok()) return fail(st);
    AuditShown(flags->path, is_dir, flags->verify, &report);
    if (flags->json)
      std::printf("%s\n", DumpJson(report, 2).c_str());
    else
      PrintShow(report);
    return report["problems"].empty() ? kExitOk : kExitFailed;
  };
}

}  // namespace lockstep
