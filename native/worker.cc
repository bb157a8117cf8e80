#include "worker.h"

#include <set>
#include <vector>

namespace torchts {
namespace {

std::mutex gLiveMutex;
std::set<Worker*> gLive;

}  // namespace

void Worker::stopAll(const void* owner) {
  std::vector<Worker*> stopping;
  {
    std::lock_guard<std::mutex> lock(gLiveMutex);
    for (auto it = gLive.begin(); it != gLive.end();) {
      if ((*it)->owner_ == owner) {
        (*it)->exiting_ = true;
        stopping.push_back(*it);
        it = gLive.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Worker* worker : stopping) worker->stop();
}

Worker::Worker(const void* owner) : owner_(owner), thread_([this] { loop(); }) {
  std::lock_guard<std::mutex> lock(gLiveMutex);
  gLive.insert(this);
}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(gLiveMutex);
    gLive.erase(this);
  }
  stop();
}

void Worker::post(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      wake_.notify_one();
      return;
    }
  }
  job(true);
}

void Worker::requestStop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  wake_.notify_one();
}

void Worker::stop() {
  requestStop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::loop() {
  for (;;) {
    Job job;
    bool cancelled = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      cancelled = stopping_;
    }
    // Jobs report their own failures; this only keeps an escaped exception from reaching
    // std::thread, which would terminate the process.
    try {
      job(cancelled);
    } catch (...) {
    }
  }
}

}  // namespace torchts
