#include "mds/policy_watchdog.h"

#include <algorithm>
#include <string>

namespace vstorage::mds {

WatchdogThresholds ThresholdsFor(int64_t offline_tout_ms) {
  WatchdogThresholds t;
  t.offline_ms = std::max<int64_t>(offline_tout_ms, kCsMinOfflineMs);
  t.inactive_ms = std::min<int64_t>(kCsInactiveAfterMs, std::max<int64_t>(t.offline_ms / 2, kCsMinInactiveMs));
  return t;
}

WatchdogDecision Watchdog(const WatchdogView& view) {
  WatchdogThresholds th = ThresholdsFor(view.offline_tout_ms);
  WatchdogDecision d;
  for (const auto& cs : view.cs) {
    if (cs.dropped) continue;
    int64_t silent = cs.registered ? view.now_ms - cs.last_seen_ms : view.now_ms - view.start_ms;
    // Made a second ago and not started yet: timed from its make-cs, not from the MDS start.
    if (!cs.registered && !cs.ever_started && cs.created_ms > 0)
      silent = std::max<int64_t>(0, view.wall_ms - cs.created_ms);
    CsStatus want;
    if (silent > th.offline_ms) want = CsStatus::kOffline;
    else if (silent <= th.inactive_ms && cs.registered) want = CsStatus::kActive;
    else want = CsStatus::kInactive;
    if (want == cs.status) continue;
    d.transitions.push_back({cs.id, cs.status, want, silent});
    if (want != CsStatus::kActive)
      d.events.push_back({"WRN", "CS#" + cs.id.str() + " has not registered during the last " +
                                     std::to_string(silent / 1000) + " sec and is marked as " + CsStatusName(want)});
    if (want == CsStatus::kOffline) d.remove_replicas.push_back(cs.id);
  }
  return d;
}

}  // namespace vstorage::mds
