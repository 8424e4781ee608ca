// CRC32C (Castagnoli), computed with ISA-L's crc32_iscsi.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vstorage {
// CRC32C of [data, data+len) with the standard init/xorout (crc32c("123456789") == 0xE3069283).
uint32_t Crc32c(const void* data, size_t len);
// Continues a CRC32C over more bytes; Crc32cExtend(Crc32c(a), b) == Crc32c(a+b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len);
}  // namespace vstorage
