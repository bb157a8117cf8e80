// The one place where libtorch version differences live. Everything else includes
// this header instead of testing TORCH_VERSION_* itself.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
#define TORCHTS_TORCH2 1
#else
#define TORCHTS_TORCH2 0
#endif

namespace torchts::compat {
// Version-dependent helpers go here (autocast API, pin_memory signature, ...).
}  // namespace torchts::compat
