// Case-by-case tests of the pure MDS policies (policy_*.h).
#include <gtest/gtest.h>

#include "mds/policy_chunk.h"
#include "mds/policy_recovery.h"
#include "mds/policy_scrub.h"
#include "mds/policy_watchdog.h"

namespace vstorage::mds {
namespace {

constexpr CsId kA{1025}, kB{1026}, kC{1027}, kD{1028};

ReplicaView Rep(CsId cs, CsStatus st, bool releasing = false) {
  ReplicaView r;
  r.cs = cs;
  r.status = st;
  r.releasing = releasing;
  return r;
}
ReplicaView Active(CsId cs) { return Rep(cs, CsStatus::kActive); }
ReplicaView Inactive(CsId cs) { return Rep(cs, CsStatus::kInactive); }
ReplicaView Offline(CsId cs) { return Rep(cs, CsStatus::kOffline); }
ReplicaView Leaving(CsId cs) { return Rep(cs, CsStatus::kActive, true); }

// ---------------------------------------------------------------- names

TEST(PolicyNames, CsStatusRoundTrips) {
  for (CsStatus s : {CsStatus::kActive, CsStatus::kInactive, CsStatus::kOffline, CsStatus::kDropped})
    EXPECT_EQ(ParseCsStatus(CsStatusName(s)), s);
  EXPECT_EQ(ParseCsStatus("garbage"), CsStatus::kOffline);
}

TEST(PolicyNames, ChunkStateWordsAreTheOnesStatShows) {
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kHealthy), "healthy");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kReplicating), "replicating");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kOffline), "offline");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kPending), "pending");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kBlocked), "blocked");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kStandby), "standby");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kUrgent), "urgent");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kDegraded), "degraded");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kOvercommitted), "overcommitted");
  EXPECT_STREQ(ChunkStateName(ChunkStateKind::kVoid), "void");
}

// ---------------------------------------------------------------- watchdog

// offline_tout 60 s: offline after 60 s of silence, inactive after 10 s.
WatchdogView OneCs(CsStatus st, bool registered, int64_t last_seen_ms, int64_t now_ms) {
  WatchdogView v;
  v.now_ms = now_ms;
  v.wall_ms = 1'000'000'000;
  v.start_ms = 0;
  v.offline_tout_ms = 60000;
  WatchdogCsView cs;
  cs.id = kA;
  cs.status = st;
  cs.registered = registered;
  cs.last_seen_ms = last_seen_ms;
  cs.ever_started = true;
  v.cs.push_back(cs);
  return v;
}

TEST(Watchdog, Thresholds) {
  auto t = ThresholdsFor(300000);  // default 5 min
  EXPECT_EQ(t.offline_ms, 300000);
  EXPECT_EQ(t.inactive_ms, kCsInactiveAfterMs);
  t = ThresholdsFor(1000);  // below the floor
  EXPECT_EQ(t.offline_ms, kCsMinOfflineMs);
  EXPECT_EQ(t.inactive_ms, kCsMinInactiveMs);
  t = ThresholdsFor(12000);
  EXPECT_EQ(t.offline_ms, 12000);
  EXPECT_EQ(t.inactive_ms, 6000);
}

TEST(Watchdog, ActiveStaysActiveWhileHeard) {
  auto d = Watchdog(OneCs(CsStatus::kActive, true, 100000, 100000 + kCsInactiveAfterMs));
  EXPECT_TRUE(d.transitions.empty());
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.remove_replicas.empty());
}

TEST(Watchdog, ActiveToInactiveAfterMissedHeartbeats) {
  auto d = Watchdog(OneCs(CsStatus::kActive, true, 100000, 100000 + kCsInactiveAfterMs + 1));
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0], (CsTransition{kA, CsStatus::kActive, CsStatus::kInactive, kCsInactiveAfterMs + 1}));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0], (PolicyEvent{"WRN", "CS#1025 has not registered during the last 10 sec and is marked as inactive"}));
  EXPECT_TRUE(d.remove_replicas.empty());  // its replicas still count (standby)
}

TEST(Watchdog, InactiveToOfflineCostsOneCommand) {
  auto d = Watchdog(OneCs(CsStatus::kInactive, true, 100000, 100000 + 60001));
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kOffline);
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].message, "CS#1025 has not registered during the last 60 sec and is marked as offline");
  EXPECT_EQ(d.remove_replicas, std::vector<CsId>{kA});
}

