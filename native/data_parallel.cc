#include "data_parallel.h"

#include <cmath>

namespace torchts {

// The gradient buckets of the trainable parameters and the state of the current step. The hooks
// reach it through weak references: parameters own their hooks, so a strong one would keep the
// buckets (and through them the parameters) alive forever.
struct DataParallel::Buckets {
  struct Slot {
    int bucket = -1;  // -1: frozen, no gradient expected
    int64_t offset = 0;
  };
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> members;
    size_t arrived = 0;
    std::unique_ptr<ProcessGroup::Pending> pending;
  };

  ProcessGroup* group = nullptr;
  bool overlap = true;
  std::vector<torch::Tensor> params;
  std::vector<bool> trainable;  // the requires_grad pattern the buckets were built for
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<bool> arrived;
  size_t nextLaunch = 0;
  bool armed = false;
  std::string what;
  double waitSeconds = 0;

  void rebuildIfFrozenChanged(const torch::Device& device) {
    std::vector<bool> now;
    for (const auto& p : params) now.push_back(p.requires_grad());
    if (now == trainable && !buckets.empty()) return;
    trainable = now;
    buckets.clear();
    slots.assign(params.size(), Slot{});
    int64_t capacity = kFirstBucketBytes, used = 0;
    // Reverse order: the head's gradients come first in backward.
    for (size_t k = params.size(); k-- > 0;) {
      if (!trainable[k]) continue;
      const int64_t bytes = params[k].numel() * static_cast<int64_t>(params[k].element_size());
      if (buckets.empty() || (used > 0 && used + bytes > capacity)) {
        if (!buckets.empty()) capacity = kBucketBytes;
        buckets.emplace_back();
        used = 0;
      }
      auto& bucket = buckets.back();
      slots[k] = Slot{static_cast<int>(buckets.size() - 1), used / static_cast<int64_t>(params[k].element_size())};
      bucket.members.push_back(k);
      used += bytes;
    }
    for (auto& bucket : buckets) {
      int64_t numel = 0;
      for (size_t k : bucket.members) numel += params[k].numel();
      bucket.flat = torch::zeros({numel}, torch::TensorOptions().dtype(params[bucket.members[0]].scalar_type()).device(device));
    }
  }

  torch::Tensor sliceOf(size_t k) {
    const auto& slot = slots[k];
    return buckets[slot.bucket].flat.narrow(0, slot.offset, params[k].numel()).view(params[k].sizes());
  }

  void begin(const std::string& stepName) {
    for (auto& b : buckets) {
      b.arrived = 0;
      b.pending.reset();
    }
    arrived.assign(params.size(), false);
    nextLaunch = 0;
    what = stepName;
    armed = true;
  }

  void onGradient(size_t k, const torch::Tensor& grad) {
    if (!armed || slots[k].bucket < 0 || arrived[k]) return;
    sliceOf(k).copy_(grad);
    arrived[k] = true;
    ++buckets[slots[k].bucket].arrived;
    // In bucket order on every rank: the collectives must match one for one across ranks.
    if (overlap) {
      while (nextLaunch < buckets.size() && buckets[nextLaunch].arrived == buckets[nextLaunch].members.size()) launch(nextLaunch++);
    }
  }

  void launch(size_t b) {
    auto& bucket = buckets[b];
    // A parameter that got no gradient this step (unused) contributes zeros.
    for (size_t k : bucket.members) {
      if (!arrived[k]) sliceOf(k).zero_();
    }
    bucket.pending = group->allreduceSum(bucket.flat, "the gradient all-reduce of " + what + " (bucket " +
                                                          std::to_string(b + 1) + " of " + std::to_string(buckets.size()) + ")");
  }

