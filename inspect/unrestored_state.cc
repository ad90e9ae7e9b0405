#include "inspect/unrestored_state.h"

#include <algorithm>
#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_names.h"
#include "formats/step_record.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// The rank whose own generator file `name` is, or -1.
int64_t RankOfFile(const std::string& name) {
  int64_t rank = -1;
  return ParseRankedRngFile(name, &rank) ? rank : -1;
}

}  // namespace

std::vector<UnrestoredState> FindUnrestoredState(const std::string& run_dir, const StepLogContents& log) {
  std::vector<UnrestoredState> out;
  const bool invariant = log.header.is_object() &&
                         log.header.value("training_args", json::object()).value("world_invariant", false) == true;
  for (const auto& e : log.events) {
    const json& world = e.record.value(event_key::kWorldSize, json());
    if (!world.is_object()) continue;
    UnrestoredState u;
    u.from = world.value(event_key::kWorldSizeFrom, int64_t{0});
    u.to = world.value(event_key::kWorldSizeTo, int64_t{0});
    u.after_step = e.record.value(event_key::kAfterStep, int64_t{0});
    if (u.to <= 0 || u.to >= u.from) continue;  // a larger job reads every saved file
    const json& named = e.record.value(event_key::kCheckpoint, json());
    u.checkpoint = named.is_string() ? named.get<std::string>() : CheckpointDirName(u.after_step);
    // Only where the layout says who reads which file (the Trainer, accelerate, Lockstep): a
    // script's own checkpoint may restore any file on any rank.
    const std::string dir = (fs::path(run_dir) / u.checkpoint).string(), layout = CheckpointLayout(dir);
    if (layout != layout::kHf && layout != layout::kAccelerate && layout != layout::kLockstep) continue;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir, ec)) {
      const std::string name = f.path().filename().string();
      const int64_t rank = RankOfFile(name);
      // One process of HF's Trainer reads rng_state.pth alone, rank 0's file included;
      // accelerate and Lockstep read rank r's file on rank r, and Lockstep rank 0's alone.
      const bool hf_alone = u.to == 1 && fs::path(name).extension() == hf::kRngStateExt;
      if (rank >= u.to || (rank >= 0 && hf_alone)) u.files.push_back(name);
    }
    if (u.files.empty()) continue;  // rotated away, or no per-rank files: nothing to name
    std::sort(u.files.begin(), u.files.end());
    u.alike = invariant;
    out.push_back(u);
  }
  return out;
}

std::string UnrestoredStateText(const UnrestoredState& u) {
  std::string files;
  for (const auto& f : u.files) files += (files.empty() ? "" : ", ") + f;
  return u.checkpoint + " was saved by " + std::to_string(u.from) + " ranks and resumed by " + std::to_string(u.to) +
         " after step " + std::to_string(u.after_step) + ": " + files + " saved and not restored (" +
         (u.alike ? "each found alike rank 0's, which every rank restored: --world_invariant)"
                  : "those ranks' generators, and the data position each rank had, are not the resumed job's)");
}

}  // namespace lockstep
