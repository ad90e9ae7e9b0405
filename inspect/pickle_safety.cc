#include "inspect/pickle_safety.h"

#include <set>

namespace lockstep {
namespace {

// Every name in these modules (and their submodules) is dangerous: they run commands, reach
// the file system or network, execute code, or unpickle further bytes.
const std::set<std::string> kDangerousModules = {"os",
                                                 "posix",
                                                 "nt",
                                                 "sys",
                                                 "subprocess",
                                                 "_posixsubprocess",
                                                 "_winapi",
                                                 "pty",
                                                 "commands",
                                                 "popen2",
                                                 "platform",
                                                 "shutil",
                                                 "socket",
                                                 "ssl",
                                                 "http",
                                                 "urllib",
                                                 "urllib2",
                                                 "requests",
                                                 "httplib",
                                                 "ftplib",
                                                 "smtplib",
                                                 "telnetlib",
                                                 "webbrowser",
                                                 "code",
                                                 "codeop",
                                                 "runpy",
                                                 "importlib",
                                                 "pkgutil",
                                                 "zipimport",
                                                 "imp",
                                                 "pickle",
                                                 "_pickle",
                                                 "cPickle",
                                                 "marshal",
                                                 "shelve",
                                                 "dill",
                                                 "ctypes",
                                                 "_ctypes",
                                                 "cffi",
                                                 "multiprocessing",
                                                 "asyncio",
                                                 "signal",
                                                 "_thread",
                                                 "thread",
                                                 "threading",
                                                 "pdb",
                                                 "bdb",
                                                 "cProfile",
                                                 "profile",
                                                 "timeit",
                                                 "trace",
                                                 "tempfile",
                                                 "fileinput",
                                                 "linecache",
                                                 "logging.config",
                                                 "distutils",
                                                 "setuptools",
                                                 "torch.hub",
                                                 "torch.jit",
                                                 "torch._dynamo"};

// builtins (__builtin__ in Python 2) that evaluate, compile, import, open or reach attributes.
const std::set<std::string> kDangerousBuiltins = {"eval",       "exec",       "execfile", "compile",    "open",
                                                  "file",       "__import__", "getattr",  "setattr",    "delattr",
                                                  "globals",    "locals",     "vars",     "input",      "raw_input",
                                                  "breakpoint", "apply",      "reload",   "memoryview", "help"};

// operator and functools names that call or look up whatever they are given.
const std::set<std::string> kDangerousCallers = {"operator.attrgetter", "operator.methodcaller", "operator.itemgetter",
                                                 "functools.reduce", "functools.partial"};

bool InModule(const std::string& module, const std::string& name) {
  return module == name || module.rfind(name + ".", 0) == 0;
}

}  // namespace

std::vector<std::string> DangerousGlobals(const std::vector<std::string>& globals) {
  std::vector<std::string> out;
  for (const auto& g : globals) {
    const size_t dot = g.rfind('.');
    const std::string module = dot == std::string::npos ? "" : g.substr(0, dot);
    const std::string name = dot == std::string::npos ? g : g.substr(dot + 1);
    bool dangerous = kDangerousCallers.count(g) > 0;
    if ((module == "builtins" || module == "__builtin__") && kDangerousBuiltins.count(name)) dangerous = true;
    for (const auto& m : kDangerousModules) dangerous = dangerous || InModule(module, m);
    if (dangerous) out.push_back(g);
  }
  return out;
}

}  // namespace lockstep