TEST(Watchdog, ExactlyAtOfflineTimeoutIsStillInactive) {
  auto d = Watchdog(OneCs(CsStatus::kInactive, true, 100000, 100000 + 60000));
  EXPECT_TRUE(d.transitions.empty());
}

TEST(Watchdog, ActiveStraightToOfflineWhenTheWatchdogWasLate) {
  auto d = Watchdog(OneCs(CsStatus::kActive, true, 0, 90000));
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].from, CsStatus::kActive);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kOffline);
  EXPECT_EQ(d.remove_replicas, std::vector<CsId>{kA});
}

TEST(Watchdog, ReturnToActiveIsSilent) {
  // A CS heard from again (the heartbeat handler sets it active itself; the watchdog agrees).
  auto d = Watchdog(OneCs(CsStatus::kInactive, true, 100000, 100500));
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kActive);
  EXPECT_TRUE(d.events.empty());
  EXPECT_TRUE(d.remove_replicas.empty());
}

TEST(Watchdog, UnregisteredSinceStartIsInactiveThenOffline) {
  // After an MDS restart a CS that has not re-registered is timed from the start.
  auto v = OneCs(CsStatus::kInactive, false, 0, 1000);
  v.start_ms = 0;
  EXPECT_TRUE(Watchdog(v).transitions.empty());  // inactive, never "active" unregistered
  v.now_ms = 60001;
  auto d = Watchdog(v);
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kOffline);
  EXPECT_EQ(d.transitions[0].silent_ms, 60001);
}

TEST(Watchdog, OfflineAtStartBecomesInactive) {
  // The initial "offline" of a fresh soft entry: within the timeout it is inactive.
  auto v = OneCs(CsStatus::kOffline, false, 0, 2000);
  auto d = Watchdog(v);
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kInactive);
  EXPECT_TRUE(d.remove_replicas.empty());
}

TEST(Watchdog, NeverStartedCsIsTimedFromItsMakeCs) {
  auto v = OneCs(CsStatus::kInactive, false, 0, 10'000'000);  // the MDS has run for hours
  v.cs[0].ever_started = false;
  v.cs[0].created_ms = v.wall_ms - 1000;  // made a second ago
  EXPECT_TRUE(Watchdog(v).transitions.empty());
  v.cs[0].created_ms = v.wall_ms - 60001;
  auto d = Watchdog(v);
  ASSERT_EQ(d.transitions.size(), 1u);
  EXPECT_EQ(d.transitions[0].to, CsStatus::kOffline);
  // A clock step back does not make the silence negative.
  v.cs[0].created_ms = v.wall_ms + 5000;
  d = Watchdog(v);
  EXPECT_TRUE(d.transitions.empty());
}

TEST(Watchdog, DroppedCsIsNotWatched) {
  auto v = OneCs(CsStatus::kDropped, true, 0, 1'000'000);
  v.cs[0].dropped = true;
  auto d = Watchdog(v);
  EXPECT_TRUE(d.transitions.empty());
  EXPECT_TRUE(d.remove_replicas.empty());
}

TEST(Watchdog, SeveralCsGoingOfflineCostOneCommandEach) {
  WatchdogView v = OneCs(CsStatus::kInactive, true, 0, 70000);
  for (CsId id : {kB, kC}) {
    auto cs = v.cs[0];
    cs.id = id;
    v.cs.push_back(cs);
  }
  v.cs[1].last_seen_ms = 69000;  // kB still heard from
  auto d = Watchdog(v);
  EXPECT_EQ(d.remove_replicas, (std::vector<CsId>{kA, kC}));
  ASSERT_EQ(d.transitions.size(), 3u);
  EXPECT_EQ(d.transitions[1].to, CsStatus::kActive);
}

// ---------------------------------------------------------------- chunk states

ChunkView Chunk(uint32_t norm, uint32_t min, std::vector<ReplicaView> reps) {
  ChunkView c;
  c.norm = norm;
  c.min = min;
  c.replicas = std::move(reps);
  return c;
}
ChunkStateKind Of(const ChunkView& c) { return ClassifyChunk(c); }

TEST(ChunkStates, Healthy) { EXPECT_EQ(Of(Chunk(3, 2, {Active(kA), Active(kB), Active(kC)})), ChunkStateKind::kHealthy); }

TEST(ChunkStates, ReplicatingWinsOverEverything) {
  auto c = Chunk(3, 2, {Offline(kA)});
  c.replicating = true;
  EXPECT_EQ(Of(c), ChunkStateKind::kReplicating);
}

