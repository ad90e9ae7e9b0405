#include "trainer/background_save.h"

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <utility>

namespace lockstep {
namespace {

// Nothing a save runs should throw; an exception must never escape its thread.
Status Guarded(const std::function<Status()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status::IOError(std::string("background checkpoint save failed: ") + e.what());
  }
}

}  // namespace

BackgroundSave::~BackgroundSave() {
  if (job_.valid()) job_.wait();
}

void BackgroundSave::Start(int64_t step, std::function<Status()> fill, std::function<Status(std::string* dir)> write) {
  step_ = step;
  auto filled = std::make_shared<std::promise<void>>();
  filled_ = filled->get_future().share();
  job_ = std::async(std::launch::async, [fill = std::move(fill), write = std::move(write), filled] {
    Outcome out;
    out.status = Guarded([&] { return fill(); });
    filled->set_value();  // always: the loop waits on it
    if (out.status.ok()) out.status = Guarded([&] { return write(&out.dir); });
    return out;
  });
}

void BackgroundSave::WaitFilled() {
  if (job_.valid()) filled_.wait();
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
