#include "cs/service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "common/crc32c.h"
#include "common/limits.h"
#include "common/log.h"
#include "rpc/tls.h"

namespace vstorage::cs {

using proto::MsgType;

Result<CsConfig> LoadCsConfig(const std::string& repo) {
  auto kv = ReadKeyValueFile(repo + "/cs.conf");
  if (!kv.ok()) {
    if (kv.status().code() == Code::kNotFound)
      return Err(Code::kNotFound, repo + " is not a chunk server repository (no cs.conf): create it with 'vstorage -c NAME make-cs -r " + repo + "'");
    return kv.status();
  }
  CsConfig c;
  c.repo = repo;
  c.cluster = (*kv)["cluster"];
  c.id = CsId{std::strtoull((*kv)["id"].c_str(), nullptr, 10)};
  c.tier = static_cast<uint32_t>(std::strtoul((*kv)["tier"].c_str(), nullptr, 10));
  c.host_id = (*kv)["host_id"];
  c.addr = (*kv)["addr"];
  c.checksums = (*kv)["checksums"] != "0";
  if (c.cluster.empty() || c.id.v < kFirstCsId)
    return Err(Code::kCorrupt, repo + "/cs.conf lacks cluster or a valid id");
  return c;
}

Status SaveCsConfig(const CsConfig& c) {
  return WriteKeyValueFile(c.repo + "/cs.conf", {{"cluster", c.cluster},
                                                 {"id", c.id.str()},
                                                 {"tier", std::to_string(c.tier)},
                                                 {"host_id", c.host_id},
                                                 {"addr", c.addr},
                                                 {"checksums", c.checksums ? "1" : "0"}});
}

Result<std::unique_ptr<CsService>> CsService::Start(const std::string& repo) {
  std::unique_ptr<CsService> s(new CsService());
  ASSIGN_OR_RETURN(s->conf_, LoadCsConfig(repo));
  ASSIGN_OR_RETURN(s->lock_fd_, LockRepository(repo));
  // The host's host_id, when there is one, wins over the one saved at make-cs: writing a new
  // one is the guide's fix for hosts cloned from one image (2.5.2.1, 8.1.7). The CS registers
  // with it and the MDS moves it to that host.
  if (auto hid = ReadFile(ConfRoot() + "/host_id"); hid.ok()) {
    std::string h = hid.value();
    while (!h.empty() && isspace(static_cast<unsigned char>(h.back()))) h.pop_back();
    if (!h.empty() && h != s->conf_.host_id) {
      LOG_INFO("host id changed from %s to %s (%s/host_id); cs.conf updated", s->conf_.host_id.c_str(), h.c_str(),
               ConfRoot().c_str());
      s->conf_.host_id = h;
      if (Status st = SaveCsConfig(s->conf_); !st.ok()) LOG_WARN("saving cs.conf: %s", st.ToString().c_str());
    }
  }
  // The host's location (room.row.rack, beyond the guide) is read at every start, like the
  // host_id: the MDS checks it and places replicas by it.
  if (auto loc = ReadFile(ConfRoot() + "/location"); loc.ok()) {
    std::string v = loc.value();
    while (!v.empty() && isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    s->location_ = v;
  }
  // The repository keeps its own copy of the key so the daemon does not depend on the
  // environment it was started from; the host's key is the fallback.
  auto key_text = ReadFile(repo + "/cluster.key");
  if (key_text.ok()) {
    ASSIGN_OR_RETURN(s->key_, ParseClusterKey(repo + "/cluster.key", key_text.value(),
                                              "copy this host's " + ClusterDir(s->conf_.cluster) +
                                                  "/cluster.key over it"));
  } else {
    ASSIGN_OR_RETURN(s->key_, ReadClusterKey(s->conf_.cluster));
  }
  ASSIGN_OR_RETURN(s->store_, ChunkStore::Open(repo, s->conf_.checksums));
  if (const char* f = std::getenv("VSTORAGE_CS_FAULT_FLIP")) {  // tests only: see SetFlipFaults
    unsigned recv = 0, send = 0;
    if (std::sscanf(f, "recv=%u,send=%u", &recv, &send) != 2)
      return Err(Code::kInvalidArgument, std::string("VSTORAGE_CS_FAULT_FLIP=") + f + ": want recv=N,send=M");
    s->SetFlipFaults(recv, send);
    LOG_WARN("fault injection: flipping a bit of every %u-th write received and %u-th read sent", recv, send);
  }
  s->csum_errors_ += s->store_->Lost().size();  // damaged replicas found at start: flag h
  struct stat rs {};
  if (::stat(repo.c_str(), &rs) == 0) {
    s->repo_dev_ = rs.st_dev;
    s->repo_ino_ = rs.st_ino;
  }
  s->peers_ = std::make_unique<rpc::ConnPool>(
      rpc::Credentials{s->conf_.cluster, s->key_, proto::PeerKind::kCs});

  HostPort listen_at{"0.0.0.0", 0};
  if (!s->conf_.addr.empty()) {
    ASSIGN_OR_RETURN(listen_at, ParseHostPort(s->conf_.addr, 0));
  } else {
    // No address given at make-cs: listen on the address this host uses to reach the MDS.
    ASSIGN_OR_RETURN(auto mds, ReadBsList(s->conf_.cluster));
    listen_at.host = mds[0].host;
  }
  RETURN_IF_ERROR(s->server_.Listen(listen_at));
  if (listen_at.port == 0) {
    listen_at.port = s->server_.port();
    s->conf_.addr = listen_at.str();
    RETURN_IF_ERROR(SaveCsConfig(s->conf_));  // keep the port stable across restarts
  }
  CsService* self = s.get();
  s->server_.Start(rpc::ServerAuth{s->conf_.cluster, s->key_, std::nullopt},
                   [self](rpc::ServerConn& c, rpc::Frame& f) { self->Handle(c, f); });
  s->mds_thread_ = std::thread([self] { self->MdsLoop(); });
  s->sweep_thread_ = std::thread([self] { self->SweepLoop(); });
  LOG_INFO("CS#%s serving %s at %s", s->conf_.id.str().c_str(), repo.c_str(), s->conf_.addr.c_str());
  return s;
}

CsService::~CsService() {
  Stop();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void CsService::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  server_.Stop();
  if (mds_thread_.joinable()) mds_thread_.join();
  if (sweep_thread_.joinable()) sweep_thread_.join();
}

// Not on the heartbeat thread: the sweep writes and syncs, and on a hung disk the
// heartbeats must go on (they report the hang, flag T).
void CsService::SweepLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(kCsHeartbeatIntervalMs), [this] { return stop_.load(); });
      if (stop_) return;
    }
    store_->SweepIntents();
  }
}

