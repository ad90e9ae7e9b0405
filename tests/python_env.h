// Running the Python package's scripts from tests: the project's .venv, or Debian's
// /usr/bin/python3 (python3-torch) where there is none, with python/ on its path. Needs
// LOCKSTEP_SOURCE_DIR.
#pragma once

#include <unistd.h>

#include <string>

#include "tests/test_util.h"

namespace lockstep {
namespace test {

// The project's environment (.venv, scripts/python-env.sh: PyTorch 2.x and the HF Trainer)
// where it was made, else Debian's python3 with python3-torch.
inline std::string PythonInterpreter() {
  const std::string venv = std::string(LOCKSTEP_SOURCE_DIR) + "/.venv/bin/python";
  return ::access(venv.c_str(), X_OK) == 0 ? venv : "/usr/bin/python3";
}

// An interpreter command line, for RunCommand or a --cmd (env makes it exec-able).
inline const std::string kPython =
    "env HF_HUB_OFFLINE=1 PYTHONPATH=" + std::string(LOCKSTEP_SOURCE_DIR) + "/python " + PythonInterpreter();

// tests/python/NAME, as a command prefix.
inline std::string PythonScript(const std::string& name) {
  return kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/" + name;
}

// Why the Python side cannot run here (a skip's printed reason), or "".
inline std::string PythonMissing(const std::string& modules,
                                 const std::string& hint = "scripts/install-deps.sh installs them") {
  const auto o = RunCommand(kPython + " -c 'import " + modules + "' 2>&1 | tail -n 1");
  return o.out.empty() ? "" : "python3 cannot import " + modules + " (" + hint + "): " + o.out;
}

}  // namespace test
}  // namespace lockstep
