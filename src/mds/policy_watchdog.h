// Watchdog policy (pure): CS liveness from heartbeats (guide 5.3, table 5.3.1; mds.wd.*).
// The service fills a WatchdogView every kWatchdogIntervalMs and carries the decision out:
// sets each CS's status, journals the events and commits one kRemoveCsReplicas per CS
// that went offline (one command for the whole CS, not one per chunk it held).
#pragma once
#include <cstdint>
#include <vector>

#include "common/ids.h"
#include "mds/policy_view.h"

namespace vstorage::mds {

inline constexpr int kCsInactiveAfterMs = 10000;  // missed heartbeats before "inactive"
inline constexpr int kCsMinInactiveMs = 4000;     // with a short mds.wd.offline_tout
inline constexpr int kCsMinOfflineMs = 5000;      // floor of mds.wd.offline_tout in effect

struct WatchdogCsView {
  CsId id;
  CsStatus status = CsStatus::kOffline;  // as the service has it now
  bool registered = false;   // registered with this MDS since it started
  int64_t last_seen_ms = 0;  // last registration or heartbeat (monotonic clock)
  bool dropped = false;      // removed from the cluster: not watched
  bool ever_started = false;  // it has registered once (its address is known)
  int64_t created_ms = 0;    // wall clock at make-cs; 0 if unknown
};

struct WatchdogView {
  int64_t now_ms = 0;         // monotonic, the clock of last_seen_ms and start_ms
  int64_t wall_ms = 0;        // wall clock, the clock of created_ms
  int64_t start_ms = 0;       // when this MDS started (monotonic)
  int64_t offline_tout_ms = 0;  // mds.wd.offline_tout
  std::vector<WatchdogCsView> cs;
};

struct CsTransition {
  CsId cs;
  CsStatus from = CsStatus::kOffline, to = CsStatus::kOffline;
  int64_t silent_ms = 0;  // how long it has not been heard from
  bool operator==(const CsTransition&) const = default;
};

struct WatchdogDecision {
  std::vector<CsTransition> transitions;  // in the order of view.cs
  std::vector<PolicyEvent> events;        // one per transition away from active
  // CS that went offline: their replicas leave every chunk list (kRemoveCsReplicas, one
  // command per CS; the only copy of a chunk stays listed).
  std::vector<CsId> remove_replicas;
};

// The thresholds in effect for a mds.wd.offline_tout: offline after max(tout,
// kCsMinOfflineMs) of silence (a short timeout must not drop a live CS); inactive before,
// after min(kCsInactiveAfterMs, max(offline / 2, kCsMinInactiveMs)).
struct WatchdogThresholds {
  int64_t inactive_ms = 0, offline_ms = 0;
};
WatchdogThresholds ThresholdsFor(int64_t offline_tout_ms);

// A CS silent for more than offline_ms is offline; one registered and heard from within
// inactive_ms is active; any other is inactive. Silence counts from the last heartbeat,
// or for a CS not registered since the MDS started, from the MDS start, or, for one
// that never started at all (made, csd not run yet), from its make-cs. Dropped CS are
// skipped. Only changes are returned.
WatchdogDecision Watchdog(const WatchdogView& view);

}  // namespace vstorage::mds