  void finish() {
    armed = false;
    while (nextLaunch < buckets.size()) launch(nextLaunch++);
    const double before = group->waitSeconds();
    for (auto& bucket : buckets) bucket.pending->wait();
    waitSeconds += group->waitSeconds() - before;
    const double world = group->worldSize();
    for (auto& bucket : buckets) {
      bucket.flat.div_(world);
      for (size_t k : bucket.members) {
        auto& grad = params[k].mutable_grad();
        if (grad.defined()) {
          grad.copy_(sliceOf(k));
        } else {
          grad = sliceOf(k).clone();
        }
      }
    }
  }
};

namespace {

// Floating-point buffers (BatchNorm's running mean and variance): what rank 0 shares each step.
// The step counters (int64) advance identically on every rank and are left alone.
std::vector<torch::Tensor> floatBuffers(torch::nn::Module& network) {
  std::vector<torch::Tensor> out;
  for (const auto& b : network.buffers()) {
    if (b.is_floating_point()) out.push_back(b);
  }
  return out;
}

}  // namespace

DataParallel::DataParallel(const GroupOptions& options, torch::nn::Module& network, const torch::Device& device, bool overlap)
    : network_(network), device_(device), group_(options, device), buckets_(std::make_shared<Buckets>()) {
  buckets_->group = &group_;
  buckets_->overlap = overlap;
  buckets_->params = network.parameters();
  std::weak_ptr<Buckets> weak = buckets_;
  for (size_t k = 0; k < buckets_->params.size(); ++k) {
    auto& p = buckets_->params[k];
    // A hook can only be registered on a parameter that requires grad; frozen ones are thawed
    // for the registration.
    const bool frozen = !p.requires_grad();
    if (frozen) p.set_requires_grad(true);
    p.register_hook([weak, k](const torch::Tensor& grad) {
      if (auto buckets = weak.lock()) buckets->onGradient(k, grad);
    });
    if (frozen) p.set_requires_grad(false);
  }
  syncFromRankZero("the start (copying rank 0's weights)");
}

DataParallel::~DataParallel() = default;

void DataParallel::syncFromRankZero(const std::string& what) {
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> state = network_.parameters();
  for (const auto& b : network_.buffers()) state.push_back(b);
  group_.broadcastTensors(state, what);
}

void DataParallel::beforeBackward(int64_t step) {
  step_ = step;
  const std::string name = "step " + std::to_string(step);
  // Forward has just updated the running statistics: rank 0's are sent while backward runs.
  auto buffers = floatBuffers(network_);
  if (!buffers.empty()) {
    std::vector<torch::Tensor> flat;
    for (const auto& b : buffers) flat.push_back(b.detach().reshape(-1).to(torch::kFloat));
    buffersFlat_ = torch::cat(flat);
    buffersInFlight_ = group_.broadcast(buffersFlat_, "the buffer broadcast of " + name);
  }
  buckets_->rebuildIfFrozenChanged(device_);
  buckets_->begin(name);
}

StepAgreement DataParallel::afterBackward(double localLoss, bool stopAsked) {
  buckets_->finish();
  if (buffersInFlight_) {
    buffersInFlight_->wait();
    buffersInFlight_.reset();
    torch::NoGradGuard noGrad;
    int64_t offset = 0;
    for (auto& b : floatBuffers(network_)) {
      b.detach().copy_(buffersFlat_.narrow(0, offset, b.numel()).view(b.sizes()));
      offset += b.numel();
    }
  }
  auto agreed = allReduce({localLoss, stopAsked ? 1.0 : 0.0});
  return StepAgreement{agreed[0] / group_.worldSize(), agreed[1] > 0};
}

void DataParallel::abandonStep() {
  buckets_->armed = false;
  buffersInFlight_.reset();
}

std::vector<double> DataParallel::allReduce(const std::vector<double>& values) {
  auto flat = torch::tensor(values, torch::TensorOptions().dtype(torch::kDouble)).to(device_);
  group_.allreduceSumNow(flat, "an all-reduce of " + std::to_string(values.size()) + " values (after step " + std::to_string(step_) + ")");
  auto host = flat.cpu();
  return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
}

double DataParallel::gradientWaitSeconds() const { return buckets_->waitSeconds; }

}  // namespace torchts