void CsService::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [this] { return stop_.load(); });
}

bool CsService::CheckRepoLost() {
  if (repo_lost_) return true;
  struct stat rs {}, cs {};
  bool lost = ::stat(conf_.repo.c_str(), &rs) != 0 || rs.st_dev != repo_dev_ || rs.st_ino != repo_ino_ ||
              ::stat((conf_.repo + "/cs.conf").c_str(), &cs) != 0;
  if (lost) {
    repo_lost_ = true;
    LOG_ERROR("CS#%s: the repository %s is gone (unmounted or removed); refusing I/O. Mount the disk again and restart the CS, or remove it with 'vstorage rm-cs'",
              conf_.id.str().c_str(), conf_.repo.c_str());
  }
  return lost;
}

void CsService::NoteError(const Status& st) {
  if (st.code() == Code::kIoError) ++io_errors_;
  if (st.code() == Code::kCorrupt) ++csum_errors_;
  if (st.code() == Code::kIoError || st.code() == Code::kCorrupt) {
    std::lock_guard<std::mutex> l(err_mu_);
    last_error_ = st.ToString();
  }
}

void CsService::Handle(rpc::ServerConn& c, rpc::Frame& req) {
  if (repo_lost_) {
    (void)c.ReplyError(req, Err(Code::kIoError, "CS#" + conf_.id.str() + ": the repository " + conf_.repo +
                                                    " is gone (disk detached or unmounted)"));
    return;
  }
  auto type = static_cast<MsgType>(req.type);
  if (!registered_ && (type == MsgType::kCsWrite || type == MsgType::kCsRead || type == MsgType::kCsSync)) {
    // Until the MDS has told it which replicas are stale, a restarted CS serves nothing:
    // a writer with an old map must not reach a replica the cluster has moved past.
    (void)c.ReplyError(req, Err(Code::kTryAgain, "CS#" + conf_.id.str() +
                                                     " is starting and has not registered with the MDS yet"));
    return;
  }
  // Client I/O is metered for IOWAIT, IOLAT and QDEPTH in `stat` (guide 5.3).
  std::optional<IoTimer> timer;
  if (type == MsgType::kCsWrite || type == MsgType::kCsRead || type == MsgType::kCsSync) timer.emplace(&io_);
  switch (type) {
    case MsgType::kCsWrite: HandleWrite(c, req); break;
    case MsgType::kCsRead: HandleRead(c, req); break;
    case MsgType::kCsSync: HandleSync(c, req); break;
    case MsgType::kCsSetVersion: {
      proto::CsSetVersionReq r;
      Status st = proto::DecodeFromString(req.body, &r, "set-version request");
      if (st.ok()) st = store_->SetVersion(r.chunk, r.old_version, r.new_version);
      st.ok() ? (void)c.Reply(req, proto::Empty{}) : (void)c.ReplyError(req, st);
      break;
    }
    case MsgType::kCsStat: {
      proto::CsStatReq r;
      Status st = proto::DecodeFromString(req.body, &r, "stat request");
      auto rs = st.ok() ? store_->Stat(r.chunk) : Result<proto::ChunkReplicaState>(st);
      rs.ok() ? (void)c.Reply(req, *rs) : (void)c.ReplyError(req, rs.status());
      break;
    }
    case MsgType::kCsReplicate: {
      proto::CsReplicateReq r;
      Status st = proto::DecodeFromString(req.body, &r, "replicate request");
      if (st.ok()) st = Replicate(r);
      st.ok() ? (void)c.Reply(req, proto::Empty{}) : (void)c.ReplyError(req, st.Annotate("CS#" + conf_.id.str()));
      break;
    }
    case MsgType::kCsVerify: {
      proto::CsVerifyReq r;
      Status st = proto::DecodeFromString(req.body, &r, "verify request");
      if (st.ok()) st = Verify(r);
      st.ok() ? (void)c.Reply(req, proto::Empty{}) : (void)c.ReplyError(req, st.Annotate("CS#" + conf_.id.str()));
      break;
    }
    case MsgType::kCsDelete: {
      proto::CsDeleteReq r;
      Status st = proto::DecodeFromString(req.body, &r, "delete request");
      if (st.ok()) st = store_->Delete(r.chunk, r.max_version);
      if (st.code() == Code::kNotFound) st = Status::Ok();
      st.ok() ? (void)c.Reply(req, proto::Empty{}) : (void)c.ReplyError(req, st);
      break;
    }
    default:
      (void)c.ReplyError(req, Err(Code::kProtocol, "unsupported request " + std::to_string(req.type) + " for a chunk server"));
  }
}

