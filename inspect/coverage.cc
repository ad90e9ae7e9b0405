#include "inspect/coverage.h"

#include "formats/json_file.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

using nlohmann::json;

namespace lockstep {
namespace {

constexpr size_t kRepeatStepsShown = 10;

const json& Field(const json& j, const char* key) { return FieldOrNull(j, key); }

// Every sample id a record says its step drew: its micro-batches, and in a data-parallel
// job every other rank's. False when the record holds none.
bool IdsOf(const StepRecord& record, std::vector<int64_t>* ids) {
  ids->clear();
  bool any = false;
  const auto add = [&](const Batches& batches) {
    for (const auto& batch : batches) {
      any = true;
      ids->insert(ids->end(), batch.begin(), batch.end());
    }
  };
  add(record.batches);
  for (const auto& rank : record.batches_other_ranks) add(rank);
  return any;
}

// The epoch a step belongs to: HF's `epoch` is counted after the step (0.25 after the first
// quarter, 1.0 after the epoch's last step), so a step is in epoch ceil(epoch) - 1. A log
// without it uses the plan's updates per epoch.
std::optional<int64_t> EpochOf(const StepRecord& record, int64_t updates_per_epoch, bool* from_field) {
  if (record.epoch >= 0 && std::isfinite(record.epoch)) {
    *from_field = true;
    return std::max<int64_t>(0, static_cast<int64_t>(std::ceil(record.epoch - 1e-9)) - 1);
  }
  if (updates_per_epoch > 0 && record.step > 0) return (record.step - 1) / updates_per_epoch;
  return std::nullopt;
}

bool EndsItsEpoch(const StepRecord& record, int64_t epoch, int64_t updates_per_epoch) {
  if (record.epoch >= 0) return std::fabs(record.epoch - static_cast<double>(epoch + 1)) < 1e-9;
  return updates_per_epoch > 0 && record.step == (epoch + 1) * updates_per_epoch;
}

std::string Steps(const std::vector<int64_t>& steps) {
  std::string s;
  for (int64_t step : steps) s += (s.empty() ? "" : ", ") + std::to_string(step);
  return s;
}

}  // namespace

CoverageReport ComputeCoverage(const StepLogContents& log, const std::string& path) {
  CoverageReport r;
  const json& h = log.header;
  const json& size = Field(Field(h, "dataset"), "train_samples");
  if (size.is_number_integer()) r.dataset_size = size.get<int64_t>();
  const json& upe = Field(Field(h, "plan"), "updates_per_epoch");
  const int64_t updates_per_epoch = upe.is_number_integer() ? upe.get<int64_t>() : 0;
  const bool drop_last = Field(Field(h, "training_args"), "dataloader_drop_last") == true;
  const json& world_size = Field(Field(h, "distributed"), "world_size");
  const int64_t world = world_size.is_number_integer() ? world_size.get<int64_t>() : 1;

  std::map<int64_t, EpochCoverage> epochs;
  std::map<int64_t, std::unordered_map<int64_t, int>> seen;
  std::vector<int64_t> ids;
  bool from_field = false, any_ids = false;
  for (const auto& record : log.records) {
    if (!IdsOf(record, &ids)) continue;
    any_ids = true;
    const auto epoch = EpochOf(record, updates_per_epoch, &from_field);
    if (!epoch) {
      r.why = path + ": records say neither their epoch nor the plan's updates per epoch";
      return r;
    }
    EpochCoverage& c = epochs[*epoch];
    const int64_t step = record.step;
    if (c.drawn == 0) c.first_step = step;
    c.epoch = *epoch;
    c.last_step = step;
    c.drawn += static_cast<int64_t>(ids.size());
    c.complete = EndsItsEpoch(record, *epoch, updates_per_epoch);
    bool repeat_here = false;
    for (int64_t id : ids) repeat_here |= ++seen[*epoch][id] == 2;
    if (repeat_here && c.repeat_steps.size() < kRepeatStepsShown) c.repeat_steps.push_back(step);
  }
  if (!any_ids) {
    r.why = path + ": no record holds sample ids (batches)";
    return r;
  }
  r.known = true;
  r.epochs_from = from_field ? "epoch field" : "plan";
  for (auto it = epochs.begin(); it != epochs.end(); ++it) {
    EpochCoverage c = it->second;
    c.complete = c.complete || std::next(it) != epochs.end();
    const auto& counts = seen[c.epoch];
    c.distinct = static_cast<int64_t>(counts.size());
    for (const auto& [id, n] : counts) c.repeated += n > 1;
    if (c.complete && r.dataset_size) c.never = std::max<int64_t>(0, *r.dataset_size - c.distinct);
    const std::string where = "epoch " + std::to_string(c.epoch) + " (steps " + std::to_string(c.first_step) + ".." +
                              std::to_string(c.last_step) + ")";
    if (c.repeated > 0) {
      // accelerate's even_batches repeats samples to fill every rank's last batch of an epoch.
      const bool padding = world > 1 && c.repeat_steps.size() == 1 && c.repeat_steps.front() == c.last_step;
      const std::string line = where + ": " + std::to_string(c.repeated) +
                               " sample ids drawn more than once, from step " + Steps(c.repeat_steps);
      (padding ? r.notes : r.problems).push_back(line + (padding ? " (the last step's padding across ranks)" : ""));
    }
    if (c.never && *c.never > 0) {
      const std::string line = where + ": " + std::to_string(*c.never) + " of the dataset's " +
                               std::to_string(*r.dataset_size) + " ids never drawn";
      (drop_last ? r.notes : r.problems).push_back(line + (drop_last ? " (dataloader_drop_last)" : ""));
    }
    r.epochs.push_back(c);
  }
  return r;
}

json CoverageJson(const CoverageReport& r) {
  if (!r.known) return {{"known", false}, {"why", r.why}};
  json epochs = json::array();
  for (const auto& c : r.epochs) {
    epochs.push_back({{"epoch", c.epoch},
                      {"first_step", c.first_step},
                      {"last_step", c.last_step},
                      {"drawn", c.drawn},
                      {"distinct", c.distinct},
                      {"repeated", c.repeated},
                      {"repeat_steps", c.repeat_steps},
                      {"complete", c.complete},
                      {"never", c.never ? json(*c.never) : json()}});
  }
  return {{"known", true},
          {"dataset_size", r.dataset_size ? json(*r.dataset_size) : json()},
          {"epochs_from", r.epochs_from},
          {"epochs", epochs},
          {"problems", r.problems},
          {"notes", r.notes}};
}

std::string CoverageText(const json& r) {
  if (r.value("known", false) != true) return "  coverage: unknown (" + r.value("why", std::string()) + ")\n";
  const json size = r.value("dataset_size", json());
  std::string out = "  coverage (dataset " + (size.is_number() ? size.dump() : std::string("size unknown")) +
                    ", epochs from the " + r.value("epochs_from", std::string()) + "):\n";
  char line[256];
  std::snprintf(line, sizeof(line), "    %-6s %-14s %9s %9s %9s %9s\n", "epoch", "steps", "drawn", "distinct",
                "repeated", "never");
  out += line;
  for (const auto& c : r.value("epochs", json::array())) {
    const std::string steps = c.value("first_step", json()).dump() + ".." + c.value("last_step", json()).dump();
    const json never = c.value("never", json());
    const std::string shown = never.is_number() ? never.dump() : (c.value("complete", false) ? "-" : "(partial)");
    std::snprintf(line, sizeof(line), "    %-6s %-14s %9s %9s %9s %9s\n", c.value("epoch", json()).dump().c_str(),
                  steps.c_str(), c.value("drawn", json()).dump().c_str(), c.value("distinct", json()).dump().c_str(),
                  c.value("repeated", json()).dump().c_str(), shown.c_str());
    out += line;
  }
  return out;
}

}  // namespace lockstep
