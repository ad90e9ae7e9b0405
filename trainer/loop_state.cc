#include "trainer/loop_state.h"

#include <cstdlib>
#include <cstring>

namespace lockstep {

using nlohmann::json;

double LossTotals::TakeLogged(int64_t step) {
  const double logged = static_cast<double>(tr_loss_) / static_cast<double>(step - last_logged_step_);
  total_loss_ += tr_loss_;
  tr_loss_ = 0.0f;
  last_logged_step_ = step;
  return logged;
}

double LossTotals::TrainLoss(int64_t global_step) {
  total_loss_ += tr_loss_;
  tr_loss_ = 0.0f;
  return total_loss_ / static_cast<double>(global_step > 0 ? global_step : 1);
}

json LoopState::ToJson() const {
  json j = {{"tr_loss", losses.tr_loss()},
            {"tr_loss_bits", FloatBits(losses.tr_loss())},
            {"total_loss", losses.total_loss()},
            {"globalstep_last_logged", losses.last_logged_step()},
            {"dataset_xxh3_128", dataset_xxh3_128}};
  if (step_log) {
    j["step_log_bytes"] = step_log->bytes;
    j["step_log_last_frame"] = step_log->last_frame;
    j["step_log_xxh3_128"] = step_log->xxh3_128;
  }
  return j;
}

namespace {

Status ParseFloatBits(const json& j, const std::string& path, float* out) {
  const std::string hex = j.is_string() ? j.get<std::string>() : "";
  char* end = nullptr;
  const unsigned long bits = std::strtoul(hex.c_str(), &end, 16);
  if (hex.empty() || *end != '\0' || bits > 0xffffffffUL) {
    return Status::Corruption(path + ": tr_loss_bits '" + hex + "' is not a 32-bit hex number");
  }
  const uint32_t bits32 = static_cast<uint32_t>(bits);
  std::memcpy(out, &bits32, sizeof(bits32));
  return Status::Ok();
}

}  // namespace

Status LoopState::FromJson(const json& saved, const std::string& path, LoopState* out) {
  float tr_loss = 0.0f;
  LOCKSTEP_RETURN_IF_ERROR(ParseFloatBits(saved.value("tr_loss_bits", json()), path, &tr_loss));
  const json total = saved.value("total_loss", json()), logged = saved.value("globalstep_last_logged", json());
  if (!total.is_number() || !logged.is_number_integer()) {
    return Status::Corruption(path + ": total_loss or globalstep_last_logged is missing or not a number");
  }
  out->losses.Restore(tr_loss, total.get<double>(), logged.get<int64_t>());
  out->dataset_xxh3_128 =
      saved.value("dataset_xxh3_128", json()).is_string() ? saved["dataset_xxh3_128"].get<std::string>() : "";
  out->step_log.reset();
  const json bytes = saved.value("step_log_bytes", json()), frame = saved.value("step_log_last_frame", json());
  if (bytes.is_number_unsigned() && frame.is_number_unsigned()) {
    const json digest = saved.value("step_log_xxh3_128", json());
    out->step_log = StepLogPosition{bytes.get<uint64_t>(), frame.get<uint64_t>(),
                                    digest.is_string() ? digest.get<std::string>() : ""};
  }
  return Status::Ok();
}

}  // namespace lockstep
