// The files every save of a run writes, compared across the run's checkpoints
// (run_checks.h's AuditSiblings).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "formats/file_names.h"
#include "formats/file_util.h"
#include "formats/run_layout.h"
#include "inspect/layout_audit.h"
#include "inspect/run_checks.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace audit_detail {
namespace {

// The series a checkpoint's name puts it in: the name without the number that ends it
// ("checkpoint-", "checkpoints/checkpoint_", "step-"), else its layout.
std::string SeriesOf(const CheckpointAudit& c) {
  size_t end = c.name.size();
  while (end > 0 && std::isdigit(static_cast<unsigned char>(c.name[end - 1]))) --end;
  return end < c.name.size() ? "name " + c.name.substr(0, end) : "layout " + c.layout;
}

}  // namespace

// The checkpoints of one series of names are one group whatever their layout seems (a save cut
// short, PEFT's README.md or accelerate's model alone, is the run's save all the same).
void AuditSiblings(const std::string& run_dir, AuditReport* report) {
  std::map<std::string, std::vector<size_t>> by_series;
  for (size_t i = 0; i < report->checkpoints.size(); ++i) {
    if (IsDirectory(run_dir + "/" + report->checkpoints[i].name))
      by_series[SeriesOf(report->checkpoints[i])].push_back(i);
  }
  for (const auto& [series, members] : by_series) {
    if (members.size() < 2) continue;
    std::vector<std::set<std::string>> shapes;
    for (size_t i : members) shapes.push_back(CheckpointFileSet(run_dir + "/" + report->checkpoints[i].name));
    for (size_t k = 0; k < members.size(); ++k) {
      CheckpointAudit& c = report->checkpoints[members[k]];
      std::map<std::string, std::string> everywhere;  // file -> a checkpoint that holds it
      for (size_t j = 0; j < members.size(); ++j) {
        if (j == k) continue;
        // Generator files are one per process: checkpoints saved by jobs of different sizes
        // (a resume at another world size) hold different ones, and each its own is checked
        // by its layout's rule.
        const int64_t their_ranks = report->checkpoints[members[j]].ranks;
        const bool other_job = c.ranks > 0 && their_ranks > 0 && their_ranks != c.ranks;
        for (const auto& f : shapes[j]) {
          if (other_job && (IsRngStateFile(fs::path(f).filename().string(), kRngStateJsonExt) ||
                            IsRngStateFile(fs::path(f).filename().string(), hf::kRngStateExt))) {
            continue;
          }
          const bool in_all = std::all_of(shapes.begin(), shapes.end(), [&](const std::set<std::string>& s) {
            return &s == &shapes[k] || s.count(f);
          });
          if (in_all && !shapes[k].count(f)) everywhere.emplace(f, report->checkpoints[members[j]].name);
        }
      }
      for (const auto& [file, holder] : everywhere) {
        std::string shown = file;
        const std::string tag = "global_step*";
        if (const size_t at = shown.find(tag); at != std::string::npos) {
          shown.replace(at, tag.size(), "global_step" + std::to_string(c.step));
        }
        const std::string path = run_dir + "/" + c.name + "/" + shown;
        const bool named = std::any_of(c.problems.begin(), c.problems.end(),
                                       [&](const std::string& p) { return p.rfind(path + ":", 0) == 0; });
        if (named) continue;  // its layout's own rule named it already
        Fail(&c, kIncomplete,
             path + ": missing (every other checkpoint of the run holds it, " + holder + " among them)");
        c.resumable = false;
      }
    }
  }
}

}  // namespace audit_detail
}  // namespace lockstep
