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