TEST(ChunkStates, OfflineWhenNoReplicaIsActive) {
  EXPECT_EQ(Of(Chunk(3, 2, {Offline(kA), Inactive(kB)})), ChunkStateKind::kOffline);
  EXPECT_EQ(Of(Chunk(1, 1, {})), ChunkStateKind::kOffline);
}

TEST(ChunkStates, BlockedBelowMinimumAndPendingWhenQueued) {
  auto c = Chunk(3, 2, {Active(kA), Offline(kB)});
  EXPECT_EQ(Of(c), ChunkStateKind::kBlocked);
  c.pending = true;
  EXPECT_EQ(Of(c), ChunkStateKind::kPending);
}

TEST(ChunkStates, ReplicaOnLeavingCsDoesNotCountTowardMinimum) {
  EXPECT_EQ(Of(Chunk(3, 2, {Active(kA), Leaving(kB), Leaving(kC)})), ChunkStateKind::kBlocked);
  EXPECT_EQ(Of(Chunk(3, 2, {Active(kA), Active(kB), Leaving(kC)})), ChunkStateKind::kDegraded);
}

TEST(ChunkStates, UnknownCsDoesNotCount) {
  auto r = Active(kB);
  r.known = false;
  EXPECT_EQ(Of(Chunk(2, 2, {Active(kA), r})), ChunkStateKind::kBlocked);
}

TEST(ChunkStates, StandbyWhenAReplicaIsInactive) {
  EXPECT_EQ(Of(Chunk(3, 2, {Active(kA), Active(kB), Inactive(kC)})), ChunkStateKind::kStandby);
  // Blocked is more pressing than standby.
  EXPECT_EQ(Of(Chunk(3, 2, {Active(kA), Inactive(kB), Inactive(kC)})), ChunkStateKind::kBlocked);
}

TEST(ChunkStates, DegradedAndUrgent) {
  auto c = Chunk(3, 2, {Active(kA), Active(kB)});
  EXPECT_EQ(Of(c), ChunkStateKind::kDegraded);
  c.urgent = true;
  EXPECT_EQ(Of(c), ChunkStateKind::kUrgent);
}

TEST(ChunkStates, Overcommitted) {
  EXPECT_EQ(Of(Chunk(2, 1, {Active(kA), Active(kB), Active(kC)})), ChunkStateKind::kOvercommitted);
  // More listed than norm but not enough counted: degraded first.
  EXPECT_EQ(Of(Chunk(2, 1, {Active(kA), Leaving(kB), Offline(kC)})), ChunkStateKind::kDegraded);
}

TEST(ChunkStates, VoidBeyondEndOfFile) {
  auto c = Chunk(2, 1, {Active(kA), Active(kB)});
  c.beyond_eof = true;
  EXPECT_EQ(Of(c), ChunkStateKind::kVoid);
  // Only a chunk that is otherwise healthy is void.
  c.replicas.pop_back();
  EXPECT_EQ(Of(c), ChunkStateKind::kDegraded);
}

// ---------------------------------------------------------------- recovery

RecoveryChunkView RChunk(uint64_t id, uint32_t norm, uint32_t min, std::vector<ReplicaView> reps) {
  RecoveryChunkView c;
  c.id = ChunkId{id};
  c.norm = norm;
  c.min = min;
  c.replicas = std::move(reps);
  c.chunk_size_bytes = 256ull << 20;
  return c;
}

TEST(RecoveryTodo, HealthyAndOverfullNeedNothing) {
  EXPECT_FALSE(RecoveryTodoOf(RChunk(1, 2, 1, {Active(kA), Active(kB)})));
  EXPECT_FALSE(RecoveryTodoOf(RChunk(1, 2, 1, {Active(kA), Active(kB), Active(kC)})));
}

TEST(RecoveryTodo, InactiveReplicaStaysUntilOffline) {
  EXPECT_FALSE(RecoveryTodoOf(RChunk(2, 2, 1, {Active(kA), Inactive(kB)})));
}

TEST(RecoveryTodo, MissingReplicaIsQueuedWithItsPriority) {
  auto t = RecoveryTodoOf(RChunk(7, 3, 2, {Active(kA), Active(kB)}));
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (RecoveryTodo{ChunkId{7}, false, 2}));
  t = RecoveryTodoOf(RChunk(8, 3, 2, {Active(kA)}));
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, (RecoveryTodo{ChunkId{8}, true, 1}));
}

