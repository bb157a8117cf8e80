#include "process_group.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "errors.h"

// c10d needs libtorch built with distributed support and, for Gloo, gloo's headers at build time
// (Debian: libgloo-dev; pip wheels ship c10d's headers but not gloo's, and Debian's serve them).
#if defined(USE_C10D_GLOO) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && \
    __has_include(<gloo/algorithm.h>)
#define TORCHTS_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define TORCHTS_HAVE_GLOO 0
#endif

#if TORCHTS_HAVE_GLOO && defined(USE_C10D_NCCL) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>) && __has_include(<nccl.h>)
#define TORCHTS_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define TORCHTS_HAVE_NCCL 0
#endif

namespace torchts {

std::vector<std::string> distributedBackends() {
  std::vector<std::string> out;
  if (TORCHTS_HAVE_GLOO) out.push_back("gloo");
  if (TORCHTS_HAVE_NCCL) out.push_back("nccl");
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string seconds(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << ms.count() / 1000.0 << " s";
  return out.str();
}

std::string endpoint(const GroupOptions& o) { return o.masterAddr + ":" + std::to_string(o.masterPort); }

}  // namespace

#if TORCHTS_HAVE_GLOO

#if TORCHTS_TORCH2
using BackendBase = c10d::Backend;  // 2.x: a process group dispatches to per-device backends
#else
using BackendBase = c10d::ProcessGroup;
#endif

namespace {

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::string stringOf(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

// The local address this machine uses to reach `host`: a UDP socket "connected" to it sends
// nothing but makes the kernel pick the route. Debian maps the hostname to 127.0.1.1, so the
// hostname alone would give a loopback device that other machines cannot reach.
std::string localAddressFor(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found) {
    badInput("masterAddr " + host + " does not resolve to an IPv4 address");
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket to find the route to " + host);
  sockaddr_in local{};
  socklen_t length = sizeof(local);
  const bool routed = connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0;
  close(fd);
  if (!routed) badInput("masterAddr " + host + " is not reachable from this machine (no route)");
  char text[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text));
  return text;
}

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> tcp;
  c10::intrusive_ptr<c10d::Store> keys;  // torchts's own keys: join, failures
  c10::intrusive_ptr<BackendBase> backend;
  std::mutex storeMutex;
};

namespace {

c10::intrusive_ptr<c10d::Store> connectStore(const GroupOptions& o) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.masterPort);
  so.isServer = o.hostStore && o.rank == 0;
  so.waitWorkers = false;  // the join below counts the ranks and names the missing ones
  so.timeout = o.joinTimeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);
  } catch (...) {
    const std::string cause = currentExceptionMessage();
    if (so.isServer) {
      throw std::runtime_error("rendezvous: rank 0 cannot host the store on port " + std::to_string(o.masterPort) +
                               " (is the port in use? choose another master port): " + cause);
    }
    throw std::runtime_error("rendezvous: cannot reach the store at " + endpoint(o) + " within " +
                             seconds(o.joinTimeout) + " (is rank 0 running, and is " + o.masterAddr +
                             " an address of its machine?): " + cause);
  }
}

