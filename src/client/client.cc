#include <unistd.h>

#include <chrono>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "rpc/tls.h"
#include "rpc/client.h"
#include "rpc/worker_pool.h"
#include "vstorage/client.h"

namespace vstorage {

using proto::MsgType;

namespace {
constexpr int kHeartbeatMs = 5000;
constexpr int kMdsCallTimeoutMs = 30000;
constexpr int kLeaseBusyWaitMs = 2000;  // a lease a closing writer is about to release
constexpr int kGoodbyeTimeoutMs = 2000;  // the unregister call at the end of a client's life
constexpr int kWatchSlackMs = 5000;     // a long poll's reply may come this much after its wait

bool Transport(const Status& st) { return st.code() == Code::kUnavailable || st.code() == Code::kTimeout; }
}  // namespace

std::vector<Piece> SplitRange(uint64_t offset, uint64_t len, uint64_t chunk_size, uint64_t max_piece) {
  std::vector<Piece> out;
  uint64_t done = 0;
  while (done < len) {
    uint64_t pos = offset + done;
    Piece p;
    p.index = pos / chunk_size;
    p.chunk_off = pos % chunk_size;
    p.buf_off = done;
    p.len = std::min({len - done, chunk_size - p.chunk_off, max_piece});
    out.push_back(p);
    done += p.len;
  }
  return out;
}

Result<std::vector<std::string>> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "..") return Err(Code::kInvalidArgument, "'..' is not allowed in cluster paths: " + path);
    if (!part.empty() && part != ".") parts.push_back(part);
    i = j + 1;
  }
  return parts;
}

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& opts) {
  if (opts.cluster.empty()) return Err(Code::kInvalidArgument, "no cluster name given");
  std::unique_ptr<Client> c(new Client(opts));
  ASSIGN_OR_RETURN(auto bs, ReadBsList(opts.cluster));
  for (const auto& hp : bs) c->mds_addrs_.push_back(MdsServiceAddr(hp).str());
  ASSIGN_OR_RETURN(std::string key, ReadClusterKey(opts.cluster));
  c->mds_pool_ = std::make_unique<rpc::ConnPool>(rpc::Credentials{opts.cluster, key, proto::PeerKind::kClient});
  c->cs_pool_ = std::make_unique<rpc::ConnPool>(rpc::Credentials{opts.cluster, key, proto::PeerKind::kClient});
  c->slow_ = std::make_unique<rpc::WorkerPool>(kMaxSlowPathWorkers);
  if (c->opts_.hostname.empty()) {
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    c->opts_.hostname = h;
  }
  RETURN_IF_ERROR(c->Register(ClientId{}));
  Client* self = c.get();
  c->hb_ = std::thread([self] { self->Heartbeat(); });
  return c;
}

Client::Client(ClientOptions o) : opts_(std::move(o)) {}

Client::~Client() {
  Goodbye();
  if (slow_) slow_->Stop();
}

bool Client::InCallback() const { return rpc::OnIoThread() || (slow_ && slow_->OnWorker()); }

void Client::AdmitAsync() {
  std::unique_lock<std::mutex> l(async_mu_);
  // A callback (on an I/O thread or a slow-path worker) never waits: its request replaces
  // the one finishing, and waiting there could hold the very thread that would finish one.
  if (!InCallback()) async_cv_.wait(l, [&] { return async_ops_ < kMaxAsyncOps; });
  ++async_ops_;
}

void Client::AsyncFinished() {
  std::lock_guard<std::mutex> l(async_mu_);
  --async_ops_;
  async_cv_.notify_one();
}

void Client::MdsCallRawAsync(MsgType type, std::string body, std::function<void(Status, std::string)> done) {
  AdmitAsync();
  auto finish = [this, done = std::move(done)](Status st, std::string reply) {
    done(st, std::move(reply));
    AsyncFinished();
  };
  // The slow path: MdsCallRaw's retries over every MDS, on a worker.
  auto slow = [this, type, finish](std::string b) {
    auto run = [this, type, finish, b = std::move(b)] {
      std::string reply;
      Status st = MdsCallRaw(type, b, &reply);
      finish(st, std::move(reply));
    };
    if (!slow_->Submit(run)) finish(Err(Code::kUnavailable, "the client is shutting down"), "");
  };
  const std::string& addr = mds_addrs_[mds_index_.load() % mds_addrs_.size()];
  auto ch = mds_pool_->Existing(addr);
  if (!ch) return slow(std::move(body));
  std::string copy = body;  // kept for the slow path should the MDS be away
  ch->CallAsync(type, std::move(body), nullptr, 0, kMdsCallTimeoutMs,
                [finish, slow, copy = std::move(copy)](Status st, rpc::Frame* rep, size_t) mutable {
                  if (Transport(st)) return slow(std::move(copy));
                  finish(st, st.ok() ? std::move(rep->body) : std::string());
                });
}

