// Placement of new chunk replicas (pure: no clock, no I/O).
//
// Failure domains (guide 3.5.4, and beyond it rack/row/room): a CS sits at the topology
// path room.row.rack.host_ID.cs_ID; the chunk's domain level says which prefix of that path
// two of its replicas may not share. Tiers (3.5.5): data goes to its tier; when that tier
// cannot take it, to the tiers below it, then above it, unless the tier is strict.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace vstorage::mds {

// Ordered from the smallest domain to the largest; the numbers are stored in snapshots.
enum class FailureDomain : uint8_t { kDisk = 0, kHost = 1, kRack = 2, kRow = 3, kRoom = 4 };
inline constexpr uint8_t kMaxFailureDomain = 4;
inline constexpr uint32_t kMaxTier = 3;  // tiers 0..3 (guide 3.5.1)

// "disk", "host", "rack", "row", "room" (set-attr failure-domain=, messages).
const char* FailureDomainName(FailureDomain d);
std::optional<FailureDomain> ParseFailureDomain(const std::string& s);

// A per-host location (beyond the guide): "ROOM.ROW.RACK", each part 1..32 characters of
// [A-Za-z0-9_-]; "" is the default location (every part "default"). Validated, not parsed.
bool ValidLocation(const std::string& loc);

struct CsCandidate {
  CsId id;
  std::string host_id;
  uint32_t tier = 0;
  uint64_t free_bytes = 0;
  bool active = false;
  std::string location;  // "ROOM.ROW.RACK" or "" (ValidLocation)
};

// The key two replicas of a chunk with failure domain `d` may not share: the CS id (disk),
// the host id (host), or the location's first 3 (rack), 2 (row) or 1 (room) parts.
std::string DomainKey(FailureDomain d, CsId cs, const std::string& host_id, const std::string& location);

struct PlacementRequest {
  uint32_t norm = 1;             // replicas wanted
  uint32_t min = 1;              // fewer than this: refuse
  uint64_t need_bytes = 0;       // a CS with less free space is not used
  uint32_t tier = 0;
  FailureDomain domain = FailureDomain::kHost;
  uint64_t rotation = 0;         // spreads ties; the caller passes a counter
  std::vector<CsId> exclude;     // already holding the chunk
  // Of `exclude`, those whose replica is going away (rm-cs, a move): not picked, but their
  // failure domain is free for the new replica (another CS of that host may take it).
  std::vector<CsId> leaving;
  // Only `tier` (mds.alloc.strict_tier, and moves back to the tier): no fallback.
  bool strict_tier = false;
  // The domain is a rule (mds.alloc.strict_failure_domain=1, the default). When advisory, a
  // placement that cannot get norm replicas in distinct domains takes smaller domains
  // (room, row, rack, host), never two replicas on one disk.
  bool strict_domain = true;
};

// How a successful placement was made, for the caller's events.
struct PlacementOutcome {
  uint32_t tier = 0;                            // the tier the replicas are on
  FailureDomain domain = FailureDomain::kHost;  // the domain they were kept apart by
};

// Picks up to `norm` active CS of one tier, at most one per failure domain, preferring the
// most free space (ties broken by rotation). Returns them in chain order. The requested
// tier is used when it yields norm replicas; otherwise (unless strict_tier) the tiers
// below it, then above it, are tried in turn, and the first with norm replicas wins, or
// else the one with the most (at least min; the requested tier on a tie). When no tier
// yields `min`, the error is the requested tier's: kNotEnoughHosts ("not enough hosts for
// N replicas", with the numbers) if there are not `min` free failure domains with active
// CS of the tier at all, whatever their space; kNoSpace (with the numbers) if space is
// what is missing.
Result<std::vector<CsId>> PlaceReplicas(const std::vector<CsCandidate>& cs, const PlacementRequest& req,
                                        PlacementOutcome* how = nullptr);

// For set-attr replicas=norm:min on a cluster whose chunk servers (dropped ones aside) are on
// `hosts` distinct hosts: "" when norm replicas fit on distinct hosts, otherwise the warning
// that says so and what writes will do (fail below min, stay degraded below norm).
std::string ReplicasHostsWarning(uint32_t norm, uint32_t min, size_t hosts);

}  // namespace vstorage::mds
