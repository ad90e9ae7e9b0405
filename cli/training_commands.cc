#include "cli/training_commands.h"

#include "cli/tolerance_flags.h"

namespace lockstep {

CLI::App* DefineTrainCommand(CLI::App* app, TrainFlags* flags) {
  CLI::App* cmd =
      app->add_subcommand("train",
                          "Train the built-in reference model with Hugging Face Trainer semantics.\n"
                          "Every optimizer step is recorded in OUTPUT_DIR/steps.jsonl.zst; checkpoints go to\n"
                          "OUTPUT_DIR/checkpoint-<step>. With no flags, runs a short built-in default.");
  cmd->add_flag("--json", flags->json, "Print the result as JSON on stdout");
  cmd->add_flag("--quiet", flags->quiet, "No progress display");
  flags->resume_option = cmd->add_option(
      "--resume", flags->resume,
      "Resume: alone, from the newest valid checkpoint in output_dir; or from the given checkpoint dir");
  flags->resume_option->expected(0, 1)->type_name("[PATH]");
  cmd->add_flag("--resume-override", flags->resume_override,
                "Resume even though run-deciding settings changed; later step records are marked resume_override");
  cmd->add_option("--stop-after-step", flags->stop_after_step,
                  "Stop after this step as a preempted run would, with a checkpoint at it")
      ->type_name("STEP");
  cmd->add_option("--fault-inject", flags->fault,
                  "TESTING ONLY: on resume, deliberately skip restoring one piece of state "
                  "(rng, sampler, optimizer, scheduler, loss-sums) to show verify-resume catches it")
      ->group("Testing only");
  cmd->add_option("--nproc_per_node", flags->nproc_per_node,
                  "Data-parallel: start N rank processes on this machine (Gloo on loopback), as torchrun "
                  "--nproc_per_node does; the effective batch is N times larger")
      ->type_name("N");
  cmd->add_option("--event-fd", flags->event_fd, "write progress events to this fd (verify-resume)")
      ->group("");  // internal: hidden from --help
  cmd->add_option("--crash-at-io", flags->crash_at_io, "SIGKILL itself after the K-th I/O call of save S (S:K)")
      ->group("");  // internal: verify-resume --crash-points
  cmd->add_flag("--no-step-log", flags->no_step_log, "record no steps (lockstep bench: the cost of recording)")
      ->group("");  // internal: needs --save_strategy no
  AddTrainingFlags(cmd, &flags->training);
  return cmd;
}

CLI::App* DefineVerifyResumeCommand(CLI::App* app, VerifyFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "verify-resume",
      "Prove that resuming gives the same run. Runs the uninterrupted reference, then interrupted\n"
      "variants (each a child `lockstep train`, resumed with --resume), and compares each with the\n"
      "reference: step records, the final checkpoint tensor by tensor, and the results files.\n"
      "Exit 0 when all are bit-exact, 1 on a divergence (the first step and field are named).\n"
      "Without a variant flag, interrupts mid-epoch and at the first epoch boundary.");
  cmd->add_option("--interrupt-at", flags->interrupt_at,
                  "Stop after step K (and K2, ...), then resume; one variant each")
      ->delimiter(',')
      ->type_name("K[,K2,...]");
  cmd->add_option(
         "--world", flags->world,
         "Resume at another world size: a job of A ranks (the reference's, --nproc_per_node) stopped at the "
         "first interruption step and resumed as B ranks, the global batch kept "
         "(per_device_train_batch_size x A / B); one variant each. Bit-exact with --world_invariant; an "
         "ordinary run is resumed with --resume-override to show where it parts. With --cmd: a variant stopped by "
         "SIGTERM at A and resumed at B, the command taking the size through {world} (or {nproc})")
      ->type_name("A:B");
  cmd->add_flag("--every-checkpoint", flags->every_checkpoint, "Stop and resume at every checkpoint in turn");
  cmd->add_option(
         "--kill-random", flags->kill_random,
         "SIGKILL a child `lockstep train` N times, each in its own stretch of the run: by a seeded coin, at a "
         "random moment of a step or shortly after a save begins. The plan is seeded; the moment the signal "
         "lands is not, so a rerun may hit different bytes (use --crash-points for exact replays)")
      ->type_name("N");
  cmd->add_option("--crash-points", flags->crash_points,
                  "Make a child kill itself N times, each right after a seeded write, fsync or rename of a checkpoint "
                  "save: the same --kill-seed replays the same crashes, byte for byte")
      ->type_name("N");
  cmd->add_option("--cmd", flags->cmd,
                  "Verify your own trainer: its shell command, with {output_dir} where each run writes "
                  "and, for a launcher, {world} (or {nproc}) for its size (needs --resume-arg). Each run is a process "
                  "group of its own: an interruption reaches every process of it, and none outlives it. Runs it whole, "
                  "then stopped by SIGTERM after its first checkpoint "
                  "and SIGKILLed --kill-random times (default 2), each resumed and compared as lockstep diff does")
      ->type_name("COMMAND");
  cmd->add_option("--resume-arg", flags->resume_arg,
                  "With --cmd: what to append to resume, with {checkpoint} for the newest checkpoint-N")
      ->type_name("ARGS");
  cmd->add_option("--nproc_per_node", flags->nproc_per_node,
                  "Verify a data-parallel job: every run is N ranks (lockstep train --nproc_per_node N), and "
                  "each --kill-random kill SIGKILLs one rank, a seeded one")
      ->type_name("N");
  cmd->add_option("--kill-seed", flags->kill_seed, "Seed of the --kill-random and --crash-points plans (reported)")
      ->type_name("SEED")
      ->capture_default_str();
  cmd->add_option("--fault-inject", flags->fault,
                  "TESTING ONLY: make every resume skip restoring one piece of state (rng, sampler, optimizer, "
                  "scheduler, loss-sums), to show the verifier catches it")
      ->group("Testing only");
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  cmd->add_option("--report", flags->report,
                  "Also write the variants' time line, verdicts and curves as one self-contained HTML page")
      ->type_name("FILE.html");
  cmd->add_flag("--quiet", flags->quiet, "No progress display");
  AddTrainingFlags(cmd, &flags->training);
  return cmd;
}

