#include "mds/service.h"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <set>

#include "common/limits.h"
#include "common/log.h"
#include "mds/placement.h"
#include "rpc/tls.h"

namespace vstorage::mds {

using proto::MsgType;

// Replica deletes the watchdog sends per tick at most; the rest wait for the next tick.
constexpr size_t kMaxDeletesPerTick = 1000;

Result<MdsConfig> LoadMdsConfig(const std::string& repo) {
  auto kv = ReadKeyValueFile(repo + "/mds.conf");
  if (!kv.ok()) {
    if (kv.status().code() == Code::kNotFound)
      return Err(Code::kNotFound, repo + " is not an MDS repository (no mds.conf): create it with 'vstorage -c NAME make-mds -I -a ADDR -r " + repo + " -p'");
    return kv.status();
  }
  MdsConfig c;
  c.repo = repo;
  c.cluster = (*kv)["cluster"];
  c.id = MdsId{std::strtoull((*kv)["id"].c_str(), nullptr, 10)};
  ASSIGN_OR_RETURN(c.addr, ParseHostPort((*kv)["addr"], kDefaultMdsPort));
  if (c.cluster.empty() || c.id.v == 0) return Err(Code::kCorrupt, repo + "/mds.conf lacks cluster or id");
  const std::string m = (*kv)["metrics"];
  if (m.empty()) c.metrics = HostPort{c.addr.host, c.addr.port + 2};
  else if (m != "off") {
    auto hp = ParseHostPort(m, 0);
    if (!hp.ok() || hp->port == 0)
      return Err(Code::kCorrupt, repo + "/mds.conf: metrics=" + m + " is neither HOST:PORT nor off");
    c.metrics = *hp;
  }
  return c;
}

static Result<std::string> ReadTrimmed(const std::string& path) {
  ASSIGN_OR_RETURN(std::string t, ReadFile(path));
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

Result<std::unique_ptr<MdsService>> MdsService::Start(const std::string& repo, const env::Env* env) {
  std::unique_ptr<MdsService> s(new MdsService());
  if (env) {
    s->env_ = *env;
  } else {
    s->posix_env_ = std::make_unique<env::PosixEnv>();
    s->env_ = s->posix_env_->env();
  }
  ASSIGN_OR_RETURN(s->conf_, LoadMdsConfig(repo));
  ASSIGN_OR_RETURN(s->lock_fd_, LockRepository(repo));
  ASSIGN_OR_RETURN(std::string key_hex, ReadTrimmed(repo + "/cluster.key"));
  ASSIGN_OR_RETURN(s->key_, HexDecode(key_hex));
  ASSIGN_OR_RETURN(std::string digest, ReadTrimmed(repo + "/auth_digest.key"));
  ASSIGN_OR_RETURN(s->digest_, PasswordDigest::Parse(digest));
  if (s->digest_.upgraded) {
    // The older form stored x itself, which proves the password as well as the password
    // does: keep only the verifier (docs/design/auth.md), here and in the cluster's copy.
    std::string text = s->digest_.Serialize() + "\n";
    RETURN_IF_ERROR(WriteFileAtomic(repo + "/auth_digest.key", text, 0600)
                        .Annotate("cannot replace the old password digest with its SRP verifier"));
    std::string copy = ClusterDir(s->conf_.cluster) + "/auth_digest.key";
    if (auto c = ReadTrimmed(copy); c.ok() && *c == digest)  // the same old digest
      if (Status st = WriteFileAtomic(copy, text, 0600); !st.ok()) LOG_WARN("%s: %s", copy.c_str(), st.ToString().c_str());
    LOG_INFO("the password digest in %s/auth_digest.key is now an SRP verifier", repo.c_str());
  }
  ASSIGN_OR_RETURN(s->journal_, Journal::Open(s->env_.fs, repo));
  ASSIGN_OR_RETURN(s->state_, s->journal_->Recover());
  rpc::SetEncryption(s->Encryption());  // this process's own connections follow the cluster's
  s->start_ms_ = s->env_.clock->NowMs();
  MdsService* me = s.get();
  s->pipeline_ = std::make_unique<CommitPipeline>(
      [me](const std::vector<Command>& batch) {
        std::vector<std::string> records;
        records.reserve(batch.size());
        for (const auto& c : batch) records.push_back(proto::EncodeToString(c));
        IoTimer t(&me->journal_io_);
        return me->journal_->Append(records, 1);
      },
      [me](const std::vector<Command>& batch, std::vector<Result<ApplyResult>>* out) {
        std::lock_guard<std::mutex> l(me->mu_);
        for (const auto& c : batch) {
          out->push_back(me->state_.Apply(c));
          if (out->back().ok() && MayNeedRecovery(c.type)) me->replica_cmds_.fetch_add(1);
        }
        me->commits_ += batch.size();
      },
      [me] { return me->env_.clock->WallNs(); });
  s->cs_pool_ = std::make_unique<rpc::ConnPool>(
      rpc::Credentials{s->conf_.cluster, s->key_, proto::PeerKind::kMds});
  for (const auto& cs : s->state_.AllCs()) s->cs_soft_[cs.id].status = cs.dropped ? "dropped" : "inactive";

  HostPort listen_at = MdsServiceAddr(s->conf_.addr);
  RETURN_IF_ERROR(s->server_.Listen(listen_at));
  MdsService* self = s.get();
  {
    std::lock_guard<std::mutex> l(s->mu_);
    s->AddEvent("INF", "MDS#" + s->conf_.id.str() + " at " + s->conf_.addr.str() + " became master", "JRN");
  }
  s->server_.Start(
      rpc::ServerAuth{s->conf_.cluster, s->key_, s->digest_},
      [self](rpc::ServerConn& c, rpc::Frame& f) { self->Handle(c, f); },
      [self](const std::string& peer) {
        std::lock_guard<std::mutex> l(self->mu_);
        self->AddEvent("INF", "Node " + peer + " authenticated by password");
      },
      [self](const rpc::Frame& f) { return self->RunsInline(static_cast<proto::MsgType>(f.type)); });
  s->bg_ = std::thread([self] { self->Background(); });
  s->recovery_ = std::thread([self] { self->RecoveryLoop(); });
  s->scrub_ = std::thread([self] { self->ScrubLoop(); });
  s->snapshot_ = std::thread([self] { self->SnapshotLoop(); });
  if (s->conf_.metrics) {
    auto m = MetricsServer::Start(*s->conf_.metrics, [self] { return self->Metrics(); });
    if (m.ok()) {
      s->metrics_ = std::move(m).value();
      LOG_INFO("Prometheus metrics at http://%s/metrics", s->conf_.metrics->str().c_str());
    } else {
      LOG_WARN("%s", m.status().ToString().c_str());  // the MDS serves without them
    }
  }
  LOG_INFO("MDS#%s of cluster '%s' serving %s at %s", s->conf_.id.str().c_str(),
           s->conf_.cluster.c_str(), repo.c_str(), listen_at.str().c_str());
  return s;
}

MdsService::~MdsService() {
  Stop();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void MdsService::Stop() {
  if (stop_.exchange(true)) return;
  if (metrics_) metrics_->Stop();
  bg_cv_.notify_all();
  hub_.Stop();  // long polls answer now, so that the server's threads end
  server_.Stop();
  if (bg_.joinable()) bg_.join();
  if (recovery_.joinable()) recovery_.join();
  if (scrub_.joinable()) scrub_.join();
  if (snapshot_.joinable()) snapshot_.join();
  if (pipeline_) pipeline_->Drain();  // posted events reach the journal
}

Result<ApplyResult> MdsService::Commit(Lock& l, CommandType type, std::string body) {
  VS_CHECK(l.owns_lock());
  l.unlock();
  auto r = pipeline_->Commit(type, std::move(body));
  l.lock();
  return r;
}

Result<ApplyResult> MdsService::UpdateChunkFrom(Lock& l, const ChunkInfo& c, uint64_t version,
                                                std::vector<CsId> replicas) {
  UpdateChunkCmd cmd;
  cmd.chunk = c.id;
  cmd.version = version;
  cmd.replicas = std::move(replicas);
  cmd.cas = true;
  cmd.expect_version = c.version;
  cmd.expect_replicas = c.replicas;
  return Commit(l, CommandType::kUpdateChunk, cmd);
}

Result<ApplyResult> MdsService::CommitFreeing(Lock& l, InodeId ino, CommandType type, std::string body) {
  auto it = freeing_.insert(ino);
  auto r = Commit(l, type, std::move(body));
  freeing_.erase(it);
  return r;
}

MdsStats MdsService::Stats() const {
  MdsStats s;
  auto ps = pipeline_->stats();
  s.commands = ps.commands;
  s.syncs = ps.batches;
  s.snapshots = snapshots_;
  s.snapshot_running = snapshot_running_;
  s.recovery_scans = recovery_scans_;
  s.recovery_scans_skipped = recovery_scans_skipped_;
  return s;
}

void MdsService::AddEvent(const std::string& sev, const std::string& msg, const std::string& sys) {
  AddEventCmd e;
  e.sys = sys;
  e.sev = sev;
  e.message = msg;
  pipeline_->Post(CommandType::kAddEvent, proto::EncodeToString(e));
  LOG_INFO("event: %s %s", sev.c_str(), msg.c_str());
}

bool MdsService::CsActive(CsId id) const {
  auto it = cs_soft_.find(id);
  return it != cs_soft_.end() && it->second.status == "active";
}

bool MdsService::CsCounts(CsId id) const {
  if (!CsActive(id)) return false;
  auto cs = state_.Cs(id);
  return cs.ok() && !cs->releasing && !cs->dropped;
}

size_t MdsService::CsHosts(uint32_t tier) const {
  std::set<std::string> hosts;
  for (const auto& cs : state_.AllCs())
    if (!cs.dropped && cs.tier == tier) hosts.insert(cs.host_id);
  return hosts.size();
}

std::string MdsService::CsAddr(CsId id) const {
  auto cs = state_.Cs(id);
  return cs.ok() ? cs->addr : std::string();
}

Result<proto::ChunkMap> MdsService::MapOf(InodeId ino, uint64_t index) const {
  auto c = state_.GetChunk(ino, index);
  if (!c) return Err(Code::kNotFound, "no chunk");
  ASSIGN_OR_RETURN(proto::Attr attr, state_.GetAttr(ino));
  proto::ChunkMap m;
  m.index = index;
  m.id = c->id;
  m.version = c->version;
  m.chunk_size = attr.chunk_size;
  for (CsId cs : c->replicas) m.replicas.push_back({cs, CsAddr(cs)});
  return m;
}

std::vector<CsCandidate> MdsService::Candidates() const {
  std::vector<CsCandidate> cands;
  for (const auto& cs : state_.AllCs()) {
    if (cs.dropped) continue;
    auto it = cs_soft_.find(cs.id);
    CsCandidate c;
    c.id = cs.id;
    c.host_id = cs.host_id;
    c.tier = cs.tier;
    c.location = cs.location;
    // A CS being removed (rm-cs) gets no new replicas.
    // Nor does one whose disk hangs (flag T).
    // Nor one a client found failed and that has not reported since.
    c.active = it != cs_soft_.end() && it->second.status == "active" && !it->second.io_stuck && !cs.releasing &&
               it->second.reported_failed_ms <= it->second.last_seen_ms;
    c.free_bytes = it != cs_soft_.end() ? it->second.free_bytes : 0;
    cands.push_back(c);
  }
  return cands;
}

PlacementRequest MdsService::RequestFor(const FilePlacement& fp) const {
  PlacementRequest pr;
  pr.norm = fp.norm;
  pr.min = fp.min;
  pr.tier = fp.tier;
  pr.domain = fp.domain;
  pr.strict_tier = state_.ConfigValue("mds.alloc.strict_tier") != 0;
  pr.strict_domain = state_.ConfigValue("mds.alloc.strict_failure_domain") != 0;
  return pr;
}

uint32_t MdsService::DomainId(FailureDomain d, const std::string& key) const {
  auto& ids = domain_ids_[static_cast<size_t>(d)];
  return ids.emplace(key, static_cast<uint32_t>(ids.size() + 1)).first->second;
}

Result<proto::GetChunkReply> MdsService::GetChunk(Lock& l, const proto::GetChunkReq& r, const std::string& peer) {
  proto::GetChunkReply rep;
  ASSIGN_OR_RETURN(proto::Attr attr, state_.GetAttr(r.ino));
  if (attr.type != proto::NodeType::kFile) return Err(Code::kIsDir, "not a regular file");
  if (auto existing = state_.GetChunk(r.ino, r.index)) {
    // Its replicas are being told a new version: the map is not handed out before they know.
    if (bumping_.count(existing->id))
      return Err(Code::kTryAgain, "chunk " + existing->id.str() + " is changing version; retry");
    if (r.allocate && replicating_.count(existing->id))
      return Err(Code::kTryAgain, "chunk " + existing->id.str() + " is being replicated; retry");
    if (r.allocate) {
      // Table 5.3.2.1: writes to a blocked chunk wait until it has its minimum again.
      ASSIGN_OR_RETURN(auto rmin, state_.ReplicasOf(r.ino));
      uint32_t live = 0;
      for (CsId cs : existing->replicas) live += CsActive(cs) ? 1 : 0;
      if (live < rmin.second)
        return Err(Code::kTryAgain, "chunk " + existing->id.str() + " is blocked: " + std::to_string(live) +
                                        " live replicas, fewer than the minimum " + std::to_string(rmin.second) +
                                        "; writes wait for recovery");
    }
    ASSIGN_OR_RETURN(rep.map, MapOf(r.ino, r.index));
    // Replicas on CS that are not active are moved to the end of the chain so reads try
    // live ones first; writes to them fail and get reported.
    std::stable_partition(rep.map.replicas.begin(), rep.map.replicas.end(),
                          [&](const proto::ReplicaLoc& l) { return CsActive(l.cs); });
    rep.exists = true;
    return rep;
  }
  if (!r.allocate) return rep;
  ASSIGN_OR_RETURN(FilePlacement fp, state_.PlacementOf(r.ino));
  std::vector<CsCandidate> cands = Candidates();
  PlacementRequest pr = RequestFor(fp);
  pr.need_bytes = std::min<uint64_t>(attr.chunk_size, 64ull << 20);
  pr.rotation = placement_rotation_++;
  PlacementOutcome how;
  auto placed = PlaceReplicas(cands, pr, &how);
  if (!placed.ok() && env_.clock->NowMs() - start_ms_ < kCsInactiveAfterMs) {
    // Right after a (re)start the chunk servers have not all registered again yet: that is
    // not a full cluster. The client retries.
    size_t registered = 0;
    for (const auto& c : cands) registered += c.active ? 1 : 0;
    if (registered < cands.size())
      return Err(Code::kTryAgain, "the MDS just started and " + std::to_string(cands.size() - registered) +
                                         " chunk server(s) have not registered yet; retry");
  }
  if (!placed.ok() || placed->size() < pr.norm) {
    // Guide 5.6.1 wording; at most one event per file every 10 s (writers retry).
    int64_t now = env_.clock->NowMs();
    int64_t& last = alloc_event_ms_[r.ino];
    if (now - last >= 10000) {
      last = now;
      size_t registered = 0, avail = 0;
      for (const auto& c : cands) {
        registered += 1;
        avail += c.active ? 1 : 0;
      }
      std::string msg = "Failed to allocate " + std::to_string(pr.norm) + " replicas for '" + state_.PathOf(r.ino) +
                        "' by request from <" + peer + ">";
      if (registered < pr.norm)
        msg += " since only " + std::to_string(registered) + " chunk servers are registered";
      else
        msg += " - " + std::to_string(avail) + " out of " + std::to_string(registered) + " chunks servers are available";
      if (!placed.ok() && placed.status().code() == Code::kNotEnoughHosts) msg += ": " + placed.status().message();
      AddEvent("WRN", msg);
      if (alloc_event_ms_.size() > 10000) alloc_event_ms_.clear();
    }
    if (!placed.ok()) return placed.status();
  } else if (how.tier != pr.tier || how.domain != pr.domain) {
    // Placed, but not as the file asks (guide 3.5.5.2: a full tier; an advisory domain):
    // recovery moves the data where it belongs once there is room (PlanMove).
    int64_t now = env_.clock->NowMs();
    int64_t& last = alloc_event_ms_[r.ino];
    if (now - last >= 10000) {
      last = now;
      std::string where = "'" + state_.PathOf(r.ino) + "'";
      if (how.tier != pr.tier)
        AddEvent("WRN", "Tier " + std::to_string(pr.tier) + " cannot take new data of " + where + " now, tier " +
                            std::to_string(how.tier) + " holds it until there is room; set mds.alloc.strict_tier=1 "
                            "to refuse instead");
      if (how.domain != pr.domain)
        AddEvent("WRN", "Failed to allocate " + std::to_string(pr.norm) + " replicas for " + where + " in distinct " +
                            FailureDomainName(pr.domain) + "s: they are kept apart by " +
                            FailureDomainName(how.domain) + " only (mds.alloc.strict_failure_domain=0)");
    }
  }
  AllocChunkCmd cmd;
  cmd.ino = r.ino;
  cmd.index = r.index;
  cmd.version = 1;
  cmd.replicas = *placed;
  auto res = Commit(l, CommandType::kAllocChunk, cmd);
  // kExists: another writer allocated this chunk first (its command was ahead in the
  // pipeline); its map serves this writer as well.
  if (!res.ok() && res.status().code() != Code::kExists) return res.status();
  ASSIGN_OR_RETURN(rep.map, MapOf(r.ino, r.index));
  rep.exists = true;
  return rep;
}

Result<proto::GetChunkReply> MdsService::ReportFailure(Lock& l, const proto::ReportCsFailureReq& r) {
  auto c = state_.GetChunk(r.ino, r.index);
  if (!c || c->id != r.chunk) return Err(Code::kNotFound, "chunk " + r.chunk.str() + " no longer exists");
  proto::GetChunkReply rep;
  if (bumping_.count(c->id) || replicating_.count(c->id))
    return Err(Code::kTryAgain, "chunk " + c->id.str() + " is changing version; retry");
  if (c->version != r.version) {
    // Someone already handled a failure of this chunk: the client just needs the new map.
    ASSIGN_OR_RETURN(rep.map, MapOf(r.ino, r.index));
    rep.exists = true;
    return rep;
  }
  std::vector<CsId> keep;
  for (CsId cs : c->replicas)
    if (std::find(r.failed.begin(), r.failed.end(), cs) == r.failed.end()) keep.push_back(cs);
  ASSIGN_OR_RETURN(auto rmin, state_.ReplicasOf(r.ino));
  if (keep.empty())
    return Err(Code::kTryAgain, "every replica of chunk " + r.chunk.str() + " failed; writes wait until one returns");
  if (keep.size() < rmin.second)
    return Err(Code::kTryAgain, "chunk " + r.chunk.str() + " is blocked: " + std::to_string(keep.size()) +
                                       " live replicas, fewer than the minimum " + std::to_string(rmin.second) +
                                       "; writes wait until chunk servers return");
  UpdateChunkCmd cmd;
  cmd.version = c->version + 1;
  // Held off from GetChunk until the remaining replicas know the new version (below).
  bumping_.insert(c->id);
  struct Unmark {
    MdsService* s;
    ChunkId id;
    ~Unmark() { s->bumping_.erase(id); }  // runs with l held (l is destroyed after it)
  } unmark{this, c->id};
  auto res = UpdateChunkFrom(l, *c, cmd.version, keep);
  if (!res.ok()) {
    if (res.status().code() != Code::kStaleVersion) return res.status();
    // Changed meanwhile (another report, recovery): the client gets the map as it is now.
    ASSIGN_OR_RETURN(rep.map, MapOf(r.ino, r.index));
    rep.exists = true;
    return rep;
  }
  // The failed replicas may hold older data than the rest: "urgent" until rebuilt.
  if (keep.size() < rmin.first) urgent_.insert(c->id);
  for (CsId cs : r.failed) {
    // Likely dead, though not yet inactive: no new replicas (nor recovery copies) go there
    // until it is heard from again.
    if (r.reason != static_cast<uint16_t>(Code::kCorrupt)) cs_soft_[cs].reported_failed_ms = env_.clock->NowMs();
    if (r.reason == static_cast<uint16_t>(Code::kCorrupt))
      AddEvent("ERR", "Checksum mismatch in chunk " + c->id.str() + " on CS#" + cs.str() +
                          "; the replica is dropped and rebuilt");
    else
      LOG_WARN("CS#%s failed during a write to chunk %s; dropped from its replicas (version %llu)",
               cs.str().c_str(), c->id.str().c_str(), static_cast<unsigned long long>(cmd.version));
  }
  // Whatever the failed CS still hold of this chunk is outdated now.
  QueueDeletes({FreedChunk{c->id, r.failed, c->version}});
  // The remaining replicas learn the new version before the client gets the new map.
  std::vector<std::pair<CsId, std::string>> targets;
  for (CsId cs : keep) targets.push_back({cs, CsAddr(cs)});
  std::vector<CsId> lost;
  l.unlock();  // chunk server calls: without the lock (bumping_ keeps GetChunk off it)
  for (const auto& [cs, addr] : targets) {
    proto::CsSetVersionReq sv{c->id, c->version, cmd.version};
    proto::Empty e;
    Status st = cs_pool_->Call(addr, MsgType::kCsSetVersion, sv, &e, 5000);
    if (!st.ok()) {
      LOG_WARN("set-version on CS#%s failed: %s", cs.str().c_str(), st.ToString().c_str());
      lost.push_back(cs);
    }
  }
  l.lock();
  if (!lost.empty()) {
    std::vector<CsId> keep2;
    for (CsId cs : keep)
      if (std::find(lost.begin(), lost.end(), cs) == lost.end()) keep2.push_back(cs);
    if (keep2.size() < rmin.second || keep2.empty())
      return Err(Code::kTryAgain, "chunk " + c->id.str() + " is blocked: too few replicas took the new version; writes wait for recovery");
    auto now_c = state_.ChunkById(c->id);
    if (!now_c) return Err(Code::kNotFound, "chunk " + r.chunk.str() + " no longer exists");
    auto res2 = UpdateChunkFrom(l, *now_c, cmd.version, keep2);
    if (!res2.ok() && res2.status().code() != Code::kStaleVersion) return res2.status();
  }
  ASSIGN_OR_RETURN(rep.map, MapOf(r.ino, r.index));
  rep.exists = true;
  return rep;
}

Result<proto::CsRegisterReply> MdsService::RegisterCs(Lock& l, const proto::CsRegisterReq& r) {
  auto cs = state_.Cs(r.cs);
  if (!cs.ok()) return Err(Code::kNotFound, "CS#" + r.cs.str() + " is not registered in this cluster");
  if (cs->dropped) return Err(Code::kPermission, "CS#" + r.cs.str() + " was removed from the cluster");
  // Suspect replicas (docs/design/cs.md "Power cuts") are decided before anything changes:
  // one that must wait refuses the whole registration, and the CS asks again.
  std::vector<std::pair<ChunkId, SuspectAction>> suspects;
  std::map<ChunkId, uint64_t> have;
  for (const auto& rc : r.chunks) have[rc.id] = rc.version;
  {
    int64_t silent_since = 0;  // the CS's last heartbeat before this registration; 0: none since the MDS started
    if (auto it = cs_soft_.find(r.cs); it != cs_soft_.end()) silent_since = it->second.last_seen_ms;
    for (ChunkId id : r.suspect) {
      auto info = state_.ChunkById(id);
      if (!info || std::find(info->replicas.begin(), info->replicas.end(), r.cs) == info->replicas.end()) continue;
      if (auto hv = have.find(id); hv != have.end() && hv->second > info->version) continue;  // deleted below
      std::vector<SuspectPeer> peers;
      for (CsId x : info->replicas) {
        if (x == r.cs) continue;
        SuspectPeer p{x, CsActive(x), false};
        auto soft = cs_soft_.find(x);
        p.heard_since = p.active && (silent_since == 0 || (soft != cs_soft_.end() && soft->second.last_seen_ms > silent_since));
        peers.push_back(p);
      }
      SuspectAction a = DecideSuspect(peers);
      if (a == SuspectAction::kWait)
        return Err(Code::kTryAgain, "chunk " + id.str() + " was being written when CS#" + r.cs.str() +
                                        " stopped, and another CS holding it has not been heard from since; the CS "
                                        "registers once that one answers or is marked inactive");
      // A replica whose file a power cut took (its creation was never synced) cannot be adopted.
      if (a == SuspectAction::kAdopt && !have.count(id) && info->replicas.size() > 1) a = SuspectAction::kDrop;
      suspects.push_back({id, a});
    }
  }
  if (cs->addr != r.addr || cs->tier != r.tier) {
    UpdateCsCmd u{r.cs, r.addr, r.tier};
    ASSIGN_OR_RETURN(ApplyResult res, Commit(l, CommandType::kUpdateCs, u));
    (void)res;
  }
  if (!r.host_id.empty() && r.host_id != cs->host_id) {
    // Its host got a new host_id (2.5.2.1, 8.1.7: a cloned host): failure domains follow.
    ASSIGN_OR_RETURN(ApplyResult res, Commit(l, CommandType::kSetCsHost, SetCsHostCmd{r.cs, r.host_id}));
    (void)res;
    AddEvent("INF", "CS#" + r.cs.str() + " moved from host " + cs->host_id + " to host " + r.host_id +
                        " (its host_id changed)");
  }
  if (r.location != cs->location) {
    // Its host's location file changed (or appeared): rack/row/room domains follow.
    if (!ValidLocation(r.location)) {
      AddEvent("WRN", "CS#" + r.cs.str() + " reports location '" + r.location +
                          "' from its host's location file: not ROOM.ROW.RACK (parts of letters, digits, _ "
                          "or -), so its location stays '" + cs->location + "'; fix the file and restart the CS");
    } else {
      ASSIGN_OR_RETURN(ApplyResult res, Commit(l, CommandType::kSetCsLocation, SetCsLocationCmd{r.cs, r.location}));
      (void)res;
      AddEvent("INF", "CS#" + r.cs.str() + " is at location " + (r.location.empty() ? "default" : r.location));
    }
  }
  cs_pool_->Forget(r.addr);
  proto::CsRegisterReply rep;
  std::vector<FreedChunk> freed;
  std::set<ChunkId> handled;
  size_t dropped = 0, adopted = 0;
  for (const auto& [id, action] : suspects) {
    auto info = state_.ChunkById(id);  // Commit unlocks: read it again
    if (!info || std::find(info->replicas.begin(), info->replicas.end(), r.cs) == info->replicas.end()) continue;
    std::vector<CsId> others;
    for (CsId x : info->replicas)
      if (x != r.cs) others.push_back(x);
    if (action == SuspectAction::kDrop || !have.count(id)) {
      if (others.empty()) continue;  // no file and no other replica: nothing to keep or rebuild from
      auto res = UpdateChunkFrom(l, *info, info->version, others);
      if (!res.ok()) return Err(Code::kTryAgain, "chunk " + id.str() + " changed during the registration; retrying");
      freed.push_back({id, {r.cs}, info->version});
      ++dropped;
    } else {
      uint64_t v = proto::NextResetVersion(info->version);  // clients that did not sync are told
      auto res = UpdateChunkFrom(l, *info, v, {r.cs});
      if (!res.ok()) return Err(Code::kTryAgain, "chunk " + id.str() + " changed during the registration; retrying");
      rep.set_versions.push_back({id, have[id], v});
      if (!others.empty()) freed.push_back({id, others, info->version});
      ++adopted;
    }
    handled.insert(id);
  }
  if (dropped + adopted > 0)
    AddEvent("WRN", "CS#" + r.cs.str() + " stopped uncleanly while writing " + std::to_string(dropped + adopted) +
                        " chunks: " + std::to_string(dropped) + " of its replicas are dropped and rebuilt from intact "
                        "copies, " + std::to_string(adopted) + " had no intact copy elsewhere and are kept as the "
                        "chunks' content (version bumped; the other replicas are rebuilt from them)");
  for (const auto& rc : r.chunks) {
    if (handled.count(rc.id)) continue;
    auto info = state_.ChunkById(rc.id);
    bool listed = info && std::find(info->replicas.begin(), info->replicas.end(), r.cs) != info->replicas.end();
    auto copying = replicating_.find(rc.id);
    if (copying != replicating_.end() && copying->second == r.cs) continue;  // being copied here now
    if (!listed || rc.version > info->version) {
      rep.delete_chunks.push_back(rc.id);
    } else if (rc.version < info->version) {
      // In the list with an older version: it missed only a version bump (see docs/design/mds.md).
      rep.set_versions.push_back({rc.id, rc.version, info->version});
    }
  }
  // Replicas the CS found damaged when it started: dropped from their chunks (recovery
  // rebuilds them elsewhere) unless one is the last copy; the delete then tells the CS the
  // replica is no longer counted. The CS refuses I/O to them meanwhile.
  for (ChunkId id : r.lost) {
    auto info = state_.ChunkById(id);
    bool listed = info && std::find(info->replicas.begin(), info->replicas.end(), r.cs) != info->replicas.end();
    if (!listed) rep.delete_chunks.push_back(id);
    else DropBadReplicaLocked(l, *info, r.cs, "Chunk " + id.str() + " on CS#" + r.cs.str() +
                                            " is damaged (its file header fails the checksum)", "", &freed);
  }
  QueueDeletes(freed);
  auto& soft = cs_soft_[r.cs];
  bool was_active = soft.status == "active";
  soft.registered = true;
  soft.repo_lost = false;
  soft.io_stuck = false;
  soft.io_timeouts = 0;
  soft.checksums = r.checksums;
  soft.last_seen_ms = env_.clock->NowMs();
  soft.total_bytes = r.total_bytes;
  soft.free_bytes = r.free_bytes;
  soft.status = "active";
  if (!was_active) AddEvent("INF", "CS#" + r.cs.str() + " at " + r.addr + " is active");
  return rep;
}

ReplicaView MdsService::ReplicaViewOf(CsId cs, const ReplicaViews* all) const {
  if (all) {
    auto it = all->find(cs);
    if (it != all->end()) return it->second;
  }
  ReplicaView v;
  v.cs = cs;
  auto it = cs_soft_.find(cs);
  v.status = it == cs_soft_.end() ? CsStatus::kOffline : ParseCsStatus(it->second.status);
  auto rec = state_.Cs(cs);
  v.known = rec.ok();
  if (rec.ok()) {
    v.releasing = rec->releasing;
    v.dropped = rec->dropped;
    v.tier = rec->tier;
    for (uint8_t d = 0; d <= kMaxFailureDomain; ++d) {
      auto fd = static_cast<FailureDomain>(d);
      v.domains[d] = DomainId(fd, DomainKey(fd, cs, rec->host_id, rec->location));
    }
  }
  return v;
}

MdsService::ReplicaViews MdsService::AllReplicaViews() const {
  ReplicaViews all;
  for (const auto& cs : state_.AllCs()) all[cs.id] = ReplicaViewOf(cs.id);
  return all;
}

RecoveryChunkView MdsService::RecoveryViewOf(const ChunkInfo& c, const FilePlacement& fp, uint64_t chunk_size_bytes,
                                             const ReplicaViews* all) const {
  RecoveryChunkView v;
  v.id = c.id;
  v.norm = fp.norm;
  v.min = fp.min;
  v.tier = fp.tier;
  v.domain = fp.domain;
  v.chunk_size_bytes = chunk_size_bytes;
  v.replicating = replicating_.count(c.id) > 0;
  v.no_intact = no_intact_.count(c.id) > 0;
  v.replicas.reserve(c.replicas.size());
  for (CsId cs : c.replicas) v.replicas.push_back(ReplicaViewOf(cs, all));
  return v;
}

std::string MdsService::ChunkState(const ChunkInfo& c, uint32_t norm, uint32_t min) const {
  ChunkView v;
  v.norm = norm;
  v.min = min;
  v.replicating = replicating_.count(c.id) > 0;
  v.pending = pending_.count(c.id) > 0;
  v.urgent = urgent_.count(c.id) > 0;
  v.replicas.reserve(c.replicas.size());
  for (CsId cs : c.replicas) v.replicas.push_back(ReplicaViewOf(cs));
  auto attr = state_.GetAttr(c.ino);
  v.beyond_eof = attr.ok() && attr->chunk_size > 0 && c.index * attr->chunk_size >= attr->size;
  return ChunkStateName(ClassifyChunk(v));
}

proto::FileInfoReply MdsService::FileInfo(InodeId ino, Status* st) {
  proto::FileInfoReply rep;
  auto attr = state_.GetAttr(ino);
  if (!attr.ok()) {
    *st = attr.status();
    return rep;
  }
  rep.attr = *attr;
  auto rm = state_.ReplicasOf(ino);
  if (rm.ok()) {
    rep.replicas_norm = rm->first;
    rep.replicas_min = rm->second;
  }
  for (const auto& c : state_.FileChunks(ino)) {
    proto::FileChunkInfo fc;
    fc.index = c.index;
    fc.id = c.id;
    fc.version = c.version;
    fc.state = ChunkState(c, rep.replicas_norm, rep.replicas_min);
    fc.replicas = c.replicas;
    rep.chunks.push_back(fc);
  }
  return rep;
}

static uint64_t RssBytes() {
  auto t = ReadFile("/proc/self/statm");
  if (!t.ok()) return 0;
  unsigned long long size = 0, rss = 0;
  if (sscanf(t->c_str(), "%llu %llu", &size, &rss) != 2) return 0;
  return rss * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

static int64_t ProcessCpuMs() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto ms = [](const timeval& t) { return int64_t(t.tv_sec) * 1000 + t.tv_usec / 1000; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// %CPU over the last 20 to 40 seconds: CPU time used since a mark that moves every 20 s.
uint32_t MdsService::CpuX10(int64_t now) {
  int64_t cpu = ProcessCpuMs();
  if (cpu_marks_[1].wall_ms == 0) cpu_marks_[0] = cpu_marks_[1] = {start_ms_, 0};
  if (now - cpu_marks_[1].wall_ms >= 20000) {
    cpu_marks_[0] = cpu_marks_[1];
    cpu_marks_[1] = {now, cpu};
  }
  int64_t wall = now - cpu_marks_[0].wall_ms;
  if (wall <= 0) return 0;
  return static_cast<uint32_t>(std::max<int64_t>(0, (cpu - cpu_marks_[0].cpu_ms) * 1000 / wall));
}

std::string MdsService::Metrics() {
  proto::ClusterStatReply st;
  {
    Lock l(mu_);
    st = ClusterStat(l);
  }
  return RenderMetrics(st);
}

proto::ClusterStatReply MdsService::ClusterStat(Lock& l) {
  proto::ClusterStatReply s;
  int64_t now = env_.clock->NowMs();
  s.cluster = conf_.cluster;
  s.epoch_uptime_ms = now - start_ms_;
  auto root = state_.ReplicasOf(kRootInode);
  if (root.ok()) {
    s.replicas_norm = root->first;
    s.replicas_min = root->second;
  }
  proto::MdsInfo mi;
  mi.id = conf_.id;
  mi.master = true;
  mi.status = "avail";
  mi.addr = conf_.addr.str();
  mi.uptime_ms = now - start_ms_;
  mi.commits = commits_;
  auto jio = journal_io_.Take();
  mi.ctime_x10 = jio.busy_x10;
  mi.commits_per_s = jio.span_ms > 0 ? static_cast<uint32_t>(jio.ops * 1000 / static_cast<uint64_t>(jio.span_ms)) : 0;
  mi.cpu_x10 = CpuX10(now);
  mi.mem_bytes = RssBytes();
  s.mds.push_back(mi);
  std::map<CsId, uint64_t> replicas_on;
  std::map<CsId, uint64_t> unique_on;
  uint32_t n_active = 0, n_inactive = 0, n_offline = 0;
  for (const auto& cs : state_.AllCs()) {
    auto& soft = cs_soft_[cs.id];
    proto::CsInfo ci;
    ci.id = cs.id;
    ci.status = cs.dropped ? "dropped" : soft.status;
    if (cs.releasing && ci.status == "active") ci.status = "releasing";
    ci.addr = cs.addr;
    ci.host_id = cs.host_id;
    ci.location = cs.location;
    ci.tier = cs.tier;
    ci.total_bytes = soft.total_bytes;
    ci.free_bytes = soft.free_bytes;
    if (ci.status == "active" || ci.status == "releasing") {  // a silent CS's figures are stale
      ci.qdepth_x10 = soft.qdepth_x10;
      ci.iowait_pct = soft.iowait_pct;
      ci.lat_avg_ms = soft.lat_avg_ms;
      ci.lat_max_ms = soft.lat_max_ms;
    }
    ci.flags = soft.checksums ? "C" : "";
    if (soft.csum_errors) ci.flags += "h";
    if (soft.io_errors) ci.flags += "H";
    if (soft.repo_lost) ci.flags += "R";
    if (soft.io_timeouts) ci.flags += "T";
    if (ci.status == "active" || ci.status == "releasing") {
      ++n_active;
      s.total_bytes += soft.total_bytes;
      s.free_bytes += soft.free_bytes;
    } else if (ci.status == "inactive") {
      ++n_inactive;
    } else if (ci.status == "offline") {
      ++n_offline;
    }
    s.cs.push_back(ci);
  }
  // The walks over every inode and chunk let go of mu_ between slices: requests (the I/O
  // thread's too) wait for one slice at most, not for a walk over millions of records. The
  // figures may then mix states a few commands apart, which a monitor does not mind.
  StateCounts counts;
  for (uint64_t from = 1; from;) {
    from = state_.CountFilesFrom(from, kStatRecordsPerSlice, &counts);
    if (from) {
      l.unlock();
      l.lock();
    }
  }
  for (uint64_t from = 1; from;) {
    from = state_.ForEachChunkFrom(from, kStatRecordsPerSlice, [&](const ChunkInfo& c) {
      auto rm = state_.ReplicasOf(c.ino);
      uint32_t norm = rm.ok() ? rm->first : 1, min = rm.ok() ? rm->second : 1;
      std::string st = ChunkState(c, norm, min);
      auto& cnt = s.chunk_states;
      if (st == "healthy") ++cnt.healthy;
      else if (st == "degraded") ++cnt.degraded;
      else if (st == "blocked") ++cnt.blocked;
      else if (st == "offline") ++cnt.offline;
      else if (st == "overcommitted") ++cnt.overcommitted;
      else if (st == "replicating") ++cnt.replicating;
      else if (st == "urgent") ++cnt.urgent;
      else if (st == "pending") ++cnt.pending;
      else if (st == "standby") ++cnt.standby;
      else if (st == "void") ++cnt.void_;
      counts.chunk_replicas += c.replicas.size();
      for (CsId cs : c.replicas) ++replicas_on[cs];
      if (c.replicas.size() == 1) ++unique_on[c.replicas[0]];
    });
    if (from) {
      l.unlock();
      l.lock();
    }
  }
  s.files = counts.files;
  s.inodes = counts.inodes;
  s.chunks = counts.chunks;
  s.chunk_replicas = counts.chunk_replicas;
  s.fs_bytes = counts.file_bytes;
  for (auto& ci : s.cs) {
    ci.replicas = replicas_on[ci.id];
    ci.unique = unique_on[ci.id];
  }
  {
    // Chunks whose replicas are queued for deletion (no longer in any file).
    std::lock_guard<std::mutex> l(del_mu_);
    std::set<ChunkId> deleting;
    for (const auto& d : pending_deletes_)
      if (!state_.ChunkById(d.chunk)) deleting.insert(d.chunk);
    s.chunk_states.deleting = deleting.size();
  }
  (void)n_active;
  (void)n_inactive;
  (void)n_offline;
  s.allocatable_bytes = s.replicas_norm ? s.free_bytes / s.replicas_norm : s.free_bytes;
  s.status = ClusterStatusLocked(now);
  const auto& cs = s.chunk_states;
  if (s.status == "healthy" && cs.degraded + cs.urgent + cs.blocked + cs.pending + cs.offline + cs.standby > 0)
    s.status = "degraded";
  for (const auto& [id, sess] : leases_.sessions()) {
    proto::ClientInfo ci;
    ci.id = id;
    ci.host = sess.host;
    ci.open_read = sess.open_read;
    ci.open_write = sess.open_write;
    ci.read_bps = sess.read_bps;
    ci.write_bps = sess.write_bps;
    ci.read_ops = sess.read_ops_ps;
    ci.write_ops = sess.write_ops_ps;
    ci.fsyncs = sess.fsyncs_ps;
    ci.lat_avg_ms = sess.lat_avg_ms;
    ci.lat_max_ms = sess.lat_max_ms;
    s.clients.push_back(ci);
  }
  for (const auto& e : state_.Events()) s.events.push_back({e.time_ms, e.sys, e.sev, e.message});
  for (const auto& [id, stuck] : release_stuck_) {
    auto cs = state_.Cs(id);
    if (cs.ok() && cs->releasing && !cs->dropped) s.cs_notes[id.str()] = stuck.note;
  }
  return s;
}

// Guide 5.1 / 5.6.1: failure when more CS (or hosts) are offline than the limits allow
// (0 disables the failed mode), unknown while the CS re-register after a master change.
std::string MdsService::ClusterStatusLocked(int64_t now, CsTally* tally) const {
  CsTally t;
  uint64_t failed_cs = 0;
  std::set<std::string> offline_hosts;
  for (const auto& cs : state_.AllCs()) {
    if (cs.dropped) continue;
    auto it = cs_soft_.find(cs.id);
    std::string st = it == cs_soft_.end() ? "inactive" : it->second.status;
    if (st == "offline") {
      ++t.offline;
      // A CS that never registered holds no data: it degrades the cluster but does not
      // fail it (and so stop replication) on its own.
      if (cs.addr.empty()) continue;
      ++failed_cs;
      offline_hosts.insert(cs.host_id);
    } else if (st == "inactive") {
      ++t.inactive;
    } else {
      ++t.active;
    }
  }
  if (tally) *tally = t;
  int64_t max_cs = state_.ConfigValue("mds.wd.max_offline_cs");
  int64_t max_hosts = state_.ConfigValue("mds.wd.max_offline_cs_hosts");
  if ((max_cs > 0 && failed_cs > static_cast<uint64_t>(max_cs)) ||
      (max_hosts > 0 && offline_hosts.size() > static_cast<uint64_t>(max_hosts)))
    return "failure";
  if (now - start_ms_ < kCsInactiveAfterMs && t.inactive > 0) return "unknown";
  return t.inactive + t.offline > 0 ? "degraded" : "healthy";
}

void MdsService::ClusterEvents(int64_t now) {
  CsTally t;
  std::string status = ClusterStatusLocked(now, &t);
  if (status != last_status_ && status != "unknown") {
    last_status_ = status;
    std::string counts = std::to_string(t.active) + " active, " + std::to_string(t.inactive) + " inactive, " +
                         std::to_string(t.offline) + " offline CS";
    if (status == "healthy")
      AddEvent("INF", "The cluster is healthy with " + std::to_string(t.active) + " active CS");
    else if (status == "degraded")
      AddEvent("WRN", "The cluster is degraded with " + counts);
    else
      AddEvent("ERR", "The cluster failed with " + counts + " (mds.wd.max_offline_cs=" +
                          std::to_string(state_.ConfigValue("mds.wd.max_offline_cs")) + ")");
  }
  uint64_t total = 0, free = 0;
  for (const auto& [id, soft] : cs_soft_)
    if (soft.status == "active") {
      total += soft.total_bytes;
      free += soft.free_bytes;
    }
  if (total == 0) return;
  int pct = static_cast<int>((total - std::min(free, total)) * 100 / total);
  int decile = pct / 10;
  if (decile != last_fill_decile_) {
    // Reported on every crossing of a 10% step (and once at start when above 10%).
    if (last_fill_decile_ >= 0 || decile > 0)
      AddEvent(pct >= 80 ? "WRN" : "INF", "The cluster is filled up to " + std::to_string(pct) + "%");
    last_fill_decile_ = decile;
  }
}

void MdsService::RecoveryLoop() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> l(bg_mu_);
      bg_cv_.wait_for(l, std::chrono::milliseconds(kWatchdogIntervalMs), [this] { return stop_.load(); });
    }
    if (stop_) break;
    RecoveryPass();
    FinishReleases();
  }
}

std::string MdsService::RecoverySignatureLocked() const {
  std::string sig;
  for (const auto& cs : state_.AllCs()) {
    auto it = cs_soft_.find(cs.id);
    sig += cs.id.str() + (cs.dropped ? "d" : "") + (cs.releasing ? "r" : "") + ":" +
           (it == cs_soft_.end() ? "-" : it->second.status) +
           (it != cs_soft_.end() && it->second.reported_failed_ms ? "f" : "") + ";";
  }
  return sig;
}

void MdsService::RecoveryPass() {
  RecoveryPlan plan;
  std::vector<ChunkId> moves;  // chunks with a misplaced replica (PlanMove), at most kMaxMovesPerPass
  {
    Lock l(mu_);
    if (!ReplicationAllowed(ClusterStatusLocked(env_.clock->NowMs()))) return;  // 5.6.1: replication stops
    // The scan below walks every chunk under mu_: skip it while nothing it depends on has
    // changed since a pass that found nothing to do (no chunk, CS status, replica or
    // config command; no copy in flight), with a full scan every kRecoveryFullScanMs anyway.
    int64_t now = env_.clock->NowMs();
    std::string sig = RecoverySignatureLocked();
    uint64_t cmds = replica_cmds_.load();
    if (recovery_idle_ && sig == recovery_sig_ && cmds == recovery_cmds_ && urgent_.empty() && pending_.empty() &&
        replicating_.empty() && now - recovery_scan_ms_ < kRecoveryFullScanMs) {
      ++recovery_scans_skipped_;
      return;
    }
    recovery_sig_ = std::move(sig);
    recovery_cmds_ = cmds;
    recovery_scan_ms_ = now;
    recovery_idle_ = false;
    ++recovery_scans_;
    for (auto it = no_intact_.begin(); it != no_intact_.end();) {
      auto c = state_.ChunkById(it->first);
      it = c && c->replicas == it->second ? std::next(it) : no_intact_.erase(it);
    }
    RecoveryPlanInput in;
    in.running = replication_running_;
    in.urgent = urgent_;
    ReplicaViews all = AllReplicaViews();
    // In slices, letting go of mu_ in between (the I/O thread serves requests under it): a
    // chunk that changes meanwhile is looked at again by RecoverChunk, and the next pass
    // sees what this one missed.
    for (uint64_t from = 1; from;) {
      from = state_.ForEachChunkFrom(from, kStatRecordsPerSlice, [&](const ChunkInfo& c) {
        auto fp = state_.PlacementOf(c.ino);
        if (!fp.ok()) return;
        RecoveryChunkView v = RecoveryViewOf(c, *fp, 0, &all);
        if (auto t = RecoveryTodoOf(v)) in.todo.push_back(*t);
        else if (moves.size() < kMaxMovesPerPass && PlanMove(v, 0)) moves.push_back(c.id);
      });
      if (from) {
        l.unlock();
        l.lock();
      }
    }
    plan = PlanRecovery(in);
    pending_ = plan.pending;
    // Chunks reported urgent while the walk let go of mu_ stay urgent.
    std::set<ChunkId> reported;
    std::set_difference(urgent_.begin(), urgent_.end(), in.urgent.begin(), in.urgent.end(),
                        std::inserter(reported, reported.end()));
    urgent_ = plan.urgent;
    urgent_.insert(reported.begin(), reported.end());
    replication_running_ = plan.running;
    if (plan.started) AddEvent(plan.started->sev, plan.started->message);
  }
  if (!plan.order.empty()) {
    // Copies run in parallel (mds.recovery.parallel workers), each at a bounded rate.
    size_t workers;
    {
      std::lock_guard<std::mutex> l(mu_);
      workers = static_cast<size_t>(std::max<int64_t>(1, state_.ConfigValue("mds.recovery.parallel")));
    }
    const auto& todo = plan.order;
    workers = std::min(workers, todo.size());
    std::atomic<size_t> next{0}, done{0};
    std::vector<std::thread> pool;
    for (size_t w = 0; w < workers; ++w)
      pool.emplace_back([&] {
        for (size_t i; !stop_ && (i = next++) < todo.size();) {
          // One copy per missing replica, until the chunk is back at its normal count.
          Status st;
          for (uint32_t k = 0; k < kMaxReplicas && !stop_; ++k) {
            bool copied = false;
            st = RecoverChunk(todo[i].id, &copied);
            if (!st.ok() || !copied) break;
          }
          if (st.ok()) ++done;
          else LOG_WARN("recovery of chunk %s: %s", todo[i].id.str().c_str(), st.ToString().c_str());
          std::lock_guard<std::mutex> l(mu_);
          pending_.erase(todo[i].id);
        }
      });
    for (auto& t : pool) t.join();
    if (stop_) return;
    std::lock_guard<std::mutex> l(mu_);
    LOG_INFO("replication pass: %zu of %zu chunk(s) restored (%zu queued)", done.load(), todo.size(), plan.queued);
    RecoveryPassResult fin = FinishRecoveryPass(plan, done);
    if (fin.completed) AddEvent(fin.completed->sev, fin.completed->message);
    replication_running_ = fin.running;
  }
  // Then, when nothing needs a copy, misplaced replicas move where their file wants them
  // (guide 3.5.5.2: back to their tier once it has room), one chunk at a time.
  size_t moved = 0;
  if (plan.queued == 0)
    for (ChunkId id : moves) {
      if (stop_) return;
      bool copied = false;
      Status st = RecoverChunk(id, &copied, true);
      if (!st.ok()) LOG_WARN("move of chunk %s: %s", id.str().c_str(), st.ToString().c_str());
      moved += copied ? 1 : 0;
    }
  if (moved) LOG_INFO("placement pass: %zu of %zu misplaced chunk(s) moved", moved, moves.size());
  // Lowest priority: overcommitted chunks lose their extra replicas (PlanTrim), a moved
  // chunk its misplaced one.
  std::vector<FreedChunk> extra;
  {
    Lock l(mu_);
    std::vector<std::pair<ChunkInfo, TrimDecision>> trim;
    ReplicaViews all = AllReplicaViews();
    state_.ForEachChunk([&](const ChunkInfo& c) {
      if (trim.size() >= kMaxTrimsPerPass) return;
      auto fp = state_.PlacementOf(c.ino);
      if (!fp.ok()) return;
      if (auto d = PlanTrim(RecoveryViewOf(c, *fp, 0, &all))) trim.push_back({c, std::move(*d)});
    });
    for (auto& [c, d] : trim) {
      if (replicating_.count(c.id)) continue;  // began meanwhile
      if (UpdateChunkFrom(l, c, c.version, d.keep).ok()) extra.push_back(FreedChunk{c.id, d.drop, c.version});
    }
    // Idle: nothing was to be copied or trimmed, so the next pass may skip its scan.
    // Misplaced chunks with nowhere to go do not keep the scan busy: a CS or command change,
    // or the periodic full scan, looks again.
    recovery_idle_ = plan.order.empty() && plan.queued == 0 && trim.empty() && !replication_running_ && moved == 0;
  }
  if (!extra.empty()) QueueDeletes(extra);
}

void MdsService::FinishReleases() {
  Lock l(mu_);
  std::vector<CsId> releasing;
  for (const auto& cs : state_.AllCs())
    if (cs.releasing && !cs.dropped) releasing.push_back(cs.id);
  if (releasing.empty()) return;
  std::set<CsId> listed, deleting;
  for (CsId cs : releasing)
    if (state_.ChunkCountOnCs(cs) > 0) listed.insert(cs);  // the per-CS index: no scan
  {
    std::lock_guard<std::mutex> l2(del_mu_);
    for (const auto& d : pending_deletes_) deleting.insert(d.cs);
  }
  for (CsId id : ReleasesDone(releasing, listed, deleting)) {
    auto res = Commit(l, CommandType::kDropCs, DropCsCmd{id});
    if (!res.ok()) continue;
    QueueDeletes(res->freed);  // replicas listed again meanwhile (none, normally)
    cs_soft_[id].status = "dropped";
    release_stuck_.erase(id);
    AddEvent("INF", "CS#" + id.str() + " is dropped: its data has been moved to other chunk servers");
  }
}

Status MdsService::RecoverChunk(ChunkId id, bool* copied, bool move) {
  ChunkInfo c;
  std::vector<proto::ReplicaLoc> live_locs;
  CsId target;
  std::string target_addr;
  uint64_t chunk_size = 0, new_version = 0, rate = 0;
  {
    Lock l(mu_);
    auto ci = state_.ChunkById(id);
    if (!ci) return Status::Ok();  // deleted meanwhile
    c = *ci;
    auto fp = state_.PlacementOf(c.ino);
    auto attr = state_.GetAttr(c.ino);
    if (!fp.ok() || !attr.ok()) return Status::Ok();
    chunk_size = attr->chunk_size;
    RecoveryChunkView view = RecoveryViewOf(c, *fp, chunk_size);
    auto plan = move ? PlanMove(view, placement_rotation_) : PlanCopy(view, placement_rotation_);
    if (!plan) return Status::Ok();  // being copied, nothing live to copy from, or not needed
    ++placement_rotation_;
    if (!move) {
      PlacementRequest rules = RequestFor(*fp);
      plan->placement.strict_tier = rules.strict_tier;
      plan->placement.strict_domain = rules.strict_domain;
    }
    for (CsId cs : plan->sources) live_locs.push_back({cs, CsAddr(cs)});
    auto placed = PlaceReplicas(Candidates(), plan->placement);
    if (move && !placed.ok()) return Status::Ok();  // no room where it belongs yet
    for (CsId cs : plan->leaving) {
      if (placed.ok()) {
        release_stuck_.erase(cs);
        continue;
      }
      // rm-cs cannot go on: say why, on the --wait progress line and (once per cause) in an event.
      auto& stuck = release_stuck_[cs];
      stuck.note = "chunk " + c.id.str() + " of '" + state_.PathOf(c.ino) + "' has nowhere to go: " +
                   placed.status().message();
      if (stuck.reported != placed.status().message()) {
        stuck.reported = placed.status().message();
        AddEvent("WRN", "Removal of CS#" + cs.str() + " cannot go on: " + stuck.note);
      }
    }
    if (!placed.ok()) return placed.status();
    target = (*placed)[0];
    target_addr = CsAddr(target);
    rate = static_cast<uint64_t>(state_.ConfigValue("mds.recovery.max_rate_mb")) * 1000000;
    // Writers are held off from here on: the version moves on, so maps they cached are
    // refused by the CS, and a new map is not handed out until the copy is listed.
    new_version = c.version + 1;
    // Every listed replica stays listed: one on an inactive CS, or one that misses the bump
    // below for a transport error, only missed a version bump and gets it when it registers.
    // Marked before the commit: once the bump is applied no map may be handed out.
    replicating_[id] = target;
    auto bumped = UpdateChunkFrom(l, c, new_version, c.replicas);
    if (!bumped.ok()) {
      replicating_.erase(id);
      return bumped.status();
    }
  }
  CopyOutcome out;
  out.target = target;
  for (const auto& loc : live_locs) {
    proto::Empty e;
    Status st = cs_pool_->Call(loc.addr, MsgType::kCsSetVersion, proto::CsSetVersionReq{c.id, c.version, new_version}, &e, 5000);
    if (st.ok()) {
      out.bumped.push_back(loc.cs);
      continue;
    }
    LOG_WARN("set-version of chunk %s on CS#%s: %s", c.id.str().c_str(), loc.cs.str().c_str(), st.ToString().c_str());
    // The CS answered that its replica is not at this version (or is gone): not current.
    if (st.code() == Code::kStaleVersion || st.code() == Code::kNotFound) out.refused.push_back(loc.cs);
  }
  // Copy from the first source that reads clean; a source with a checksum mismatch is
  // dropped once an intact copy exists elsewhere (never the last ones).
  Status st = Err(Code::kUnavailable, "no replica took the new version");
  for (CsId src : out.bumped) {
    proto::ReplicaLoc source;
    for (const auto& loc : live_locs)
      if (loc.cs == src) source = loc;
    proto::Empty e;
    st = cs_pool_->Call(target_addr, MsgType::kCsReplicate,
                        proto::CsReplicateReq{c.id, new_version, chunk_size, source, rate}, &e, 600000);
    if (st.code() != Code::kCorrupt) break;
    out.corrupt.push_back(src);
    LOG_WARN("recovery of chunk %s: source CS#%s: %s; trying another replica", c.id.str().c_str(), src.str().c_str(),
             st.ToString().c_str());
  }
  out.copied = st.ok();
  Lock l(mu_);
  auto now = state_.ChunkById(id);
  if (!now || now->version != new_version) {
    replicating_.erase(id);
    return Err(Code::kStaleVersion, "chunk changed during the copy");
  }
  CopyResolution res = ResolveCopy(c.id, now->replicas, out);
  if (!res.commit) {
    replicating_.erase(id);
    return st.ok() ? Err(Code::kUnavailable, "no replica left") : st;
  }
  // Still marked while the new list is committed, so no writer gets the map without the copy.
  auto r = UpdateChunkFrom(l, *now, new_version, res.replicas);
  replicating_.erase(id);
  if (!r.ok()) return r.status();
  for (const auto& e : res.events) AddEvent(e.sev, e.message);
  if (res.no_intact) no_intact_[c.id] = res.replicas;
  std::vector<FreedChunk> freed;
  for (CsId x : res.freed) freed.push_back({c.id, {x}, new_version});
  QueueDeletes(freed);
  *copied = out.copied;
  return st;
}

void MdsService::FreeClosedOrphans(Lock& l, int64_t now) {
  // Right after a start no client has re-taken its leases yet: give them a lease timeout.
  if (now - start_ms_ < kLeaseTimeoutMs) return;
  std::vector<InodeId> closed;
  for (InodeId ino : state_.Orphans())
    if (!leases_.IsOpen(ino)) closed.push_back(ino);
  for (InodeId ino : closed) {
    if (leases_.IsOpen(ino) || !state_.Orphans().count(ino)) continue;  // changed while the lock was released
    auto res = CommitFreeing(l, ino, CommandType::kFreeOrphan, proto::EncodeToString(FreeOrphanCmd{ino}));
    if (!res.ok()) {
      LOG_WARN("freeing unlinked inode %s: %s", ino.str().c_str(), res.status().ToString().c_str());
      continue;
    }
    LOG_INFO("unlinked inode %s: its last opener is gone, its data is freed", ino.str().c_str());
    QueueDeletes(res->freed);
  }
}

void MdsService::QueueDeletes(const std::vector<FreedChunk>& freed) {
  std::lock_guard<std::mutex> l(del_mu_);
  for (const auto& f : freed)
    for (CsId cs : f.replicas)
      if (pending_deletes_.size() < kMaxPendingDeletes) pending_deletes_.push_back({cs, f.id, f.max_version});
  bg_cv_.notify_all();
}

void MdsService::UpdateCsStatuses(Lock& l, int64_t now) {
  WatchdogView v;
  v.now_ms = now;
  v.wall_ms = env_.clock->WallMs();
  v.start_ms = start_ms_;
  v.offline_tout_ms = state_.ConfigValue("mds.wd.offline_tout");
  for (const auto& cs : state_.AllCs()) {
    if (cs.dropped) continue;
    const auto& soft = cs_soft_[cs.id];
    v.cs.push_back({cs.id, ParseCsStatus(soft.status), soft.registered, soft.last_seen_ms, cs.dropped,
                    !cs.addr.empty(), cs.created_ms});
  }
  WatchdogDecision d = Watchdog(v);
  for (const auto& t : d.transitions) cs_soft_[t.cs].status = CsStatusName(t.to);
  for (const auto& e : d.events) AddEvent(e.sev, e.message);
  // Its replicas are lost for good: the chunks become degraded and recovery copies them
  // elsewhere. If it comes back, its replicas are not listed and get deleted. One command
  // for the whole CS (the only copy of a chunk stays listed and waits).
  for (CsId cs : d.remove_replicas) {
    auto r = Commit(l, CommandType::kRemoveCsReplicas, RemoveCsReplicasCmd{cs});
    if (!r.ok()) LOG_WARN("CS#%s offline: %s", cs.str().c_str(), r.status().ToString().c_str());
  }
}

void MdsService::Background() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> l(bg_mu_);
      bg_cv_.wait_for(l, std::chrono::milliseconds(kWatchdogIntervalMs), [this] { return stop_.load(); });
    }
    if (stop_) break;
    int64_t now = env_.clock->NowMs();
    std::vector<PendingDelete> dels;
    std::map<CsId, std::string> addrs;
    {
      Lock l(mu_);
      UpdateCsStatuses(l, now);
      ClusterEvents(now);
      for (ClientId c : leases_.Expire(now))
        LOG_INFO("client %s expired; its leases are released", c.str().c_str());
      FreeClosedOrphans(l, now);
      std::lock_guard<std::mutex> l2(del_mu_);
      while (!pending_deletes_.empty() && dels.size() < kMaxDeletesPerTick) {
        auto d = pending_deletes_.front();
        pending_deletes_.pop_front();
        if (!CsActive(d.cs)) continue;  // cleaned at its next registration
        auto now_c = state_.ChunkById(d.chunk);
        if (now_c && std::find(now_c->replicas.begin(), now_c->replicas.end(), d.cs) != now_c->replicas.end())
          continue;  // listed again (copied back since): not stale any more
        addrs[d.cs] = CsAddr(d.cs);
        dels.push_back(d);
      }
    }
    for (const auto& d : dels) {
      proto::Empty e;
      Status st = cs_pool_->Call(addrs[d.cs], MsgType::kCsDelete, proto::CsDeleteReq{d.chunk, d.max_version}, &e, 5000);
      if (!st.ok())
        LOG_DEBUG("delete of chunk %s on CS#%s: %s", d.chunk.str().c_str(), d.cs.str().c_str(), st.ToString().c_str());
    }
  }
}

