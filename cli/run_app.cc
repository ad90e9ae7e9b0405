#include "cli/run_app.h"

#include "cli/exit_codes.h"

namespace lockstep {

int RunApp(CLI::App* app, const CommandTable& commands, int argc, char** argv) {
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    app->exit(e);
    return kExitUsage;
  }
  for (CLI::App* sub : app->get_subcommands()) return commands.at(sub->get_name())();
  return kExitUsage;
}

}  // namespace lockstep
