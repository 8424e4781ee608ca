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

// Guide 3.5.5.2: a full tier spills to the tiers below it, then (beyond the guide) above.
std::vector<CsCandidate> TwoTiers() {
  std::vector<CsCandidate> cs;
  for (uint32_t t = 0; t < 3; ++t)
    for (int h = 0; h < 3; ++h)
      cs.push_back({CsId{1025 + t * 10 + static_cast<uint64_t>(h)}, "h" + std::to_string(h), t, 10ull << 30, true});
  return cs;
}

uint32_t TierOf(const std::vector<CsCandidate>& cs, CsId id) {
  for (const auto& c : cs)
    if (c.id == id) return c.tier;
  return 99;
}

TEST(Placement, DataGoesToItsTier) {
  auto cs = TwoTiers();
  PlacementRequest req{3, 2, 1 << 20};
  req.tier = 1;
  PlacementOutcome how;
  auto r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  for (CsId id : *r) EXPECT_EQ(TierOf(cs, id), 1u);
  EXPECT_EQ(how.tier, 1u);
  EXPECT_EQ(how.domain, FailureDomain::kHost);
}

TEST(Placement, AFullTierFallsBackLowerFirstThenHigher) {
  auto cs = TwoTiers();
  for (auto& c : cs)
    if (c.tier == 2) c.free_bytes = 0;
  PlacementRequest req{3, 2, 1 << 20};
  req.tier = 2;
  PlacementOutcome how;
  auto r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(how.tier, 1u);  // the next lower tier
  for (CsId id : *r) EXPECT_EQ(TierOf(cs, id), 1u);
  for (auto& c : cs)
    if (c.tier == 1) c.free_bytes = 0;
  r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(how.tier, 0u);
  // Tier 0 full: a tier-0 file goes up, to tier 2 once it has space again.
  for (auto& c : cs) c.free_bytes = c.tier == 2 ? 10ull << 30 : 0;
  req.tier = 0;
  r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(how.tier, 2u);
}

TEST(Placement, AStrictTierDoesNotFallBackAndSaysWhichTier) {
  auto cs = TwoTiers();
  for (auto& c : cs)
    if (c.tier == 1) c.free_bytes = 0;
  PlacementRequest req{3, 2, 1 << 20};
  req.tier = 1;
  req.strict_tier = true;
  auto r = PlaceReplicas(cs, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNoSpace);
  EXPECT_NE(r.status().message().find("in tier 1"), std::string::npos) << r.status().message();
}

TEST(Placement, FallbackPrefersATierWithAllReplicas) {
  auto cs = TwoTiers();
  cs[3].free_bytes = 0;  // tier 1 keeps 2 hosts with space: 2 of 3 replicas
  PlacementRequest req{3, 2, 1 << 20};
  req.tier = 1;
  PlacementOutcome how;
  auto r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(how.tier, 0u);
  // Nowhere has all 3: the requested tier's 2 (at least min) beat another tier's 2.
  for (auto& c : cs)
    if (c.tier != 1 && c.host_id == "h0") c.free_bytes = 0;
  r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(how.tier, 1u);
}

TEST(Placement, DomainNamesRoundTrip) {
  for (uint8_t i = 0; i <= kMaxFailureDomain; ++i) {
    auto d = static_cast<FailureDomain>(i);
    EXPECT_EQ(ParseFailureDomain(FailureDomainName(d)), d);
  }
  EXPECT_FALSE(ParseFailureDomain("chassis").has_value());
  EXPECT_FALSE(ParseFailureDomain("").has_value());
}

TEST(Placement, LocationsAndDomainKeys) {
  EXPECT_TRUE(ValidLocation(""));
  EXPECT_TRUE(ValidLocation("room1.row-2.rack_3"));
  EXPECT_FALSE(ValidLocation("room1.row2"));
  EXPECT_FALSE(ValidLocation("a.b.c.d"));
  EXPECT_FALSE(ValidLocation("a..c"));
  EXPECT_FALSE(ValidLocation("a.b c.d"));
  EXPECT_FALSE(ValidLocation("a.b." + std::string(33, 'x')));
  CsId id{1025};
  EXPECT_EQ(DomainKey(FailureDomain::kDisk, id, "h", "r.w.k"), "1025");
  EXPECT_EQ(DomainKey(FailureDomain::kHost, id, "h", "r.w.k"), "h");
  EXPECT_EQ(DomainKey(FailureDomain::kRack, id, "h", "r.w.k"), "r.w.k");
  EXPECT_EQ(DomainKey(FailureDomain::kRow, id, "h", "r.w.k"), "r.w");
  EXPECT_EQ(DomainKey(FailureDomain::kRoom, id, "h", "r.w.k"), "r");
  EXPECT_EQ(DomainKey(FailureDomain::kRack, id, "h", ""), "default.default.default");
}

// Six hosts in three racks, two rooms: room1 = rack a (h0, h1) and rack b (h2, h3); room2 =
// rack c (h4, h5).
std::vector<CsCandidate> Racks() {
  std::vector<CsCandidate> cs;
  const char* loc[] = {"room1.row1.a", "room1.row1.a", "room1.row2.b", "room1.row2.b", "room2.row1.c", "room2.row1.c"};
  for (int h = 0; h < 6; ++h)
    cs.push_back({CsId{1025 + static_cast<uint64_t>(h)}, "h" + std::to_string(h), 0, 10ull << 30, true, loc[h]});
  return cs;
}

TEST(Placement, OneReplicaPerRackRowOrRoom) {
  auto cs = Racks();
  auto loc_of = [&](CsId id) {
    for (const auto& c : cs)
      if (c.id == id) return c.location;
    return std::string();
  };
  PlacementRequest req{3, 3, 0};
  req.domain = FailureDomain::kRack;
  auto r = PlaceReplicas(cs, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<std::string> racks;
  for (CsId id : *r) racks.insert(loc_of(id));
  EXPECT_EQ(racks.size(), 3u);
  req.domain = FailureDomain::kRoom;  // two rooms cannot hold three replicas
  r = PlaceReplicas(cs, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotEnoughHosts);
  EXPECT_NE(r.status().message().find("not enough rooms for 3 replicas"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("location file"), std::string::npos) << r.status().message();
  req.min = 2;  // ... but two
  r = PlaceReplicas(cs, req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_NE(loc_of((*r)[0]).substr(0, 5), loc_of((*r)[1]).substr(0, 5));
}

// mds.alloc.strict_failure_domain=0: short of domains, smaller ones are used, never one disk twice.
TEST(Placement, AnAdvisoryDomainRelaxesToSmallerDomainsButNeverOneDisk) {
  auto cs = Racks();
  PlacementRequest req{3, 3, 0};
  req.domain = FailureDomain::kRoom;
  req.strict_domain = false;
  PlacementOutcome how;
  auto r = PlaceReplicas(cs, req, &how);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(how.domain, FailureDomain::kRow);  // room1 has rows 1 and 2, room2 one: three rows
  // One host with two disks and replicas 3: two replicas, on two disks, never three.
  std::vector<CsCandidate> one = {{CsId{1}, "h", 0, 10ull << 30, true}, {CsId{2}, "h", 0, 10ull << 30, true}};
  PlacementRequest three{3, 2, 0};
  three.strict_domain = false;
  r = PlaceReplicas(one, three, &how);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(how.domain, FailureDomain::kDisk);
  three.strict_domain = true;
  EXPECT_EQ(PlaceReplicas(one, three).status().code(), Code::kNotEnoughHosts);
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
