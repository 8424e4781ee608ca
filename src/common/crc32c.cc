#include "common/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>

namespace vstorage {

// ISA-L's crc32_iscsi takes and returns the raw register (no final xor), so the standard
// init/xorout of 0xFFFFFFFF is applied here.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t len) {
  return ~crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(len),
                      ~crc);
}

uint32_t Crc32c(const void* data, size_t len) { return Crc32cExtend(0, data, len); }

namespace {
// Polynomials over GF(2) modulo the CRC32C polynomial, bit-reflected as the CRC is: bit 31
// is x^0. Appending n bytes to a message multiplies its CRC register by x^(8n); with the
// init/xorout of 0xFFFFFFFF the two conditionings cancel, so
//   crc(a+b) = crc(a) * x^(8 len_b) + crc(b)   (mod P).
constexpr uint32_t kPoly = 0x82F63B78u;  // x^32 + ... reflected, x^32 implied

uint32_t MulModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit; bit >>= 1) {  // a's terms from x^0 up
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;  // b *= x
  }
  return product;
}

// kPow2[k] = x^(2^k) mod P.
struct Pow2Table {
  uint32_t v[67];  // n < 2^64 bytes needs up to x^(2^66)
  Pow2Table() {
    v[0] = 1u << 30;  // x^1
    for (int k = 1; k < 67; ++k) v[k] = MulModP(v[k - 1], v[k - 1]);
  }
};
const Pow2Table kPow2;

uint32_t XPow8n(uint64_t n) {  // x^(8n) mod P
  uint32_t r = 1u << 31;  // x^0
  for (int k = 3; n; n >>= 1, ++k)
    if (n & 1) r = MulModP(kPow2.v[k], r);
  return r;
}
}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return MulModP(XPow8n(len_b), crc_a) ^ crc_b;
}

size_t SegmentCount(uint64_t offset, uint64_t len, uint32_t block) {
  if (len == 0) return 0;
  return static_cast<size_t>((offset + len - 1) / block - offset / block + 1);
}

std::vector<uint32_t> SegmentCrcs(uint64_t offset, const char* data, size_t len, uint32_t block) {
  std::vector<uint32_t> out;
  out.reserve(SegmentCount(offset, len, block));
  for (size_t at = 0; at < len;) {
    size_t n = std::min<uint64_t>(len - at, block - (offset + at) % block);
    out.push_back(Crc32c(data + at, n));
    at += n;
  }
  return out;
}

long FirstBadSegment(uint64_t offset, const char* data, size_t len, const uint32_t* crcs, uint32_t block) {
  long i = 0;
  for (size_t at = 0; at < len; ++i) {
    size_t n = std::min<uint64_t>(len - at, block - (offset + at) % block);
    if (Crc32c(data + at, n) != crcs[i]) return i;
    at += n;
  }
  return -1;
}

}  // namespace vstorage
