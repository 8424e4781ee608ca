// Recovery planning (pure): self-healing (guide 5.3.2, 5.6.1) keeps every chunk at its
// normal replica count. The service runs one pass every kWatchdogIntervalMs:
//   1. RecoveryTodoOf() on every chunk (streamed: no view of the whole map is built),
//   2. PlanRecovery() orders the work by the priorities of table 5.3.2.1 and bounds it,
//   3. per chunk, PlanCopy() names the sources and the placement request of one new
//      replica; the executor places it (PlaceReplicas), bumps the version, has the target
//      copy from the first source that reads clean, and feeds the outcome to ResolveCopy(),
//      which gives the new replica list, the replicas to delete and the events;
//   4. FinishRecoveryPass() says whether the episode is over ("Replication completed");
//   5. PlanMove() on every chunk when nothing needs a copy: a replica on another tier than
//      its file's (a fallback when the tier was full, or set-attr tier= since) or sharing a
//      failure domain with another is copied to where it belongs, when there is room there;
//   6. PlanTrim() on every chunk: the lowest priority, extra replicas are dropped, the
//      misplaced ones first (which finishes a move);
//   7. ReleasesDone(): rm-cs of a CS that no chunk lists any more is finished.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ids.h"
#include "mds/placement.h"
#include "mds/policy_view.h"