void MdsService::HandleHeartbeat(const proto::CsHeartbeat& r, int64_t now, Status* st) {
  auto rec = state_.Cs(r.cs);
  if (rec.ok() && rec->dropped) {
    *st = Err(Code::kPermission, "CS#" + r.cs.str() + " was removed from the cluster");
    return;
  }
  auto& soft = cs_soft_[r.cs];
  if (!soft.registered) {
    *st = Err(Code::kNotFound, "register first");
    return;
  }
  soft.total_bytes = r.total_bytes;
  soft.free_bytes = r.free_bytes;
  soft.qdepth_x10 = r.qdepth_x10;
  soft.iowait_pct = r.iowait_pct;
  soft.lat_avg_ms = r.lat_avg_ms;
  soft.lat_max_ms = r.lat_max_ms;
  soft.csum_errors = r.csum_errors;
  soft.repo = r.repo;
  if (r.io_errors > soft.io_errors && now - soft.hard_error_event_ms >= 60000) {
    soft.hard_error_event_ms = now;
    AddEvent("WRN", "CS#" + r.cs.str() + " has reported hard error on " + r.repo +
                        (r.last_error.empty() ? "" : " (" + r.last_error + ")"));
  }
  soft.io_errors = r.io_errors;
  // Flag T (8.1.8): a request that hangs means a disk that stopped answering, not
  // necessarily a broken one. No new replicas go there until it answers again; the
  // replicas it holds stay (a client that times out on one reports it and moves on).
  int64_t io_tout = state_.ConfigValue("mds.wd.io_tout");
  bool stuck = r.oldest_io_ms > io_tout;
  if (stuck && !soft.io_stuck) {
    ++soft.io_timeouts;
    AddEvent("WRN", "CS#" + r.cs.str() + " has had an I/O request pending for " + std::to_string(r.oldest_io_ms / 1000) +
                        " sec on " + r.repo + " (I/O timeout); no new replicas are placed there");
  } else if (!stuck && soft.io_stuck) {
    AddEvent("INF", "CS#" + r.cs.str() + " completed its pending I/O requests");
  }
  soft.io_stuck = stuck;
  if (r.repo_lost) {
    // Flag R (8.1.8): a CS without its repository is a failed CS. Its heartbeats no longer
    // keep it alive, so it turns inactive, then offline, and its data is rebuilt elsewhere.
    if (!soft.repo_lost)
      AddEvent("ERR", "CS#" + r.cs.str() + " lost its repository " + r.repo +
                          " (disk detached or unmounted); its replicas will be rebuilt elsewhere");
    soft.repo_lost = true;
    return;
  }
  soft.last_seen_ms = now;
  if (soft.status != "active") {
    soft.status = "active";
    AddEvent("INF", "CS#" + r.cs.str() + " is active");
  }
}

