#include "cli/run_app.h"

#include <algorithm>
#include <filesystem>
#include <new>
#include <string>
#include <vector>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"

namespace lockstep {

namespace {

// Options whose value is itself a command line ("--resume-arg '--resume {checkpoint}'"):
// CLI11 would take a value that starts with "-" for another flag, so "--opt VALUE" is
// joined into "--opt=VALUE" first.
constexpr const char* kCommandValued[] = {"--cmd", "--resume-arg"};

std::vector<std::string> JoinCommandValues(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool joins =
        i + 1 < argc && std::find(std::begin(kCommandValued), std::end(kCommandValued), a) != std::end(kCommandValued);
    out.push_back(joins ? a + "=" + argv[++i] : a);
  }
  return out;
}

}  // namespace

int RunApp(CLI::App* app, const CommandTable& commands, int argc, char** argv) {
  std::vector<std::string> joined = JoinCommandValues(argc, argv);
  std::vector<char*> args;
  for (auto& a : joined) args.push_back(a.data());
  args.push_back(nullptr);
  argc = static_cast<int>(joined.size());
  argv = args.data();
  std::string command;
  Status checked = CheckCommandLine(app, argc, argv, &command);
  if (!checked.ok()) return ReportFailure(command, checked, WantsJson(argc, argv));
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {  // a case CheckCommandLine let through
    return ReportFailure(command,
                         Status::InvalidArgument(std::string("cannot read this command line (") + e.what() +
                                                 "); lockstep " + command + " --help lists every flag"),
                         WantsJson(argc, argv));
  }
  for (CLI::App* sub : app->get_subcommands()) {
    // The libraries report errors as Status values; a std::filesystem call that throws
    // (a directory this user may not read) is the one escape left, and is an unreadable
    // input: exit 2 naming the path, never an abort.
    try {
      return commands.at(sub->get_name())();
    } catch (const std::filesystem::filesystem_error& e) {
      const std::string path = e.path1().empty() ? std::string("a file") : e.path1().string();
      return ReportFailure(sub->get_name(), Status::IOError(path + ": cannot read: " + e.code().message()),
                           WantsJson(argc, argv), IoRole::kInput);
    } catch (const std::bad_alloc&) {  // the readers stream; what is left (one tensor decoded whole) may not fit
      return ReportFailure(sub->get_name(),
                           Status::Internal("out of memory: lockstep " + sub->get_name() +
                                            " needed more than this process may use (ulimit -v, a cgroup's limit)"),
                           WantsJson(argc, argv));
    }
  }
  return kExitUsage;
}

}  // namespace lockstep
