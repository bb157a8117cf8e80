#include "checkpoint_format.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>

#include "crc32.h"
#include "little_endian.h"

namespace torchts {
namespace {

constexpr char kMagic[8] = {'T', 'S', 'C', 'K', 'P', 'T', '\r', '\n'};
constexpr uint32_t kMaxHeaderBytes = 64u << 20;
constexpr uint32_t kMaxNameBytes = 4096;
constexpr uint32_t kMaxValueBytes = 32u << 20;  // the fit's meta: plan, history
constexpr uint32_t kMaxEntries = 1u << 20;
constexpr int kMaxDims = 8;
constexpr uint64_t kAlign = 64;

// The dtypes a checkpoint may hold, by their code in the file.
const std::array<std::pair<uint8_t, c10::ScalarType>, 10>& dtypeCodes() {
  static const std::array<std::pair<uint8_t, c10::ScalarType>, 10> codes = {{
      {1, torch::kFloat32}, {2, torch::kFloat64}, {3, torch::kFloat16}, {4, torch::kBFloat16}, {5, torch::kInt64},
      {6, torch::kInt32}, {7, torch::kInt16}, {8, torch::kInt8}, {9, torch::kUInt8}, {10, torch::kBool},
  }};
  return codes;
}

uint8_t codeOf(c10::ScalarType type) {
  for (const auto& [code, t] : dtypeCodes()) {
    if (t == type) return code;
  }
  throw std::invalid_argument(std::string("checkpoint: cannot store tensors of type ") + c10::toString(type));
}

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void putString(std::string& out, const std::string& s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

uint64_t alignUp(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Reads the header with every length and count checked against what is left.
class HeaderReader {
 public:
  HeaderReader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  uint64_t u(int width) {
    need(width);
    pos_ += width;
    return readLittleEndian(bytes_.data() + pos_ - width, width);
  }
  std::string string(uint32_t max, const char* what) {
    const uint64_t n = u(4);
    if (n > max) damaged(std::string(what) + " of " + std::to_string(n) + " bytes");
    need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint32_t count(const char* what) {
    const uint64_t n = u(4);
    if (n > kMaxEntries) damaged(std::to_string(n) + " " + what);
    return static_cast<uint32_t>(n);
  }
  bool done() const { return pos_ == bytes_.size(); }
  [[noreturn]] void damaged(const std::string& why) const {
    throw std::runtime_error(path_ + ": damaged checkpoint (" + why + ")");
  }

 private:
  void need(uint64_t n) const {
    if (n > bytes_.size() - pos_) damaged("its header ends early");
  }
  const std::string& bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

struct TensorEntry {
  std::string name;
  c10::ScalarType type;
  std::vector<int64_t> dims;
  uint64_t offset, bytes;
  uint32_t crc;
};

}  // namespace

bool hasCheckpointMagic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[sizeof(kMagic)] = {0};
  in.read(head, sizeof(head));
  return in.gcount() == static_cast<std::streamsize>(sizeof(head)) && std::memcmp(head, kMagic, sizeof(head)) == 0;
}

int writeCheckpoint(std::FILE* file, const Archive& archive) {
  std::vector<torch::Tensor> data;
  std::string header;
  putU32(header, static_cast<uint32_t>(archive.meta.size()));
  for (const auto& [key, value] : archive.meta) {
    putString(header, key);
    putString(header, value);
  }
  putU32(header, static_cast<uint32_t>(archive.tensors.size()));
  uint64_t offset = 0;
  for (const auto& [name, tensor] : archive.tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = t.numel() * t.element_size();
    putString(header, name);
    header.push_back(static_cast<char>(codeOf(t.scalar_type())));
    header.push_back(static_cast<char>(t.dim()));
    for (int64_t d : t.sizes()) putU64(header, static_cast<uint64_t>(d));
    putU64(header, offset);
    putU64(header, bytes);
    putU32(header, crc32(t.data_ptr(), bytes));
    offset = alignUp(offset + bytes);
    data.push_back(std::move(t));
  }
  std::string prefix(kMagic, sizeof(kMagic));
  putU32(prefix, kCheckpointVersion);
  putU32(prefix, static_cast<uint32_t>(header.size()));
  std::string trailer;
  putU32(trailer, crc32(header.data(), header.size()));
  const uint64_t written = prefix.size() + header.size() + trailer.size();
  trailer.append(alignUp(written) - written, '\0');

  int error = 0;
  auto write = [&](const void* p, size_t n) {
    if (error == 0 && n > 0 && std::fwrite(p, 1, n, file) != n) error = errno ? errno : EIO;
  };
  write(prefix.data(), prefix.size());
  write(header.data(), header.size());
  write(trailer.data(), trailer.size());
  static const char zeros[kAlign] = {0};
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t bytes = data[i].numel() * data[i].element_size();
    write(data[i].data_ptr(), bytes);
    if (i + 1 < data.size()) write(zeros, alignUp(bytes) - bytes);
  }
  return error;
}

Archive readCheckpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open checkpoint file");
  in.seekg(0, std::ios::end);
  const uint64_t fileSize = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  const std::string empty;
  HeaderReader fixed(empty, path);
  char prefix[16] = {0};
  if (!in.read(prefix, sizeof(prefix))) fixed.damaged("it ends within its first 16 bytes");
  const std::string head(prefix + 8, 8);
  HeaderReader lengths(head, path);
  const uint32_t version = static_cast<uint32_t>(lengths.u(4));
  const uint32_t headerBytes = static_cast<uint32_t>(lengths.u(4));
  if (version > kCheckpointVersion) {
    throw std::runtime_error(path + ": written by a newer torchts (checkpoint format " + std::to_string(version) +
                             "; this torchts reads formats 1 to " + std::to_string(kCheckpointVersion) + "): upgrade torchts");
  }
  if (version < 2) fixed.damaged("format version " + std::to_string(version) + " with the format 2 magic");
  if (headerBytes > kMaxHeaderBytes || 16 + uint64_t(headerBytes) + 4 > fileSize) fixed.damaged("its header is larger than the file");
  std::string header(headerBytes, '\0');
  char crcBytes[4];
  if (!in.read(header.data(), headerBytes) || !in.read(crcBytes, 4)) fixed.damaged("its header ends early");
  const std::string crcText(crcBytes, 4);
  HeaderReader crcReader(crcText, path);
  if (crcReader.u(4) != crc32(header.data(), header.size())) fixed.damaged("its header fails its checksum");

  HeaderReader r(header, path);
  Archive archive;
  const uint32_t metaCount = r.count("meta entries");
  for (uint32_t i = 0; i < metaCount; ++i) {
    auto key = r.string(kMaxNameBytes, "a meta key");
    archive.meta[key] = r.string(kMaxValueBytes, "a meta value");
  }
  std::vector<TensorEntry> entries(r.count("tensors"));
  const uint64_t dataStart = alignUp(16 + uint64_t(headerBytes) + 4);
  uint64_t end = 0;
  for (auto& e : entries) {
    e.name = r.string(kMaxNameBytes, "a tensor name");
    const uint8_t code = static_cast<uint8_t>(r.u(1));
    bool known = false;
    for (const auto& [c, t] : dtypeCodes()) {
      if (c == code) e.type = t, known = true;
    }
    if (!known) r.damaged("tensor '" + e.name + "' has unknown type code " + std::to_string(code));
    const uint64_t ndim = r.u(1);
    if (ndim > kMaxDims) r.damaged("tensor '" + e.name + "' has " + std::to_string(ndim) + " dimensions");
    uint64_t numel = 1;
    for (uint64_t d = 0; d < ndim; ++d) {
      const uint64_t size = r.u(8);
      if (size > fileSize) r.damaged("tensor '" + e.name + "' has a dimension of " + std::to_string(size));
      numel = size == 0 || numel == 0 ? 0 : numel * size;
      if (numel > fileSize) r.damaged("tensor '" + e.name + "' is larger than the file");
      e.dims.push_back(static_cast<int64_t>(size));
    }
    e.offset = r.u(8);
    e.bytes = r.u(8);
    e.crc = static_cast<uint32_t>(r.u(4));
    if (e.bytes != numel * c10::elementSize(e.type)) r.damaged("tensor '" + e.name + "' has a byte count that does not match its shape");
    if (dataStart > fileSize || e.offset % kAlign != 0 || e.offset > fileSize - dataStart || e.bytes > fileSize - dataStart - e.offset) {
      r.damaged("tensor '" + e.name + "' lies outside the file (truncated?)");
    }
    end = std::max(end, e.offset + e.bytes);
  }
  if (!r.done()) r.damaged("its header has trailing bytes");
  if (dataStart + end != fileSize) {
    r.damaged(dataStart + end > fileSize ? "it is truncated" : "it has bytes after its last tensor");
  }
  for (const auto& e : entries) {
    auto t = torch::empty(e.dims, torch::dtype(e.type));
    in.seekg(static_cast<std::streamoff>(dataStart + e.offset));
    if (e.bytes > 0 && !in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.bytes))) {
      r.damaged("tensor '" + e.name + "' is truncated");
    }
    if (crc32(t.data_ptr(), e.bytes) != e.crc) r.damaged("tensor '" + e.name + "' fails its checksum: the file changed after it was written");
    archive.tensors.emplace_back(e.name, std::move(t));
  }
  return archive;
}

}  // namespace torchts
