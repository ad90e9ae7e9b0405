#include "bench/peer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "process/spawn.h"

namespace lockstep {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

bool WriteAll(int fd, const std::string& text) {
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Status PythonPeer::Start(std::unique_ptr<PythonPeer>* out) {
  const std::string python = EnvOr("LOCKSTEP_PYTHON", LOCKSTEP_PYTHON_PEER_INTERPRETER);
  const std::string script = EnvOr("LOCKSTEP_PYTHON_PEER", LOCKSTEP_PYTHON_PEER_SCRIPT);
  // Probe first, quietly: the usual failure is a Python without torch.
  SpawnOptions quiet;
  quiet.Open(STDOUT_FILENO, "/dev/null", O_WRONLY).Dup(STDERR_FILENO, STDOUT_FILENO);
  if (SpawnAndWait({python, "-c", "import torch"}, quiet) != 0) {
    return Status::NotFound(python + " cannot import torch (the Python peer runs on the torch this build links)");
  }
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) return Status::IOError("pipe failed");
  SpawnOptions pipes;
  pipes.Dup(STDIN_FILENO, to[0]).Dup(STDOUT_FILENO, from[1]);
  pid_t pid = 0;
  const Status spawned = Spawn({python, script}, pipes, &pid);
  ::close(to[0]);
  ::close(from[1]);
  if (!spawned.ok()) {
    ::close(to[1]);
    ::close(from[0]);
    return Status::NotFound("cannot start the Python peer: " + spawned.message());
  }
  out->reset(new PythonPeer(pid, to[1], from[0]));
  return Status::Ok();
}

PythonPeer* PythonPeer::Shared(std::string* why) {
  static std::unique_ptr<PythonPeer> peer;
  static Status started = [] {
    ::signal(SIGPIPE, SIG_IGN);  // a dead peer is an error from write, not a signal
    return Start(&peer);
  }();
  if (!started.ok()) *why = started.message();
  return peer.get();
}

PythonPeer::~PythonPeer() {
  ::close(to_peer_);  // end of input: the peer exits
  ::close(from_peer_);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

Status PythonPeer::Measure(const nlohmann::json& request, double* seconds, nlohmann::json* answer_out) {
  if (!WriteAll(to_peer_, request.dump() + "\n")) return Status::IOError("python peer: it has exited");
  size_t newline;
  while ((newline = pending_.find('\n')) == std::string::npos) {
    char buf[4096];
    const ssize_t n = ::read(from_peer_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError("python peer: it exited without answering " + request.dump());
    pending_.append(buf, static_cast<size_t>(n));
  }
  const std::string line = pending_.substr(0, newline);
  pending_.erase(0, newline + 1);
  const nlohmann::json answer = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (answer.is_object() && answer.contains("seconds") && answer["seconds"].is_number()) {
    *seconds = answer["seconds"].get<double>();
    if (answer_out) *answer_out = answer;
    return Status::Ok();
  }
  return Status::IOError("python peer: " + (answer.is_object() ? answer.value("error", line) : line));
}

}  // namespace lockstep
