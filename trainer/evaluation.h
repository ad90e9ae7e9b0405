// The model evaluated over the eval split, as HF's evaluate reports it: the mean loss
// (items-weighted), accuracy for mlp, and speed_metrics("eval"). Internal to trainer/.
#pragma once

#include <c10/core/Device.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/training_args.h"
#include "trainer/data_parallel.h"
#include "trainer/datasets.h"
#include "trainer/models.h"

namespace lockstep {

// Evaluates `model` on `eval`: in a job, eval batch b goes to rank b mod world size and the
// sums are added up over the ranks, so every rank gets the metrics of the whole split.
// Dropout is off and no generator is drawn from, so evaluation never perturbs the training
// RNG. `now` is the run's clock (seconds), for eval_runtime.
Status EvaluateModel(Model* model, const Dataset& eval, const TrainingArgs& args, c10::Device device,
                     DataParallelJob* job, const std::function<double()>& now, nlohmann::json* metrics);

}  // namespace lockstep