Status MdsService::RmCs(Lock& l, const proto::RmCsReq& r, const std::string& peer) {
  ASSIGN_OR_RETURN(CsRecord cs, state_.Cs(r.cs));
  if (cs.dropped) return Err(Code::kInvalidArgument, "CS#" + r.cs.str() + " is already removed from the cluster");
  bool active = CsActive(r.cs);
  if (r.cancel) {
    if (!cs.releasing) return Err(Code::kInvalidArgument, "CS#" + r.cs.str() + " is not being removed; nothing to cancel");
    RETURN_IF_ERROR(Commit(l, CommandType::kSetCsReleasing, SetCsReleasingCmd{r.cs, false}).status());
    release_stuck_.erase(r.cs);
    AddEvent("INF", "Removal of CS#" + r.cs.str() + " cancelled by request from " + peer);
    return Status::Ok();
  }
  if (r.force) {
    if (active)
      return Err(Code::kInvalidArgument, "CS#" + r.cs.str() + " is active: remove it with 'rm-cs --wait " + r.cs.str() +
                                             "' so its data moves away first; -f is only for a CS that is lost for good");
    ASSIGN_OR_RETURN(ApplyResult res, Commit(l, CommandType::kDropCs, DropCsCmd{r.cs}));
    cs_soft_[r.cs].status = "dropped";
    QueueDeletes(res.freed);
    AddEvent("WRN", "CS#" + r.cs.str() + " forcibly removed by request from " + peer + "; " +
                        std::to_string(res.freed.size()) + " replicas are rebuilt from the others");
    return Status::Ok();
  }
  if (cs.releasing) return Status::Ok();  // already in progress: --wait just follows it
  // Can the others hold its data at the required replica count (3.2.2, step 1)?
  uint32_t need_hosts = 0;
  uint64_t used = 0;
  state_.ForEachChunk([&](const ChunkInfo& c) {
    if (std::find(c.replicas.begin(), c.replicas.end(), r.cs) == c.replicas.end()) return;
    auto rm = state_.ReplicasOf(c.ino);
    if (rm.ok()) need_hosts = std::max(need_hosts, rm->first);
  });
  auto& soft = cs_soft_[r.cs];
  used = soft.total_bytes > soft.free_bytes ? soft.total_bytes - soft.free_bytes : 0;
  std::set<std::string> hosts;
  uint64_t free_others = 0;
  for (const auto& o : state_.AllCs()) {
    if (o.id == r.cs || o.dropped || o.releasing || !CsActive(o.id)) continue;
    hosts.insert(o.host_id);
    free_others += cs_soft_[o.id].free_bytes;
  }
  if (hosts.size() < need_hosts)
    return Err(Code::kInvalidArgument,
               "cannot remove CS#" + r.cs.str() + ": its chunks need " + std::to_string(need_hosts) +
                   " replicas on distinct hosts and only " + std::to_string(hosts.size()) +
                   " other host(s) have active chunk servers; add a chunk server or lower 'replicas' first");
  if (used > free_others)
    return Err(Code::kNoSpace, "cannot remove CS#" + r.cs.str() + ": it holds " + std::to_string(used >> 20) +
                                   " MiB and the other chunk servers have only " + std::to_string(free_others >> 20) +
                                   " MiB free; add space first");
  // Each of its replicas that must be copied needs a CS that keeps the failure domain (one
  // replica per host) and has space: the placement recovery will run, tried now.
  std::vector<CsCandidate> cands = Candidates();
  Status stuck;
  state_.ForEachChunk([&](const ChunkInfo& c) {
    if (!stuck.ok() || std::find(c.replicas.begin(), c.replicas.end(), r.cs) == c.replicas.end()) return;
    auto fp = state_.PlacementOf(c.ino);
    auto attr = state_.GetAttr(c.ino);
    if (!fp.ok() || !attr.ok()) return;
    PlacementRequest pr = RequestFor(*fp);
    pr.norm = pr.min = 1;  // one copy of this replica
    pr.need_bytes = std::min<uint64_t>(attr->chunk_size, 64ull << 20);
    pr.exclude = c.replicas;
    size_t staying = 0;
    for (CsId x : c.replicas) {
      auto rec = state_.Cs(x);
      bool leaving = x == r.cs || (rec.ok() && rec->releasing);
      if (leaving) pr.leaving.push_back(x);
      else ++staying;
    }
    if (staying >= fp->norm) return;  // overcommitted: nothing to copy
    auto placed = PlaceReplicas(cands, pr);
    if (!placed.ok())
      stuck = placed.status().Annotate("cannot remove CS#" + r.cs.str() + ": its replica of chunk " + c.id.str() +
                                       " of '" + state_.PathOf(c.ino) + "' has nowhere to go");
  });
  RETURN_IF_ERROR(stuck);
  RETURN_IF_ERROR(Commit(l, CommandType::kSetCsReleasing, SetCsReleasingCmd{r.cs, true}).status());
  AddEvent("INF", "Removal of CS#" + r.cs.str() + " started by request from " + peer +
                      ": its replicas are copied to other chunk servers");
  bg_cv_.notify_all();
  return Status::Ok();
}

