// Running the Python package's scripts from tests: Debian's /usr/bin/python3 (the one with
// python3-torch), with python/ on its path. Needs LOCKSTEP_SOURCE_DIR.
#pragma once

#include <string>

#include "tests/test_util.h"

namespace lockstep {
namespace test {

inline const std::string kPython = "PYTHONPATH=" + std::string(LOCKSTEP_SOURCE_DIR) + "/python /usr/bin/python3";

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
