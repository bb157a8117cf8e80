// A data-parallel process group: the rendezvous on a c10d TCPStore, a c10d Gloo (CPU) or NCCL
// (CUDA) process group, and the collectives a Learner needs. A failed collective becomes one
// error that names the rank at fault, found through the store. Plain C++; every method runs on
// the owning Learner's worker thread.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "torch_compat.h"

namespace torchts {

// Every field is set by the binding (option_schema.h); the defaults live in TypeScript.
struct GroupOptions {
  int rank = 0;
  int worldSize = 1;
  std::string masterAddr;
  int masterPort = 0;
  // Rank 0 hosts the TCPStore; false when the launcher already hosts it (torchrun's agent store).
  bool hostStore = true;
  // Key prefix in the store ("/worker/attempt_<n>" under torchrun).
  std::string prefix;
  // Network interface for Gloo; empty: the interface that routes to masterAddr.
  std::string iface;
  // 'gloo' | 'nccl' | 'auto' (nccl for a CUDA device when the build has it, else gloo).
  std::string backend;
  std::chrono::milliseconds timeout{0};      // one collective
  std::chrono::milliseconds joinTimeout{0};  // the rendezvous: every rank joining
};

// Backends this build of the addon has ("gloo", "nccl"); empty without c10d.
std::vector<std::string> distributedBackends();

class ProcessGroup {
 public:
  // Joins the group (blocks until every rank joined or joinTimeout passed). Tensors of the
  // collectives live on `device`.
  ProcessGroup(const GroupOptions& options, const torch::Device& device);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // A collective in flight; wait() turns a failure into an error naming the rank at fault.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };

  // Sums `flat` (one contiguous tensor) over every rank, in place; runs on the backend's
  // threads while the caller goes on. `what` names it in errors ("the gradients of step 12").
  std::unique_ptr<Pending> allreduceSum(torch::Tensor flat, const std::string& what);
  // Copies rank 0's `flat` into every rank's, in place.
  std::unique_ptr<Pending> broadcast(torch::Tensor flat, const std::string& what);
  // Blocking forms.
  void allreduceSumNow(torch::Tensor flat, const std::string& what) { allreduceSum(std::move(flat), what)->wait(); }
  void broadcastNow(torch::Tensor flat, const std::string& what) { broadcast(std::move(flat), what)->wait(); }
  // Copies rank 0's tensors into every rank's (any dtypes and shapes, identical on every rank).
  void broadcastTensors(const std::vector<torch::Tensor>& tensors, const std::string& what);

  // Tells the other ranks that this one failed, with why: their next collective fails at once
  // and names this rank and `message` instead of waiting for the timeout.
  void reportFailure(const std::string& message) noexcept;

  int rank() const { return options_.rank; }
  int worldSize() const { return options_.worldSize; }
  const std::string& backend() const { return backend_; }
  // Seconds spent waiting for collectives so far (the time they did not overlap with work).
  double waitSeconds() const { return waitSeconds_; }

 private:
  struct Impl;
  // The error of a failed collective: which ranks stopped, found through the store.
  [[noreturn]] void failCollective(const std::string& what, const std::string& cause);

  GroupOptions options_;
  std::string backend_;
  std::unique_ptr<Impl> impl_;
  double waitSeconds_ = 0;
};

}  // namespace torchts
