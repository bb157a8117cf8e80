// Reads state_dicts from torch.save files: the small subset of the pickle protocol
// (2..5) that torch.save emits for a dict or an OrderedDict of tensors.
#pragma once
#include <functional>
#include <string>

#include "models/registry.h"

namespace torchts {

// Returns the 1-D tensor of all `numel` elements of the storage named `key`.
using StorageLoader = std::function<torch::Tensor(const std::string& key, torch::Dtype dtype, int64_t numel)>;

// `pickle` is a zip archive's data.pkl; storages come from `loader`. `path` names the
// file in error messages (std::runtime_error).
NamedTensors unpickleStateDict(const std::string& pickle, const StorageLoader& loader, const std::string& path);

// The whole of a file in the pre-1.6 format (_use_new_zipfile_serialization=False):
// pickles followed by the raw storages.
NamedTensors unpickleLegacyStateDict(const std::string& file, const std::string& path);

}  // namespace torchts