void MdsService::DropBadReplica(ChunkId id, uint64_t version, CsId cs, const std::string& why) {
  std::vector<FreedChunk> freed;
  {
    Lock l(mu_);
    auto c = state_.ChunkById(id);
    if (!c || c->version != version) return;
    DropBadReplicaLocked(l, *c, cs, "Checksum mismatch in chunk " + id.str() + " on CS#" + cs.str(), why, &freed);
  }
  QueueDeletes(freed);
}

void MdsService::DropBadReplicaLocked(Lock& l, const ChunkInfo& c, CsId cs, const std::string& what, const std::string& why,
                                      std::vector<FreedChunk>* freed) {
  if (replicating_.count(c.id)) return;  // the copy in progress sorts out its sources
  if (std::find(c.replicas.begin(), c.replicas.end(), cs) == c.replicas.end()) return;
  if (c.replicas.size() == 1) {
    auto known = no_intact_.find(c.id);
    if (known != no_intact_.end() && known->second == c.replicas) return;  // said already
    AddEvent("ERR", what + (why.empty() ? "" : " (" + why + ")") + "; it is the only replica and is kept");
    no_intact_[c.id] = c.replicas;
    return;
  }
  std::vector<CsId> keep;
  for (CsId x : c.replicas)
    if (x != cs) keep.push_back(x);
  if (!UpdateChunkFrom(l, c, c.version, keep).ok()) return;
  AddEvent("ERR", what + "; the replica is dropped and rebuilt");
  freed->push_back({c.id, {cs}, c.version});
}

