// One native thread with a FIFO job queue. The Learner runs every step here so that
// neither the JS thread nor a libuv pool thread (which sharp needs) waits on libtorch.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace torchts {

class Worker {
 public:
  // A job is called once on the worker thread: cancelled = false to do its work, or
  // cancelled = true when the worker stops before reaching it (it should report that).
  using Job = std::function<void(bool cancelled)>;

  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues a job; after stop() the job is called at once with cancelled = true.
  void post(Job job);
  // Lets the running job finish, cancels the queued ones, and joins the thread.
  void stop();

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace torchts
