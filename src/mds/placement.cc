#include "mds/placement.h"

#include <algorithm>
#include <set>

namespace vstorage::mds {

namespace {

const char* kDomainNames[] = {"disk", "host", "rack", "row", "room"};

// What one tier and one domain level give.
struct Attempt {
  std::vector<CsId> out;
  size_t free_domains = 0;  // with an active CS of the tier, space aside
  uint32_t tier = 0;
  FailureDomain domain = FailureDomain::kHost;
};

Attempt PlaceIn(const std::vector<CsCandidate>& cs, const PlacementRequest& req, uint32_t tier, FailureDomain domain) {
  auto has = [](const std::vector<CsId>& v, CsId id) { return std::find(v.begin(), v.end(), id) != v.end(); };
  auto domain_of = [&](const CsCandidate& c) { return DomainKey(domain, c.id, c.host_id, c.location); };
  Attempt a;
  a.tier = tier;
  a.domain = domain;
  std::vector<const CsCandidate*> ok;
  std::set<std::string> used_domains;
  // A replica's domain is taken whatever the tier of its CS.
  for (const auto& c : cs)
    if (has(req.exclude, c.id) && !has(req.leaving, c.id)) used_domains.insert(domain_of(c));
  std::set<std::string> free_domains;
  for (const auto& c : cs) {
    if (!c.active || c.tier != tier || has(req.exclude, c.id)) continue;
    if (!used_domains.count(domain_of(c))) free_domains.insert(domain_of(c));
    if (c.free_bytes < req.need_bytes) continue;
    ok.push_back(&c);
  }
  a.free_domains = free_domains.size();
  size_t n = ok.size();
  // Rotate before the stable sort so equal candidates take turns being first in the chain.
  if (n) std::rotate(ok.begin(), ok.begin() + static_cast<long>(req.rotation % n), ok.end());
  // Coarse buckets (1 GiB) so tiny differences in free space do not pin every chunk to one CS.
  std::stable_sort(ok.begin(), ok.end(), [](const CsCandidate* a, const CsCandidate* b) {
    return (a->free_bytes >> 30) > (b->free_bytes >> 30);
  });
  for (const CsCandidate* c : ok) {
    if (a.out.size() >= req.norm) break;
    if (!used_domains.insert(domain_of(*c)).second) continue;
    a.out.push_back(c->id);
  }
  return a;
}

// One tier: the requested domain, or when advisory and it falls short, the first smaller
// domain that gives norm (else the one that gives the most, the larger domain on a tie).
Attempt PlaceInTier(const std::vector<CsCandidate>& cs, const PlacementRequest& req, uint32_t tier) {
  Attempt best = PlaceIn(cs, req, tier, req.domain);
  if (req.strict_domain) return best;
  for (int d = static_cast<int>(req.domain) - 1; d >= 0 && best.out.size() < req.norm; --d) {
    Attempt a = PlaceIn(cs, req, tier, static_cast<FailureDomain>(d));
    if (a.out.size() > best.out.size()) best = std::move(a);
  }
  return best;
}

std::string Plural(FailureDomain d) { return std::string(FailureDomainName(d)) + "s"; }

}  // namespace

const char* FailureDomainName(FailureDomain d) {
  auto i = static_cast<size_t>(d);
  return i <= kMaxFailureDomain ? kDomainNames[i] : "unknown";
}

std::optional<FailureDomain> ParseFailureDomain(const std::string& s) {
  for (uint8_t i = 0; i <= kMaxFailureDomain; ++i)
    if (s == kDomainNames[i]) return static_cast<FailureDomain>(i);
  return std::nullopt;
}

bool ValidLocation(const std::string& loc) {
  if (loc.empty()) return true;
  size_t parts = 0, len = 0;
  for (char ch : loc) {
    if (ch == '.') {
      if (len == 0) return false;
      ++parts;
      len = 0;
      continue;
    }
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok || ++len > 32) return false;
  }
  return len > 0 && parts == 2;
}