void MdsService::SnapshotLoop() {
  // Below the request threads: a snapshot may take seconds of CPU on a big state, and the
  // requests must keep their latency meanwhile (2 cores are common). SCHED_IDLE: it runs
  // on what the master leaves idle and yields the moment a request thread wakes (nice 19
  // would still take a share and whole time slices; measured p99 of creates during a
  // snapshot: nice 10 2.4x, SCHED_IDLE see bench/README.md).
  sched_param none{};
  if (::sched_setscheduler(0, SCHED_IDLE, &none) != 0 &&
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19) != 0)
    LOG_DEBUG("snapshot thread keeps its priority: %s", std::strerror(errno));
  while (!stop_) {
    {
      std::unique_lock<std::mutex> l(bg_mu_);
      bg_cv_.wait_for(l, std::chrono::milliseconds(kWatchdogIntervalMs), [this] { return stop_.load(); });
    }
    if (stop_ || journal_->RecordsSinceSnapshot() < kSnapshotEveryRecords) continue;
    snapshot_running_ = true;
    int64_t t0 = env_.clock->NowMs();
    Status st = BuildSnapshot(journal_->log());
    snapshot_running_ = false;
    if (!st.ok()) {
      LOG_WARN("snapshot failed: %s; the log keeps growing until one succeeds", st.ToString().c_str());
      continue;
    }
    ++snapshots_;
    LOG_INFO("snapshot at index %llu written in %lld ms",
             static_cast<unsigned long long>(journal_->log().snapshot().index),
             static_cast<long long>(env_.clock->NowMs() - t0));
  }
}

