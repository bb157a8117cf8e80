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

// Checks the shape of any pickle without building its values: only the protocol 2-5 opcodes
// Python and libtorch write, no value that contains itself, and no nesting deeper than
// `maxDepth`. libtorch's own unpickler recurses as deep as the file nests (150,000 levels end
// the process), so a file from elsewhere passes this before libtorch sees it. Throws
// std::runtime_error naming `what`.
void checkPickleShape(const std::string& pickle, size_t maxDepth, const std::string& what);

}  // namespace torchts
