#include "trainer/background_save.h"

#include <chrono>
#include <exception>
#include <string>
#include <utility>

namespace lockstep {

BackgroundSave::~BackgroundSave() {
  if (job_.valid()) job_.wait();
}

void BackgroundSave::Start(int64_t step, std::function<Status(std::string* dir)> write) {
  step_ = step;
  job_ = std::async(std::launch::async, [write = std::move(write)] {
    Outcome out;
    try {
      out.status = write(&out.dir);
    } catch (const std::exception& e) {  // nothing below should throw; never let it escape a thread
      out.status = Status::IOError(std::string("background checkpoint save failed: ") + e.what());
    }
    return out;
  });
}

bool BackgroundSave::Poll(Status* status, std::string* dir) {
  if (!job_.valid() || job_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  Outcome out = job_.get();
  *status = out.status;
  *dir = out.dir;
  return true;
}

Status BackgroundSave::Wait(std::string* dir) {
  if (!job_.valid()) return Status::Ok();
  job_.wait();
  Status status = Status::Ok();
  Poll(&status, dir);
  return status;
}

}  // namespace lockstep
