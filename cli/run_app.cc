#include "cli/run_app.h"

#include "cli/arg_check.h"
#include "cli/exit_codes.h"

namespace lockstep {

int RunApp(CLI::App* app, const CommandTable& commands, int argc, char** argv) {
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
    return ReportFailure(command, Status::InvalidArgument(std::string("cannot read this command line (") + e.what() +
                                                          "); lockstep " + command + " --help lists every flag"),
                         WantsJson(argc, argv));
  }
  for (CLI::App* sub : app->get_subcommands()) return commands.at(sub->get_name())();
  return kExitUsage;
}

}  // namespace lockstep
