#include "checkpoint.h"

#ifdef _WIN32
#include <process.h>
#define TORCHTS_GETPID _getpid
#else
#include <unistd.h>
#define TORCHTS_GETPID getpid
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include "checkpoint_format.h"
#include "pickle.h"
#include "zip.h"

namespace torchts {
namespace {

// Format 1 (what torchts wrote before format 2, checkpoint_format.h) is a libtorch archive
// (TorchScript zip) holding three values:
//   "format"  = kFormat, "version" = kVersion,
//   "tensors" = Dict[str, Tensor] in insertion order, "meta" = Dict[str, str].
// The marker lets readArchive tell those files from any other libtorch archive.
constexpr const char* kFormat = "torchts-checkpoint";
constexpr int64_t kVersion = 1;

std::string shapeText(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

[[noreturn]] void notOurs(const std::string& path, const std::string& why) {
  throw std::runtime_error(path + ": not a torchts checkpoint (" + why + ")");
}

// The first non-empty line (libtorch's messages may start with a newline and end with a trace).
std::string firstLine(const std::string& text) {
  const size_t start = text.find_first_not_of(" \n");
  if (start == std::string::npos) return "no reason given";
  return text.substr(start, text.find('\n', start) - start);
}

// A format 1 checkpoint is a libtorch archive, whose loader recurses as deep as its pickles nest
// and compiles its TorchScript code: both are checked first, so a hostile file is refused
// instead of ending the process. Ours nest a few levels and hold a few lines of code.
void checkLegacyCheckpoint(const std::string& path) {
  constexpr size_t kMaxNesting = 64;
  constexpr uint64_t kMaxCodeBytes = 1 << 20;
  std::unique_ptr<ZipReader> zip;
  try {
    zip = std::make_unique<ZipReader>(path);
  } catch (const std::runtime_error& e) {
    notOurs(path, firstLine(e.what()));
  }
  // The layout a libtorch archive has: one top folder holding version, data.pkl and constants.pkl
  // (libtorch's reader refuses anything else, and leaks when it does).
  const auto names = zip->names();
  const std::string top = names.empty() ? std::string() : names.front().substr(0, names.front().find('/') + 1);
  for (const auto& name : names) {
    if (top.size() < 2 || name.compare(0, top.size(), top) != 0) notOurs(path, "not one archive folder");
  }
  for (const char* required : {"version", "data.pkl", "constants.pkl"}) {
    if (!zip->has(top + required)) notOurs(path, "no " + top + required);
  }
  for (const auto& name : names) {
    const bool pickle = name.size() > 4 && (name.compare(name.size() - 4, 4, ".pkl") == 0 ||
                                            name.compare(name.size() - 4, 4, "_pkl") == 0);
    const bool code = name.find("/code/") != std::string::npos && !pickle;
    if (code && zip->size(name) > kMaxCodeBytes) notOurs(path, name + " is " + std::to_string(zip->size(name)) + " bytes of code");
    // Every entry is read and its CRC-32 checked: libtorch then only sees an archive our reader
    // found whole (its own reader leaks when it refuses a damaged one).
    std::string bytes;
    try {
      bytes = zip->read(name);
    } catch (const std::runtime_error& e) {
      notOurs(path, firstLine(e.what()));
    }
    if (name == top + "version" && (bytes.empty() || bytes.size() > 8 || bytes.find_first_not_of("0123456789\n") != std::string::npos)) {
      notOurs(path, name + " is not a version number");
    }
    if (!pickle && !code) continue;
    if (pickle) {
      checkPickleShape(bytes, kMaxNesting, path + ": " + name);
      continue;
    }
    int depth = 0, deepest = 0;
    for (char c : bytes) {
      depth += (c == '(' || c == '[' || c == '{') - (c == ')' || c == ']' || c == '}');
      deepest = std::max(deepest, depth);
    }
    if (deepest > static_cast<int>(kMaxNesting)) notOurs(path, name + " nests " + std::to_string(deepest) + " brackets deep");
  }
}

// A copy of a format 1 archive made by libtorch's own writer from the entries our reader read, so
// libtorch's reader never parses zip structure from elsewhere: the fuzzer found inputs it
// leaks on (a zip64 record that contradicts the classic one, an "encrypted" flag, ...).
std::string canonicalCopy(const std::string& path) {
  ZipReader zip(path);
  const auto names = zip.names();
  const std::string top = names.front().substr(0, names.front().find('/') + 1);
  char name[] = "/tmp/torchts-format1-XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) throw std::runtime_error(path + ": cannot make a temporary copy to read (" + std::strerror(errno) + ")");
  close(fd);
  try {
    caffe2::serialize::PyTorchStreamWriter writer(name);
    for (const auto& entry : names) {
      const std::string record = entry.substr(top.size());
      if (record == "version" || record == ".data/version") continue;  // the writer writes its own
      const std::string bytes = zip.read(entry);
      writer.writeRecord(record, bytes.data(), bytes.size());
    }
    writer.writeEndOfFile();
  } catch (const std::exception& e) {
    std::remove(name);
    notOurs(path, firstLine(e.what()));
  }
  return name;
}

}  // namespace

std::string userMeta(const Archive& archive) {
  auto found = archive.meta.find(kUserMetaKey);
  return found == archive.meta.end() ? std::string() : found->second;
}

namespace {

// Writes `archive` to `tmp` with checked writes, then flushes it to the disk: a full disk is an
// error naming the file, never a half-written checkpoint under the final name.
// `write` returns 0 or an errno.
void writeThroughFile(const std::function<int(std::FILE*)>& write, const std::string& tmp, const std::string& path) {
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (!file) throw std::runtime_error(path + ": could not write checkpoint: " + std::strerror(errno));
  int error = 0;
  try {
    error = write(file);
  } catch (...) {
    std::fclose(file);
    std::remove(tmp.c_str());
    throw;
  }
  if (error == 0 && std::fflush(file) != 0) error = errno;
  if (error == 0 && fsync(fileno(file)) != 0) error = errno;
  if (std::fclose(file) != 0 && error == 0) error = errno;
  if (error != 0) {
    std::remove(tmp.c_str());
    const std::string full = error == ENOSPC ? " (the disk is full; nothing was replaced)" : "";
    throw std::runtime_error(path + ": could not write checkpoint: " + std::strerror(error) + full);
  }
}

// Writes through a temporary, then renames: a crash or a full disk never leaves a half file.
void writeAtomically(const std::string& path, const std::function<int(std::FILE*)>& write) {
  // Unique per process and per call, so two learners saving at once never share a temporary.
  static std::atomic<uint64_t> saves{0};
  const std::string tmp = path + ".tmp-" + std::to_string(TORCHTS_GETPID()) + "-" + std::to_string(saves++);
  writeThroughFile(write, tmp, path);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": could not move the checkpoint into place (" + why + ")");
  }
}

void checkUniqueNames(const NamedTensors& tensors, const char* what) {
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) throw std::invalid_argument(std::string(what) + " tensor name '" + name + "' appears twice");
  }
}

}  // namespace

