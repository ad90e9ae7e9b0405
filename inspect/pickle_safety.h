// Which globals a pickle names that would run code of their own when the pickle is loaded
// with torch.load(weights_only=False) or pickle.load: what picklescan and fickling call
// dangerous (os.system, builtins.eval, subprocess.Popen, ...). Lockstep evaluates pickles as
// data and never calls them; this says what the user's own loader would do.
#pragma once

#include <string>
#include <vector>

namespace lockstep {

// The entries of `globals` ("module.name", as formats/pickle_data.h lists them) that are
// dangerous: any name of a module that reaches the system, the network, code execution or
// another deserializer, and the builtins that evaluate, import or open. In their order.
std::vector<std::string> DangerousGlobals(const std::vector<std::string>& globals);

}  // namespace lockstep
