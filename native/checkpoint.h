// Files: our checkpoints (atomic) and torch.save() state_dict files from PyTorch.
#pragma once
#include <map>
#include <string>

#include "models/registry.h"

namespace torchts {

// A checkpoint's tensors named "opt.<param>.<field>" are optimizer state; the rest are weights.
constexpr const char* kOptimizerPrefix = "opt.";

// Named tensors plus string metadata: everything a checkpoint holds.
struct Archive {
  NamedTensors tensors;
  std::map<std::string, std::string> meta;
};

// The meta key of the caller's own text (the Learner's save(file, meta)).
constexpr const char* kUserMetaKey = "meta";
// That text, or "" when the file has none.
std::string userMeta(const Archive& archive);

// Writes to `path + ".tmp-<pid>"` then renames, so a crash never leaves a half file.
void writeArchive(const std::string& path, const Archive& archive);
// Throws std::runtime_error naming the path when it is missing, damaged, newer or not ours.
// Reads format 2 (checkpoint_format.h) and format 1 (a libtorch archive, checked first).
Archive readArchive(const std::string& path);
// Writes format 1, as torchts did before format 2: only for the tests that old files still load.
void writeFormat1Archive(const std::string& path, const Archive& archive);

// Writes `state` as torch.save(state_dict) does (libtorch's pickle_save: a zip archive that
// Python's torch.load reads), atomically like writeArchive.
void writeTorchSave(const std::string& path, const NamedTensors& state);

// `state` with every name replaced by its pair in `names` ([ours, theirs]), in the order of
// `names`. Throws naming a tensor without a pair, a pair without a tensor, or a repeated name.
NamedTensors renamedState(const NamedTensors& state, const std::vector<std::pair<std::string, std::string>>& names);

// Reads a file written by torch.save(model.state_dict()) (zip format: OrderedDict or dict
// of tensors). Throws std::runtime_error with a clear message for anything else.
NamedTensors readTorchSave(const std::string& path);

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> skipped;
};
// Copies parameters and buffers by name. Missing/unexpected names or shape mismatches
// throw, except head tensors (headPrefix) when skipHead is set, which are reported as skipped.
LoadReport loadStateDict(Classifier& model, const NamedTensors& state, bool skipHead);

}  // namespace torchts