void Client::Goodbye() {
  stop_ = true;
  hb_cv_.notify_all();
  if (hb_.joinable()) hb_.join();
  // Goodbye, so that our leases end now rather than at their timeout (a remount would find
  // its files busy). One attempt: an MDS that is away lets them expire instead.
  if (mds_addrs_.empty() || !mds_pool_ || id_.v == 0) return;  // never connected
  if (said_goodbye_.exchange(true)) return;
  size_t i = mds_index_.load() % mds_addrs_.size();
  proto::Empty e;
  Status st = mds_pool_->Call(mds_addrs_[i], MsgType::kUnregisterClient, proto::UnregisterClientReq{id_}, &e,
                              kGoodbyeTimeoutMs);
  if (!st.ok()) LOG_INFO("leaving without a goodbye to the MDS (%s): leases expire on their own", st.ToString().c_str());
}

Status Client::Register(ClientId reclaim) {
  proto::RegisterClientReply rep;
  RETURN_IF_ERROR(MdsCall(MsgType::kRegisterClient, proto::RegisterClientReq{opts_.hostname, reclaim}, &rep));
  id_ = rep.client_id;
  rpc::SetEncryption(rep.encryption != 0);  // for the connections to chunk servers from now on
  return Status::Ok();
}

Status Client::MdsCallRaw(MsgType type, const std::string& body, std::string* reply_body) {
  int64_t deadline = RealClock()->NowMs() + opts_.mds_timeout_ms;
  Status last;
  for (int attempt = 0;; ++attempt) {
    size_t i = mds_index_.load() % mds_addrs_.size();
    const std::string& addr = mds_addrs_[i];
    auto conn = mds_pool_->Acquire(addr);
    if (conn.ok()) {
      rpc::Frame f;
      Status st = (*conn)->CallRaw(type, body, nullptr, 0, &f, kMdsCallTimeoutMs);
      mds_pool_->Release(std::move(conn).value());
      if (st.ok()) {
        *reply_body = std::move(f.body);
        if (attempt > 0) {
          need_reclaim_ = true;
          hb_cv_.notify_all();
        }
        return Status::Ok();
      }
      if (!Transport(st)) return st;
      last = st;
    } else {
      last = conn.status();
      if (!Transport(last)) return last;
    }
    mds_pool_->Forget(addr);
    mds_index_ = i + 1;  // try the next MDS
    if (RealClock()->NowMs() >= deadline)
      return Err(Code::kUnavailable, "cannot reach the MDS of cluster '" + opts_.cluster + "' (" +
                                         last.message() + "); check that vstorage-mdsd runs and bs.list is right");
    if (attempt == 0) LOG_WARN("MDS unreachable (%s); retrying", last.ToString().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100 * (attempt + 1), 1000)));
  }
}

void Client::Heartbeat() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> l(hb_mu_);
      hb_cv_.wait_for(l, std::chrono::milliseconds(kHeartbeatMs), [this] { return stop_.load() || need_reclaim_.load(); });
    }
    if (stop_) break;
    if (need_reclaim_.exchange(false)) Reclaim();
    proto::ClientHeartbeat hb;
    hb.client = id_;
    hb.read_bytes = read_bytes_;
    hb.write_bytes = write_bytes_;
    hb.read_ops = read_ops_;
    hb.write_ops = write_ops_;
    hb.fsyncs = fsyncs_;
    auto io = io_.Take();
    hb.lat_avg_ms = io.lat_avg_ms;
    hb.lat_max_ms = io.lat_max_ms;
    {
      std::lock_guard<std::mutex> l(files_mu_);
      for (auto& [ino, f] : files_) (f->writable() ? hb.open_write : hb.open_read)++;
    }
    proto::HeartbeatReply e;
    Status st = MdsCall(MsgType::kClientHeartbeat, hb, &e);
    if (!st.ok()) LOG_DEBUG("heartbeat: %s", st.ToString().c_str());
    else rpc::SetEncryption(e.encryption != 0);
  }
}

