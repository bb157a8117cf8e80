// One native thread with a FIFO job queue. A Learner or Model runs all its work here so that
// neither the JS thread nor a libuv pool thread (which sharp needs) waits on libtorch.
#pragma once
#include <atomic>
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

  // `owner` tags the worker with what created it (the node environment), for stopAll().
  explicit Worker(const void* owner);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues a job; after stop() the job is called at once with cancelled = true.
  void post(Job job);
  // Lets the running job finish, cancels the queued ones, and joins the thread.
  void stop();
  // The same without waiting: the thread finishes the running job and calls the queued ones
  // with cancelled = true on its own; stop() or the destructor joins it later.
  void requestStop();

  // Stops every worker of `owner` (the running jobs finish; afterwards exiting() is true and
  // no job may call back into node). Called on the environment's 'exit' event, before exit()
  // destroys libtorch's statics, some of which a running step would still use.
  static void stopAll(const void* owner);
  bool exiting() const { return exiting_.load(); }

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  const void* owner_;
  std::atomic<bool> exiting_{false};
  std::thread thread_;
};

}  // namespace torchts
