// CRC32C (Castagnoli), computed with ISA-L's crc32_iscsi.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace vstorage {
// CRC32C of [data, data+len) with the standard init/xorout (crc32c("123456789") == 0xE3069283).
uint32_t Crc32c(const void* data, size_t len);
// Continues a CRC32C over more bytes; Crc32cExtend(Crc32c(a), b) == Crc32c(a+b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len);
// The CRC32C of a+b from crc_a = Crc32c(a), crc_b = Crc32c(b) and b's length, without the
// bytes: a CS builds the checksum of a 4 KiB block from a client's checksum of part of it.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

// End-to-end checksums (issue 13 item 4): the range [offset, offset+len) of a chunk cut at
// multiples of `block`, one CRC32C per segment (so a segment is a whole block, or the part
// of one the range covers). What travels with every write and read between client and CS.
inline constexpr uint32_t kE2eBlockBytes = 4096;
size_t SegmentCount(uint64_t offset, uint64_t len, uint32_t block = kE2eBlockBytes);
std::vector<uint32_t> SegmentCrcs(uint64_t offset, const char* data, size_t len, uint32_t block = kE2eBlockBytes);
// The index of the first segment whose bytes do not match crcs, or -1 when all do.
// crcs must hold SegmentCount(offset, len) values.
long FirstBadSegment(uint64_t offset, const char* data, size_t len, const uint32_t* crcs,
                     uint32_t block = kE2eBlockBytes);
}  // namespace vstorage
