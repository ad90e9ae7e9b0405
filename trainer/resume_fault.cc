// A resume that restores one piece of state wrongly (TrainFaults::resume): TESTING ONLY. It
// is an observer of the restore, so the state files and the loop know nothing of it.
#include <cstdio>

#include "formats/file_names.h"
#include "trainer/checkpoint_io.h"
#include "trainer/step_observer.h"

namespace lockstep {
namespace {

class ResumeFaultInjection : public StepObserver {
 public:
  ResumeFaultInjection(ResumeFault fault, ResumeFaultTargets targets) : fault_(fault), targets_(std::move(targets)) {}

  void RestoresState(std::vector<StateFile>* files) override {
    for (StateFile& f : *files) {
      if (f.name != SpoiledFile()) continue;
      f.load = [fault = fault_, load = f.load, restart = Restart()](const std::string& path,
                                                                    const WrittenFile* unverified) {
        std::fprintf(stderr, "warning: FAULT INJECTION (testing only): not restoring %s on resume\n",
                     ResumeFaultName(fault));
        if (!restart) return Status::Ok();  // the file is not loaded: the state stays as a fresh run's
        LOCKSTEP_RETURN_IF_ERROR(load(path, unverified));
        restart();
        return Status::Ok();
      };
    }
  }

 private:
  // The file that holds the piece `fault_` names.
  std::string SpoiledFile() const {
    switch (fault_) {
      case ResumeFault::kRng:
        return targets_.rng_file;
      case ResumeFault::kSamplerPosition:
        return kSamplerStateFile;
      case ResumeFault::kOptimizer:
        return kOptimizerStateFile;
      case ResumeFault::kScheduler:
        return kSchedulerStateFile;
      case ResumeFault::kLossSums:
        return kLoopStateFile;
      case ResumeFault::kNone:
        break;
    }
    return "";
  }
  // What starts the piece over after its file loads; none where the load is skipped.
  std::function<void()> Restart() const {
    if (fault_ == ResumeFault::kScheduler) return targets_.restart_scheduler;
    if (fault_ == ResumeFault::kLossSums) return targets_.restart_loss_sums;
    return nullptr;
  }

  ResumeFault fault_;
  ResumeFaultTargets targets_;
};

}  // namespace

std::unique_ptr<StepObserver> MakeResumeFault(ResumeFault fault, ResumeFaultTargets targets) {
  return std::make_unique<ResumeFaultInjection>(fault, std::move(targets));
}

}  // namespace lockstep