// Every rank registers, checks that all agree on the world size, then waits for the others.
void join(c10d::Store& keys, const GroupOptions& o) {
  const std::string world = std::to_string(o.worldSize);
  if (keys.add("rank/" + std::to_string(o.rank), 1) > 1) {
    throw std::runtime_error("rendezvous at " + endpoint(o) + ": rank " + std::to_string(o.rank) +
                             " joined twice; every process needs its own RANK");
  }
  const std::string agreed = stringOf(keys.compareSet("world_size", {}, bytesOf(world)));
  if (agreed != world) {
    throw std::runtime_error("rendezvous at " + endpoint(o) + ": this rank (" + std::to_string(o.rank) +
                             ") has world size " + world + " but another rank has " + agreed +
                             "; every rank needs the same WORLD_SIZE");
  }
  keys.add("joined", 1);
  const auto deadline = Clock::now() + o.joinTimeout;
  while (keys.add("joined", 0) < o.worldSize) {
    if (Clock::now() > deadline) {
      std::string missing;
      for (int r = 0; r < o.worldSize; ++r) {
        if (!keys.check({"rank/" + std::to_string(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      }
      throw std::runtime_error("rendezvous at " + endpoint(o) + ": " + std::to_string(keys.add("joined", 0)) + " of " +
                               world + " ranks joined within " + seconds(o.joinTimeout) + " (missing: rank " + missing +
                               "); start every rank, or check WORLD_SIZE");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

c10::intrusive_ptr<BackendBase> glooGroup(const c10::intrusive_ptr<c10d::Store>& store, const GroupOptions& o) {
  auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
  try {
    options->devices.push_back(o.iface.empty()
                                   ? c10d::ProcessGroupGloo::createDeviceForHostname(localAddressFor(o.masterAddr, o.masterPort))
                                   : c10d::ProcessGroupGloo::createDeviceForInterface(o.iface));
  } catch (const InputError&) {
    throw;
  } catch (...) {
    badInput("network interface '" + o.iface + "' cannot carry Gloo (does it exist and have an IPv4 address?): " +
             currentExceptionMessage());
  }
  options->threads = 2;  // a bucket's all-reduce and the buffers' broadcast run side by side
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.worldSize, options);
}

c10::intrusive_ptr<BackendBase> ncclGroup(const c10::intrusive_ptr<c10d::Store>& store, const GroupOptions& o) {
#if TORCHTS_HAVE_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = o.timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.worldSize, options);
#else
  (void)store;
  badInput("backend 'nccl' for rank " + std::to_string(o.rank) +
           ": this build of torchts has no NCCL (it needs libtorch's CUDA build with NCCL); use 'gloo'");
#endif
}

std::string chooseBackend(const std::string& asked, const torch::Device& device) {
  if (asked == "auto") return device.is_cuda() && TORCHTS_HAVE_NCCL ? "nccl" : "gloo";
  if (asked == "nccl" && !device.is_cuda()) badInput("backend 'nccl' needs a CUDA device; this learner is on the CPU");
  return asked;
}

}  // namespace

ProcessGroup::ProcessGroup(const GroupOptions& options, const torch::Device& device)
    : options_(options), backend_(chooseBackend(options.backend, device)), impl_(std::make_unique<Impl>()) {
  impl_->tcp = connectStore(options_);
  impl_->keys = c10::make_intrusive<c10d::PrefixStore>(options_.prefix + "/torchts", impl_->tcp);
  join(*impl_->keys, options_);
  auto store = c10::make_intrusive<c10d::PrefixStore>(options_.prefix + "/" + backend_, impl_->tcp);
  try {
    impl_->backend = backend_ == "nccl" ? ncclGroup(store, options_) : glooGroup(store, options_);
  } catch (const InputError& e) {
    reportFailure(e.what());  // this rank's own setting is wrong: the others name it
    throw;
  } catch (...) {
    failCollective("the connection between the ranks (rendezvous at " + endpoint(options_) + ")", currentExceptionMessage());
  }
}

ProcessGroup::~ProcessGroup() = default;

namespace {

class PendingWork final : public ProcessGroup::Pending {
 public:
  using WorkPtr = decltype(std::declval<BackendBase&>().allreduce(std::declval<std::vector<at::Tensor>&>()));
  PendingWork(WorkPtr work, std::vector<at::Tensor> tensors, std::string what,
              std::function<void(const std::string&, const std::string&)> fail, double& waited)
      : work_(std::move(work)), tensors_(std::move(tensors)), what_(std::move(what)), fail_(std::move(fail)),
        waited_(waited) {}
  void wait() override {
    const auto start = Clock::now();
    try {
      work_->wait();
    } catch (...) {
      fail_(what_, currentExceptionMessage());
    }
    waited_ += secondsSince(start);
  }

 private:
  WorkPtr work_;
  std::vector<at::Tensor> tensors_;  // the backend reads and writes them until the work is done
  std::string what_;
  std::function<void(const std::string&, const std::string&)> fail_;
  double& waited_;
};

}  // namespace

std::unique_ptr<ProcessGroup::Pending> ProcessGroup::allreduceSum(torch::Tensor flat, const std::string& what) {
  std::vector<at::Tensor> tensors{std::move(flat)};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG: callers divide
  o.timeout = options_.timeout;
  auto work = impl_->backend->allreduce(tensors, o);
  return std::make_unique<PendingWork>(std::move(work), std::move(tensors), what,
                                       [this](const std::string& w, const std::string& c) { failCollective(w, c); }, waitSeconds_);
}

std::unique_ptr<ProcessGroup::Pending> ProcessGroup::broadcast(torch::Tensor flat, const std::string& what) {
  std::vector<at::Tensor> tensors{std::move(flat)};
  c10d::BroadcastOptions o;
  o.rootRank = 0;
  o.timeout = options_.timeout;
  auto work = impl_->backend->broadcast(tensors, o);
  return std::make_unique<PendingWork>(std::move(work), std::move(tensors), what,
                                       [this](const std::string& w, const std::string& c) { failCollective(w, c); }, waitSeconds_);
}

void ProcessGroup::reportFailure(const std::string& message) noexcept {
  try {
    std::lock_guard<std::mutex> lock(impl_->storeMutex);
    impl_->keys->setTimeout(std::chrono::seconds(3));
    impl_->keys->set("failed/" + std::to_string(options_.rank), bytesOf("error:" + message));
  } catch (...) {
    // The store is gone too: the others find this rank missing instead.
  }
}

void ProcessGroup::failCollective(const std::string& what, const std::string& cause) {
  constexpr auto kListen = std::chrono::seconds(3);
  const std::string me = "this is rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.worldSize);
  std::lock_guard<std::mutex> lock(impl_->storeMutex);
  auto& keys = *impl_->keys;
  try {
    keys.setTimeout(kListen);
    keys.set("failed/" + std::to_string(options_.rank), bytesOf("waiting:" + what));
  } catch (...) {
    const std::string host = options_.hostStore ? "rank 0, which hosts the rendezvous store at " + endpoint(options_) +
                                                      ", stopped responding (its process died or hung)"
                                                : "the launcher's rendezvous store at " + endpoint(options_) + " stopped answering";
    throw std::runtime_error(host + " during " + what + "; " + me + " (" + trimTorchMessage(cause) + ")");
  }
  // The other survivors report within moments; a rank that never does died or hung.
  std::map<int, std::string> heard;
  const auto deadline = Clock::now() + kListen;
  while (true) {
    for (int r = 0; r < options_.worldSize; ++r) {
      const std::string key = "failed/" + std::to_string(r);
      if (r == options_.rank || heard.count(r)) continue;
      try {
        if (keys.check({key})) heard[r] = stringOf(keys.get(key));
      } catch (...) {
      }
    }
    if (static_cast<int>(heard.size()) == options_.worldSize - 1 || Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string failed, silent;
  for (int r = 0; r < options_.worldSize; ++r) {
    if (r == options_.rank) continue;
    auto found = heard.find(r);
    if (found == heard.end()) {
      silent += (silent.empty() ? "rank " : ", ") + std::to_string(r);
    } else if (found->second.rfind("error:", 0) == 0) {
      failed += (failed.empty() ? "" : "; ") + ("rank " + std::to_string(r) + " failed: " + found->second.substr(6));
    }
  }
  std::string message;
  if (!failed.empty()) {
    message = failed;
  } else if (!silent.empty()) {
    message = silent + " stopped responding (its process died or hung)";
  } else {
    message = "every rank was waiting";
  }
  throw std::runtime_error(message + " during " + what + "; " + me + " (" + trimTorchMessage(cause) + ")");
}

#else  // no c10d Gloo in this build

struct ProcessGroup::Impl {};

ProcessGroup::ProcessGroup(const GroupOptions& options, const torch::Device&) : options_(options) {
  badInput("data-parallel training: this build of torchts has no c10d Gloo (libtorch without distributed support, or "
           "gloo's headers missing when it was built: install libgloo-dev and rebuild with `npm rebuild torchts`)");
}
ProcessGroup::~ProcessGroup() = default;
std::unique_ptr<ProcessGroup::Pending> ProcessGroup::allreduceSum(torch::Tensor, const std::string&) { return nullptr; }
std::unique_ptr<ProcessGroup::Pending> ProcessGroup::broadcast(torch::Tensor, const std::string&) { return nullptr; }
void ProcessGroup::reportFailure(const std::string&) noexcept {}
void ProcessGroup::failCollective(const std::string& what, const std::string& cause) {
  throw std::runtime_error(what + ": " + cause);
}

#endif

void ProcessGroup::broadcastTensors(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  // One broadcast per dtype, of the tensors flattened into one buffer (Gloo takes one tensor).
  std::map<c10::ScalarType, std::vector<torch::Tensor>> byType;
  for (const auto& t : tensors) byType[t.scalar_type()].push_back(t);
  for (auto& [type, group] : byType) {
    std::vector<torch::Tensor> flat;
    for (const auto& t : group) flat.push_back(t.detach().reshape(-1));
    auto buffer = torch::cat(flat);
    broadcastNow(buffer, what);
    int64_t offset = 0;
    torch::NoGradGuard noGrad;
    for (auto& t : group) {
      t.detach().copy_(buffer.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

}  // namespace torchts
