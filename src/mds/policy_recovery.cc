#include "mds/policy_recovery.h"

#include <algorithm>

namespace vstorage::mds {

namespace {
bool Has(const std::vector<CsId>& v, CsId x) { return std::find(v.begin(), v.end(), x) != v.end(); }
// Whether `id` is among the domains taken so far (0: not known, taken by nobody).
bool Taken(const std::vector<uint32_t>& taken, uint32_t id) {
  return id != 0 && std::find(taken.begin(), taken.end(), id) != taken.end();
}
}  // namespace

bool ReplicationAllowed(const std::string& cluster_status) {
  return cluster_status != "failure" && cluster_status != "unknown";
}

std::optional<RecoveryTodo> RecoveryTodoOf(const RecoveryChunkView& c) {
  if (c.replicating || c.no_intact) return std::nullopt;
  size_t live = 0, counted = 0, staying = 0;
  for (const auto& r : c.replicas) {
    live += r.Active() ? 1 : 0;
    counted += r.Counts() ? 1 : 0;
    staying += r.Staying() ? 1 : 0;
  }
  if (live == 0) return std::nullopt;  // offline: nothing to copy from
  if (staying >= c.norm) return std::nullopt;
  return RecoveryTodo{c.id, counted < c.min, counted};
}

RecoveryPlan PlanRecovery(const RecoveryPlanInput& in) {
  RecoveryPlan p;
  p.order = in.todo;
  // Table 5.3.2.1: blocked chunks are replicated first (they are "pending"), then degraded
  // ones, those closest to losing their last replica first.
  std::stable_sort(p.order.begin(), p.order.end(), [](const RecoveryTodo& a, const RecoveryTodo& b) {
    if (a.blocked != b.blocked) return a.blocked;
    return a.counted < b.counted;
  });
  p.queued = p.order.size();
  for (const auto& t : p.order) {
    if (t.blocked) p.pending.insert(t.id);
    if (in.urgent.count(t.id)) p.urgent.insert(t.id);
  }
  if (p.order.size() > in.max_chunks) p.order.resize(in.max_chunks);
  if (p.queued == 0) {
    // Nothing left that can be restored (chunks without an intact replica wait): the next
    // need for recovery is a new episode.
    p.running = false;
    return p;
  }
  // One "started" per episode: a pass that could not restore everything is retried by the
  // next one without a new event.
  if (!in.running)
    p.started = PolicyEvent{"INF", "Replication started, " + std::to_string(p.queued) + " chunks are queued"};
  p.running = true;
  return p;
}

RecoveryPassResult FinishRecoveryPass(const RecoveryPlan& plan, size_t restored) {
  RecoveryPassResult r;
  r.running = plan.running;
  if (plan.queued > 0 && restored == plan.queued) {
    r.completed = PolicyEvent{"INF", "Replication completed"};
    r.running = false;
  }
  return r;
}

std::optional<CopyPlan> PlanCopy(const RecoveryChunkView& c, uint64_t rotation) {
  if (c.replicating) return std::nullopt;
  CopyPlan p;
  size_t staying = 0;
  std::vector<CsId> others;
  for (const auto& r : c.replicas) {
    staying += r.Staying() ? 1 : 0;
    if (r.known && r.releasing) p.leaving.push_back(r.cs);
    // Sources: replicas on a CS that counts first, then other live ones (a CS being removed).
    if (r.Counts()) p.sources.push_back(r.cs);
    else if (r.Active()) others.push_back(r.cs);
  }
  p.sources.insert(p.sources.end(), others.begin(), others.end());
  if (p.sources.empty() || staying >= c.norm) return std::nullopt;
  p.placement.norm = 1;
  p.placement.min = 1;
  p.placement.need_bytes = std::min<uint64_t>(c.chunk_size_bytes, kMaxCopyNeedBytes);
  p.placement.rotation = rotation;
  p.placement.tier = c.tier;
  p.placement.domain = c.domain;
  for (const auto& r : c.replicas) p.placement.exclude.push_back(r.cs);
  p.placement.leaving = p.leaving;
  return p;
}

std::optional<CsId> MisplacedReplica(const RecoveryChunkView& c) {
  for (const auto& r : c.replicas)
    if (r.Counts() && r.tier != c.tier) return r.cs;
  std::vector<uint32_t> seen;
  for (const auto& r : c.replicas) {
    if (!r.Counts()) continue;
    if (Taken(seen, r.Domain(c.domain))) return r.cs;
    seen.push_back(r.Domain(c.domain));
  }
  return std::nullopt;
}

std::optional<CopyPlan> PlanMove(const RecoveryChunkView& c, uint64_t rotation) {
  if (c.replicating || c.no_intact || c.replicas.size() != c.norm) return std::nullopt;
  for (const auto& r : c.replicas)
    if (!r.Counts()) return std::nullopt;
  auto misplaced = MisplacedReplica(c);
  if (!misplaced) return std::nullopt;
  CopyPlan p;
  p.moving = *misplaced;
  for (const auto& r : c.replicas)
    if (r.cs != *misplaced) p.sources.push_back(r.cs);
  p.sources.push_back(*misplaced);
  p.placement.norm = 1;
  p.placement.min = 1;
  p.placement.need_bytes = std::min<uint64_t>(c.chunk_size_bytes, kMaxCopyNeedBytes);
  p.placement.rotation = rotation;
  p.placement.tier = c.tier;
  p.placement.domain = c.domain;
  p.placement.strict_tier = true;
  p.placement.strict_domain = true;
  for (const auto& r : c.replicas) p.placement.exclude.push_back(r.cs);
  p.placement.leaving = {*misplaced};
  return p;
}

CopyResolution ResolveCopy(ChunkId id, const std::vector<CsId>& listed_now, const CopyOutcome& o) {
  CopyResolution res;
  for (CsId x : listed_now) {
    bool drop = Has(o.refused, x) || (o.copied && Has(o.corrupt, x));
    if (drop) res.freed.push_back(x);
    else res.replicas.push_back(x);
  }
  if (o.copied && !Has(res.replicas, o.target)) res.replicas.push_back(o.target);
  res.commit = !res.replicas.empty();
  if (!res.commit) return res;
  if (!o.copied && !o.bumped.empty() && o.corrupt.size() == o.bumped.size()) {
    // Nothing intact to copy from: say so once, and stop re-reading the chunk every pass.
    std::string on;
    for (CsId x : o.corrupt) on += (on.empty() ? "CS#" : ", CS#") + x.str();
    res.events.push_back({"ERR", "Chunk " + id.str() + " has no intact replica: every copy (on " + on +
                                     ") fails its checksum; reads of it fail and recovery waits until a replica returns"});
    res.no_intact = true;
  }
  if (o.copied)
    for (CsId x : o.corrupt)
      res.events.push_back({"ERR", "Checksum mismatch in chunk " + id.str() + " on CS#" + x.str() +
                                       "; the replica is dropped and rebuilt"});
  return res;
}

std::optional<TrimDecision> PlanTrim(const RecoveryChunkView& c) {
  if (c.replicating || c.replicas.size() <= c.norm) return std::nullopt;
  size_t counted = 0;
  for (const auto& r : c.replicas) counted += r.Counts() ? 1 : 0;
  if (counted < c.norm) return std::nullopt;
  // Three rounds over the list, each taking what the one before left: in place (the file's
  // tier, a new domain), then a new domain, then any replica that counts.
  std::vector<bool> keep(c.replicas.size(), false);
  std::vector<uint32_t> domains;
  size_t kept = 0;
  for (int round = 0; round < 3; ++round)
    for (size_t i = 0; i < c.replicas.size() && kept < c.norm; ++i) {
      const auto& r = c.replicas[i];
      if (keep[i] || !r.Counts()) continue;
      bool new_domain = !Taken(domains, r.Domain(c.domain));
      if (round == 0 && (r.tier != c.tier || !new_domain)) continue;
      if (round == 1 && !new_domain) continue;
      keep[i] = true;
      ++kept;
      domains.push_back(r.Domain(c.domain));
    }
  TrimDecision d;
  d.id = c.id;
  for (size_t i = 0; i < c.replicas.size(); ++i) (keep[i] ? d.keep : d.drop).push_back(c.replicas[i].cs);
  return d;
}

std::vector<CsId> ReleasesDone(const std::vector<CsId>& releasing, const std::set<CsId>& listed,
                               const std::set<CsId>& deletes_pending) {
  std::vector<CsId> out;
  // Its replica files are deleted before it leaves: a dropped CS gets no more requests.
  for (CsId cs : releasing)
    if (!listed.count(cs) && !deletes_pending.count(cs)) out.push_back(cs);
  return out;
}

}  // namespace vstorage::mds
