// The torchts checkpoint format, version 2: read and written by us alone, so loading a file
// (a download, a colleague's run) never hands untrusted bytes to a general parser. Layout,
// little-endian:
//   "TSCKPT\r\n"            8 bytes: magic (the \r\n catches text-mode transfers)
//   u32 version             kCheckpointVersion
//   u32 headerBytes         at most kMaxHeaderBytes
//   header                  u32 count, then per meta entry: u32 length + key, u32 length + value;
//                           u32 count, then per tensor: u32 length + name, u8 dtype, u8 ndim,
//                           i64 dims[ndim], u64 offset, u64 bytes, u32 crc32 of the bytes
//   u32 crc32 of the header
//   zero padding to a multiple of 64, then the tensors' bytes at their offsets (64-aligned)
// The file ends exactly after the last tensor: anything shorter or longer is damage.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "checkpoint.h"

namespace torchts {

constexpr uint32_t kCheckpointVersion = 2;

// True when the file starts with the magic of this format (any version).
bool hasCheckpointMagic(const std::string& path);
// Writes `archive` to `file`; returns 0 or the errno of the first failed write.
int writeCheckpoint(std::FILE* file, const Archive& archive);
// Reads and verifies a file of this format: a damaged, truncated or newer file is an error
// naming the path and what is wrong.
Archive readCheckpoint(const std::string& path);

}  // namespace torchts
