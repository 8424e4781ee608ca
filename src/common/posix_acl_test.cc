#include "common/posix_acl.h"

#include <gtest/gtest.h>

namespace vstorage::acl {
namespace {

Acl Make(std::vector<Entry> e) { return Acl{std::move(e)}; }

// user::rw- user:1000:rwx group::r-- mask::rwx other::---
Acl WithNamedUser() {
  return Make({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 4}, {kMask, 7}, {kOther, 0}});
}

TEST(PosixAcl, RoundTripsThroughTheKernelsXattrBytes) {
  Acl a = WithNamedUser();
  std::string s = Serialize(a);
  ASSERT_EQ(s.size(), 4u + 5 * 8);
  // The header is version 2, little-endian; an owner entry carries the undefined id.
  EXPECT_EQ(s.substr(0, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(s.substr(4, 8), std::string("\x01\x00\x06\x00\xff\xff\xff\xff", 8));
  EXPECT_EQ(s.substr(12, 8), std::string("\x02\x00\x07\x00\xe8\x03\x00\x00", 8));
  auto back = Parse(s);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, a);
}

TEST(PosixAcl, RefusesWhatTheKernelRefuses) {
  auto bad = [](Acl a) { return Parse(Serialize(a)).status().code(); };
  EXPECT_EQ(bad(Make({{kUserObj, 6}, {kGroupObj, 4}})), Code::kInvalidArgument);  // no other
  EXPECT_EQ(bad(Make({{kGroupObj, 4}, {kUserObj, 6}, {kOther, 0}})), Code::kInvalidArgument);  // order
  EXPECT_EQ(bad(Make({{kUserObj, 6}, {kUser, 7, 5}, {kGroupObj, 4}, {kOther, 0}})),
            Code::kInvalidArgument);  // a named entry needs a mask
  EXPECT_EQ(bad(Make({{kUserObj, 8}, {kGroupObj, 4}, {kOther, 0}})), Code::kInvalidArgument);  // perm
  EXPECT_EQ(bad(Make({{kUserObj, 6}, {kGroupObj, 4}, {kMask, 4}, {kMask, 4}, {kOther, 0}})),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(Make({{kUserObj, 6}, {0x40, 4}, {kGroupObj, 4}, {kOther, 0}})), Code::kInvalidArgument);
  EXPECT_EQ(Parse(std::string("\x02\x00\x00\x00\x01", 5)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Parse(std::string("\x01\x00\x00\x00", 4)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Parse("").status().code(), Code::kInvalidArgument);
  // A mask without named entries is allowed; so is an empty ACL (the kernel's remove).
  EXPECT_TRUE(Parse(Serialize(Make({{kUserObj, 6}, {kGroupObj, 4}, {kMask, 4}, {kOther, 0}}))).ok());
  auto empty = Parse(std::string("\x02\x00\x00\x00", 4));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->entries.empty());
}

TEST(PosixAcl, TheModesGroupBitsAreTheMask) {
  Acl a = WithNamedUser();
  EXPECT_FALSE(IsMinimal(a));
  EXPECT_EQ(ModeOf(a, 0100000 | 04000 | 0777), 0100000u | 04000 | 0670);
  Acl minimal = Make({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 1}});
  EXPECT_TRUE(IsMinimal(minimal));
  EXPECT_EQ(ModeOf(minimal, 0), 0751u);
}

TEST(PosixAcl, ChmodSetsOwnerMaskAndOtherButNotTheNamedEntries) {
  Acl a = WithNamedUser();
  Chmod(&a, 0640);
  EXPECT_EQ(a, Make({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 4}, {kMask, 4}, {kOther, 0}}));
  Acl minimal = Make({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 1}});
  Chmod(&minimal, 0604);
  EXPECT_EQ(minimal, Make({{kUserObj, 6}, {kGroupObj, 0}, {kOther, 4}}));
}

TEST(PosixAcl, ANewNodeTakesTheDefaultAclNarrowedByItsMode) {
  // default: user::rwx user:1000:rwx group::r-x mask::rwx other::r-x; open(O_CREAT, 0666)
  Acl d = Make({{kUserObj, 7}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 7}, {kOther, 5}});
  uint32_t mode = 0100666;
  Acl a = Inherit(d, &mode);
  EXPECT_EQ(mode, 0100664u);
  EXPECT_EQ(a, Make({{kUserObj, 6}, {kUser, 7, 1000}, {kGroupObj, 5}, {kMask, 6}, {kOther, 4}}));
  // A default ACL with only the three base entries gives a mode and no access ACL.
  uint32_t m2 = 0777;
  Acl base = Inherit(Make({{kUserObj, 7}, {kGroupObj, 0}, {kOther, 0}}), &m2);
  EXPECT_TRUE(base.entries.empty());
  EXPECT_EQ(m2, 0700u);
}

}  // namespace
}  // namespace vstorage::acl
