// Plain views shared by the MDS policies (policy_*.h). A policy is a pure function of a view
// and the time the caller passes in: no clock, no lock, no I/O, no state of its own. The
// service (the executor) fills the views under its lock and carries the decisions out;
// a deterministic simulator can fill them as well. Docs: docs/design/mds.md, "Policies".
#pragma once
#include <array>
#include <string>
#include <vector>

#include "common/ids.h"
#include "mds/placement.h"

namespace vstorage::mds {

// Liveness of a chunk server as the watchdog keeps it (guide 5.3, table 5.3.1).
enum class CsStatus { kActive, kInactive, kOffline, kDropped };

// "active", "inactive", "offline", "dropped": the words of `vstorage top` and of events.
const char* CsStatusName(CsStatus s);
// The inverse of CsStatusName; anything else is kOffline.
CsStatus ParseCsStatus(const std::string& s);

// A listed replica as the policies see it: the liveness of its CS and the CS's registry
// flags. A CS the MDS knows nothing of (no record) is `known = false` and never active.
struct ReplicaView {
  CsId cs;
  CsStatus status = CsStatus::kOffline;
  bool known = true;       // the CS has a registry record
  bool releasing = false;  // rm-cs in progress: its replicas are copied away
  bool dropped = false;
  uint32_t tier = 0;  // of its CS
  // Its CS's failure domain at each level (placement.h DomainKey), as small ids: equal ids
  // at a level mean one domain; 0 is "not known", a domain of its own (equal to none). The
  // ids mean nothing beyond one service's views.
  std::array<uint32_t, kMaxFailureDomain + 1> domains{};
  uint32_t Domain(FailureDomain d) const { return domains[static_cast<size_t>(d)]; }

  bool Active() const { return status == CsStatus::kActive; }
  // Active and not being removed: counts toward the chunk's normal number of replicas.
  bool Counts() const { return Active() && known && !releasing && !dropped; }
  // Listed and staying (its CS is not being removed), whatever its liveness: a replica on
  // an inactive CS stays listed until the CS goes offline.
  bool Staying() const { return known && !releasing; }
  // Inactive for less than mds.wd.offline_tout (guide 5.3.2 "standby").
  bool Standby() const { return status == CsStatus::kInactive; }
};

// An event a policy wants journaled (guide 5.6.1): severity "INF"/"WRN"/"ERR", the message.
struct PolicyEvent {
  std::string sev;
  std::string message;
  bool operator==(const PolicyEvent&) const = default;
};

}  // namespace vstorage::mds