CLI::App* DefineReplayCommand(CLI::App* app, ReplayFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "replay",
      "Load CHECKPOINT, re-execute the steps after it with the sample ids and RNG states the step log\n"
      "recorded, and check each recomputed record (lr, loss and grad-norm bits, RNG digests) against the\n"
      "log. Never writes into RUN. --device and --num_threads replay it elsewhere, judged with the\n"
      "tolerance flags. --trace-modules records one step's module outputs and gradients for `lockstep diff`.\n"
      "Exit 0 every step matches, 1 a mismatch (step, field, both values, ULPs),\n"
      "2 bad usage or unreadable input.");
  cmd->add_option("run", flags->run, "The run directory whose step log is replayed")->required();
  cmd->add_option("--from", flags->from, "Checkpoint to start from: a directory, or its name inside RUN")
      ->type_name("CHECKPOINT");  // required, checked below in Lockstep's words
  cmd->add_option("--steps", flags->steps,
                  "How many steps after the checkpoint (default: every logged step after it; 1 with --trace-modules)")
      ->type_name("K");
  cmd->add_option("--device", flags->device, "cpu or cuda (default: the run's own device)")->type_name("DEVICE");
  cmd->add_option("--nproc_per_node", flags->nproc_per_node,
                  "Ranks of a data-parallel run's replay (default and only choice: the run's world size)")
      ->type_name("N");
  cmd->add_option("--num_threads", flags->num_threads, "Intra-op threads (default: the checkpoint's)")->type_name("N");
  AddToleranceFlags(cmd, &flags->atol, &flags->rtol, &flags->ulp, "Accept float32 values at most N ULPs apart");
  cmd->add_option("--trace-modules", flags->trace, "Write the step's module trace (JSON) to this file")
      ->type_name("FILE");
  cmd->add_option("--numerics-fault", flags->numerics_fault)->group("");  // testing only: perturbs one module
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  return cmd;
}

}  // namespace lockstep