namespace {
// Forwards a request to the next CS of a chain; Finish() collects its verdict. The next CS
// works while we do our local part, so a chain costs about one hop, not N.
class Downstream {
 public:
  Downstream(rpc::ConnPool* pool, const std::vector<proto::ReplicaLoc>& chain) : pool_(pool) {
    if (!chain.empty()) next_ = chain[0];
  }
  bool active() const { return !next_.addr.empty(); }
  template <typename Req>
  void Start(MsgType type, Req req, const std::vector<proto::ReplicaLoc>& chain,
             const char* payload, size_t len) {
    if (!active()) return;
    req.chain.assign(chain.begin() + 1, chain.end());
    chain_ = chain;
    auto c = pool_->Acquire(next_.addr);
    if (!c.ok()) {
      error_ = c.status();
      return;
    }
    conn_ = std::move(c).value();
    error_ = conn_->Send(type, proto::EncodeToString(req), payload, len, &req_id_);
  }
  // Adds the CS that did not get the data to reply->failed. Returns an error only when the
  // next CS refused for lack of space: that is the writer's ENOSPC, not a CS failure.
  Status Finish(proto::CsWriteReply* reply) {
    if (!active()) return Status::Ok();
    if (error_.ok() && conn_) {
      rpc::Frame f;
      error_ = conn_->Receive(req_id_, &f, kChainTimeoutMs);
      proto::CsWriteReply down;
      if (error_.ok()) error_ = proto::DecodeFromString(f.body, &down, "chain reply");
      if (error_.ok()) {
        reply->failed = down.failed;
        reply->failure = down.failure;
      }
    }
    if (conn_) pool_->Release(std::move(conn_));
    // No space is the writer's ENOSPC; bytes that reached the next CS damaged are a retry
    // of the write: neither is the next CS failing.
    if (error_.code() == Code::kNoSpace || error_.code() == Code::kBadChecksum) return error_;
    if (!error_.ok()) {
      // The next CS failed as a whole: it and everything after it lack the data... unless
      // it answered with an application error (e.g. no space), which is its own failure.
      reply->failed.clear();
      reply->failed.push_back(next_.cs);
      reply->failure = "CS#" + next_.cs.str() + ": " + error_.ToString();
      if (error_.code() == Code::kUnavailable || error_.code() == Code::kTimeout)
        pool_->Forget(next_.addr);
    }
    return Status::Ok();
  }