void writeArchive(const std::string& path, const Archive& archive) {
  checkUniqueNames(archive.tensors, "checkpoint");
  writeAtomically(path, [&](std::FILE* file) { return writeCheckpoint(file, archive); });
}

NamedTensors renamedState(const NamedTensors& state, const std::vector<std::pair<std::string, std::string>>& names) {
  std::map<std::string, torch::Tensor> byName(state.begin(), state.end());
  std::set<std::string> theirs;
  NamedTensors out;
  for (const auto& [ours, their] : names) {
    auto found = byName.find(ours);
    if (found == byName.end()) throw std::invalid_argument("the model has no tensor '" + ours + "' to rename to '" + their + "'");
    if (!theirs.insert(their).second) throw std::invalid_argument("the name '" + their + "' is given to two tensors");
    out.emplace_back(their, found->second);
    byName.erase(found);
  }
  if (!byName.empty()) throw std::invalid_argument("no new name for the model's tensor '" + byName.begin()->first + "'");
  return out;
}

void writeTorchSave(const std::string& path, const NamedTensors& state) {
  checkUniqueNames(state, "state_dict");
  c10::Dict<std::string, torch::Tensor> dict;  // insertion-ordered, as a state_dict is
  for (const auto& [name, tensor] : state) dict.insert(name, tensor.detach().cpu().contiguous());
  // libtorch's pickler and zip writer, as torch::pickle_save uses them, but without type tags on
  // the dict: a tag calls torch.jit._pickle.restore_type_tag, which PyTorch 2.6+'s weights-only
  // torch.load refuses; the plain dict of tensors is what torch.save(state_dict) writes.
  std::vector<char> pickled;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pickled.insert(pickled.end(), data, data + size); },
                              nullptr, nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> bytes;
  caffe2::serialize::PyTorchStreamWriter zip([&](const void* data, size_t size) {
    const char* begin = static_cast<const char*>(data);
    bytes.insert(bytes.end(), begin, begin + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), zip);
  zip.writeEndOfFile();
  writeAtomically(path, [&](std::FILE* file) {
    return std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size() ? 0 : (errno != 0 ? errno : EIO);
  });
}