// After the MDS was unreachable it may have restarted and forgotten our session and leases:
// take them again (ARCHITECTURE §2: leases are soft state).
void Client::Reclaim() {
  proto::RegisterClientReply rep;
  Status st = MdsCall(MsgType::kRegisterClient, proto::RegisterClientReq{opts_.hostname, id_}, &rep);
  if (!st.ok()) return;
  std::vector<std::pair<InodeId, bool>> opens;
  {
    std::lock_guard<std::mutex> l(files_mu_);
    for (auto& [ino, f] : files_) opens.push_back({ino, f->writable()});
  }
  for (auto& [ino, w] : opens) {
    proto::AttrReply a;
    Status s2 = MdsCall(MsgType::kOpen, proto::OpenReq{ino, id_, w}, &a);
    if (!s2.ok()) LOG_WARN("re-taking the lease of inode %s: %s", ino.str().c_str(), s2.ToString().c_str());
  }
}

Result<proto::Attr> Client::Lookup(InodeId parent, const std::string& name) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kLookup, proto::LookupReq{parent, name}, &r));
  return r.attr;
}

Result<proto::Attr> Client::GetAttr(InodeId ino) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kGetAttr, proto::InodeReq{ino}, &r));
  MergeOpenSize(&r.attr);
  return r.attr;
}

void Client::MergeOpenSize(proto::Attr* a) {
  // Our own unflushed writes may have made the file longer than the MDS knows; and a size
  // another client flushed is taken up by our open handles (reads are cut at their size).
  std::lock_guard<std::mutex> l(files_mu_);
  auto range = files_.equal_range(a->ino);
  for (auto it = range.first; it != range.second; ++it) a->size = std::max(a->size, it->second->size());
  for (auto it = range.first; it != range.second; ++it) {
    auto& sz = it->second->sz_->size;
    uint64_t cur = sz.load();
    while (a->size > cur && !sz.compare_exchange_weak(cur, a->size)) {
    }
  }
}

Result<std::vector<proto::DirEntryPlus>> Client::ReaddirPlus(InodeId ino) {
  proto::ReaddirPlusReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kReaddirPlus, proto::InodeReq{ino}, &r));
  for (auto& e : r.entries)
    if (e.attr.type == proto::NodeType::kFile) MergeOpenSize(&e.attr);
  return std::move(r.entries);
}

Result<proto::WatchChangesReply> Client::WatchChanges(uint64_t after_seq, uint32_t max_wait_ms) {
  // One attempt, no retries (the caller polls again), so that a watcher can always stop.
  if (stop_) return Err(Code::kUnavailable, "the client is closing");
  size_t i = mds_index_.load() % mds_addrs_.size();
  proto::WatchChangesReply r;
  Status st = mds_pool_->Call(mds_addrs_[i], MsgType::kWatchChanges, proto::WatchChangesReq{id_, after_seq, max_wait_ms},
                              &r, static_cast<int>(max_wait_ms) + kWatchSlackMs);
  if (!st.ok()) {
    if (Transport(st)) mds_pool_->Forget(mds_addrs_[i]);
    return st;
  }
  return r;
}

Result<std::pair<proto::Attr, std::unique_ptr<File>>> Client::CreateOpen(InodeId parent, const std::string& name,
                                                                          uint32_t mode, bool exclusive, uint32_t uid,
                                                                          uint32_t gid, uint32_t umask,
                                                                          std::optional<proto::Attr>* parent_after) {
  proto::CreateReq req{parent, name, proto::NodeType::kFile, mode, "", exclusive, uid, gid, 0, id_, true, umask};
  std::string body;
  RETURN_IF_ERROR(MdsCallRaw(MsgType::kCreate, proto::EncodeToString(req), &body));
  // An MDS from before create-and-open answers an AttrReply: `opened` stays false.
  proto::CreateReply r;
  RETURN_IF_ERROR(proto::DecodeStoredRecord(body, &r, "MDS reply"));
  if (parent_after && r.has_parent) *parent_after = r.parent;
  if (!r.opened) {
    ASSIGN_OR_RETURN(auto f, Open(r.attr.ino, true));
    return std::make_pair(r.attr, std::move(f));
  }
  std::unique_ptr<File> f(new File(this, r.attr, true));
  FileOpened(f.get());
  return std::make_pair(r.attr, std::move(f));
}

Result<std::vector<proto::DirEntry>> Client::Readdir(InodeId ino) {
  proto::ReaddirReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kReaddir, proto::InodeReq{ino}, &r));
  return std::move(r.entries);
}