 private:
  rpc::ConnPool* pool_;
  proto::ReplicaLoc next_;
  std::vector<proto::ReplicaLoc> chain_;
  std::unique_ptr<rpc::Conn> conn_;
  uint64_t req_id_ = 0;
  Status error_;
};
}  // namespace

void CsService::HandleWrite(rpc::ServerConn& c, rpc::Frame& req) {
  proto::CsWriteReq r;
  Status st = proto::DecodeFromString(req.body, &r, "write request");
  if (st.ok() && req.payload.size() > kMaxIoBytes)
    st = Err(Code::kInvalidArgument, "write larger than " + std::to_string(kMaxIoBytes) + " bytes");
  if (st.ok() && r.zero_len > 0 && !req.payload.empty())
    st = Err(Code::kProtocol, "a zero-range request carries no data");
  if (st.ok() && r.reserve && r.zero_len == 0) st = Err(Code::kProtocol, "a reserve request needs a length");
  if (st.ok() && r.crcs.size() != SegmentCount(r.offset, req.payload.size()))
    st = Err(Code::kProtocol, "a write of " + std::to_string(req.payload.size()) + " bytes at offset " +
                                  std::to_string(r.offset) + " needs " +
                                  std::to_string(SegmentCount(r.offset, req.payload.size())) +
                                  " end-to-end checksums, not " + std::to_string(r.crcs.size()));
  if (!st.ok()) {
    (void)c.ReplyError(req, st);
    return;
  }
  if (uint32_t every = flip_recv_every_; every && !req.payload.empty() && ++recv_payloads_ % every == 0) {
    uint64_t n = recv_payloads_;
    req.payload[n % req.payload.size()] ^= static_cast<char>(1u << (n % 8));
  }
  // Before anything is forwarded or stored: bytes damaged on the way here go nowhere.
  if (long bad = FirstBadSegment(r.offset, req.payload.data(), req.payload.size(), r.crcs.data()); bad >= 0) {
    ++bad_checksums_;
    uint64_t at = bad == 0 ? r.offset : (r.offset / kE2eBlockBytes + static_cast<uint64_t>(bad)) * kE2eBlockBytes;
    st = Err(Code::kBadChecksum, "the data written to chunk " + r.chunk.str() + " at offset " + std::to_string(at) +
                                     " arrived at CS#" + conf_.id.str() +
                                     " not matching its checksum (damaged on the network or in memory on the "
                                     "way); nothing was stored, the writer retries");
    LOG_WARN("%s", st.message().c_str());
    (void)c.ReplyError(req, st);
    return;
  }
  // Held until the whole chain has answered: every replica applies overlapping writes in
  // the order this CS received them (cs/write_order.h).
  auto hold = order_.Acquire(r.chunk, r.offset, r.zero_len > 0 ? r.zero_len : req.payload.size());
  Downstream down(peers_.get(), r.chain);
  down.Start(MsgType::kCsWrite, r, r.chain, req.payload.data(), req.payload.size());
  if (r.zero_len > 0 && r.reserve) st = store_->Reserve(r.chunk, r.version, r.chunk_size, r.offset, r.zero_len);
  else if (r.zero_len > 0) st = store_->Zero(r.chunk, r.version, r.chunk_size, r.offset, r.zero_len);
  else st = store_->Write(r.chunk, r.version, r.chunk_size, r.offset, req.payload.data(), req.payload.size(), true,
                          r.crcs.data());
  if (st.ok() && r.sync) st = store_->Sync(r.chunk);
  proto::CsWriteReply reply;
  Status down_st = down.Finish(&reply);
  if (st.ok() && !down_st.ok()) st = down_st;
  if (!st.ok()) {
    NoteError(st);
    (void)c.ReplyError(req, st.Annotate("CS#" + conf_.id.str()));
    return;
  }
  (void)c.Reply(req, reply);
}