void MdsService::ScrubLoop() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> l(bg_mu_);
      bg_cv_.wait_for(l, std::chrono::milliseconds(kScrubTickMs), [this] { return stop_.load(); });
    }
    if (stop_) break;
    struct Task {
      CsId cs;
      std::string addr;
      ChunkId chunk;
      uint64_t version;
    };
    std::vector<Task> tasks;
    {
      std::lock_guard<std::mutex> l(mu_);
      int64_t per_min = state_.ConfigValue("mds.wd.verify_chunks");
      if (per_min <= 0) continue;
      int64_t now = env_.clock->NowMs();
      std::vector<ScrubCsView> views;
      std::vector<std::string> addrs;
      for (const auto& cs : state_.AllCs()) {
        if (cs.dropped || !CsActive(cs.id)) continue;
        const auto& soft = cs_soft_[cs.id];
        views.push_back({cs.id, soft.scrub_cursor, soft.next_scrub_ms, {}});
        addrs.push_back(cs.addr);
      }
      // Only the CS that owe a verification need the list of their chunks: one walk for all.
      std::map<CsId, size_t> due;
      for (size_t i = 0; i < views.size(); ++i)
        if (ScrubDue(views[i], per_min, now)) due[views[i].cs] = i;
      if (!due.empty())
        state_.ForEachChunk([&](const ChunkInfo& c) {
          if (replicating_.count(c.id)) return;
          for (CsId cs : c.replicas) {
            auto it = due.find(cs);
            if (it != due.end()) views[it->second].held.push_back({c.id, c.version});
          }
        });
      for (size_t i = 0; i < views.size(); ++i) {
        ScrubDecision d = ScheduleScrub(views[i], per_min, now);
        auto& soft = cs_soft_[views[i].cs];
        soft.scrub_cursor = d.cursor;
        soft.next_scrub_ms = d.next_scrub_ms;
        for (const auto& t : d.tasks) tasks.push_back({t.cs, addrs[i], t.chunk, t.version});
      }
    }
    for (const auto& t : tasks) {
      if (stop_) break;
      proto::Empty e;
      Status st = cs_pool_->Call(t.addr, MsgType::kCsVerify, proto::CsVerifyReq{t.chunk, t.version}, &e, 120000);
      if (st.code() == Code::kCorrupt) {
        LOG_WARN("scrubbing: chunk %s on CS#%s: %s", t.chunk.str().c_str(), t.cs.str().c_str(), st.ToString().c_str());
        DropBadReplica(t.chunk, t.version, t.cs, st.message());
      } else if (!st.ok()) {
        LOG_DEBUG("scrubbing: chunk %s on CS#%s: %s", t.chunk.str().c_str(), t.cs.str().c_str(), st.ToString().c_str());
      }
    }
  }
}