Result<proto::Attr> Client::Create(InodeId parent, const std::string& name, uint32_t mode, bool exclusive,
                                   uint32_t uid, uint32_t gid, uint32_t umask) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(
      MsgType::kCreate,
      proto::CreateReq{parent, name, proto::NodeType::kFile, mode, "", exclusive, uid, gid, 0, id_, false, umask}, &r));
  return r.attr;
}

Result<proto::Attr> Client::Mkdir(InodeId parent, const std::string& name, uint32_t mode, uint32_t uid, uint32_t gid,
                                  uint32_t umask, std::optional<proto::Attr>* parent_after) {
  std::string body;
  RETURN_IF_ERROR(MdsCallRaw(
      MsgType::kCreate,
      proto::EncodeToString(proto::CreateReq{parent, name, proto::NodeType::kDir, mode, "", true, uid, gid, 0, id_, false, umask}),
      &body));
  proto::CreateReply r;  // an older MDS's AttrReply reads as one without the parent
  RETURN_IF_ERROR(proto::DecodeStoredRecord(body, &r, "MDS reply"));
  if (parent_after && r.has_parent) *parent_after = r.parent;
  return r.attr;
}

Result<proto::Attr> Client::Symlink(InodeId parent, const std::string& name, const std::string& target, uint32_t uid,
                                    uint32_t gid) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kCreate,
                          proto::CreateReq{parent, name, proto::NodeType::kSymlink, 0777, target, true, uid, gid, 0, id_}, &r));
  return r.attr;
}

Result<std::string> Client::Readlink(InodeId ino) {
  proto::ReadlinkReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kReadlink, proto::InodeReq{ino}, &r));
  return r.target;
}

Status Client::Unlink(InodeId parent, const std::string& name, std::optional<proto::Attr>* parent_after) {
  return RemoveName(parent, name, false, parent_after);
}

Status Client::Rmdir(InodeId parent, const std::string& name, std::optional<proto::Attr>* parent_after) {
  return RemoveName(parent, name, true, parent_after);
}

Status Client::RemoveName(InodeId parent, const std::string& name, bool dir, std::optional<proto::Attr>* parent_after) {
  std::string body;
  RETURN_IF_ERROR(MdsCallRaw(MsgType::kUnlink, proto::EncodeToString(proto::UnlinkReq{parent, name, dir, id_}), &body));
  proto::UnlinkReply r;  // an older MDS answers Empty: no parent
  RETURN_IF_ERROR(proto::DecodeStoredRecord(body, &r, "MDS reply"));
  if (parent_after && r.has_parent) *parent_after = r.parent;
  return Status::Ok();
}

Result<proto::Attr> Client::Link(InodeId ino, InodeId new_parent, const std::string& new_name) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kLink, proto::LinkReq{ino, new_parent, new_name, id_}, &r));
  return r.attr;
}

Status Client::Rename(InodeId parent, const std::string& name, InodeId new_parent, const std::string& new_name) {
  proto::Empty e;
  return MdsCall(MsgType::kRename, proto::RenameReq{parent, name, new_parent, new_name, id_}, &e);
}

Result<proto::Attr> Client::SetAttr(InodeId ino, uint32_t mask, uint64_t size, int64_t mtime_ns, uint32_t mode,
                                    int64_t atime_ns, uint32_t uid, uint32_t gid) {
  proto::AttrReply r;
  RETURN_IF_ERROR(
      MdsCall(MsgType::kSetAttr, proto::SetAttrReq{ino, mask, size, mtime_ns, mode, id_, atime_ns, uid, gid}, &r));
  if (mask & proto::kSetSize) {
    File* any = nullptr;
    {
      std::lock_guard<std::mutex> l(files_mu_);
      auto range = files_.equal_range(ino);
      for (auto it = range.first; it != range.second; ++it) {
        File* f = it->second;
        f->sz_->size = size;
        f->sz_->dirty = false;
        {
          std::lock_guard<std::mutex> fl(f->sz_->mu);
          auto& maps = f->sz_->maps;
          maps.erase(maps.lower_bound((size + f->chunk_size_ - 1) / f->chunk_size_), maps.end());
        }
        f->DropKeptFrom((size + f->chunk_size_ - 1) / f->chunk_size_);  // those chunks are gone
        any = f;
      }
    }
    // The MDS dropped the chunks wholly past `size`. The one `size` falls in is zeroed from
    // there to its end whatever the old size was: bytes past the size the MDS knew may have
    // been written (a writer that had not reported its size yet), and a later extension
    // must read zeros.
    if (any) {
      RETURN_IF_ERROR(ZeroTail(any, size));
    } else {
      File tmp(this, r.attr, true);
      Status st = ZeroTail(&tmp, size);
      tmp.closed_ = true;
      RETURN_IF_ERROR(st);
    }
  }
  return r.attr;
}

