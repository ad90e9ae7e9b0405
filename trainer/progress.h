// The console display while training: step, loss, steps/s and ETA. On a terminal one line
// is redrawn in place; otherwise plain lines are printed at logging steps and every tenth of
// the run (log files and CI stay readable). All output goes to stderr so --json keeps stdout machine-readable.
#pragma once

#include <cstdint>
#include <string>

namespace lockstep {

class ProgressDisplay {
 public:
  // `enabled` false prints nothing; `interactive` redraws in place (a terminal).
  ProgressDisplay(bool enabled, bool interactive, int64_t max_steps);

  // After each update. `log_line` true prints a plain line in non-interactive mode.
  void Update(int64_t step, double epoch, double loss, double lr, double elapsed_s, bool log_line);

  // A message (evaluation result, checkpoint saved) printed on its own line.
  void Note(const std::string& message);

  void Finish();

  // True when stderr is a terminal.
  static bool StderrIsTerminal();

 private:
  std::string Line(int64_t step, double epoch, double loss, double lr, double elapsed_s) const;
  bool enabled_;
  bool interactive_;
  int64_t max_steps_;
  bool line_open_ = false;
};

}  // namespace lockstep