namespace vstorage::mds {

// Chunks one pass copies at most; the rest wait for the next pass (and keep the episode
// open: no "Replication completed" while some were left out).
inline constexpr size_t kMaxRecoveryChunksPerPass = 100000;
// Overcommitted chunks one pass trims at most (one command each).
inline constexpr size_t kMaxTrimsPerPass = 10000;
// A copy is placed on a CS with at least this much free space (a chunk's size, capped).
inline constexpr uint64_t kMaxCopyNeedBytes = 64ull << 20;
// Chunks one pass moves at most (to their tier or out of a shared failure domain), one at a
// time at mds.recovery.max_rate_mb: moving data back is background work.
inline constexpr size_t kMaxMovesPerPass = 32;

struct RecoveryChunkView {
  ChunkId id;
  uint32_t norm = 1, min = 1;
  std::vector<ReplicaView> replicas;  // one per listed replica, in list order
  bool replicating = false;  // a copy is in progress
  // Every live replica failed its checksum as a source with exactly this replica list:
  // not retried until the list changes.
  bool no_intact = false;
  uint64_t chunk_size_bytes = 0;  // of its file (for the placement's free space check)
  uint32_t tier = 0;              // of its file
  FailureDomain domain = FailureDomain::kHost;
};

// A chunk below its normal count, with its priority.
struct RecoveryTodo {
  ChunkId id;
  bool blocked = false;  // fewer counted replicas than the minimum: first ("pending")
  size_t counted = 0;    // then the fewest counted replicas first
  bool operator==(const RecoveryTodo&) const = default;
};

// The chunk needs a copy when it has a live replica to copy from and fewer staying
// replicas than norm. Replicas on an inactive CS still stay (they leave the list when it
// goes offline); those on a CS being removed do not (they are copied away). Nothing while
// it is being copied or waits for an intact replica.
std::optional<RecoveryTodo> RecoveryTodoOf(const RecoveryChunkView& c);

struct RecoveryPlanInput {
  std::vector<RecoveryTodo> todo;  // from RecoveryTodoOf, in any order
  bool running = false;             // an episode is open ("Replication started" said)
  std::set<ChunkId> urgent;         // chunks a write found a failed replica of
  size_t max_chunks = kMaxRecoveryChunksPerPass;
};

struct RecoveryPlan {
  std::vector<RecoveryTodo> order;  // to copy, in priority order, at most max_chunks
  size_t queued = 0;                // all that need a copy (order is a prefix of them)
  std::set<ChunkId> pending;        // the blocked ones, all of them: state "pending"
  std::set<ChunkId> urgent;         // input.urgent still needing a copy
  std::optional<PolicyEvent> started;  // "Replication started" at the start of an episode
  bool running = false;             // the episode flag after planning
};

// Guide 5.6.1: a failed cluster does not replicate, nor one whose status is not known yet
// (right after an MDS start); then a pass plans nothing and changes nothing.
bool ReplicationAllowed(const std::string& cluster_status);

// Blocked chunks first, then the fewest counted replicas; ties keep the input order.
RecoveryPlan PlanRecovery(const RecoveryPlanInput& in);

struct RecoveryPassResult {
  std::optional<PolicyEvent> completed;  // "Replication completed"
  bool running = false;
};
// After the copies of a plan: the episode is over when every chunk planned was restored
// and none was left out by the limit.
RecoveryPassResult FinishRecoveryPass(const RecoveryPlan& plan, size_t restored);

// One copy of a chunk: where from and what placement to ask for.
struct CopyPlan {
  std::vector<CsId> sources;  // live replicas: those that count first, a leaving CS last
  // One replica in the chunk's tier and domain, not on a CS holding one (a leaving CS's
  // domain is free). The executor sets the strict flags from the cluster parameters.
  PlacementRequest placement;
  std::vector<CsId> leaving;   // listed replicas on a CS being removed
  CsId moving;                 // PlanMove: the misplaced replica the copy replaces
};
// Nothing (nullopt) when the chunk is being copied, has no live replica, or has norm
// staying replicas already. rotation spreads equal placements (the caller's counter).
std::optional<CopyPlan> PlanCopy(const RecoveryChunkView& c, uint64_t rotation);

// A replica that counts but is not where the chunk's file wants it: first one on another
// tier than the file's, else one sharing a failure domain with a replica before it in the
// list. nullopt when every counted replica is in place.
std::optional<CsId> MisplacedReplica(const RecoveryChunkView& c);

// Moving a misplaced replica: only a chunk with norm counted replicas and no more listed
// (recovery and trimming come first), not being copied. The copy goes strictly to the
// file's tier and domain (the misplaced replica's domain is free for it); when nowhere
// fits, the executor does nothing and a later pass tries again. After the copy the chunk is
// overcommitted and PlanTrim drops the misplaced replica.
std::optional<CopyPlan> PlanMove(const RecoveryChunkView& c, uint64_t rotation);

// What the executor saw carrying a CopyPlan out.
struct CopyOutcome {
  CsId target;
  std::vector<CsId> bumped;   // sources that took the new version
  std::vector<CsId> refused;  // answered that their replica is not current (stale/gone)
  std::vector<CsId> corrupt;  // sources whose data failed its checksum during the copy
  bool copied = false;        // the target holds an intact copy at the new version
};

struct CopyResolution {
  bool commit = false;          // false: no replica would be left; the list is not changed
  std::vector<CsId> replicas;   // the new list
  std::vector<CsId> freed;      // replicas that left it (to delete)
  bool no_intact = false;       // every source was corrupt: remember `replicas`, do not retry
  std::vector<PolicyEvent> events;  // to journal once the new list is committed
};
// From the list as it is now (the chunk at the bumped version): refused replicas leave it;
// corrupt sources leave it once an intact copy exists (never the last ones); the target
// joins it when the copy succeeded.
CopyResolution ResolveCopy(ChunkId id, const std::vector<CsId>& listed_now, const CopyOutcome& o);

// Extra replicas of an overcommitted chunk: keeps norm replicas that count, in list order,
// preferring those on the file's tier in distinct failure domains, then those in distinct
// domains, then any, and drops the rest (on a CS being removed or not active first, by
// construction). Only when it has norm counted replicas and is not being copied.
struct TrimDecision {
  ChunkId id;
  std::vector<CsId> keep, drop;
  bool operator==(const TrimDecision&) const = default;
};
std::optional<TrimDecision> PlanTrim(const RecoveryChunkView& c);

// rm-cs: of the CS being removed, those that no chunk lists and that have no replica
// delete pending; they are dropped (kDropCs).
std::vector<CsId> ReleasesDone(const std::vector<CsId>& releasing, const std::set<CsId>& listed,
                               const std::set<CsId>& deletes_pending);

}  // namespace vstorage::mds
