// Chunk-state classification (pure): the states of guide table 5.3.2.1, as `vstorage stat`
// and `file-info` show them.
#pragma once
#include <cstdint>
#include <vector>

#include "mds/policy_view.h"

namespace vstorage::mds {

enum class ChunkStateKind {
  kHealthy,
  kReplicating,
  kOffline,
  kPending,
  kBlocked,
  kStandby,
  kUrgent,
  kDegraded,
  kOvercommitted,
  kVoid,
};

// "healthy", "replicating", ...: the words of `stat` and `file-info` (byte-identical to
// what the MDS has always reported; tests and scripts match them).
const char* ChunkStateName(ChunkStateKind s);

struct ChunkView {
  uint32_t norm = 1, min = 1;         // the file's replica counts
  std::vector<ReplicaView> replicas;  // one per listed replica
  bool replicating = false;  // a recovery copy of it is in progress
  bool pending = false;      // queued by the last recovery pass as blocked
  bool urgent = false;       // a replica failed during a write and is not rebuilt yet
  bool beyond_eof = false;   // starts at or after the end of its file (allocated, unused)
};

// One state per chunk, the most pressing first: replicating; offline (no active replica);
// pending/blocked (fewer counted replicas than min); standby (a replica on an inactive
// CS); urgent/degraded (fewer counted than norm); overcommitted (more listed than norm);
// void; healthy.
ChunkStateKind ClassifyChunk(const ChunkView& c);

// A replica its CS reports as suspect when it registers after an unclean stop: it was being
// written, so a power cut may have taken writes that were acknowledged but not synced, or
// torn them (cs/intent_log.h). The other listed replicas of the chunk, as the MDS sees them:
struct SuspectPeer {
  CsId cs;
  bool active = false;      // its CS is active
  bool heard_since = false;  // and has been heard from after the suspect's CS fell silent
};
enum class SuspectAction {
  kDrop,   // another replica is intact (its CS was up after the cut): rebuild from it
  kWait,   // another replica's CS looks active but has not been heard from since: it may
           // have been cut too, or may hold the only intact copy; ask again later
  kAdopt,  // no other replica can be intact: this one becomes the chunk's content at a new
           // version, and the other replicas are rebuilt from it
};
SuspectAction DecideSuspect(const std::vector<SuspectPeer>& others);

}  // namespace vstorage::mds
