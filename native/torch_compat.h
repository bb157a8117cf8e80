// The one place where libtorch version differences live. Everything else includes
// this header instead of testing TORCH_VERSION_* itself.
#pragma once
#include <ATen/autocast_mode.h>
#include <c10/util/Logging.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>

#if TORCH_VERSION_MAJOR >= 2
#define TORCHTS_TORCH2 1
#else
#define TORCHTS_TORCH2 0
#endif

// libtorch 2.4 replaced the CUDA-only autocast setters with per-device-type ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define TORCHTS_AUTOCAST_PER_DEVICE 1
#else
#define TORCHTS_AUTOCAST_PER_DEVICE 0
#endif

namespace torchts::compat {

// Turns CUDA autocast on (with `dtype`) or off for the calling thread. Autocast state is
// thread-local, so the Learner's worker thread sets it around each forward pass.
inline void setCudaAutocast(bool enabled, at::ScalarType dtype) {
#if TORCHTS_AUTOCAST_PER_DEVICE
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
  if (!enabled) at::autocast::clear_cache();
}

// The key torch::optim::Optimizer uses for a parameter in its state map: the parameter's
// TensorImpl address, printed as a string in 1.13 and early 2.x, the raw pointer in later 2.x.
// Deduced from the map's key type, so no version number has to be guessed.
template <typename StateMap>
typename StateMap::key_type optimizerStateKey(const StateMap&, const torch::Tensor& param) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << param.unsafeGetTensorImpl();
    return key.str();
  } else {
    return static_cast<Key>(param.unsafeGetTensorImpl());
  }
}

// libtorch 2.x logs "Could not initialize NNPACK! Reason: Unsupported hardware." once per process,
// the first time a convolution asks whether NNPACK can run, on every CPU without it. Asking once
// at load with the log level raised for that call alone keeps the line from the user while every
// later warning still shows. (1.13 logs through glog and does not print it.)
inline void quietOneTimeNotices() {
#if TORCHTS_TORCH2 && !defined(C10_USE_GLOG)
  const int level = FLAGS_caffe2_log_level;
  FLAGS_caffe2_log_level = 2;  // errors only
  (void)at::_nnpack_available();
  FLAGS_caffe2_log_level = level;
#endif
}

// Copies host memory into page-locked memory so a later non_blocking copy to CUDA overlaps.
inline torch::Tensor pinned(const torch::Tensor& host) { return host.pin_memory(); }

}  // namespace torchts::compat