TEST(RecoveryTodo, ReplicaOnLeavingCsIsCopiedAway) {
  auto t = RecoveryTodoOf(RChunk(1, 2, 1, {Active(kA), Leaving(kB)}));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->counted, 1u);
}

TEST(RecoveryTodo, NothingWithoutASourceOrWhileBusy) {
  EXPECT_FALSE(RecoveryTodoOf(RChunk(1, 2, 1, {Offline(kA)})));  // offline chunk
  auto c = RChunk(1, 2, 1, {Active(kA)});
  c.replicating = true;
  EXPECT_FALSE(RecoveryTodoOf(c));
  c.replicating = false;
  c.no_intact = true;
  EXPECT_FALSE(RecoveryTodoOf(c));
}

TEST(RecoveryPlan, BlockedFirstThenFewestReplicasStable) {
  RecoveryPlanInput in;
  in.todo = {{ChunkId{1}, false, 2}, {ChunkId{2}, true, 1}, {ChunkId{3}, false, 1},
             {ChunkId{4}, true, 0}, {ChunkId{5}, false, 1}, {ChunkId{6}, true, 1}};
  auto p = PlanRecovery(in);
  std::vector<uint64_t> order;
  for (const auto& t : p.order) order.push_back(t.id.v);
  EXPECT_EQ(order, (std::vector<uint64_t>{4, 2, 6, 3, 5, 1}));
  EXPECT_EQ(p.queued, 6u);
  EXPECT_EQ(p.pending, (std::set<ChunkId>{ChunkId{2}, ChunkId{4}, ChunkId{6}}));
}

TEST(RecoveryPlan, StartedOncePerEpisode) {
  RecoveryPlanInput in;
  in.todo = {{ChunkId{1}, false, 1}, {ChunkId{2}, false, 1}};
  auto p = PlanRecovery(in);
  ASSERT_TRUE(p.started);
  EXPECT_EQ(*p.started, (PolicyEvent{"INF", "Replication started, 2 chunks are queued"}));
  EXPECT_TRUE(p.running);
  in.running = true;
  p = PlanRecovery(in);
  EXPECT_FALSE(p.started);
  EXPECT_TRUE(p.running);
}

TEST(RecoveryPlan, NothingToDoEndsTheEpisode) {
  RecoveryPlanInput in;
  in.running = true;
  in.urgent = {ChunkId{9}};
  auto p = PlanRecovery(in);
  EXPECT_FALSE(p.running);
  EXPECT_FALSE(p.started);
  EXPECT_TRUE(p.urgent.empty());  // urgent chunks that need nothing any more are forgotten
  EXPECT_FALSE(FinishRecoveryPass(p, 0).completed);
}

TEST(RecoveryPlan, UrgentKeptWhileQueued) {
  RecoveryPlanInput in;
  in.todo = {{ChunkId{1}, false, 1}};
  in.urgent = {ChunkId{1}, ChunkId{2}};
  EXPECT_EQ(PlanRecovery(in).urgent, std::set<ChunkId>{ChunkId{1}});
}

TEST(RecoveryPlan, LimitBoundsThePassAndKeepsTheEpisodeOpen) {
  RecoveryPlanInput in;
  for (uint64_t i = 1; i <= 5; ++i) in.todo.push_back({ChunkId{i}, i == 5, 1});
  in.max_chunks = 2;
  auto p = PlanRecovery(in);
  ASSERT_EQ(p.order.size(), 2u);
  EXPECT_EQ(p.order[0].id, ChunkId{5});  // the blocked one made the cut
  EXPECT_EQ(p.queued, 5u);
  ASSERT_TRUE(p.started);
  EXPECT_EQ(p.started->message, "Replication started, 5 chunks are queued");
  auto fin = FinishRecoveryPass(p, 2);
  EXPECT_FALSE(fin.completed);
  EXPECT_TRUE(fin.running);
}

TEST(RecoveryPlan, CompletedWhenAllRestored) {
  RecoveryPlanInput in;
  in.todo = {{ChunkId{1}, false, 1}, {ChunkId{2}, false, 1}};
  auto p = PlanRecovery(in);
  auto fin = FinishRecoveryPass(p, 1);
  EXPECT_FALSE(fin.completed);
  EXPECT_TRUE(fin.running);
  fin = FinishRecoveryPass(p, 2);
  ASSERT_TRUE(fin.completed);
  EXPECT_EQ(fin.completed->message, "Replication completed");
  EXPECT_FALSE(fin.running);
}

