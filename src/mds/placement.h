// Placement of new chunk replicas (pure: no clock, no I/O).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace vstorage::mds {

enum class FailureDomain { kHost, kDisk };

struct CsCandidate {
  CsId id;
  std::string host_id;
  uint32_t tier = 0;
  uint64_t free_bytes = 0;
  bool active = false;
};

struct PlacementRequest {
  uint32_t norm = 1;             // replicas wanted
  uint32_t min = 1;              // fewer than this: refuse
  uint64_t need_bytes = 0;       // a CS with less free space is not used
  uint32_t tier = 0;
  FailureDomain domain = FailureDomain::kHost;
  uint64_t rotation = 0;         // spreads ties; the caller passes a counter
  std::vector<CsId> exclude;     // already holding the chunk
  // Of `exclude`, those whose replica is going away (rm-cs): not picked, but their failure
  // domain is free for the new replica (another CS of that host may take it).
  std::vector<CsId> leaving;
};

// Picks up to `norm` active CS of the tier, at most one per failure domain, preferring the
// most free space (ties broken by rotation). Returns them in chain order. When fewer than
// `min` qualify: kNotEnoughHosts ("not enough hosts for N replicas", with the numbers) if
// there are not `min` free failure domains with active CS of the tier at all, whatever
// their space; kNoSpace (with the numbers) if space is what is missing.
Result<std::vector<CsId>> PlaceReplicas(const std::vector<CsCandidate>& cs, const PlacementRequest& req);

// For set-attr replicas=norm:min on a cluster whose chunk servers (dropped ones aside) are on
// `hosts` distinct hosts: "" when norm replicas fit on distinct hosts, otherwise the warning
// that says so and what writes will do (fail below min, stay degraded below norm).
std::string ReplicasHostsWarning(uint32_t norm, uint32_t min, size_t hosts);

}  // namespace vstorage::mds
