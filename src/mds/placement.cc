#include "mds/placement.h"

#include <algorithm>
#include <set>

namespace vstorage::mds {

Result<std::vector<CsId>> PlaceReplicas(const std::vector<CsCandidate>& cs, const PlacementRequest& req) {
  auto has = [](const std::vector<CsId>& v, CsId id) { return std::find(v.begin(), v.end(), id) != v.end(); };
  auto domain_of = [&](const CsCandidate& c) { return req.domain == FailureDomain::kHost ? c.host_id : c.id.str(); };
  std::vector<const CsCandidate*> ok;
  std::set<std::string> used_domains;
  for (const auto& c : cs)
    if (has(req.exclude, c.id) && !has(req.leaving, c.id)) used_domains.insert(domain_of(c));
  std::set<std::string> free_domains;  // with an active CS of the tier, space aside
  for (const auto& c : cs) {
    if (!c.active || c.tier != req.tier || has(req.exclude, c.id)) continue;
    if (!used_domains.count(domain_of(c))) free_domains.insert(domain_of(c));
    if (c.free_bytes < req.need_bytes) continue;
    ok.push_back(&c);
  }
  size_t n = ok.size();
  // Rotate before the stable sort so equal candidates take turns being first in the chain.
  if (n) std::rotate(ok.begin(), ok.begin() + static_cast<long>(req.rotation % n), ok.end());
  // Coarse buckets (1 GiB) so tiny differences in free space do not pin every chunk to one CS.
  std::stable_sort(ok.begin(), ok.end(), [](const CsCandidate* a, const CsCandidate* b) {
    return (a->free_bytes >> 30) > (b->free_bytes >> 30);
  });
  std::vector<CsId> out;
  for (const CsCandidate* c : ok) {
    if (out.size() >= req.norm) break;
    if (!used_domains.insert(domain_of(*c)).second) continue;
    out.push_back(c->id);
  }
  const char* domains = req.domain == FailureDomain::kHost ? "hosts" : "disks";
  if (out.size() < req.min && free_domains.size() < req.min)
    return Err(Code::kNotEnoughHosts,
               "not enough " + std::string(domains) + " for " + std::to_string(req.norm) +
                   (req.exclude.empty() ? "" : " more") + (req.norm == 1 ? " replica" : " replicas") + ": " +
                   (req.exclude.empty() ? "" : "besides those of its other replicas, ") + "only " +
                   std::to_string(free_domains.size()) + " " + domains + " have active chunk servers in tier " +
                   std::to_string(req.tier) + " (at least " + std::to_string(req.min) +
                   " needed, one replica per " + (req.domain == FailureDomain::kHost ? "host" : "disk") +
                   "); add chunk servers on other " + domains + " or lower replicas");
  if (out.size() < req.min)
    return Err(Code::kNoSpace,
               "failed to allocate " + std::to_string(req.norm) + " replicas: only " +
                   std::to_string(out.size()) + " chunk server(s) on distinct " +
                   (req.domain == FailureDomain::kHost ? "hosts" : "disks") + " in tier " +
                   std::to_string(req.tier) + " are active with enough free space (minimum " +
                   std::to_string(req.min) + "); add chunk servers or lower replicas");
  return out;
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