namespace {
constexpr int64_t kRelatimeMaxAgeNs = 24LL * 3600 * 1000000000;  // relatime: a day

template <typename Req>
Status Decode(const rpc::Frame& f, Req* r) {
  return proto::DecodeFromString(f.body, r, "request");
}
// For requests that gained fields at the end: an older client's request, without them,
// decodes with their defaults.
template <typename Req>
Status DecodeCompat(const rpc::Frame& f, Req* r) {
  return proto::DecodeStoredRecord(f.body, r, "request");
}
proto::Invalidation EntryChange(InodeId parent, const std::string& name) {
  return proto::Invalidation{proto::InvalKind::kEntry, parent, name};
}
proto::Invalidation InodeChange(InodeId ino) { return proto::Invalidation{proto::InvalKind::kInode, ino, ""}; }
template <typename T>
ReplyOutcome Body(const T& msg) {
  ReplyOutcome o;
  o.body = proto::EncodeToString(msg);
  o.has_body = true;
  return o;
}
ReplyOutcome Failed(const Status& st) {
  ReplyOutcome o;
  o.st = st;
  return o;
}
ReplyOutcome AttrOutcome(const Result<proto::Attr>& a) {
  return a.ok() ? Body(proto::AttrReply{a.value()}) : Failed(a.status());
}
}  // namespace

bool MdsService::CommitsAsync(MsgType t) {
  switch (t) {
    case MsgType::kCreate: case MsgType::kUnlink: case MsgType::kRename: case MsgType::kLink:
    case MsgType::kSetAttr: case MsgType::kRelease:
      return true;
    default:
      return false;
  }
}

bool MdsService::RunsInline(MsgType t) const {
  switch (t) {
    case MsgType::kLookup: case MsgType::kGetAttr: case MsgType::kReaddir: case MsgType::kReaddirPlus:
    case MsgType::kReadlink: case MsgType::kClientHeartbeat:
      return true;
    default:
      return CommitsAsync(t) && pipeline_->HasRoom();
  }
}

void MdsService::CommitThenReply(rpc::ServerConn c, const rpc::Frame& req, CommandType type, std::string body,
                                 Then then) {
  VS_CHECK(pipeline_);
  rpc::Frame to;
  to.type = req.type;
  to.req_id = req.req_id;
  // Handle leads it (or wakes the flusher) once mu_ is released: LeadOrKick.
  pipeline_->CommitAsync(
      type, std::move(body),
      [this, c, to, then = std::move(then)](Result<ApplyResult> r) mutable {
        Lock l(mu_);
        Outcome o = then(l, r);
        l.unlock();
        if (!o.st.ok()) (void)c.ReplyError(to, o.st);
        else if (o.has_body) (void)c.ReplyEncoded(to, std::move(o.body));
        else (void)c.Reply(to, proto::Empty{});
        if (!o.freed.empty()) QueueDeletes(o.freed);
      },
      /*defer_lead=*/true);
}