TEST(RecoveryPlan, ReplicationAllowed) {
  EXPECT_TRUE(ReplicationAllowed("healthy"));
  EXPECT_TRUE(ReplicationAllowed("degraded"));
  EXPECT_FALSE(ReplicationAllowed("failure"));
  EXPECT_FALSE(ReplicationAllowed("unknown"));
}

TEST(PlanCopy, SourcesCountedFirstLeavingLast) {
  auto c = RChunk(1, 3, 2, {Leaving(kA), Offline(kB), Active(kC)});
  auto p = PlanCopy(c, 42);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->sources, (std::vector<CsId>{kC, kA}));
  EXPECT_EQ(p->leaving, std::vector<CsId>{kA});
  EXPECT_EQ(p->placement.norm, 1u);
  EXPECT_EQ(p->placement.min, 1u);
  EXPECT_EQ(p->placement.rotation, 42u);
  EXPECT_EQ(p->placement.need_bytes, kMaxCopyNeedBytes);  // capped
  EXPECT_EQ(p->placement.exclude, (std::vector<CsId>{kA, kB, kC}));
  EXPECT_EQ(p->placement.leaving, std::vector<CsId>{kA});
}

TEST(PlanCopy, SmallChunkNeedsItsSize) {
  auto c = RChunk(1, 2, 1, {Active(kA)});
  c.chunk_size_bytes = 1 << 20;
  EXPECT_EQ(PlanCopy(c, 0)->placement.need_bytes, 1u << 20);
}

TEST(PlanCopy, NothingWhenFullOrNoSourceOrBusy) {
  EXPECT_FALSE(PlanCopy(RChunk(1, 2, 1, {Active(kA), Inactive(kB)}), 0));
  EXPECT_FALSE(PlanCopy(RChunk(1, 2, 1, {Offline(kA)}), 0));
  auto c = RChunk(1, 2, 1, {Active(kA)});
  c.replicating = true;
  EXPECT_FALSE(PlanCopy(c, 0));
}

TEST(ResolveCopy, SuccessAddsTheTarget) {
  CopyOutcome o{kD, {kA, kB}, {}, {}, true};
  auto r = ResolveCopy(ChunkId{1}, {kA, kB}, o);
  EXPECT_TRUE(r.commit);
  EXPECT_EQ(r.replicas, (std::vector<CsId>{kA, kB, kD}));
  EXPECT_TRUE(r.freed.empty());
  EXPECT_TRUE(r.events.empty());
  EXPECT_FALSE(r.no_intact);
}

TEST(ResolveCopy, TargetListedAlreadyIsNotDuplicated) {
  CopyOutcome o{kB, {kA}, {}, {}, true};
  EXPECT_EQ(ResolveCopy(ChunkId{1}, {kA, kB}, o).replicas, (std::vector<CsId>{kA, kB}));
}

TEST(ResolveCopy, RefusedReplicaLeavesEvenWhenTheCopyFailed) {
  CopyOutcome o{kD, {kA}, {kB}, {}, false};
  auto r = ResolveCopy(ChunkId{1}, {kA, kB}, o);
  EXPECT_TRUE(r.commit);
  EXPECT_EQ(r.replicas, std::vector<CsId>{kA});
  EXPECT_EQ(r.freed, std::vector<CsId>{kB});
}

TEST(ResolveCopy, CorruptSourceDroppedOnceAnIntactCopyExists) {
  CopyOutcome o{kD, {kA, kB}, {}, {kA}, true};
  auto r = ResolveCopy(ChunkId{5}, {kA, kB}, o);
  EXPECT_EQ(r.replicas, (std::vector<CsId>{kB, kD}));
  EXPECT_EQ(r.freed, std::vector<CsId>{kA});
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0], (PolicyEvent{"ERR", "Checksum mismatch in chunk 5 on CS#1025; the replica is dropped and rebuilt"}));
}

