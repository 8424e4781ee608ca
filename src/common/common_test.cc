#include <gtest/gtest.h>

#include <string>

#include "common/crc32c.h"
#include "common/serde.h"
#include "common/status.h"

namespace vstorage {
namespace {

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string a(5000, 'x'), b(3000, 'y');
  EXPECT_EQ(Crc32cExtend(Crc32c(a.data(), a.size()), b.data(), b.size()),
            Crc32c((a + b).data(), a.size() + b.size()));
}

TEST(Crc32c, CombineEqualsTheCrcOfTheConcatenation) {
  std::string all;
  for (int i = 0; i < 9000; ++i) all.push_back(static_cast<char>(i * 131 + (i >> 3)));
  for (size_t cut : {0, 1, 7, 512, 4095, 4096, 8999, 9000})
    for (size_t tail : {0, 1, 3, 4096})
      if (cut + tail <= all.size()) {
        const char* a = all.data();
        EXPECT_EQ(Crc32cCombine(Crc32c(a, cut), Crc32c(a + cut, tail), tail), Crc32c(a, cut + tail)) << cut << "+" << tail;
      }
  // Three parts, as a CS builds a block's checksum around a client's part of it.
  const char* p = all.data();
  uint32_t c = Crc32cCombine(Crc32cCombine(Crc32c(p, 100), Crc32c(p + 100, 3000), 3000), Crc32c(p + 3100, 996), 996);
  EXPECT_EQ(c, Crc32c(p, 4096));
}

TEST(Crc32c, SegmentsAreCutAtBlockBoundariesOfTheChunk) {
  std::string d(10000, 'q');
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<char>(i % 251);
  EXPECT_EQ(SegmentCount(0, 0), 0u);
  EXPECT_EQ(SegmentCount(0, 4096), 1u);
  EXPECT_EQ(SegmentCount(4095, 2), 2u);
  EXPECT_EQ(SegmentCount(100, 10000), 3u);  // 3996 + 4096 + 1908
  auto crcs = SegmentCrcs(100, d.data(), d.size());
  ASSERT_EQ(crcs.size(), 3u);
  EXPECT_EQ(crcs[0], Crc32c(d.data(), 3996));
  EXPECT_EQ(crcs[1], Crc32c(d.data() + 3996, 4096));
  EXPECT_EQ(crcs[2], Crc32c(d.data() + 8092, 1908));
  EXPECT_EQ(FirstBadSegment(100, d.data(), d.size(), crcs.data()), -1);
  d[5000] ^= 0x10;  // one bit, in the second segment
  EXPECT_EQ(FirstBadSegment(100, d.data(), d.size(), crcs.data()), 1);
}

TEST(Serde, RoundTripAndGoldenBytes) {
  std::string buf;
  Encoder e(&buf);
  e.U8(1);
  e.U32(0x01020304);
  e.Str("ab");
  e.Id(CsId{1025});
  // Golden: little-endian, length-prefixed strings.
  EXPECT_EQ(buf, std::string("\x01\x04\x03\x02\x01\x02\x00\x00\x00"
                             "ab\x01\x04\x00\x00\x00\x00\x00\x00",
                             1 + 4 + 4 + 2 + 8));
  Decoder d(buf);
  uint8_t a;
  uint32_t b;
  std::string s;
  CsId id;
  ASSERT_TRUE(d.U8(&a) && d.U32(&b) && d.Str(&s) && d.Id(&id));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0x01020304u);
  EXPECT_EQ(s, "ab");
  EXPECT_EQ(id, CsId{1025});
  EXPECT_TRUE(d.done());
}

TEST(Serde, TruncatedInputFailsCleanly) {
  std::string buf;
  Encoder e(&buf);
  e.Str("hello");
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    Decoder d(std::string_view(buf).substr(0, cut));
    std::string s;
    EXPECT_FALSE(d.Str(&s));
    EXPECT_EQ(d.Finish("x").code(), Code::kProtocol);
  }
}

TEST(Serde, HugeCountRejected) {
  std::string buf;
  Encoder e(&buf);
  e.U32(0xFFFFFFFF);
  Decoder d(buf);
  std::vector<CsId> ids;
  EXPECT_FALSE(d.Ids(&ids));
}

TEST(Status, ErrnoMapping) {
  EXPECT_EQ(CodeToErrno(Code::kNoSpace), ENOSPC);
  EXPECT_EQ(CodeToErrno(Code::kBusy), EBUSY);
  Status s = Err(Code::kNotFound, "x").Annotate("open /a");
  EXPECT_EQ(s.message(), "open /a: x");
  EXPECT_EQ(s.code(), Code::kNotFound);
}

}  // namespace
}  // namespace vstorage
