// --save_async (issue 12): a checkpoint written in the background from a snapshot taken at
// the step boundary holds the same bytes as a synchronous save, the run trains the same
// steps, rotation and best protection still apply, a failed background save fails the run,
// and BackgroundSave reports each outcome once, on the training thread.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/io.h"
#include "formats/json_file.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"
#include "trainer/background_save.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

using test::Tiny;

// Every checkpoint file's bytes, by "checkpoint-N/file". training_args.json (and so the
// manifest's checksum of it) names save_async; loop_state.json records the step log's
// length, whose header holds the settings: those are compared apart, without them. The
// run's own path (best_model_checkpoint) reads "RUN".
std::map<std::string, std::string> CheckpointFiles(const std::string& run) {
  std::map<std::string, std::string> files;
  for (const auto& d : fs::directory_iterator(run)) {
    if (d.path().filename().string().rfind("checkpoint-", 0) != 0) continue;
    for (const auto& f : fs::directory_iterator(d.path())) {
      const std::string name = f.path().filename().string();
      if (name == "training_args.json" || name == "manifest.json" || name == "loop_state.json") continue;
      std::string bytes = test::ReadAll(f.path().string());
      for (size_t at; (at = bytes.find(run)) != std::string::npos;) bytes.replace(at, run.size(), "RUN");
      files[d.path().filename().string() + "/" + name] = bytes;
    }
  }
  return files;
}

nlohmann::json LossBookkeeping(const std::string& checkpoint) {
  nlohmann::json j;
  EXPECT_TRUE(ReadJsonFile(checkpoint + "/loop_state.json", &j).ok());
  for (const char* k : {"step_log_bytes", "step_log_last_frame", "step_log_xxh3_128"}) j.erase(k);
  return j;
}

TEST(SaveAsync, WritesTheSameCheckpointsAsASynchronousSave) {
  for (const std::string model : {"mlp", "gpt"}) {
    test::ScratchDir sync_dir, async_dir;
    TrainingArgs a = Tiny(model, sync_dir.path());
    a.save_steps = 1;  // every step: each save waits for the one before
    a.save_total_limit = 3;
    a.eval_strategy = "steps";
    a.eval_steps = 2;
    a.metric_for_best_model = "loss";  // best protection across rotation
    TrainingArgs b = a;
    b.output_dir = async_dir.path();
    b.save_async = true;
    const TrainResult rs = test::Train(a), ra = test::Train(b);
    EXPECT_EQ(ra.saved_steps, rs.saved_steps) << model;
    EXPECT_EQ(ra.best_model_checkpoint.has_value(), rs.best_model_checkpoint.has_value());
    const auto files = CheckpointFiles(sync_dir.path());
    ASSERT_EQ(files.size(), 3u * 6u) << model;  // 3 kept, 6 of their 8 state files compared here
    const auto async_files = CheckpointFiles(async_dir.path());
    for (const auto& [name, bytes] : files) {  // by name: a mismatch must not print megabytes
      const auto it = async_files.find(name);
      EXPECT_TRUE(it != async_files.end() && it->second == bytes) << model << ": " << name;
    }
    EXPECT_EQ(async_files.size(), files.size());
    for (const auto& c : rs.checkpoints) {
      const std::string name = fs::path(c).filename().string();
      EXPECT_EQ(LossBookkeeping(async_dir.Join(name)), LossBookkeeping(c)) << name;
      EXPECT_TRUE(ValidateCheckpoint(async_dir.Join(name), VerifyMode::kChecksums).ok()) << name;
    }
    EXPECT_EQ(test::Comparable(test::Log(async_dir.path())), test::Comparable(test::Log(sync_dir.path())));
    EXPECT_EQ(ra.train_loss, rs.train_loss);
  }
}

