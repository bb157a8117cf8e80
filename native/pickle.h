// Reads the state_dict pickle inside a torch.save zip archive (data.pkl): the small
// subset of the pickle protocol (2..5) that torch.save emits for a dict or an
// OrderedDict of tensors. Tensor storages are read from the archive's data/ entries.
#pragma once
#include <string>

#include "models/registry.h"
#include "zip.h"

namespace torchts {

// `prefix` is the archive's folder ("<name>/"); `path` is used in error messages.
NamedTensors unpickleStateDict(ZipReader& zip, const std::string& prefix, const std::string& path);

}  // namespace torchts