void CsService::HandleRead(rpc::ServerConn& c, rpc::Frame& req) {
  proto::CsReadReq r;
  Status st = proto::DecodeFromString(req.body, &r, "read request");
  if (st.ok() && r.length > kMaxIoBytes)
    st = Err(Code::kInvalidArgument, "read larger than " + std::to_string(kMaxIoBytes) + " bytes");
  if (!st.ok()) {
    (void)c.ReplyError(req, st);
    return;
  }
  // One buffer per connection thread, reused: no allocation per read.
  thread_local std::string buf;
  if (buf.size() < r.length) buf.resize(r.length);
  proto::CsReadReply reply;
  if (r.want_crcs) reply.crcs.resize(SegmentCount(r.offset, r.length));
  st = store_->Read(r.chunk, r.version, r.offset, r.length, buf.data(), r.want_crcs ? reply.crcs.data() : nullptr);
  if (!st.ok()) {
    NoteError(st);
    (void)c.ReplyError(req, st.Annotate("CS#" + conf_.id.str()));
    return;
  }
  if (uint32_t every = flip_send_every_; every && r.length && ++sent_payloads_ % every == 0) {
    uint64_t n = sent_payloads_;
    buf[n % r.length] ^= static_cast<char>(1u << (n % 8));
  }
  (void)c.Reply(req, reply, buf.data(), r.length);
}

void CsService::HandleSync(rpc::ServerConn& c, rpc::Frame& req) {
  proto::CsSyncReq r;
  Status st = proto::DecodeFromString(req.body, &r, "sync request");
  if (!st.ok()) {
    (void)c.ReplyError(req, st);
    return;
  }
  Downstream down(peers_.get(), r.chain);
  down.Start(MsgType::kCsSync, r, r.chain, nullptr, 0);
  st = store_->Sync(r.chunk);
  proto::CsWriteReply reply;
  (void)down.Finish(&reply);
  if (!st.ok()) {
    (void)c.ReplyError(req, st.Annotate("CS#" + conf_.id.str()));
    return;
  }
  (void)c.Reply(req, reply);
}

