// Named bounds for everything that can grow.
#pragma once
#include <cstdint>

namespace vstorage {
inline constexpr uint32_t kMaxMessageBytes = 16u << 20;        // encoded message body
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;        // raw data appended to a frame
// Memory a decoder sets aside for the elements a count announces before it has read them;
// past this it grows as they decode (a count is checked only against the bytes left).
inline constexpr uint32_t kMaxDecodeReserveBytes = 64u << 10;
inline constexpr uint32_t kMaxNameBytes = 255;
inline constexpr uint32_t kMaxPathBytes = 4096;
inline constexpr uint32_t kMaxReplicas = 15;
inline constexpr uint64_t kDefaultChunkSizeBytes = 256ull << 20;
inline constexpr uint64_t kMinChunkSizeBytes = 1ull << 20;
inline constexpr uint32_t kCsumBlockBytes = 4096;
inline constexpr int kLeaseTimeoutMs = 60000;
inline constexpr int kDefaultMdsPort = 2510;
inline constexpr uint32_t kMaxLinks = 65000;  // hard links of one file, as ext4 (EMLINK beyond)
// Extended attributes (user., trusted., security.), as ext4 with large xattrs allows:
inline constexpr uint32_t kMaxXattrNameBytes = 255;     // ERANGE beyond
inline constexpr uint32_t kMaxXattrValueBytes = 65536;  // E2BIG beyond
inline constexpr uint32_t kMaxXattrBytesPerInode = 65536;  // names + values; ENOSPC beyond
}  // namespace vstorage