TEST(ResolveCopy, AllSourcesCorruptKeepsThemAndSaysSoOnce) {
  CopyOutcome o{kD, {kA, kB}, {}, {kA, kB}, false};
  auto r = ResolveCopy(ChunkId{5}, {kA, kB}, o);
  EXPECT_TRUE(r.commit);
  EXPECT_EQ(r.replicas, (std::vector<CsId>{kA, kB}));  // never the last ones
  EXPECT_TRUE(r.freed.empty());
  EXPECT_TRUE(r.no_intact);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].sev, "ERR");
  EXPECT_EQ(r.events[0].message,
            "Chunk 5 has no intact replica: every copy (on CS#1025, CS#1026) fails its checksum; reads of it fail "
            "and recovery waits until a replica returns");
}

TEST(ResolveCopy, NothingLeftIsNotCommitted) {
  CopyOutcome o{kD, {}, {kA}, {}, false};
  auto r = ResolveCopy(ChunkId{1}, {kA}, o);
  EXPECT_FALSE(r.commit);
  EXPECT_TRUE(r.events.empty());
}

TEST(PlanTrim, KeepsTheFirstCountedInListOrder) {
  auto d = PlanTrim(RChunk(1, 2, 1, {Leaving(kA), Active(kB), Inactive(kC), Active(kD)}));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->keep, (std::vector<CsId>{kB, kD}));
  EXPECT_EQ(d->drop, (std::vector<CsId>{kA, kC}));
  d = PlanTrim(RChunk(1, 1, 1, {Active(kA), Active(kB)}));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->keep, std::vector<CsId>{kA});
  EXPECT_EQ(d->drop, std::vector<CsId>{kB});
}

TEST(PlanTrim, NothingUnlessOverAndEnoughCount) {
  EXPECT_FALSE(PlanTrim(RChunk(1, 2, 1, {Active(kA), Active(kB)})));
  EXPECT_FALSE(PlanTrim(RChunk(1, 2, 1, {Active(kA), Inactive(kB), Offline(kC)})));
  auto c = RChunk(1, 1, 1, {Active(kA), Active(kB)});
  c.replicating = true;
  EXPECT_FALSE(PlanTrim(c));
}

// A replica on a CS of `tier`, in host domain `host` (ids as the service interns them, from 1).
ReplicaView At(CsId cs, uint32_t tier, uint32_t host) {
  ReplicaView r = Active(cs);
  r.tier = tier;
  r.domains[static_cast<size_t>(FailureDomain::kDisk)] = static_cast<uint32_t>(cs.v);
  r.domains[static_cast<size_t>(FailureDomain::kHost)] = host;
  return r;
}

TEST(PlanCopy, AsksForTheFilesTierAndDomain) {
  auto c = RChunk(1, 2, 1, {At(kA, 1, 1)});
  c.tier = 1;
  c.domain = FailureDomain::kDisk;
  auto p = PlanCopy(c, 0);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->placement.tier, 1u);
  EXPECT_EQ(p->placement.domain, FailureDomain::kDisk);
  EXPECT_FALSE(p->placement.strict_tier);  // recovery may fall back like a new chunk
}

TEST(PlanMove, AReplicaOnAnotherTierMovesStrictlyToTheFilesTier) {
  // Written while tier 1 was full: all three on tier 0.
  auto c = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 2), At(kC, 0, 3)});
  c.tier = 1;
  c.chunk_size_bytes = 1 << 20;
  EXPECT_EQ(MisplacedReplica(c), kA);
  auto p = PlanMove(c, 7);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->moving, kA);
  EXPECT_EQ(p->sources, (std::vector<CsId>{kB, kC, kA}));  // the misplaced one last
  EXPECT_EQ(p->placement.tier, 1u);
  EXPECT_TRUE(p->placement.strict_tier);
  EXPECT_TRUE(p->placement.strict_domain);
  EXPECT_EQ(p->placement.exclude, (std::vector<CsId>{kA, kB, kC}));
  EXPECT_EQ(p->placement.leaving, std::vector<CsId>{kA});  // its host may take the new one
  EXPECT_EQ(p->placement.need_bytes, 1u << 20);
  EXPECT_EQ(p->placement.rotation, 7u);
}

TEST(PlanMove, TwoReplicasInOneDomainMoveApart) {
  auto c = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 1), At(kC, 0, 2)});
  EXPECT_EQ(MisplacedReplica(c), kB);
  EXPECT_EQ(PlanMove(c, 0)->moving, kB);
  c.domain = FailureDomain::kDisk;  // one per disk is all the file asks for
  EXPECT_FALSE(MisplacedReplica(c));
  EXPECT_FALSE(PlanMove(c, 0));
}