Status CsService::Replicate(const proto::CsReplicateReq& r) {
  // Whatever this CS held of the chunk before is outdated: start clean.
  RETURN_IF_ERROR(store_->Delete(r.chunk));
  ASSIGN_OR_RETURN(auto conn, peers_->Acquire(r.source.addr));
  proto::ChunkReplicaState src;
  Status st = conn->Call(MsgType::kCsStat, proto::CsStatReq{r.chunk}, &src, kChainTimeoutMs);
  if (st.ok() && src.version != r.version)
    st = Err(Code::kStaleVersion, "source CS#" + r.source.cs.str() + " has version " + std::to_string(src.version) +
                                      " of chunk " + r.chunk.str() + ", not " + std::to_string(r.version));
  std::string buf;
  uint64_t len = std::min(src.size_bytes, r.chunk_size);
  // Made first and empty: runs of zero blocks are not written, so a punched or sparse
  // chunk stays sparse on its new replica (such blocks read as zeros, CRC entry 0).
  if (st.ok()) st = store_->Write(r.chunk, r.version, r.chunk_size, 0, nullptr, 0, /*create=*/true);
  auto start = std::chrono::steady_clock::now();
  for (uint64_t off = 0; st.ok() && off < len; off += kReplicatePiece) {
    if (r.max_bytes_per_s > 0) {
      // Bounded rate, so client I/O keeps going during recovery: sleep until `off` bytes
      // are due at max_bytes_per_s since the start.
      auto due = start + std::chrono::microseconds(off * 1000000 / r.max_bytes_per_s);
      std::this_thread::sleep_until(due);
    }
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kReplicatePiece, len - off));
    buf.resize(n);
    rpc::Frame f;
    size_t got = 0;
    st = conn->CallRaw(MsgType::kCsRead, proto::EncodeToString(proto::CsReadReq{r.chunk, r.version, off, n, true}),
                       nullptr, 0, &f, kChainTimeoutMs, buf.data(), n, &got);
    if (st.ok() && got != n) st = Err(Code::kProtocol, "short read from the source");
    proto::CsReadReply rr;
    if (st.ok()) st = proto::DecodeFromString(f.body, &rr, "read reply");
    if (st.ok() && rr.crcs.size() != SegmentCount(off, n))
      st = Err(Code::kProtocol, "the source sent " + std::to_string(rr.crcs.size()) + " checksums for " +
                                    std::to_string(n) + " bytes");
    if (st.ok() && FirstBadSegment(off, buf.data(), n, rr.crcs.data()) >= 0)
      st = Err(Code::kBadChecksum, "data from the source did not match its checksums (damaged on the way)");
    for (uint32_t b = 0; st.ok() && b < n;) {  // write the runs of blocks that are not all zeros
      auto zero_block = [&](uint32_t at) {
        uint32_t e = std::min<uint32_t>(at + kCsumBlockBytes, n);
        return std::all_of(buf.data() + at, buf.data() + e, [](char c) { return c == 0; });
      };
      if (zero_block(b)) {
        b += kCsumBlockBytes;
        continue;
      }
      uint32_t e = b;
      while (e < n && !zero_block(e)) e += kCsumBlockBytes;
      e = std::min(e, n);
      // off and b are block-aligned: segment b / kE2eBlockBytes is the first of this run.
      st = store_->Write(r.chunk, r.version, r.chunk_size, off + b, buf.data() + b, e - b, /*create=*/false,
                         rr.crcs.data() + b / kE2eBlockBytes);
      b = e;
    }
  }
  peers_->Release(std::move(conn));
  if (st.ok()) st = store_->Sync(r.chunk);
  if (!st.ok()) {
    (void)store_->Delete(r.chunk);
    return st.Annotate("copy of chunk " + r.chunk.str() + " from CS#" + r.source.cs.str());
  }
  LOG_INFO("replicated chunk %s v%llu (%llu bytes) from CS#%s", r.chunk.str().c_str(),
           static_cast<unsigned long long>(r.version), static_cast<unsigned long long>(len), r.source.cs.str().c_str());
  return Status::Ok();
}

