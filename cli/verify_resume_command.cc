#include "cli/verify_resume_command.h"

#include "cli/training_commands.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "cli/train_main.h"
#include "cli/training_flags.h"
#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "replay/verify_cmd.h"
#include "replay/verify_resume.h"
#include "report/report.h"
#include "trainer/progress.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

std::string SelfExecutable() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  path[n] = '\0';
  return path;
}

std::string InterruptionsText(const VariantReport& v) {
  if (v.interruptions.empty()) return "none";
  if (v.name == "crash-points") return std::to_string(v.interruptions.size()) + " crashes at I/O calls";
  if (v.name.rfind("world-", 0) == 0) return v.interruptions[0].how;
  if (v.name != "kill-random") {
    if (v.interruptions.size() == 1) return "stopped at " + std::to_string(v.interruptions[0].last_step);
    return std::to_string(v.interruptions.size()) + " stops, " + std::to_string(v.interruptions.front().last_step) +
           ".." + std::to_string(v.interruptions.back().last_step);
  }
  int in_save = 0;
  for (const auto& in : v.interruptions) in_save += in.during_checkpoint_write;
  return std::to_string(v.interruptions.size()) + " SIGKILLs, " + std::to_string(in_save) + " in a save";
}

void PrintReport(const VerifyResumeReport& r) {
  std::printf("\nverify-resume: %lld steps; reference %s (%.1f s); children trained %.1f s in all%s\n\n",
              static_cast<long long>(r.max_steps), r.reference_dir.c_str(), r.reference_seconds, r.children_training_s,
              r.fault != "none" ? ("; FAULT INJECTED (testing only): " + r.fault).c_str() : "");
  std::printf("%-18s %-28s %-15s %-24s %-9s %s\n", "variant", "interruptions", "step records", "final checkpoint",
              "results", "verdict");
  for (const auto& v : r.variants) {
    const RunDiff& d = v.diff;
    char steps[32], ckpt[48];
    std::snprintf(steps, sizeof(steps), "%lld/%lld equal", static_cast<long long>(d.steps_matching),
                  static_cast<long long>(d.reference_steps));
    // The final checkpoint: the checkpoint-N of the highest step the runs were compared on.
    const CheckpointSummary* last = nullptr;
    int64_t last_step = -1;
    for (const auto& c : d.checkpoints) {
      int64_t step = 0;
      if (ParseCheckpointDirName(c.name, &step) && step > last_step) last = &c, last_step = step;
    }
    if (last == nullptr) {
      std::snprintf(ckpt, sizeof(ckpt), "(none saved)");
    } else if (last->tensors_compared == 0 && !last->identical) {
      std::snprintf(ckpt, sizeof(ckpt), "%s absent", last->name.c_str());
    } else {
      std::snprintf(ckpt, sizeof(ckpt), "%lld/%lld tensors equal",
                    static_cast<long long>(last->tensors_compared - last->tensors_differing),
                    static_cast<long long>(last->tensors_compared));
    }
    std::printf("%-18s %-28s %-15s %-24s %-9s %s\n", v.name.c_str(), InterruptionsText(v).c_str(), steps, ckpt,
                d.results.empty() ? "equal" : "DIFFER", VariantVerdict(v).c_str());
  }
  for (const auto& v : r.variants) {
    if (v.name == "kill-random" || v.name == "crash-points") {
      std::printf("\n%s (--kill-seed %llu%s):\n", v.name.c_str(), static_cast<unsigned long long>(r.kill_seed),
                  v.name == "kill-random" ? "; the plan is seeded, the kill timing is not" : "; replays exactly");
      for (size_t i = 0; i < v.interruptions.size(); ++i) {
        const Interruption& in = v.interruptions[i];
        std::printf("  %s %zu: %s, last step %lld%s", v.name == "crash-points" ? "crash" : "kill", i + 1,
                    in.how.c_str(), static_cast<long long>(in.last_step),
                    in.during_checkpoint_write ? ", inside the checkpoint write" : "");
        for (const auto& l : in.leftovers) std::printf(", left %s", l.c_str());
        std::printf("; %s\n", in.resumed_at > 0 ? ("resumed at step " + std::to_string(in.resumed_at)).c_str()
                                                : "no checkpoint yet: started afresh");
        for (const auto& s : in.skipped) std::printf("    skipped %s\n", s.c_str());
      }
    }
    if (v.diff.first_divergence) {
      std::printf("\n%s: first divergence at %s\n", v.name.c_str(), v.diff.first_divergence->ToString().c_str());
    }
    if (!v.note.empty()) std::printf("%s: %s\n", v.name.c_str(), v.note.c_str());
  }
  std::printf("\nverdict: %s\n", VerifyResumeVerdict(r).c_str());
}

