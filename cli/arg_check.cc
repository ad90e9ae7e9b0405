#include "cli/arg_check.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lockstep {
namespace {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Normalized(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> LongFlagNames(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : cmd.get_options()) {
    for (const std::string& name : opt->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// A token that is a value, not a flag: anything not starting with '-', and negative numbers.
bool IsValue(const char* token) {
  return token[0] != '-' ||
         (token[1] != '\0' && (std::isdigit(static_cast<unsigned char>(token[1])) || token[1] == '.'));
}

std::string UnknownFlagMessage(const std::string& command, const std::string& flag, const CLI::App& cmd) {
  std::string msg = "unknown flag " + flag;
  const std::string closest = ClosestName(flag, LongFlagNames(cmd));
  if (!closest.empty()) msg += "; did you mean " + closest + "?";
  return msg + " (lockstep " + command + " --help lists every flag)";
}

// One flag at argv[*i]; advances *i past the values it takes.
Status CheckFlag(const std::string& command, const CLI::App& cmd, int argc, char** argv, int* i) {
  const std::string token = argv[*i];
  const size_t eq = token.find('=');
  const std::string name = token.substr(0, eq);
  if (name == "--help" || name == "-h") return Status::Ok();
  const CLI::Option* opt = cmd.get_option_no_throw(name);
  if (opt == nullptr) return Status::InvalidArgument(UnknownFlagMessage(command, name, cmd));
  if (eq != std::string::npos || opt->get_expected_max() == 0) return Status::Ok();
  const bool vector = opt->get_expected_max() > 1;
  int taken = 0;
  while (*i + 1 < argc && IsValue(argv[*i + 1]) && (taken == 0 || vector)) {
    ++*i;
    ++taken;
  }
  if (taken == 0 && opt->get_expected_min() > 0) {
    const std::string type = opt->get_type_name();
    return Status::InvalidArgument(name + " needs a value" + (type.empty() ? "" : " (" + type + ")") + ": " +
                                   opt->get_description());
  }
  return Status::Ok();
}

}  // namespace

std::string ClosestName(const std::string& wanted, const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = std::string::npos;
  const std::string w = Normalized(wanted);
  for (const auto& name : names) {
    const size_t d = EditDistance(w, Normalized(name));
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  // A typo is a few edits away, relative to the name's length.
  const size_t allowed = std::max<size_t>(2, w.size() / 4);
  return best_distance <= allowed ? best : "";
}

bool WantsJson(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

Status CheckCommandLine(CLI::App* app, int argc, char** argv, std::string* command) {
  command->clear();
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands({})) names.push_back(sub->get_name());
  const std::string listed = "(lockstep --help lists them)";
  if (argc < 2) return Status::InvalidArgument("name a subcommand: " + CLI::detail::join(names, ", ") + " " + listed);
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "--version") return Status::Ok();
  CLI::App* cmd = nullptr;
  for (CLI::App* sub : app->get_subcommands({})) {
    if (sub->get_name() == first) cmd = sub;
  }
  if (cmd == nullptr) {
    const std::string closest = ClosestName(first, names);
    return Status::InvalidArgument("unknown subcommand '" + first + "'" +
                                   (closest.empty() ? "" : "; did you mean '" + closest + "'?") + " " + listed);
  }
  *command = first;
  std::vector<const CLI::Option*> positionals;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (opt->get_positional()) positionals.push_back(opt);
  }
  size_t positional = 0;
  bool list_given = false;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) return Status::Ok();
    if (std::strcmp(argv[i], "--") == 0) {  // what follows belongs to a list positional, unchecked
      const bool takes_list = std::any_of(positionals.begin(), positionals.end(),
                                          [](const CLI::Option* p) { return p->get_expected_max() > 1; });
      if (takes_list) break;
      return Status::InvalidArgument("unexpected '--' (lockstep " + first + " takes no pass-through arguments)");
    }
    if (!IsValue(argv[i])) {
      LOCKSTEP_RETURN_IF_ERROR(CheckFlag(first, *cmd, argc, argv, &i));
    } else if (positional < positionals.size()) {
      // A list positional (report's RUN [RUN ...]) takes every value from here on.
      if (positionals[positional]->get_expected_max() <= 1)
        ++positional;
      else
        list_given = true;
    } else {
      return Status::InvalidArgument("unexpected argument '" + std::string(argv[i]) +
                                     "' (flags start with --; lockstep " + first + " --help lists them)");
    }
  }
  for (size_t p = positional + (list_given ? 1 : 0); p < positionals.size(); ++p) {
    if (positionals[p]->get_required()) {
      return Status::InvalidArgument("missing " + positionals[p]->get_name() + ": " +
                                     positionals[p]->get_description());
    }
  }
  return Status::Ok();
}

Status ParseWholeNumber(const std::string& flag, const std::string& text, int64_t min, int64_t* out) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0' || v < min) {
    return Status::InvalidArgument(flag + " expects a whole number of at least " + std::to_string(min) + ", got '" +
                                   text + "'");
  }
  *out = v;
  return Status::Ok();
}

}  // namespace lockstep