Status CsService::Verify(const proto::CsVerifyReq& r) {
  ASSIGN_OR_RETURN(auto state, store_->Stat(r.chunk));
  if (state.version != r.version)
    return Err(Code::kStaleVersion, "replica of chunk " + r.chunk.str() + " has version " + std::to_string(state.version) +
                                        ", not " + std::to_string(r.version));
  if (Status st = store_->VerifyMeta(r.chunk, r.version); !st.ok()) {
    NoteError(st);
    return st;
  }
  thread_local std::string buf;
  buf.resize(kReplicatePiece);
  for (uint64_t off = 0; off < state.size_bytes; off += kReplicatePiece) {
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kReplicatePiece, state.size_bytes - off));
    Status st = store_->Read(r.chunk, r.version, off, n, buf.data());
    if (!st.ok()) {
      NoteError(st);
      return st;
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<rpc::Conn>> CsService::DialMds() {
  ASSIGN_OR_RETURN(auto list, ReadBsList(conf_.cluster));
  Status last;
  for (auto& base : list) {
    auto c = rpc::Conn::Dial(MdsServiceAddr(base).str(),
                             rpc::Credentials{conf_.cluster, key_, proto::PeerKind::kCs});
    if (c.ok()) return c;
    last = c.status();
  }
  return last;
}

Status CsService::RegisterWithMds(rpc::Conn& c) {
  proto::CsRegisterReq r;
  r.cs = conf_.id;
  r.host_id = conf_.host_id;
  r.location = location_;
  r.tier = conf_.tier;
  r.addr = conf_.addr;
  ASSIGN_OR_RETURN(auto space, store_->GetSpace());
  r.total_bytes = space.total_bytes;
  r.free_bytes = space.free_bytes;
  r.chunks = store_->List();
  r.lost = store_->Lost();
  r.suspect = store_->Suspect();
  r.checksums = conf_.checksums;
  proto::CsRegisterReply rep;
  RETURN_IF_ERROR(c.Call(MsgType::kCsRegister, r, &rep));
  rpc::SetEncryption(rep.encryption != 0);  // what this CS dials, and what its server refuses
  std::map<ChunkId, uint64_t> reported;
  for (const auto& rc : r.chunks) reported[rc.id] = rc.version;
  for (ChunkId id : rep.delete_chunks) {
    // Only the replica as reported: one copied here anew since (higher version) stays.
    auto it = reported.find(id);
    Status st = store_->Delete(id, it == reported.end() ? 0 : it->second);
    LOG_INFO("deleted replica of chunk %s on MDS request: %s", id.str().c_str(), st.ToString().c_str());
  }
  for (const auto& b : rep.set_versions) {
    if (std::find(r.suspect.begin(), r.suspect.end(), b.chunk) != r.suspect.end()) {
      // Kept as the chunk's content although a power cut may have torn it: make it readable.
      Status st = store_->RepairSuspect(b.chunk);
      if (!st.ok()) LOG_WARN("chunk %s: %s", b.chunk.str().c_str(), st.ToString().c_str());
    }
    Status st = store_->SetVersion(b.chunk, b.old_version, b.new_version);
    if (st.code() == Code::kStaleVersion) {
      // The MDS bumped the replica once more between our list and its answer (a write
      // failure reported meanwhile): still the same replica, behind the version it names.
      auto now = store_->Stat(b.chunk);
      if (now.ok() && now->version > b.old_version && now->version < b.new_version)
        st = store_->SetVersion(b.chunk, now->version, b.new_version);
    }
    LOG_INFO("chunk %s: version %llu -> %llu on MDS request: %s", b.chunk.str().c_str(),
             static_cast<unsigned long long>(b.old_version), static_cast<unsigned long long>(b.new_version),
             st.ToString().c_str());
  }
  store_->SuspectsReported(r.suspect);  // the MDS has decided about them
  registered_ = true;  // reconciled with the MDS: client I/O is served from now on
  return Status::Ok();
}

void CsService::MdsLoop() {
  std::unique_ptr<rpc::Conn> mds;
  bool warned = false;
  while (!stop_) {
    Status st;
    if (!mds) {
      auto c = DialMds();
      st = c.ok() ? RegisterWithMds(**c) : c.status();
      if (st.ok()) {
        mds = std::move(c).value();
        LOG_INFO("registered CS#%s with the MDS", conf_.id.str().c_str());
        warned = false;
      }
    } else {
      proto::CsHeartbeat hb;
      hb.cs = conf_.id;
      auto space = store_->GetSpace();
      if (space.ok()) {
        hb.total_bytes = space->total_bytes;
        hb.free_bytes = space->free_bytes;
      }
      auto io = io_.Take();
      hb.qdepth_x10 = io.qdepth_x10;
      hb.iowait_pct = io.busy_pct;
      hb.lat_avg_ms = io.lat_avg_ms;
      hb.lat_max_ms = io.lat_max_ms;
      hb.oldest_io_ms = store_->OldestDiskOpMs();
      hb.repo_lost = CheckRepoLost();
      hb.io_errors = io_errors_;
      hb.csum_errors = csum_errors_;
      hb.repo = conf_.repo;
      {
        std::lock_guard<std::mutex> l(err_mu_);
        hb.last_error = last_error_;
      }
      proto::HeartbeatReply rep;
      st = mds->Call(MsgType::kCsHeartbeat, hb, &rep, 10000);
      if (!st.ok()) mds.reset();
      else rpc::SetEncryption(rep.encryption != 0);
    }
    if (!st.ok() && !warned) {
      LOG_WARN("MDS link: %s (retrying)", st.ToString().c_str());
      warned = true;
    }
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(mds ? kCsHeartbeatIntervalMs : 1000),
                 [this] { return stop_.load(); });
  }
}

}  // namespace vstorage::cs