// --world A:B, each.
Status ParseWorlds(const VerifyFlags& flags, std::vector<std::pair<int64_t, int64_t>>* worlds) {
  for (const auto& text : flags.world) {
    const size_t colon = text.find(':');
    int64_t from = 0, to = 0;
    if (colon == std::string::npos) return Status::InvalidArgument("--world " + text + ": expected A:B");
    LOCKSTEP_RETURN_IF_ERROR(ParseWholeNumber("--world", text.substr(0, colon), 1, &from));
    LOCKSTEP_RETURN_IF_ERROR(ParseWholeNumber("--world", text.substr(colon + 1), 1, &to));
    if (from > 1024 || to > 1024) return Status::InvalidArgument("--world takes at most 1024 ranks");
    if (from == to)
      return Status::InvalidArgument("--world " + text + ": the same size; nothing changes at the resume");
    worlds->emplace_back(from, to);
  }
  return Status::Ok();
}

// `verify-resume --cmd`: the user's own trainer (replay/verify_cmd.h).
int VerifyCommand(const VerifyFlags& flags, const TrainingArgs& args) {
  const auto fail = [&](const Status& st) { return ReportFailure("verify-resume", st, flags.json); };
  if (flags.cmd.empty() || flags.resume_arg.empty()) {
    return fail(Status::InvalidArgument("--cmd and --resume-arg go together: the command, and how it resumes"));
  }
  VerifyCmdOptions o;
  o.command = flags.cmd;
  o.resume_arg = flags.resume_arg;
  o.work_dir = args.output_dir;
  int64_t kills = 2, seed = 0;
  Status st =
      flags.kill_random.empty() ? Status::Ok() : ParseWholeNumber("--kill-random", flags.kill_random, 0, &kills);
  if (st.ok()) st = ParseWholeNumber("--kill-seed", flags.kill_seed, 0, &seed);
  if (st.ok() && kills > 1000) st = Status::InvalidArgument("--kill-random takes at most 1000");
  if (st.ok()) st = ParseWorlds(flags, &o.worlds);
  if (st.ok() && !flags.nproc_per_node.empty())
    st = ParseWholeNumber("--nproc_per_node", flags.nproc_per_node, 1, &o.world);
  if (st.ok() && flags.nproc_per_node.empty() && !o.worlds.empty()) o.world = o.worlds.front().first;
  std::error_code ec;
  if (st.ok() && fs::exists(o.work_dir) && !fs::is_empty(o.work_dir, ec) && !args.overwrite_output_dir) {
    st = Status::InvalidArgument(o.work_dir +
                                 " is not empty: choose another --output_dir or pass --overwrite_output_dir true");
  }
  if (st.ok() && !flags.report.empty()) st = CheckReportPath(flags.report);
  if (!st.ok()) return fail(Status::InvalidArgument(st.message()));
  o.kill_random = static_cast<int>(kills);
  o.kill_seed = static_cast<uint64_t>(seed);
  if (!flags.quiet) o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  VerifyCmdReport report;
  st = VerifyResumeCommand(o, &report);
  if (!st.ok()) return fail(st);
  if (flags.json) {
    std::printf("%s\n", DumpJson(VerifyCmdReportJson(report), 2).c_str());
  } else {
    std::fputs(VerifyCmdReportText(report).c_str(), stdout);
  }
  if (!flags.report.empty()) {
    std::string html;
    st = RenderVerifyCmdReport(report, o.work_dir, &html);
    if (st.ok()) st = WriteReportFile(flags.report, html);
    if (!st.ok()) return fail(st);
    if (!flags.json) std::printf("report: %s\n", flags.report.c_str());
  }
  return report.bit_exact() ? kExitOk : kExitFailed;
}

}  // namespace