Status Client::ZeroTail(File* f, uint64_t from) {
  uint64_t cs = f->chunk_size_;
  if (from % cs == 0) return Status::Ok();  // the MDS dropped whole chunks
  return f->Zero(from, cs - from % cs);
}

Status Client::SetXattr(InodeId ino, const std::string& name, const std::string& value, uint32_t flags) {
  proto::Empty e;
  return MdsCall(MsgType::kSetXattr, proto::SetXattrReq{ino, name, value, flags, false, id_}, &e);
}

Status Client::RemoveXattr(InodeId ino, const std::string& name) {
  proto::Empty e;
  return MdsCall(MsgType::kSetXattr, proto::SetXattrReq{ino, name, "", 0, true, id_}, &e);
}

Result<proto::Attr> Client::Mknod(InodeId parent, const std::string& name, proto::NodeType type, uint32_t mode,
                                  uint64_t rdev, uint32_t uid, uint32_t gid, uint32_t umask) {
  proto::AttrReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kCreate,
                          proto::CreateReq{parent, name, type, mode, "", true, uid, gid, rdev, id_, false, umask}, &r));
  return r.attr;
}

Result<std::map<std::string, std::string>> Client::GetXattrs(InodeId ino) {
  proto::XattrsReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kGetXattrs, proto::InodeReq{ino}, &r));
  return std::move(r.attrs);
}

Result<proto::StatfsReply> Client::Statfs() {
  proto::StatfsReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kStatfs, proto::Empty{}, &r));
  return r;
}

Result<bool> Client::PunchHoleEnabled() {
  int64_t now = RealClock()->NowMs();
  {
    std::lock_guard<std::mutex> l(config_mu_);
    if (config_at_ms_ != 0 && now - config_at_ms_ < kConfigCacheMs) return punch_hole_;
  }
  proto::ConfigReply r;
  RETURN_IF_ERROR(MdsCall(MsgType::kGetConfig, proto::Empty{}, &r));
  auto it = r.values.find("gen.do_punch_hole");
  bool on = it == r.values.end() || it->second != "0";
  std::lock_guard<std::mutex> l(config_mu_);
  punch_hole_ = on;
  config_at_ms_ = now;
  return on;
}

Result<proto::Attr> Client::ResolvePath(const std::string& path) {
  ASSIGN_OR_RETURN(auto parts, SplitPath(path));
  ASSIGN_OR_RETURN(proto::Attr a, GetAttr(kRootInode));
  for (const auto& p : parts) {
    ASSIGN_OR_RETURN(a, Lookup(a.ino, p));
  }
  return a;
}

Result<std::unique_ptr<File>> Client::Open(InodeId ino, bool write) {
  proto::AttrReply r;
  int64_t deadline = RealClock()->NowMs() + kLeaseBusyWaitMs;
  for (;;) {
    Status st = MdsCall(MsgType::kOpen, proto::OpenReq{ino, id_, write}, &r);
    if (st.ok()) break;
    // close(2) returns before FUSE releases the file: give a departing writer a moment.
    if (st.code() != Code::kBusy || RealClock()->NowMs() >= deadline) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::unique_ptr<File> f(new File(this, r.attr, write));
  FileOpened(f.get());
  return f;
}

void Client::FileOpened(File* f) {
  std::lock_guard<std::mutex> l(files_mu_);
  auto sibling = files_.find(f->ino());
  if (sibling != files_.end()) {
    // One size per inode in this client: ours may be the larger (flushed by another client).
    auto shared = sibling->second->sz_;
    uint64_t mine = f->sz_->size.load(), cur = shared->size.load();
    while (mine > cur && !shared->size.compare_exchange_weak(cur, mine)) {
    }
    f->sz_ = shared;
  }
  files_.insert({f->ino(), f});
}

void Client::FileClosed(File* f) {
  bool writer_left = false;
  {
    std::lock_guard<std::mutex> l(files_mu_);
    auto range = files_.equal_range(f->ino());
    for (auto it = range.first; it != range.second;) {
      if (it->second == f) {
        it = files_.erase(it);
        continue;
      }
      writer_left |= it->second->writable();
      ++it;
    }
  }
  // The last writer is gone: its kept writes go with it (close does not sync), so a reader
  // left behind never sends them again over what another writer wrote since.
  if (f->writable() && !writer_left) f->DropKeptFrom(0);
}

}  // namespace vstorage
