// Data-parallel training as PyTorch's DistributedDataParallel does it, on our own buckets and
// hooks (c10d's Reducer is internal and its constructor changes between versions):
// - at the start, rank 0's parameters and buffers are copied to every rank;
// - gradients are summed by all-reduce in buckets (1 MB first, then 25 MB, in reverse parameter
//   order, roughly the order backward produces them), each launched from a gradient hook as soon
//   as it is full, so communication overlaps the rest of backward, then divided by the world size;
// - rank 0's buffers (BatchNorm's running statistics) are copied to every rank at each step, so
//   evaluation and checkpoints see the same model everywhere; BatchNorm itself is per replica.
// Plain C++; every method runs on the Learner's worker thread.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "process_group.h"
#include "torch_compat.h"

namespace torchts {

// What every rank agreed on after one step.
struct StepAgreement {
  double meanLoss;  // the mean of every rank's loss (NaN when any rank's was)
  bool stop;        // some rank asked to stop after this step
};

class DataParallel {
 public:
  // DDP's bucket sizes.
  static constexpr int64_t kFirstBucketBytes = 1 << 20;
  static constexpr int64_t kBucketBytes = 25 << 20;

  // Joins the group and copies rank 0's parameters and buffers to every rank. `overlap` false
  // launches every bucket after backward instead of from the hooks (for measuring the overlap).
  DataParallel(const GroupOptions& options, torch::nn::Module& network, const torch::Device& device, bool overlap);
  ~DataParallel();

  // Starts the buffers' broadcast and arms the gradient hooks; call after forward, before backward.
  void beforeBackward(int64_t step);
  // Waits for every bucket, writes the averaged gradients, and agrees on the loss and on stopping.
  StepAgreement afterBackward(double localLoss, bool stopAsked);
  // Drops a step whose backward failed (the gradient hooks stop listening).
  void abandonStep();

  // Copies rank 0's parameters and buffers to every rank (after a checkpoint was loaded).
  void syncFromRankZero(const std::string& what);
  // Sums `values` over every rank.
  std::vector<double> allReduce(const std::vector<double>& values);
  void reportFailure(const std::string& message) noexcept { group_.reportFailure(message); }

  const ProcessGroup& group() const { return group_; }
  // Seconds this rank spent waiting for gradient all-reduces (not hidden behind backward).
  double gradientWaitSeconds() const;

 private:
  struct Buckets;

  torch::nn::Module& network_;
  torch::Device device_;
  ProcessGroup group_;
  std::shared_ptr<Buckets> buckets_;  // the gradient hooks hold weak references
  std::unique_ptr<ProcessGroup::Pending> buffersInFlight_;
  torch::Tensor buffersFlat_;
  int64_t step_ = 0;
};

}  // namespace torchts