TEST(SaveAsync, ASnapshotIsNotChangedByTheStepsThatFollowIt) {
  // The snapshot copies the weights: checkpoint-1 of an async run equals checkpoint-1 of a
  // run that stopped there, though its copy and write overlapped later steps.
  test::ScratchDir full_dir, stop_dir;
  TrainingArgs a = Tiny("gpt", full_dir.path());
  a.save_steps = 1;
  a.save_async = true;
  TrainingArgs b = a;
  b.output_dir = stop_dir.path();
  b.max_steps = 1;
  // The tensors are copied while the next step runs; a slow copy shows that the update
  // waits for it.
  TrainOptions slow_copy = test::Quiet();
  slow_copy.hooks.before_snapshot_copy = [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
  TrainResult r;
  ASSERT_OK(RunTraining(a, slow_copy, &r));
  test::Train(b);
  for (const char* f : {"model.h5", "optimizer.h5"}) {
    EXPECT_EQ(test::ReadAll(full_dir.Join("checkpoint-1/") + f), test::ReadAll(stop_dir.Join("checkpoint-1/") + f))
        << f;
  }
  EXPECT_NE(test::ReadAll(full_dir.Join("checkpoint-1/model.h5")),
            test::ReadAll(full_dir.Join("checkpoint-2/model.h5")));
}

// Fails every write into checkpoint-3 (its staging directory), as a full disk would.
class FailCheckpoint3 : public IoHook {
 public:
  int Before(IoOp op, const std::string& path) override {
    return op == IoOp::kWrite && path.find("checkpoint-3") != std::string::npos ? ENOSPC : 0;
  }
  void After(IoOp, const std::string&) override {}
};

TEST(SaveAsync, AFailedBackgroundSaveFailsTheRunAndCommitsNothingPartial) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  a.save_steps = 1;
  a.save_async = true;
  FailCheckpoint3 hook;
  SetIoHook(&hook);
  TrainResult r;
  const Status st = RunTraining(a, test::Quiet(), &r);
  SetIoHook(nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("checkpoint-3"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.ToString();
  EXPECT_TRUE(ValidateCheckpoint(dir.Join("checkpoint-2"), VerifyMode::kChecksums).ok());
  EXPECT_FALSE(fs::exists(dir.Join("checkpoint-3")));
  for (const auto& d : fs::directory_iterator(dir.path())) {
    EXPECT_FALSE(IsCheckpointLeftover(d.path().filename().string())) << d.path();
  }
}

TEST(BackgroundSave, ReportsEachOutcomeOnceAndOnlyWhenItHasEnded) {
  BackgroundSave save;
  Status st;
  std::string dir;
  EXPECT_FALSE(save.pending());
  EXPECT_FALSE(save.Poll(&st, &dir));
  EXPECT_TRUE(save.Wait(&dir).ok());  // none pending

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  save.Start(
      7, [] { return Status::Ok(); },
      [released](std::string* out) {
        released.wait();  // held until the test has seen it running
        *out = "checkpoint-7";
        return Status::IOError("disk full");
      });
  EXPECT_TRUE(save.pending());
  EXPECT_EQ(save.step(), 7);
  EXPECT_FALSE(save.Poll(&st, &dir));  // still running
  release.set_value();
  const Status waited = save.Wait(&dir);
  EXPECT_EQ(waited.code(), Status::Code::kIOError);
  EXPECT_EQ(dir, "checkpoint-7");
  EXPECT_FALSE(save.pending());
  EXPECT_FALSE(save.Poll(&st, &dir));  // reported once
}

TEST(BackgroundSave, AnExceptionInTheWriteBecomesAnError) {
  BackgroundSave save;
  save.Start(
      1, [] { return Status::Ok(); }, [](std::string*) -> Status { throw std::runtime_error("boom"); });
  std::string dir;
  const Status st = save.Wait(&dir);
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_NE(st.message().find("boom"), std::string::npos);
}

// The copy of the tensors (fill) comes first, and the loop may go on once it has ended,
// while the write still runs; a fill that fails (or throws) is the outcome, and nothing
// is written.
TEST(BackgroundSave, TheFillEndsBeforeTheWriteAndAFailedFillWritesNothing) {
  BackgroundSave save;
  save.WaitFilled();  // none pending: at once
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> filled{false};
  save.Start(
      3, [&filled] { return filled = true, Status::Ok(); },
      [released](std::string*) {
        released.wait();
        return Status::Ok();
      });
  save.WaitFilled();  // returns though the write is held
  EXPECT_TRUE(filled);
  Status st;
  std::string dir;
  EXPECT_FALSE(save.Poll(&st, &dir));  // the write still runs
  release.set_value();
  EXPECT_TRUE(save.Wait(&dir).ok());

  for (const bool throws : {false, true}) {
    std::atomic<bool> wrote{false};
    save.Start(
        4,
        [throws]() -> Status {
          if (throws) throw std::runtime_error("copy failed");
          return Status::Internal("copy failed");
        },
        [&wrote](std::string*) { return wrote = true, Status::Ok(); });
    save.WaitFilled();
    st = save.Wait(&dir);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("copy failed"), std::string::npos) << st.message();
    EXPECT_FALSE(wrote);
  }
}

}  // namespace
}  // namespace lockstep
