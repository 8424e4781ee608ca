#include <gtest/gtest.h>

#include <set>

#include "mds/leases.h"
#include "mds/placement.h"

namespace vstorage::mds {
namespace {

std::vector<CsCandidate> ThreeHosts() {
  return {{CsId{1025}, "h1", 0, 10ull << 30, true},
          {CsId{1026}, "h2", 0, 10ull << 30, true},
          {CsId{1027}, "h3", 0, 10ull << 30, true}};
}

TEST(Placement, DistinctHostsForThreeReplicas) {
  auto r = PlaceReplicas(ThreeHosts(), {3, 2, 1 << 20});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::set<CsId>(r->begin(), r->end()).size(), 3u);
}

TEST(Placement, SameHostCountsOnceForHostDomain) {
  auto cs = ThreeHosts();
  cs[2].host_id = "h1";
  auto r = PlaceReplicas(cs, {3, 2, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  PlacementRequest disk{3, 3, 0};
  disk.domain = FailureDomain::kDisk;
  EXPECT_EQ(PlaceReplicas(cs, disk)->size(), 3u);
}

TEST(Placement, BelowMinimumIsNoSpaceWithNumbers) {
  auto cs = ThreeHosts();
  cs[0].active = false;
  cs[1].free_bytes = 0;
  auto r = PlaceReplicas(cs, {3, 2, 1 << 20});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNoSpace);
  EXPECT_NE(r.status().message().find("only 1"), std::string::npos);
}

TEST(Placement, RotationSpreadsChainHeads) {
  std::set<CsId> heads;
  for (uint64_t i = 0; i < 3; ++i) {
    PlacementRequest req{3, 2, 0};
    req.rotation = i;
    heads.insert(PlaceReplicas(ThreeHosts(), req)->front());
  }
  EXPECT_EQ(heads.size(), 3u);
}

TEST(Placement, ExcludedHostsNotReused) {
  PlacementRequest req{1, 1, 0};
  req.exclude = {CsId{1025}, CsId{1026}};
  auto r = PlaceReplicas(ThreeHosts(), req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->front(), CsId{1027});
}

// Issue 9.8: too few hosts is not a lack of space, and says so.
TEST(Placement, TooFewHostsIsNotNoSpace) {
  auto cs = ThreeHosts();
  auto r = PlaceReplicas(cs, {6, 6, 1 << 20});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotEnoughHosts);
  EXPECT_NE(r.status().message().find("not enough hosts for 6 replicas"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("space"), std::string::npos) << r.status().message();
  // Enough hosts but no space on one of them: that is kNoSpace.
  cs[1].free_bytes = 0;
  EXPECT_EQ(PlaceReplicas(cs, {3, 3, 1 << 20}).status().code(), Code::kNoSpace);
}

TEST(Placement, ReplicasHostsWarning) {
  EXPECT_EQ(ReplicasHostsWarning(3, 2, 3), "");
  std::string fail = ReplicasHostsWarning(6, 6, 4);
  EXPECT_NE(fail.find("only 4 host(s)"), std::string::npos) << fail;
  EXPECT_NE(fail.find("writes of new data fail"), std::string::npos) << fail;
  EXPECT_NE(ReplicasHostsWarning(6, 3, 4).find("degraded"), std::string::npos);
}

// Issue 9.2: the replica of a CS being removed may move to another CS of the same host.
TEST(Placement, LeavingReplicaFreesItsHost) {
  std::vector<CsCandidate> cs = {{CsId{1025}, "h1", 0, 10ull << 30, true},
                                 {CsId{1026}, "h2", 0, 10ull << 30, true},
                                 {CsId{1027}, "h2", 0, 10ull << 30, true}};
  PlacementRequest req{1, 1, 0};
  req.exclude = {CsId{1025}, CsId{1026}};
  EXPECT_EQ(PlaceReplicas(cs, req).status().code(), Code::kNotEnoughHosts);
  req.leaving = {CsId{1026}};
  auto r = PlaceReplicas(cs, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->front(), CsId{1027});
}

TEST(Leases, OneWriterManyReaders) {
  LeaseTable t;
  ClientId a = t.Register(ClientId{}, "ha", 0), b = t.Register(ClientId{}, "hb", 0);
  EXPECT_NE(a, b);
  EXPECT_GE(a.v, 2049u);
  InodeId f{10};
  ASSERT_TRUE(t.Acquire(f, a, true, 0).ok());
  ASSERT_TRUE(t.Acquire(f, a, true, 0).ok());  // same client, second open
  Status st = t.Acquire(f, b, true, 0);
  EXPECT_EQ(st.code(), Code::kBusy);
  EXPECT_NE(st.message().find("client " + a.str()), std::string::npos);
  EXPECT_EQ(t.Acquire(f, b, false, 0).code(), Code::kBusy);
  t.Release(f, a, true);
  EXPECT_EQ(t.Acquire(f, b, true, 0).code(), Code::kBusy);  // a still has one open
  t.Release(f, a, true);
  EXPECT_TRUE(t.Acquire(f, b, false, 0).ok());
  EXPECT_TRUE(t.Acquire(f, a, false, 0).ok());
  EXPECT_EQ(t.Acquire(f, a, true, 0).code(), Code::kBusy);  // b reads
}

TEST(Leases, ExpiryFreesLeases) {
  LeaseTable t(60000);
  ClientId a = t.Register(ClientId{}, "ha", 0), b = t.Register(ClientId{}, "hb", 0);
  InodeId f{10};
  ASSERT_TRUE(t.Acquire(f, a, true, 0).ok());
  t.Touch(b, 59000);
  EXPECT_TRUE(t.Expire(59000).empty());
  auto gone = t.Expire(60001);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], a);
  EXPECT_TRUE(t.Acquire(f, b, true, 60001).ok());
}

// Found by vstorage-fsx: after an unmount, the next mount's open for writing was busy until
// the old client's lease expired.
TEST(Leases, AClientThatSaysGoodbyeLeavesNoLeaseBehind) {
  LeaseTable t(60000);
  ClientId a = t.Register(ClientId{}, "ha", 0), b = t.Register(ClientId{}, "hb", 0);
  InodeId f{10}, g{11};
  ASSERT_TRUE(t.Acquire(f, a, true, 0).ok());
  ASSERT_TRUE(t.Acquire(g, a, false, 0).ok());
  EXPECT_EQ(t.Acquire(f, b, true, 1).code(), Code::kBusy);
  t.Unregister(a);
  EXPECT_TRUE(t.Acquire(f, b, true, 2).ok());
  EXPECT_TRUE(t.Acquire(g, b, true, 2).ok());
  EXPECT_EQ(t.sessions().count(a), 0u);
}

TEST(Leases, ReRegisterAfterRestartKeepsIdAndAdvancesCounter) {
  LeaseTable t;
  EXPECT_EQ(t.Register(ClientId{3000}, "h", 0), ClientId{3000});
  EXPECT_EQ(t.Register(ClientId{}, "h2", 0), ClientId{3001});
}

}  // namespace
}  // namespace vstorage::mds