void MdsService::Handle(rpc::ServerConn& c, rpc::Frame& req) {
  auto type = static_cast<MsgType>(req.type);
  // A worker may wait for room in the pipeline (the I/O thread only comes here when there
  // is some): then the proposal under mu_ below never blocks.
  if (CommitsAsync(type) && !rpc::Server::OnIoThread()) pipeline_->WaitForRoom();
  // The reply is made under the lock and written to the socket after it is released.
  Status out_st;
  std::string out_body;
  bool out_has_body = false;
  bool deferred = false;  // answered later, by someone else
  auto reply_status = [&](const Status& st) { out_st = st; };
  auto reply = [&](const auto& msg) {
    out_body = proto::EncodeToString(msg);
    out_has_body = true;
  };
  auto reply_attr = [&](const Result<proto::Attr>& a) {
    if (a.ok()) reply(proto::AttrReply{a.value()});
    else out_st = a.status();
  };
  int64_t now = env_.clock->NowMs();
  std::vector<FreedChunk> freed;
  Lock l(mu_);
  auto run = [&]() {
    switch (type) {
      case MsgType::kRegisterClient: {
        proto::RegisterClientReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        std::string host = r.hostname.empty() ? c.peer() : r.hostname;
        ClientId id = leases_.Register(r.reclaim_id, host, now);
        reply(proto::RegisterClientReply{id, Encryption()});
        return;
      }
      case MsgType::kClientHeartbeat: {
        proto::ClientHeartbeat r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto& s = leases_.Touch(r.client, now);
        static constexpr double kInterval = 5.0;  // seconds between client heartbeats
        auto rate = [](uint64_t now_v, uint64_t prev) { return now_v >= prev ? static_cast<uint64_t>((now_v - prev) / kInterval) : 0; };
        s.read_bps = rate(r.read_bytes, s.read_bytes);
        s.write_bps = rate(r.write_bytes, s.write_bytes);
        s.read_ops_ps = rate(r.read_ops, s.read_ops);
        s.write_ops_ps = rate(r.write_ops, s.write_ops);
        s.fsyncs_ps = rate(r.fsyncs, s.fsyncs);
        s.read_bytes = r.read_bytes;
        s.write_bytes = r.write_bytes;
        s.read_ops = r.read_ops;
        s.write_ops = r.write_ops;
        s.fsyncs = r.fsyncs;
        s.open_read = r.open_read;
        s.open_write = r.open_write;
        s.lat_avg_ms = r.lat_avg_ms;
        s.lat_max_ms = r.lat_max_ms;
        reply(proto::HeartbeatReply{0, Encryption()});
        return;
      }
      case MsgType::kLookup: {
        proto::LookupReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        return reply_attr(state_.Lookup(r.parent, r.name));
      }
      case MsgType::kGetAttr: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        return reply_attr(state_.GetAttr(r.ino));
      }
      case MsgType::kReaddir: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto d = state_.Readdir(r.ino);
        if (!d.ok()) return reply_status(d.status());
        reply(proto::ReaddirReply{d.value()});
        return;
      }
      case MsgType::kReadlink: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto t = state_.Readlink(r.ino);
        if (!t.ok()) return reply_status(t.status());
        reply(proto::ReadlinkReply{t.value()});
        return;
      }
      case MsgType::kCreate: {
        proto::CreateReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        CreateNodeCmd cmd{r.parent, r.name, r.type, r.mode, r.symlink_target, r.exclusive, r.uid, r.gid, r.rdev, r.umask};
        deferred = true;
        CommitThenReply(c, req, CommandType::kCreateNode, proto::EncodeToString(cmd),
                        [this, r](Lock&, Result<ApplyResult>& res) -> Outcome {
          if (!res.ok()) return Failed(res.status());
          int64_t now = env_.clock->NowMs();
          hub_.Publish(r.client, {EntryChange(r.parent, r.name), InodeChange(r.parent)}, now);
          proto::CreateReply rep{res->attr, false};
          if (auto pa = state_.GetAttr(r.parent); pa.ok()) {
            rep.parent = *pa;
            rep.has_parent = true;
          }
          // create(2) with its open in one round trip. Not when an unlink that frees the node
          // is being committed (the client then opens it as usual, and finds it gone).
          if (r.open_write && res->attr.type == proto::NodeType::kFile && !freeing_.count(res->attr.ino) &&
              state_.GetAttr(res->attr.ino).ok())
            rep.opened = leases_.Acquire(res->attr.ino, r.client, true, now).ok();
          return Body(rep);
        });
        return;
      }
      case MsgType::kUnlink: {
        proto::UnlinkReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        // A file open somewhere keeps its data until its last close (POSIX): only the name goes.
        auto target = state_.Lookup(r.parent, r.name);
        bool open = target.ok() && target->type == proto::NodeType::kFile && leases_.IsOpen(target->ino);
        // An unlink that frees the inode holds back opens of it until it is applied (Open).
        std::optional<InodeId> frees;
        if (target.ok() && !open) {
          freeing_.insert(target->ino);
          frees = target->ino;
        }
        std::optional<InodeId> changed;
        if (target.ok()) changed = target->ino;
        deferred = true;
        CommitThenReply(c, req, CommandType::kUnlink, proto::EncodeToString(UnlinkCmd{r.parent, r.name, r.dir, open}),
                        [this, r, frees, changed](Lock&, Result<ApplyResult>& res) -> Outcome {
          if (frees) freeing_.erase(freeing_.find(*frees));
          if (!res.ok()) return Failed(res.status());
          std::vector<proto::Invalidation> ch{EntryChange(r.parent, r.name), InodeChange(r.parent)};
          if (changed) ch.push_back(InodeChange(*changed));  // nlink, ctime
          hub_.Publish(r.client, ch, env_.clock->NowMs());
          proto::UnlinkReply rep;
          if (auto pa = state_.GetAttr(r.parent); pa.ok()) {
            rep.parent = *pa;
            rep.has_parent = true;
          }
          if (changed) rep.removed = *changed;
          Outcome o = Body(rep);
          o.freed = std::move(res->freed);
          return o;
        });
        return;
      }
      case MsgType::kLink: {
        proto::LinkReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        deferred = true;
        CommitThenReply(c, req, CommandType::kLink, proto::EncodeToString(LinkCmd{r.ino, r.new_parent, r.new_name}),
                        [this, r](Lock&, Result<ApplyResult>& res) -> Outcome {
          if (!res.ok()) return Failed(res.status());
          hub_.Publish(r.client, {EntryChange(r.new_parent, r.new_name), InodeChange(r.new_parent), InodeChange(r.ino)},
                       env_.clock->NowMs());
          return AttrOutcome(res->attr);
        });
        return;
      }
      case MsgType::kRename: {
        proto::RenameReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        auto moved = state_.Lookup(r.parent, r.name);
        auto replaced = state_.Lookup(r.new_parent, r.new_name);
        bool open = replaced.ok() && replaced->type == proto::NodeType::kFile && leases_.IsOpen(replaced->ino);
        std::optional<InodeId> frees;
        if (replaced.ok() && !open) {
          freeing_.insert(replaced->ino);
          frees = replaced->ino;
        }
        std::vector<proto::Invalidation> ch{EntryChange(r.parent, r.name), EntryChange(r.new_parent, r.new_name),
                                            InodeChange(r.parent)};
        if (r.new_parent != r.parent) ch.push_back(InodeChange(r.new_parent));
        if (moved.ok()) ch.push_back(InodeChange(moved->ino));
        if (replaced.ok()) ch.push_back(InodeChange(replaced->ino));
        deferred = true;
        CommitThenReply(c, req, CommandType::kRename,
                        proto::EncodeToString(RenameCmd{r.parent, r.name, r.new_parent, r.new_name, open}),
                        [this, client = r.client, frees, ch](Lock&, Result<ApplyResult>& res) -> Outcome {
          if (frees) freeing_.erase(freeing_.find(*frees));
          if (!res.ok()) return Failed(res.status());
          hub_.Publish(client, ch, env_.clock->NowMs());
          Outcome o;
          o.freed = std::move(res->freed);
          return o;
        });
        return;
      }
      case MsgType::kSetAttr: {
        proto::SetAttrReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        deferred = true;
        CommitThenReply(c, req, CommandType::kSetAttr,
                        proto::EncodeToString(SetAttrCmd{r.ino, r.mask, r.size, r.mtime_ns / 1000000, r.mode,
                                                         r.mtime_ns, r.atime_ns, r.uid, r.gid}),
                        [this, ino = r.ino, client = r.client](Lock&, Result<ApplyResult>& res) -> Outcome {
          if (!res.ok()) return Failed(res.status());
          hub_.Publish(client, {InodeChange(ino)}, env_.clock->NowMs());
          Outcome o = AttrOutcome(state_.GetAttr(ino));
          o.freed = std::move(res->freed);
          return o;
        });
        return;
      }
      case MsgType::kOpen: {
        proto::OpenReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        if (freeing_.count(r.ino)) {
          // An unlink that frees this file is being committed: the open comes after it.
          l.unlock();
          pipeline_->Drain();
          l.lock();
        }
        auto a = state_.GetAttr(r.ino);
        if (!a.ok()) return reply_status(a.status());
        if (a->type == proto::NodeType::kFile) {
          Status st = leases_.Acquire(r.ino, r.client, r.write, now);
          if (!st.ok()) return reply_status(st);
        }
        return reply_attr(a);
      }
      case MsgType::kUnregisterClient: {
        proto::UnregisterClientReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        leases_.Unregister(r.client);
        hub_.Forget(r.client);
        return reply_status(Status::Ok());
      }
      case MsgType::kWatchChanges: {
        proto::WatchChangesReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        // A long poll parks in the hub: no thread of the server waits for it.
        deferred = true;
        rpc::Frame to;
        to.type = req.type;
        to.req_id = req.req_id;
        hub_.WaitAsync(r.client, r.after_seq, r.max_wait_ms, now,
                       [c, to](proto::WatchChangesReply rep) mutable { c.PostEncoded(to, proto::EncodeToString(rep)); });
        return;
      }
      case MsgType::kReaddirPlus: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto d = state_.Readdir(r.ino);
        if (!d.ok()) return reply_status(d.status());
        proto::ReaddirPlusReply rep;
        rep.entries.reserve(d->size());
        for (const auto& e : *d) {
          auto a = state_.GetAttr(e.ino);
          if (a.ok()) rep.entries.push_back(proto::DirEntryPlus{e.name, a.value()});
        }
        reply(rep);
        return;
      }
      case MsgType::kRelease: {
        proto::ReleaseReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        leases_.Release(r.ino, r.client, r.write);
        if (state_.Orphans().count(r.ino) && !leases_.IsOpen(r.ino)) {
          // The last close of an unlinked file frees it (its access time does not matter).
          freeing_.insert(r.ino);
          deferred = true;
          CommitThenReply(c, req, CommandType::kFreeOrphan, proto::EncodeToString(FreeOrphanCmd{r.ino}),
                          [this, ino = r.ino](Lock&, Result<ApplyResult>& res) -> Outcome {
            freeing_.erase(freeing_.find(ino));
            Outcome o;
            if (res.ok()) o.freed = std::move(res->freed);
            else LOG_WARN("freeing unlinked inode %s: %s", ino.str().c_str(), res.status().ToString().c_str());
            return o;
          });
          return;
        }
        if (r.read) {
          // relatime, as ext4 mounts by default: the access time moves once it is behind the
          // last change or a day old; at a close, never per read.
          auto a = state_.GetAttr(r.ino);
          int64_t now_ns = env_.clock->WallNs();
          if (a.ok() && (a->atime_ns <= a->mtime_ns || a->atime_ns <= a->ctime_ns ||
                         now_ns - a->atime_ns > kRelatimeMaxAgeNs)) {
            SetAttrCmd at{r.ino, proto::kSetAtime, 0, 0, 0, 0, now_ns, 0, 0};
            deferred = true;
            CommitThenReply(c, req, CommandType::kSetAttr, proto::EncodeToString(at),
                            [this, ino = r.ino](Lock&, Result<ApplyResult>& res) -> Outcome {
              if (!res.ok())
                LOG_WARN("access time of inode %s: %s", ino.str().c_str(), res.status().ToString().c_str());
              else
                hub_.Publish(ClientId{}, {InodeChange(ino)}, env_.clock->NowMs());
              return Outcome{};
            });
            return;
          }
        }
        return reply_status(Status::Ok());
      }
      case MsgType::kGetChunk: {
        proto::GetChunkReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto rep = GetChunk(l, r, c.peer());
        if (!rep.ok()) return reply_status(rep.status());
        reply(rep.value());
        return;
      }
      case MsgType::kReportCsFailure: {
        proto::ReportCsFailureReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto rep = ReportFailure(l, r);
        if (!rep.ok()) return reply_status(rep.status());
        reply(rep.value());
        return;
      }
      case MsgType::kSetXattr: {
        proto::SetXattrReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        auto res = Commit(l, CommandType::kSetXattr, SetXattrCmd{r.ino, r.name, r.value, r.flags, r.remove});
        if (res.ok()) hub_.Publish(r.client, {InodeChange(r.ino)}, now);  // ctime
        if (res.ok() && r.name == "replicas") {
          // Accepted (hosts may be added later), but said: writes would fail or stay degraded.
          auto nm = state_.ReplicasOf(r.ino);
          std::string w = nm.ok() ? ReplicasHostsWarning(nm->first, nm->second, CsHosts(0)) : "";
          if (!w.empty() && (w != last_replicas_warning_ || now - last_replicas_warning_ms_ >= 10000)) {
            last_replicas_warning_ = w;
            last_replicas_warning_ms_ = now;
            AddEvent("WRN", "replicas=" + r.value + " set on '" + state_.PathOf(r.ino) + "' by request from " +
                                c.peer() + ": " + w);
          }
        }
        return reply_status(res.status());
      }
      case MsgType::kGetXattrs: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto x = state_.GetXattrs(r.ino);
        if (!x.ok()) return reply_status(x.status());
        reply(proto::XattrsReply{x.value()});
        return;
      }
      case MsgType::kStatfs: {
        // df shows logical bytes, all three columns alike: the raw space divided by the
        // cluster's replica count (the root's norm), so Size = Used + Avail and Use% is the
        // disks' fill level.
        auto s = ClusterStat(l);
        uint64_t n = std::max<uint64_t>(s.replicas_norm, 1);
        reply(proto::StatfsReply{s.total_bytes / n, s.free_bytes / n,
                                              std::min(s.allocatable_bytes, s.free_bytes / n), s.inodes});
        return;
      }
      case MsgType::kClusterStat: {
        reply(ClusterStat(l));
        return;
      }
      case MsgType::kFileInfo: {
        proto::InodeReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        Status st;
        auto rep = FileInfo(r.ino, &st);
        if (!st.ok()) return reply_status(st);
        reply(rep);
        return;
      }
      case MsgType::kSetConfig: {
        proto::ConfigReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        auto res = Commit(l, CommandType::kSetConfig, SetConfigCmd{r.key, r.value});
        if (res.ok()) AddEvent("INF", "Global configuration updated by request from " + c.peer() + ": " + r.key + "=" + r.value);
        rpc::SetEncryption(Encryption());
        return reply_status(res.status());
      }
      case MsgType::kSetConfigMany: {
        proto::SetConfigManyReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        return reply_status(SetConfigMany(l, r, c.peer()));
      }
      case MsgType::kGetConfig: {
        reply(proto::ConfigReply{state_.Config()});
        return;
      }
      case MsgType::kCsCreate: {
        proto::CsCreateReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        if (r.tier > 3) return reply_status(Err(Code::kInvalidArgument, "tier must be 0..3"));
        auto res = Commit(l, CommandType::kCreateCs, CreateCsCmd{r.host_id, r.tier});
        if (!res.ok()) return reply_status(res.status());
        AddEvent("INF", "CS#" + res->cs.str() + " created on host " + r.host_id);
        // Waiting for its first registration: inactive (no event) until offline_tout passes.
        cs_soft_[res->cs].status = "inactive";
        reply(proto::CsCreateReply{res->cs});
        return;
      }
      case MsgType::kCsRegister: {
        proto::CsRegisterReq r;
        if (Status st = DecodeCompat(req, &r); !st.ok()) return reply_status(st);
        auto rep = RegisterCs(l, r);
        if (!rep.ok()) return reply_status(rep.status());
        rep->encryption = Encryption();
        reply(rep.value());
        return;
      }
      case MsgType::kCsHeartbeat: {
        proto::CsHeartbeat r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        Status st;
        HandleHeartbeat(r, now, &st);
        if (!st.ok()) return reply_status(st);
        reply(proto::HeartbeatReply{0, Encryption()});
        return;
      }
      case MsgType::kRmCs: {
        proto::RmCsReq r;
        if (Status st = Decode(req, &r); !st.ok()) return reply_status(st);
        return reply_status(RmCs(l, r, c.peer()));
      }
      default:
        return reply_status(Err(Code::kProtocol, "unsupported request " + std::to_string(req.type) + " for the MDS"));
    }
  };
  run();
  l.unlock();
  if (!deferred) {
    if (!out_st.ok()) (void)c.ReplyError(req, out_st);
    else if (out_has_body) (void)c.ReplyEncoded(req, std::move(out_body));
    else (void)c.Reply(req, proto::Empty{});
  }
  if (!freed.empty()) QueueDeletes(freed);
  // A proposal of CommitThenReply waits for a leader: this thread, if it may spend the sync
  // (a worker always; the I/O thread while syncs are fast), saves waking the flusher and
  // the flusher waking the I/O thread back with the replies.
  if (CommitsAsync(type)) pipeline_->LeadOrKick(/*only_if_fast=*/rpc::Server::OnIoThread());
}

// One journaled command for every pair, so a bad pair leaves the configuration untouched.
Status MdsService::SetConfigMany(Lock& l, const proto::SetConfigManyReq& r, const std::string& peer) {
  auto res = Commit(l, CommandType::kSetConfigMany, SetConfigManyCmd{r.values});
  if (!res.ok()) return res.status();
  rpc::SetEncryption(Encryption());
  std::string list;
  for (const auto& [k, v] : r.values) list += (list.empty() ? "" : ", ") + k + "=" + v;
  AddEvent("INF", "Global configuration updated by request from " + peer + ": " + list);
  return Status::Ok();
}

}  // namespace vstorage::mds