void writeFormat1Archive(const std::string& path, const Archive& archive) {
  c10::Dict<std::string, torch::Tensor> tensors;
  for (const auto& [name, tensor] : archive.tensors) tensors.insert(name, tensor.detach().cpu().contiguous());
  c10::Dict<std::string, std::string> meta;
  for (const auto& [key, value] : archive.meta) meta.insert(key, value);
  torch::serialize::OutputArchive out;
  out.write("format", c10::IValue(std::string(kFormat)));
  out.write("version", c10::IValue(kVersion));
  out.write("tensors", c10::IValue(tensors));
  out.write("meta", c10::IValue(meta));
  out.save_to(path);
}

Archive readArchive(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary)) throw std::runtime_error(path + ": cannot open checkpoint file");
  if (hasCheckpointMagic(path)) return readCheckpoint(path);
  // Format 1 (torchts before format 2): a libtorch archive, checked before libtorch parses it.
  checkLegacyCheckpoint(path);
  const std::string copy = canonicalCopy(path);
  torch::serialize::InputArchive in;
  try {
    in.load_from(copy);
  } catch (const std::exception& e) {
    std::remove(copy.c_str());
    notOurs(path, firstLine(e.what()));
  }
  std::remove(copy.c_str());
  c10::IValue format, version, tensors, meta;
  if (!in.try_read("format", format) || !format.isString() || format.toStringRef() != kFormat) {
    notOurs(path, "no torchts format marker");
  }
  if (!in.try_read("version", version) || !version.isInt()) notOurs(path, "no version");
  if (version.toInt() > kVersion) {
    throw std::runtime_error(path + ": checkpoint version " + std::to_string(version.toInt()) +
                             " is newer than this torchts reads (" + std::to_string(kVersion) + ")");
  }
  if (!in.try_read("tensors", tensors) || !tensors.isGenericDict() || !in.try_read("meta", meta) ||
      !meta.isGenericDict()) {
    notOurs(path, "tensors or meta missing");
  }
  Archive archive;
  for (const auto& item : tensors.toGenericDict()) {
    archive.tensors.emplace_back(item.key().toStringRef(), item.value().toTensor());
  }
  for (const auto& item : meta.toGenericDict()) {
    archive.meta[item.key().toStringRef()] = item.value().toStringRef();
  }
  return archive;
}