std::function<int()> AddVerifyResumeCommand(CLI::App* app) {
  auto flags = std::make_shared<VerifyFlags>();
  DefineVerifyResumeCommand(app, flags.get());
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("verify-resume", st, flags->json); };
    VerifyResumeOptions options;
    options.args.output_dir = "lockstep_verify";
    Status st = CollectTrainingArgs(flags->training, &options.args);
    if (st.ok() && (!flags->cmd.empty() || !flags->resume_arg.empty())) return VerifyCommand(*flags, options.args);
    if (st.ok() && !ParseResumeFault(flags->fault, &options.fault)) {
      st = Status::InvalidArgument("--fault-inject " + flags->fault +
                                   ": expected one of rng, sampler, optimizer, scheduler, loss-sums");
    }
    for (const auto& text : flags->interrupt_at) {
      int64_t step = 0;
      if (st.ok()) st = ParseWholeNumber("--interrupt-at", text, 1, &step);
      options.interrupt_at.push_back(step);
    }
    if (st.ok()) st = ParseWorlds(*flags, &options.worlds);
    int64_t kills = 0, crashes = 0, seed = 0, nproc = 1;
    if (st.ok() && !flags->nproc_per_node.empty()) {
      st = ParseWholeNumber("--nproc_per_node", flags->nproc_per_node, 1, &nproc);
      if (st.ok() && nproc > 1024) st = Status::InvalidArgument("--nproc_per_node takes at most 1024");
    } else if (st.ok() && !options.worlds.empty()) {
      nproc = options.worlds.front().first;  // --world A:B runs the reference at A
    }
    if (st.ok() && !flags->kill_random.empty()) st = ParseWholeNumber("--kill-random", flags->kill_random, 1, &kills);
    if (st.ok() && !flags->crash_points.empty()) {
      st = ParseWholeNumber("--crash-points", flags->crash_points, 1, &crashes);
    }
    if (st.ok()) st = ParseWholeNumber("--kill-seed", flags->kill_seed, 0, &seed);
    if (st.ok() && (kills > 10000 || crashes > 10000)) {
      st = Status::InvalidArgument("--kill-random and --crash-points take at most 10000");
    }
    if (st.ok() && !flags->report.empty()) st = CheckReportPath(flags->report);
    if (!st.ok()) return fail(Status::InvalidArgument(st.message()));
    options.lockstep_binary = SelfExecutable();
    // A CPU child is a fork of this process (LibTorch loaded once); CUDA cannot survive a
    // fork, so a GPU run execs its children. LOCKSTEP_NO_ZYGOTE=1 execs them always.
    const char* no_zygote = std::getenv("LOCKSTEP_NO_ZYGOTE");
    if (!CudaIsAvailable() && (no_zygote == nullptr || std::string(no_zygote) != "1")) {
      options.run_child = [](const std::vector<std::string>& argv) { return TrainingMain(argv); };
    }
    options.every_checkpoint = flags->every_checkpoint;
    options.kill_random = static_cast<int>(kills);
    options.crash_points = static_cast<int>(crashes);
    options.kill_seed = static_cast<uint64_t>(seed);
    options.nproc_per_node = static_cast<int>(nproc);
    if (nproc > 1) options.args.world_size = nproc;  // the plan (steps, saves) is the job's
    // Every child runs with the same thread count (it decides the bits), whatever their
    // environment: the one given, or this process's default, written into their config.
    if (!options.args.num_threads) options.args.num_threads = DefaultNumThreads();
    const bool tty = ProgressDisplay::StderrIsTerminal();
    auto line_open = std::make_shared<bool>(false);
    if (!flags->quiet) {
      options.progress = [tty, line_open](const std::string& line, bool transient) {
        if (transient && !tty) return;
        std::fprintf(stderr, "%s%s%s", tty ? "\r\033[K" : "", line.c_str(), transient ? "" : "\n");
        *line_open = transient;
        std::fflush(stderr);
      };
    }
    VerifyResumeReport report;
    st = VerifyResume(options, &report);
    if (*line_open) std::fprintf(stderr, "\r\033[K");
    if (!st.ok()) return fail(st);
    if (flags->json) {
      std::printf("%s\n", DumpJson(VerifyResumeReportJson(report), 2).c_str());
    } else {
      PrintReport(report);
    }
    if (!flags->report.empty()) {
      std::string html;
      st = RenderVerifyResumeReport(report, &html);
      if (st.ok()) st = WriteReportFile(flags->report, html);
      if (!st.ok()) return fail(st);
      if (!flags->json) std::printf("report: %s\n", flags->report.c_str());
    }
    return report.bit_exact() ? kExitOk : kExitFailed;
  };
}

}  // namespace lockstep
