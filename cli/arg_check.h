// Checks a command line against the subcommand's declared flags before CLI11 parses it,
// so every mistake is told in Lockstep's words: the subcommand first, the flag named, what
// is allowed, and for a typo the closest flag ("did you mean --save_steps?"). Values are
// parsed by Lockstep too (ParseWholeNumber), so no CLI11 text reaches the user.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

// Validates argv's structure for `app`: a known subcommand, known flags, a value after
// each flag that needs one, no stray arguments, the required positionals present.
// `*command` gets the subcommand's name ("" when there is none). InvalidArgument with the
// message to show; OK also for --help and --version, which CLI11 then answers.
Status CheckCommandLine(CLI::App* app, int argc, char** argv, std::string* command);

// The name in `names` closest to `wanted` (edit distance, '-' and '_' alike), or "" when
// none is close enough to be a plausible typo.
std::string ClosestName(const std::string& wanted, const std::vector<std::string>& names);

// `text` as a whole number >= `min` for `flag`; InvalidArgument naming both otherwise.
Status ParseWholeNumber(const std::string& flag, const std::string& text, int64_t min, int64_t* out);

// True when argv asks for JSON output (--json anywhere): errors then go to stdout as JSON too.
bool WantsJson(int argc, char** argv);

}  // namespace lockstep
