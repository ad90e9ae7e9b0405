// The main of lockstep-train as a function, so that verify-resume can run a child
// `lockstep train` in a fork of itself (LibTorch already loaded) instead of exec'ing it.
#pragma once

#include <string>
#include <vector>

namespace lockstep {

int TrainingMain(int argc, char** argv);
int TrainingMain(const std::vector<std::string>& argv);  // argv[0] is the program name

// The arguments TrainingMain was last called with (the launcher re-runs them per rank).
const std::vector<std::string>& TrainingCommandLine();

}  // namespace lockstep
