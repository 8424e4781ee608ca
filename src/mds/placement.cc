#include "mds/placement.h"

#include <algorithm>
#include <set>

namespace vstorage::mds {

Result<std::vector<CsId>> PlaceReplicas(const std::vector<CsCandidate>& cs, const PlacementRequest& req) {
  std::vector<const CsCandidate*> ok;
  std::set<std::string> used_domains;
  for (const auto& c : cs) {
    if (std::find(req.exclude.begin(), req.exclude.end(), c.id) != req.exclude.end())
      used_domains.insert(req.domain == FailureDomain::kHost ? c.host_id : c.id.str());
  }
  for (const auto& c : cs) {
    if (!c.active || c.tier != req.tier || c.free_bytes < req.need_bytes) continue;
    if (std::find(req.exclude.begin(), req.exclude.end(), c.id) != req.exclude.end()) continue;
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
    std::string dom = req.domain == FailureDomain::kHost ? c->host_id : c->id.str();
    if (!used_domains.insert(dom).second) continue;
    out.push_back(c->id);
  }
  if (out.size() < req.min)
    return Err(Code::kNoSpace,
               "failed to allocate " + std::to_string(req.norm) + " replicas: only " +
                   std::to_string(out.size()) + " chunk server(s) on distinct " +
                   (req.domain == FailureDomain::kHost ? "hosts" : "disks") + " in tier " +
                   std::to_string(req.tier) + " are active with enough free space (minimum " +
                   std::to_string(req.min) + "); add chunk servers or lower replicas");
  return out;
}

}  // namespace vstorage::mds