TEST(PlanMove, OnlyHealthyChunksMove) {
  auto in_place = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 2), At(kC, 0, 3)});
  EXPECT_FALSE(PlanMove(in_place, 0));
  auto c = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 2), At(kC, 0, 3)});
  c.tier = 2;
  ASSERT_TRUE(PlanMove(c, 0));
  auto degraded = c;
  degraded.replicas.pop_back();  // recovery first
  EXPECT_FALSE(PlanMove(degraded, 0));
  auto over = c;
  over.replicas.push_back(At(kD, 2, 4));  // trimming first
  EXPECT_FALSE(PlanMove(over, 0));
  auto busy = c;
  busy.replicating = true;
  EXPECT_FALSE(PlanMove(busy, 0));
  auto inactive = c;
  inactive.replicas[1].status = CsStatus::kInactive;
  EXPECT_FALSE(PlanMove(inactive, 0));
}

// After a move the chunk has one replica too many: the misplaced one goes, so every move
// brings the chunk one step closer to its place and none is undone.
TEST(PlanTrim, DropsTheMisplacedReplicaAfterAMove) {
  auto c = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 2), At(kC, 0, 3), At(kD, 1, 1)});
  c.tier = 1;
  auto d = PlanTrim(c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->keep, (std::vector<CsId>{kB, kC, kD}));  // D in place; B, C on their own hosts
  EXPECT_EQ(d->drop, std::vector<CsId>{kA});
  auto after = RChunk(1, 3, 2, {At(kB, 0, 2), At(kC, 0, 3), At(kD, 1, 1)});
  after.tier = 1;
  EXPECT_EQ(MisplacedReplica(after), kB);  // the next move
  // Two on one host: the second of them goes, whatever the list order.
  auto dup = RChunk(1, 3, 2, {At(kA, 0, 1), At(kB, 0, 1), At(kC, 0, 2), At(kD, 0, 3)});
  d = PlanTrim(dup);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->drop, std::vector<CsId>{kB});
  // Nowhere better: the domain rule yields to keeping norm replicas.
  auto cramped = RChunk(1, 2, 1, {At(kA, 0, 1), At(kB, 0, 1), At(kC, 0, 1)});
  d = PlanTrim(cramped);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->keep, (std::vector<CsId>{kA, kB}));
}

TEST(ReleasesDone, OnlyWhenUnlistedAndNothingToDelete) {
  EXPECT_EQ(ReleasesDone({kA, kB, kC}, {kB}, {kC}), std::vector<CsId>{kA});
  EXPECT_TRUE(ReleasesDone({}, {}, {}).empty());
}

// ---------------------------------------------------------------- scrubbing

ScrubCsView ScrubCs(int64_t next_ms, uint64_t cursor, std::vector<uint64_t> held) {
  ScrubCsView v;
  v.cs = kA;
  v.cursor = ChunkId{cursor};
  v.next_scrub_ms = next_ms;
  for (uint64_t id : held) v.held.push_back({ChunkId{id}, id * 10});
  return v;
}
std::vector<uint64_t> Ids(const ScrubDecision& d) {
  std::vector<uint64_t> out;
  for (const auto& t : d.tasks) out.push_back(t.chunk.v);
  return out;
}

TEST(Scrub, Interval) {
  EXPECT_EQ(ScrubIntervalMs(2), 30000);  // the default: two a minute
  EXPECT_EQ(ScrubIntervalMs(3), 20000);
  EXPECT_EQ(ScrubIntervalMs(1000000), 1);
}

TEST(Scrub, DisabledDoesNothing) {
  auto v = ScrubCs(5, 0, {1, 2});
  EXPECT_FALSE(ScrubDue(v, 0, 100));
  auto d = ScheduleScrub(v, 0, 100);
  EXPECT_TRUE(d.tasks.empty());
  EXPECT_EQ(d.next_scrub_ms, 5);
}

TEST(Scrub, FirstTickOnlySchedules) {
  auto v = ScrubCs(0, 0, {});
  EXPECT_FALSE(ScrubDue(v, 2, 1000));
  auto d = ScheduleScrub(v, 2, 1000);
  EXPECT_TRUE(d.tasks.empty());
  EXPECT_EQ(d.next_scrub_ms, 31000);
}

