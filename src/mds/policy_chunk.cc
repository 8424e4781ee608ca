#include "mds/policy_chunk.h"

namespace vstorage::mds {

const char* ChunkStateName(ChunkStateKind s) {
  switch (s) {
    case ChunkStateKind::kHealthy: return "healthy";
    case ChunkStateKind::kReplicating: return "replicating";
    case ChunkStateKind::kOffline: return "offline";
    case ChunkStateKind::kPending: return "pending";
    case ChunkStateKind::kBlocked: return "blocked";
    case ChunkStateKind::kStandby: return "standby";
    case ChunkStateKind::kUrgent: return "urgent";
    case ChunkStateKind::kDegraded: return "degraded";
    case ChunkStateKind::kOvercommitted: return "overcommitted";
    case ChunkStateKind::kVoid: return "void";
  }
  return "healthy";
}

ChunkStateKind ClassifyChunk(const ChunkView& c) {
  if (c.replicating) return ChunkStateKind::kReplicating;
  uint32_t live = 0, counted = 0, standby = 0;
  for (const auto& r : c.replicas) {
    live += r.Active() ? 1 : 0;
    counted += r.Counts() ? 1 : 0;
    standby += r.Standby() ? 1 : 0;
  }
  if (live == 0) return ChunkStateKind::kOffline;
  if (counted < c.min) return c.pending ? ChunkStateKind::kPending : ChunkStateKind::kBlocked;
  if (standby > 0) return ChunkStateKind::kStandby;
  if (counted < c.norm) return c.urgent ? ChunkStateKind::kUrgent : ChunkStateKind::kDegraded;
  if (c.replicas.size() > c.norm) return ChunkStateKind::kOvercommitted;
  if (c.beyond_eof) return ChunkStateKind::kVoid;
  return ChunkStateKind::kHealthy;
}

SuspectAction DecideSuspect(const std::vector<SuspectPeer>& others) {
  bool uncertain = false;
  for (const auto& p : others) {
    if (p.active && p.heard_since) return SuspectAction::kDrop;
    uncertain |= p.active;
  }
  return uncertain ? SuspectAction::kWait : SuspectAction::kAdopt;
}

}  // namespace vstorage::mds