// Accepts both of torch.save's formats: the zip archive (PyTorch >= 1.6) and the older
// pickle stream, which is how some published weight files are still stored.
NamedTensors readTorchSave(const std::string& path) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw std::runtime_error(path + ": cannot open file");
    char head[2] = {0, 0};
    probe.read(head, 2);
    // The pre-1.6 format is a bare pickle stream: protocol opcode 0x80 then the version.
    if (probe.gcount() == 2 && static_cast<uint8_t>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5) {
      probe.seekg(0);
      std::string file((std::istreambuf_iterator<char>(probe)), std::istreambuf_iterator<char>());
      return unpickleLegacyStateDict(file, path);
    }
  }
  std::unique_ptr<ZipReader> zip;
  try {
    zip = std::make_unique<ZipReader>(path);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + "; expected a torch.save file");
  }
  std::string prefix;
  for (const auto& name : zip->names()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = name.substr(0, slash + 1);
      break;
    }
  }
  if (prefix.empty()) throw std::runtime_error(path + ": no data.pkl inside; not a torch.save zip file");
  bool torchScript = zip->has(prefix + "constants.pkl");
  for (const auto& name : zip->names()) torchScript = torchScript || name.rfind(prefix + "code/", 0) == 0;
  if (torchScript) {
    throw std::runtime_error(path + ": a TorchScript archive (torch.jit.save), not a torch.save state_dict");
  }
  if (zip->has(prefix + "byteorder")) {
    const std::string order = zip->read(prefix + "byteorder");
    if (order != "little") throw std::runtime_error(path + ": byte order '" + order + "' is not supported");
  }
  // Each storage is the raw little-endian bytes of data/<key>.
  StorageLoader fromZip = [&](const std::string& key, torch::Dtype dtype, int64_t) {
    const std::string entry = prefix + "data/" + key;
    if (!zip->has(entry)) throw std::runtime_error(path + ": storage '" + key + "' is missing from the archive");
    const std::string raw = zip->read(entry);
    const size_t elementSize = c10::elementSize(dtype);
    if (raw.size() % elementSize) {
      throw std::runtime_error(path + ": storage '" + key + "' is not a whole number of elements");
    }
    auto storage = torch::empty({static_cast<int64_t>(raw.size() / elementSize)}, torch::dtype(dtype));
    if (!raw.empty()) std::memcpy(storage.data_ptr(), raw.data(), raw.size());
    return storage;
  };
  return unpickleStateDict(zip->read(prefix + "data.pkl"), fromZip, path);
}

LoadReport loadStateDict(Classifier& model, const NamedTensors& state, bool skipHead) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : model.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : model.named_buffers(true)) targets[b.key()] = b.value();
  const std::string head = model.headPrefix() + ".";
  // With skipHead the classifier may differ in any way (another class count, or none in
  // the file): its tensors keep their fresh initialisation and are reported as skipped.
  const auto skippable = [&](const std::string& name) { return skipHead && name.rfind(head, 0) == 0; };

  // Check everything before copying anything, so a bad file leaves the model as it was.
  std::vector<std::string> unexpected, mismatched, skipped;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      (skippable(name) ? skipped : unexpected).push_back(name);
      continue;
    }
    seen.insert(name);
    if (tensor.sizes() != it->second.sizes()) {
      if (skippable(name)) skipped.push_back(name);
      else mismatched.push_back(name + " (file " + shapeText(tensor) + ", model " + shapeText(it->second) + ")");
    }
  }
  std::vector<std::string> missing;
  for (const auto& kv : targets) {
    if (seen.count(kv.first)) continue;
    (skippable(kv.first) ? skipped : missing).push_back(kv.first);
  }
  if (!unexpected.empty() || !missing.empty() || !mismatched.empty()) {
    auto list = [](const std::vector<std::string>& names) {
      std::string out;
      const size_t shown = std::min<size_t>(names.size(), 8);
      for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
      if (names.size() > shown) out += ", ... (" + std::to_string(names.size()) + " in all)";
      return out;
    };
    std::string msg = "state_dict does not fit the model:";
    if (!mismatched.empty()) msg += " shape mismatch: " + list(mismatched) + ";";
    if (!missing.empty()) msg += " missing keys: " + list(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected keys: " + list(unexpected) + ";";
    msg.pop_back();
    throw std::runtime_error(msg);
  }

  LoadReport report;
  report.skipped = skipped;
  torch::NoGradGuard noGrad;
  for (const auto& [name, tensor] : state) {
    if (std::find(skipped.begin(), skipped.end(), name) != skipped.end()) continue;
    targets[name].copy_(tensor);
    report.loaded.push_back(name);
  }
  return report;
}

}  // namespace torchts