TEST(Scrub, OneChunkPerIntervalInIdOrder) {
  auto v = ScrubCs(31000, 0, {30, 10, 20});  // held in any order
  EXPECT_FALSE(ScrubDue(v, 2, 30999));
  EXPECT_TRUE(ScheduleScrub(v, 2, 30999).tasks.empty());
  ASSERT_TRUE(ScrubDue(v, 2, 31000));
  auto d = ScheduleScrub(v, 2, 31000);
  ASSERT_EQ(d.tasks.size(), 1u);
  EXPECT_EQ(d.tasks[0], (ScrubTask{kA, ChunkId{10}, 100}));
  EXPECT_EQ(d.cursor, ChunkId{10});
  EXPECT_EQ(d.next_scrub_ms, 61000);
  v.cursor = d.cursor;
  v.next_scrub_ms = d.next_scrub_ms;
  d = ScheduleScrub(v, 2, 61000);
  EXPECT_EQ(Ids(d), std::vector<uint64_t>{20});
}

TEST(Scrub, CursorWrapsAround) {
  auto d = ScheduleScrub(ScrubCs(1000, 30, {10, 20, 30}), 2, 1000);
  EXPECT_EQ(Ids(d), std::vector<uint64_t>{10});
  EXPECT_EQ(d.cursor, ChunkId{10});
  // A cursor past every chunk (the last one was deleted) wraps too.
  EXPECT_EQ(Ids(ScheduleScrub(ScrubCs(1000, 99, {10, 20}), 2, 1000)), std::vector<uint64_t>{10});
}

TEST(Scrub, HighRateOwesSeveralPerTick) {
  // 600 a minute: every 100 ms; a tick 250 ms late owes three (0, 100, 200 past due).
  auto d = ScheduleScrub(ScrubCs(1000, 0, {1, 2, 3, 4}), 600, 1250);
  EXPECT_EQ(Ids(d), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(d.next_scrub_ms, 1300);
  // With one chunk it is verified each time it is owed.
  EXPECT_EQ(Ids(ScheduleScrub(ScrubCs(1000, 0, {7}), 600, 1250)), (std::vector<uint64_t>{7, 7, 7}));
}

TEST(Scrub, FarBehindIsCappedAndSkipsTheRest) {
  auto d = ScheduleScrub(ScrubCs(1000, 0, {1, 2, 3}), 600, 1'000'000);
  EXPECT_EQ(d.tasks.size(), static_cast<size_t>(kMaxScrubPerTick));
  EXPECT_EQ(d.next_scrub_ms, 1'000'000 + 100);
}

TEST(Scrub, RaisedRateAppliesAtOnce) {
  // Scheduled 30 s ahead at 2 a minute; now 60 a minute: due in 1 s, not 30.
  auto d = ScheduleScrub(ScrubCs(31000, 0, {1}), 60, 1000);
  EXPECT_TRUE(d.tasks.empty());
  EXPECT_EQ(d.next_scrub_ms, 2000);
}

TEST(Scrub, CsWithoutChunksOwesNothing) {
  auto v = ScrubCs(1000, 5, {});
  EXPECT_TRUE(ScrubDue(v, 2, 1000));
  auto d = ScheduleScrub(v, 2, 1000);
  EXPECT_TRUE(d.tasks.empty());
  EXPECT_EQ(d.cursor, ChunkId{5});
  EXPECT_EQ(d.next_scrub_ms, 31000);
  // Far behind with nothing to verify: one interval from now.
  EXPECT_EQ(ScheduleScrub(ScrubCs(1000, 5, {}), 2, 100000).next_scrub_ms, 130000);
}

TEST(SuspectPolicy, DropsWhenAnotherReplicaIsIntactWaitsWhenUnsureAndOtherwiseAdopts) {
  auto peer = [](uint64_t cs, bool active, bool heard) { return SuspectPeer{CsId{cs}, active, heard}; };
  EXPECT_EQ(DecideSuspect({}), SuspectAction::kAdopt);  // the only replica
  EXPECT_EQ(DecideSuspect({peer(2, false, false), peer(3, false, false)}), SuspectAction::kAdopt);  // all cut
  EXPECT_EQ(DecideSuspect({peer(2, true, true)}), SuspectAction::kDrop);
  EXPECT_EQ(DecideSuspect({peer(2, true, false), peer(3, true, true)}), SuspectAction::kDrop);
  // Looks active but silent since: maybe cut too, maybe the intact copy. Neither drop nor adopt.
  EXPECT_EQ(DecideSuspect({peer(2, true, false), peer(3, false, false)}), SuspectAction::kWait);
}

}  // namespace
}  // namespace vstorage::mds
