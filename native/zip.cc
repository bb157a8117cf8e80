#include "zip.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "crc32.h"
#include "little_endian.h"

namespace torchts {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr size_t kEndRecordSize = 22;
constexpr size_t kMaxCommentSize = 0xffff;

uint64_t le(const std::string& bytes, size_t at, int width) {
  if (at + width > bytes.size()) throw std::out_of_range("zip record");
  return readLittleEndian(bytes.data() + at, width);
}

}  // namespace

void ZipReader::fail(const std::string& why) const {
  throw std::runtime_error(path_ + ": " + why);
}

std::string ZipReader::readAt(uint64_t offset, uint64_t length, const char* what) {
  if (offset > fileSize_ || length > fileSize_ - offset) {
    fail(std::string("truncated zip archive (") + what + " lies past the end of the file)");
  }
  std::string out(length, '\0');
  file_.clear();
  file_.seekg(static_cast<std::streamoff>(offset));
  if (length > 0 && !file_.read(&out[0], static_cast<std::streamsize>(length))) {
    fail(std::string("could not read ") + what);
  }
  return out;
}

ZipReader::ZipReader(const std::string& path) : path_(path) {
  file_.open(path, std::ios::binary);
  if (!file_) fail("cannot open file");
  file_.seekg(0, std::ios::end);
  fileSize_ = static_cast<uint64_t>(file_.tellg());
  if (fileSize_ < 4 || le(readAt(0, 4, "signature"), 0, 4) != kLocalHeader) fail("not a zip archive");
  if (fileSize_ < kEndRecordSize) fail("truncated zip archive (no end-of-directory record)");

  // The end-of-central-directory record is the last 22 bytes plus an optional comment.
  const uint64_t tailSize = std::min<uint64_t>(fileSize_, kEndRecordSize + kMaxCommentSize);
  const std::string tail = readAt(fileSize_ - tailSize, tailSize, "end of archive");
  size_t eocd = std::string::npos;
  for (size_t i = tail.size() - kEndRecordSize + 1; i-- > 0;) {
    if (le(tail, i, 4) == kEndOfCentralDir) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos) fail("truncated zip archive (no end-of-directory record)");
  // One disk, one count: readers disagree on archives that are not (libtorch's leaks on them).
  if (le(tail, eocd + 4, 2) != 0 || le(tail, eocd + 6, 2) != 0 || le(tail, eocd + 8, 2) != le(tail, eocd + 10, 2)) {
    fail("corrupt end-of-directory record (spanned or inconsistent entry counts)");
  }
  uint64_t count = le(tail, eocd + 10, 2);
  uint64_t dirSize = le(tail, eocd + 12, 4);
  uint64_t dirOffset = le(tail, eocd + 16, 4);
  // Zip64: the locator sits just before the classic record and points at the zip64 record. A
  // reader that finds one uses it (libtorch's does), so where both give a value they must agree.
  const uint64_t locatorAt = fileSize_ - tailSize + eocd;
  const std::string locator = locatorAt >= 20 ? readAt(locatorAt - 20, 20, "zip64 locator") : std::string();
  const bool zip64 = !locator.empty() && le(locator, 0, 4) == kZip64EndLocator;
  const bool saturated = dirOffset == 0xffffffffu || count == 0xffffu || dirSize == 0xffffffffu;
  if (saturated && !zip64) fail("broken zip64 archive (no locator)");
  if (zip64) {
    const uint64_t recordAt = le(locator, 8, 8);
    if (recordAt > fileSize_ || fileSize_ - recordAt < 56) fail("broken zip64 archive (end record outside the file)");
    const std::string record = readAt(recordAt, 56, "zip64 end record");
    if (le(record, 0, 4) != kZip64End) fail("broken zip64 archive (no end record)");
    if (le(record, 24, 8) != le(record, 32, 8)) fail("broken zip64 archive (inconsistent entry counts)");
    const uint64_t count64 = le(record, 32, 8), size64 = le(record, 40, 8), offset64 = le(record, 48, 8);
    if ((count != 0xffffu && count != count64) || (dirSize != 0xffffffffu && dirSize != size64) ||
        (dirOffset != 0xffffffffu && dirOffset != offset64)) {
      fail("broken zip64 archive (its end record disagrees with the classic one)");
    }
    count = count64;
    dirSize = size64;
    dirOffset = offset64;
  }

  if (count == 0) fail("the archive holds no entries");
  if (dirOffset > fileSize_ || dirSize > fileSize_ - dirOffset) fail("corrupt end-of-directory record (directory outside the file)");
  const std::string dir = readAt(dirOffset, dirSize, "central directory");
  size_t at = 0;
  try {
    for (uint64_t n = 0; n < count; ++n) {
      if (le(dir, at, 4) != kCentralHeader) fail("corrupt central directory");
      Entry e{};
      e.method = static_cast<uint16_t>(le(dir, at + 10, 2));
      e.crc = static_cast<uint32_t>(le(dir, at + 16, 4));
      e.compressedSize = le(dir, at + 20, 4);
      e.size = le(dir, at + 24, 4);
      const size_t nameLen = le(dir, at + 28, 2), extraLen = le(dir, at + 30, 2), commentLen = le(dir, at + 32, 2);
      e.localHeaderOffset = le(dir, at + 42, 4);
      if (at + 46 + nameLen + extraLen > dir.size()) fail("corrupt central directory");
      std::string name = dir.substr(at + 46, nameLen);
      // Zip64 extra field (id 1): 8-byte values for whichever classic fields are saturated.
      for (size_t x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
        const uint64_t id = le(dir, x, 2), len = le(dir, x + 2, 2);
        if (id == 1) {
          size_t v = x + 4;
          if (e.size == 0xffffffffu) e.size = le(dir, v, 8), v += 8;
          if (e.compressedSize == 0xffffffffu) e.compressedSize = le(dir, v, 8), v += 8;
          if (e.localHeaderOffset == 0xffffffffu) e.localHeaderOffset = le(dir, v, 8);
        }
        x += 4 + len;
      }
      entries_[name] = e;
      at += 46 + nameLen + extraLen + commentLen;
    }
  } catch (const std::out_of_range&) {
    fail("corrupt central directory");
  }
}

std::vector<std::string> ZipReader::names() const {
  std::vector<std::string> out;
  for (const auto& kv : entries_) out.push_back(kv.first);
  return out;
}

bool ZipReader::has(const std::string& name) const { return entries_.count(name) > 0; }

uint64_t ZipReader::size(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("zip entry '" + name + "' is missing");
  return it->second.size;
}

std::string ZipReader::read(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("zip entry '" + name + "' is missing");
  const Entry& e = it->second;
  if (e.method != 0) {
    fail("zip entry '" + name + "' is compressed (method " + std::to_string(e.method) +
         "); torch.save writes stored entries only");
  }
  const std::string header = readAt(e.localHeaderOffset, 30, "local file header");
  if (le(header, 0, 4) != kLocalHeader) fail("corrupt local header for '" + name + "'");
  // The local extra field differs from the central one: torch pads it to align data.
  const uint64_t dataAt = e.localHeaderOffset + 30 + le(header, 26, 2) + le(header, 28, 2);
  std::string bytes = readAt(dataAt, e.size, ("entry '" + name + "'").c_str());
  // torch.save has no checksum of its own, but its zip entries carry one: a damaged download or
  // disk shows here instead of as wrong weights.
  if (crc32(bytes.data(), bytes.size()) != e.crc) {
    fail("zip entry '" + name + "' fails its CRC-32: the file changed after it was written (a damaged copy?)");
  }
  return bytes;
}

}  // namespace torchts
