// `lockstep inspect CHECKPOINT` / `lockstep inspect FILE`: what is inside a checkpoint,
// Lockstep's or Hugging Face's, or a single tensor file, without a framework and without
// executing a pickle. The report is JSON; the CLI prints it as aligned tables.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct ShowOptions {
  std::string filter;  // ECMAScript regex: only tensors whose name it finds are listed
  std::string tensor;  // print this tensor's values
  int64_t head = 5;    // ... its first and last `head` values
};

// Fills `*report` for `path`: a checkpoint directory or a .h5/.safetensors/.pt/.pth/.bin
// file. Keys: kind, path, trainer_state, training_args, rng, sampler, tensors, optimizer,
// pickles, values, problems. In a checkpoint directory, a damaged part is listed under
// "problems" (file and reason) and the rest is still shown. A single file that cannot be
// read is Corruption naming it; a path that is none of these is InvalidArgument; a
// `options.tensor` it does not hold is NotFound.
Status ShowPath(const std::string& path, const ShowOptions& options, nlohmann::json* report);

}  // namespace lockstep