std::string DomainKey(FailureDomain d, CsId cs, const std::string& host_id, const std::string& location) {
  switch (d) {
    case FailureDomain::kDisk: return cs.str();
    case FailureDomain::kHost: return host_id;
    default: break;
  }
  std::string loc = location.empty() ? "default.default.default" : location;
  // room.row.rack: a rack is the whole path, a row its first two parts, a room the first.
  size_t keep = d == FailureDomain::kRack ? 3 : d == FailureDomain::kRow ? 2 : 1;
  size_t end = 0;
  for (size_t i = 0; i < keep; ++i) {
    end = loc.find('.', end ? end + 1 : 0);
    if (end == std::string::npos) return loc;
  }
  return loc.substr(0, end);
}

Result<std::vector<CsId>> PlaceReplicas(const std::vector<CsCandidate>& cs, const PlacementRequest& req,
                                        PlacementOutcome* how) {
  // Guide 3.5.5.2: the requested tier, then the lower ones, then (beyond the guide) the higher.
  std::vector<uint32_t> tiers{req.tier};
  if (!req.strict_tier) {
    for (uint32_t t = req.tier; t-- > 0;) tiers.push_back(t);
    for (uint32_t t = req.tier + 1; t <= kMaxTier; ++t) tiers.push_back(t);
  }
  Attempt first;
  std::optional<Attempt> best;
  for (size_t i = 0; i < tiers.size(); ++i) {
    Attempt a = PlaceInTier(cs, req, tiers[i]);
    bool enough = a.out.size() >= req.norm;
    if (a.out.size() >= req.min && (!best || a.out.size() > best->out.size())) best = a;
    if (i == 0) first = std::move(a);
    if (enough) break;
  }
  if (best) {
    if (how) *how = {best->tier, best->domain};
    return std::move(best->out);
  }
  std::string domains = Plural(req.domain), domain = FailureDomainName(req.domain);
  bool located = req.domain >= FailureDomain::kRack;
  if (first.free_domains < req.min)
    return Err(Code::kNotEnoughHosts,
               "not enough " + domains + " for " + std::to_string(req.norm) + (req.exclude.empty() ? "" : " more") +
                   (req.norm == 1 ? " replica" : " replicas") + ": " +
                   (req.exclude.empty() ? "" : "besides those of its other replicas, ") + "only " +
                   std::to_string(first.free_domains) + " " + domains + " have active chunk servers in tier " +
                   std::to_string(req.tier) + " (at least " + std::to_string(req.min) + " needed, one replica per " +
                   domain + "); add chunk servers on other " + domains +
                   (located ? " (a host's " + domain + " comes from its location file)" : "") +
                   ", lower replicas or choose a smaller failure-domain");
  return Err(Code::kNoSpace,
             "failed to allocate " + std::to_string(req.norm) + " replicas: only " +
                 std::to_string(first.out.size()) + " chunk server(s) on distinct " + domains + " in tier " +
                 std::to_string(req.tier) + " are active with enough free space (minimum " +
                 std::to_string(req.min) + "); add chunk servers or lower replicas");
}

std::string ReplicasHostsWarning(uint32_t norm, uint32_t min, size_t hosts) {
  if (norm <= hosts) return "";
  std::string w = "the cluster has chunk servers on only " + std::to_string(hosts) + " host(s) and cannot hold " +
                  std::to_string(norm) + " replicas on distinct hosts; ";
  if (min > hosts)
    return w + "writes of new data fail (not enough hosts for " + std::to_string(norm) + " replicas) until " +
           std::to_string(min - hosts) + " more host(s) have chunk servers";
  return w + "new chunks get " + std::to_string(hosts) + " and stay degraded until " + std::to_string(norm - hosts) +
         " more host(s) have chunk servers";
}

}  // namespace vstorage::mds
