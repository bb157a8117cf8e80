// The batch schema: a NativeBatch (lib/native.ts: images, n, h, w, labels | targets, augment,
// mix) and the {mean, std} normalisation, read from JavaScript into the structs of augment.h.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>

#include "augment.h"

namespace torchts {

// Parses a NativeBatch. `numClasses` bounds the labels and sizes the targets; `images`
// receives the Uint8Array the tensor wraps (the caller keeps it alive while it is used).
BatchSpec parseBatch(const Napi::Value& value, int64_t numClasses, Napi::Uint8Array* images);

// A batch whose image bytes the call owns, for work queued on another thread. A reference to
// the caller's Uint8Array would not be enough: JS may overwrite it, or detach it (structuredClone,
// postMessage transfer) and let its memory be freed, while the call is still queued. The copy
// costs ~1 ms per 10 MB.
std::shared_ptr<BatchSpec> ownedBatch(const Napi::Value& value, int64_t numClasses);

// batch.mix for a batch of n images of height x width (the box must lie inside).
MixSpec parseMix(const Napi::Value& value, int64_t n, int64_t height, int64_t width);

// `mean` and `std` of `options`: 3 numbers each (std > 0), or both absent/null for none.
Normalisation parseNormalisation(const Napi::Object& options);

}  // namespace torchts
