#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "rpc/client.h"
#include "rpc/worker_pool.h"
#include "vstorage/client.h"

namespace vstorage {

using proto::MsgType;

namespace {
constexpr uint64_t kMaxPiece = 1 << 20;     // one client request to a chunk
// Sends of one piece that may arrive damaged (kBadChecksum) before the write fails (EIO).
constexpr int kMaxChecksumRetries = 3;
// Slices of a piece sent along the chain one behind the other. 256 KiB slices let the CS of
// a chain work on one piece at once, but on the 2-core bench machine their per-message
// cost (wakeups, syscalls) outweighed that: 1 MiB slices wrote a sequential stream with
// 25-35% less CPU per GiB in the cluster at the same speed (bench/README.md, 2026-12-03).
// Pieces of one large write are still in flight together (kAsyncOpWindow).
constexpr uint64_t kSubPiece = kMaxPiece;
constexpr int kCsCallTimeoutMs = 30000;
// Resets of one chunk while its kept writes are being sent again before Replay gives up.
constexpr int kMaxReplayRounds = 5;

bool Transport(const Status& st) { return st.code() == Code::kUnavailable || st.code() == Code::kTimeout; }
}  // namespace

File::File(Client* c, proto::Attr attr, bool write)
    : c_(c), ino_(attr.ino), write_(write), chunk_size_(attr.chunk_size ? attr.chunk_size : (256ull << 20)),
      sz_(std::make_shared<OpenSize>()) {
  sz_->size = attr.size;
  sz_->budget = &c->replay_bytes_;
}

File::OpenSize::~OpenSize() {
  if (budget && kept_bytes) budget->fetch_sub(kept_bytes);
}

void File::Unsynced::Reckon() {
  oldest = UINT64_MAX;
  for (const Kept& w : writes) oldest = std::min(oldest, w.version);
}

File::~File() {
  {
    std::unique_lock<std::mutex> l(ops_mu_);
    ops_cv_.wait(l, [&] { return ops_ == 0; });
  }
  if (!closed_) {
    Status st = Close();
    if (!st.ok()) LOG_WARN("closing inode %s: %s", ino_.str().c_str(), st.ToString().c_str());
  }
}

Result<proto::ChunkMap> File::Map(uint64_t index, bool allocate, bool* exists) {
  {
    std::lock_guard<std::mutex> l(sz_->mu);
    auto it = sz_->maps.find(index);
    if (it != sz_->maps.end()) {
      *exists = true;
      return it->second;
    }
  }
  proto::GetChunkReply r;
  RETURN_IF_ERROR(c_->MdsCall(MsgType::kGetChunk, proto::GetChunkReq{ino_, index, allocate, c_->id_}, &r));
  *exists = r.exists;
  if (!r.exists) return r.map;
  if (r.map.replicas.empty())
    return Err(Code::kUnavailable, "chunk " + r.map.id.str() + " has no replica left");
  Remember(r.map);
  return r.map;
}

bool File::Cached(uint64_t index, proto::ChunkMap* m, bool unless_reset) {
  std::lock_guard<std::mutex> l(sz_->mu);
  auto it = sz_->maps.find(index);
  if (it == sz_->maps.end()) return false;
  *m = it->second;
  return !unless_reset || !NeedsReplayLocked(index, m->version);
}

void File::Forget(uint64_t index) {
  std::lock_guard<std::mutex> l(sz_->mu);
  sz_->maps.erase(index);
}

void File::Remember(const proto::ChunkMap& m) {
  std::lock_guard<std::mutex> l(sz_->mu);
  sz_->maps[m.index] = m;
}

// End-to-end checksums of a read: the reply's segment checksums (CsReadReply) must match the
// bytes that arrived, else kBadChecksum (the bytes were damaged after the CS verified them).
static Status CheckReadCrcs(const rpc::Frame& f, uint64_t chunk_off, const char* data, size_t len) {
  proto::CsReadReply rep;
  RETURN_IF_ERROR(proto::DecodeFromString(f.body, &rep, "read reply"));
  if (rep.crcs.size() != SegmentCount(chunk_off, len))
    return Err(Code::kProtocol, "a read reply of " + std::to_string(len) + " bytes with " +
                                    std::to_string(rep.crcs.size()) + " checksums");
  if (long bad = FirstBadSegment(chunk_off, data, len, rep.crcs.data()); bad >= 0)
    return Err(Code::kBadChecksum, "read data at chunk offset " +
                                       std::to_string(bad == 0 ? chunk_off : (chunk_off / kE2eBlockBytes + bad) * kE2eBlockBytes) +
                                       " did not match its checksum (damaged on the network or in memory)");
  return Status::Ok();
}

// Sends the piece down the chain as pipelined slices on parallel connections to the head,
// so the CS along the chain work on different slices at once; data == nullptr zeroes the
// range instead (one request, no payload), or with `reserve` reserves its space. Returns OK only if every replica has every
// slice; *failed lists replicas that did not. *local is set when the failure is this
// process's own (e.g. EFAULT on its buffer): no CS is to blame for it.
static Status ChainWrite(rpc::ConnPool* pool, const proto::ChunkMap& m, uint64_t chunk_off, const char* data,
                         uint64_t len, bool reserve, std::vector<CsId>* failed, bool* local) {
  const std::string& head = m.replicas[0].addr;
  std::vector<proto::ReplicaLoc> chain(m.replicas.begin() + 1, m.replicas.end());
  struct Slice {
    std::unique_ptr<rpc::Conn> conn;
    uint64_t req_id = 0;
    Status st;
  };
  std::vector<Slice> slices;
  const uint64_t step = data ? kSubPiece : std::max<uint64_t>(len, 1);
  for (uint64_t off = 0; off < len; off += step) {
    Slice s;
    uint64_t n = std::min(step, len - off);
    auto c = pool->Acquire(head);
    if (!c.ok()) {
      s.st = c.status();
    } else {
      s.conn = std::move(c).value();
      proto::CsWriteReq req{m.id, m.version, chunk_off + off, m.chunk_size, chain, false, data ? 0 : n, reserve};
      if (data) req.crcs = SegmentCrcs(chunk_off + off, data + off, n);  // end-to-end: checked by every CS
      s.st = s.conn->Send(MsgType::kCsWrite, proto::EncodeToString(req), data ? data + off : nullptr,
                          data ? n : 0, &s.req_id);
      if (s.st.code() == Code::kInternal) *local = true;
    }
    slices.push_back(std::move(s));
  }
  Status first_err;
  for (auto& s : slices) {
    if (s.st.ok()) {
      rpc::Frame f;
      s.st = s.conn->Receive(s.req_id, &f, kCsCallTimeoutMs);
      proto::CsWriteReply rep;
      if (s.st.ok()) s.st = proto::DecodeFromString(f.body, &rep, "write reply");
      if (s.st.ok())
        for (CsId cs : rep.failed)
          if (std::find(failed->begin(), failed->end(), cs) == failed->end()) {
            failed->push_back(cs);
            LOG_WARN("write to chunk %s: %s", m.id.str().c_str(), rep.failure.c_str());
          }
    }
    if (s.conn) pool->Release(std::move(s.conn));
    if (!s.st.ok() && first_err.ok()) first_err = s.st;
  }
  if (!first_err.ok()) {
    if (Transport(first_err)) pool->Forget(head);
    return first_err;
  }
  return Status::Ok();
}

Status File::WritePiece(const Piece& p, const char* data, PieceOp op, bool replaying, uint64_t* wrote_version) {
  const bool zero = op == PieceOp::kZero;
  bool redialled = false;
  int bad_checksums = 0;
  int64_t deadline = RealClock()->NowMs() + c_->opts_.io_timeout_ms;
  Status last;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      if (RealClock()->NowMs() >= deadline)
        return last.Annotate("write to inode " + ino_.str() + " gave up after " +
                             std::to_string(c_->opts_.io_timeout_ms / 1000) + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * attempt, 1000)));
    }
    bool exists = false;
    auto m = Map(p.index, !zero, &exists);  // zeroing a chunk that does not exist: nothing to do
    if (!m.ok()) {
      if (m.status().code() == Code::kUnavailable || m.status().code() == Code::kTryAgain) {  // e.g. no replica left for now
        last = m.status();
        continue;
      }
      return m.status();
    }
    if (!exists) return Status::Ok();
    if (!replaying && NeedsReplay(p.index, m->version)) {
      // The chunk was reset: this client's earlier writes to it go again first, or they
      // would land over this one.
      RETURN_IF_ERROR(Replay(p.index).Annotate("write to inode " + ino_.str()));
      continue;  // with the map the replay left
    }
    std::vector<CsId> failed;
    bool local = false;
    Status st = ChainWrite(c_->cs_pool_.get(), *m, p.chunk_off, op == PieceOp::kData ? data + p.buf_off : nullptr,
                           p.len, op == PieceOp::kReserve, &failed, &local);
    if (local) return st.Annotate("write to inode " + ino_.str());  // our fault, not a CS's
    if (st.ok() && failed.empty()) {
      if (wrote_version) *wrote_version = m->version;
      if (!replaying) Keep(p.index, m->version, p, op == PieceOp::kData ? data + p.buf_off : nullptr, op);
      return Status::Ok();
    }
    if (st.code() == Code::kNoSpace) return st;
    if (st.code() == Code::kInvalidArgument) return st;
    if (st.code() == Code::kBadChecksum) {
      // The bytes were damaged on their way to a CS, which stored nothing: send them again.
      // Again and again means a sick link or memory, and the data must not go anywhere.
      if (++bad_checksums > kMaxChecksumRetries)
        return st.Annotate("write to inode " + ino_.str() + ": " + std::to_string(kMaxChecksumRetries + 1) +
                           " sends of the same data arrived damaged");
      LOG_WARN("write to chunk %s: %s; sending it again", m->id.str().c_str(), st.ToString().c_str());
      last = st;
      continue;
    }
    last = st.ok() ? Err(Code::kUnavailable, "a replica failed") : st;
    if (st.code() == Code::kStaleVersion || st.code() == Code::kNotFound) {
      Forget(p.index);  // the MDS changed the chunk: fetch the new map
      continue;
    }
    if (st.code() == Code::kTryAgain) continue;  // the head CS is starting up: not a failure
    if (st.code() == Code::kUnavailable && !redialled) {
      // The connection to the head broke: try once more on a fresh one (ChainWrite dropped
      // the pooled ones) before the head is reported; a restarted CS is not a failed one.
      redialled = true;
      continue;
    }
    if (!st.ok()) failed = {m->replicas[0].cs};  // the head failed: the rest is unknown
    LOG_WARN("write to chunk %s v%llu: %s; reporting CS %s", m->id.str().c_str(),
             static_cast<unsigned long long>(m->version), last.ToString().c_str(),
             [&] { std::string s; for (CsId c : failed) s += c.str() + " "; return s; }().c_str());
    proto::GetChunkReply rep;
    Status rs = c_->MdsCall(MsgType::kReportCsFailure,
                            proto::ReportCsFailureReq{ino_, p.index, m->id, m->version, failed, c_->id_}, &rep);
    Forget(p.index);
    if (rs.ok() && rep.exists && !rep.map.replicas.empty()) Remember(rep.map);
    else if (!rs.ok()) last = rs;
  }
}

namespace {
// The synchronous calls wait for their async forms here.
template <typename T>
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<T> v;
  void Set(T x) {
    std::lock_guard<std::mutex> l(mu);
    v.emplace(std::move(x));
    cv.notify_all();
  }
  T Wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return v.has_value(); });
    return std::move(*v);
  }
};
}  // namespace

Status File::Write(uint64_t offset, const char* data, size_t len) {
  VS_CHECK(!c_->InCallback());  // it would wait for its own thread
  Waiter<Status> w;
  WriteAsync(offset, data, len, [&w](Status st) { w.Set(st); });
  return w.Wait();
}

Result<size_t> File::Read(uint64_t offset, size_t len, char* out) {
  VS_CHECK(!c_->InCallback());
  Waiter<Result<size_t>> w;
  ReadAsync(offset, len, out, [&w](Result<size_t> r) { w.Set(std::move(r)); });
  return w.Wait();
}

Status File::Fsync() {
  VS_CHECK(!c_->InCallback());
  Waiter<Status> w;
  FsyncAsync([&w](Status st) { w.Set(st); });
  return w.Wait();
}

// One async read, write or fsync: its units (a write's 256 KiB slices, a read's 1 MiB
// pieces, an fsync's chunks) go out at most kAsyncOpWindow at a time, each straight to a
// CS when its map is cached and its connection up, else through the slow path.
struct File::AsyncOp {
  enum Kind { kRead, kWrite, kSync } kind;
  uint64_t offset = 0;
  size_t len = 0;
  const char* wdata = nullptr;
  char* rdata = nullptr;
  std::vector<Piece> units;  // kSync: index only
  std::function<void(Status)> done;
  int64_t begun_ms = 0, begun_us = 0;
  std::mutex mu;  // guards what follows
  size_t next = 0;       // the next unit to issue
  size_t remaining = 0;  // units not finished (issued or not)
  int inflight = 0;
  Status first;
  bool internal = false;  // kSync: to let kept writes go (kMaxReplayBytes), not the caller's fsync
};

static int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void File::Start(const std::shared_ptr<AsyncOp>& op) {
  c_->AdmitAsync();
  {
    std::lock_guard<std::mutex> l(ops_mu_);
    ++ops_;
  }
  op->begun_ms = c_->io_.Begin();
  op->begun_us = NowUs();
  op->remaining = op->units.size();
  if (op->units.empty()) return Finish(op);
  Pump(op);
}

void File::Pump(const std::shared_ptr<AsyncOp>& op) {
  std::vector<size_t> todo;
  {
    std::lock_guard<std::mutex> l(op->mu);
    while (op->inflight < kAsyncOpWindow && op->next < op->units.size()) {
      todo.push_back(op->next++);
      ++op->inflight;
    }
  }
  for (size_t u : todo) Issue(op, u);
}

void File::UnitDone(const std::shared_ptr<AsyncOp>& op, Status st) {
  bool finished;
  {
    std::lock_guard<std::mutex> l(op->mu);
    --op->inflight;
    --op->remaining;
    if (!st.ok() && op->first.ok()) {
      op->first = st;
      if (op->kind != AsyncOp::kSync) {  // the request failed: what was not sent is not sent
        op->remaining -= op->units.size() - op->next;
        op->next = op->units.size();
      }
    }
    finished = op->remaining == 0;
  }
  if (finished) Finish(op);
  else Pump(op);
}

void File::SlowPath(const std::shared_ptr<AsyncOp>& op, size_t u) {
  auto run = [this, op, u] {
    const Piece& p = op->units[u];
    Status st;
    if (op->kind == AsyncOp::kWrite) {
      st = WritePiece(p, op->wdata);
    } else if (op->kind == AsyncOp::kRead) {
      st = ReadPiece(p, op->rdata);
    } else {
      st = SyncChunk(p.index);
      // kIoError: synced, but writes that could not be kept were lost (reported once). Any
      // other failure leaves the writes to the next fsync.
      if (st.ok() || st.code() == Code::kIoError) Synced(p.index, p.seq_upto);
    }
    UnitDone(op, st);
  };
  if (!c_->slow_->Submit(run)) UnitDone(op, Err(Code::kUnavailable, "the client is shutting down"));
}

void File::Issue(const std::shared_ptr<AsyncOp>& op, size_t u) {
  const Piece& p = op->units[u];
  proto::ChunkMap m;
  // A reset chunk with kept writes of ours: they go again first (Replay, on the slow path).
  if (!Cached(p.index, &m, op->kind != AsyncOp::kSync) || m.replicas.empty()) return SlowPath(op, u);
  const std::string& head = m.replicas[0].addr;
  auto ch = c_->cs_pool_->Existing(head);
  if (!ch) return SlowPath(op, u);
  std::vector<proto::ReplicaLoc> chain(m.replicas.begin() + 1, m.replicas.end());
  if (op->kind == AsyncOp::kWrite) {
    proto::CsWriteReq req{m.id, m.version, p.chunk_off, m.chunk_size, chain, false, 0, false};
    req.crcs = SegmentCrcs(p.chunk_off, op->wdata + p.buf_off, p.len);
    ch->CallAsync(MsgType::kCsWrite, proto::EncodeToString(req), op->wdata + p.buf_off, p.len, kCsCallTimeoutMs,
                  [this, op, u, version = m.version](Status st, rpc::Frame* f, size_t) {
                    proto::CsWriteReply rep;
                    if (st.ok()) st = proto::DecodeFromString(f->body, &rep, "write reply");
                    if (st.ok() && rep.failed.empty()) {
                      const Piece& p = op->units[u];
                      Keep(p.index, version, p, op->wdata + p.buf_off, PieceOp::kData);
                      return UnitDone(op, Status::Ok());
                    }
                    // Our own buffer (EFAULT): no CS is to blame and a retry fails alike.
                    if (st.code() == Code::kInternal) return UnitDone(op, st.Annotate("write to inode " + ino_.str()));
                    SlowPath(op, u);  // retries, new maps, failure reports
                  });
  } else if (op->kind == AsyncOp::kRead) {
    proto::CsReadReq req{m.id, m.version, p.chunk_off, static_cast<uint32_t>(p.len), true};
    ch->CallAsync(
        MsgType::kCsRead, proto::EncodeToString(req), nullptr, 0, kCsCallTimeoutMs,
        [this, op, u, off = p.chunk_off, buf = op->rdata + p.buf_off, len = p.len](Status st, rpc::Frame* f, size_t got) {
          if (st.ok() && got == len) st = CheckReadCrcs(*f, off, buf, len);
          if (st.ok()) return UnitDone(op, Status::Ok());
          SlowPath(op, u);  // another replica, a new map, a corrupt one reported
        },
        op->rdata + p.buf_off, p.len);
  } else {
    if (proto::ChunkResetEpoch(m.version) > proto::ChunkResetEpoch(p.since_version)) return SlowPath(op, u);
    ch->CallAsync(MsgType::kCsSync, proto::EncodeToString(proto::CsSyncReq{m.id, m.version, chain}), nullptr, 0,
                  kCsCallTimeoutMs, [this, op, u](Status st, rpc::Frame* f, size_t) {
                    proto::CsWriteReply rep;
                    if (st.ok()) st = proto::DecodeFromString(f->body, &rep, "sync reply");
                    if (st.ok() && rep.failed.empty()) {
                      Synced(op->units[u].index, op->units[u].seq_upto);
                      return UnitDone(op, Status::Ok());
                    }
                    SlowPath(op, u);
                  });
  }
}

void File::Finish(const std::shared_ptr<AsyncOp>& op) {
  Status st = op->first;
  auto end = [this, op](Status st) {
    if (st.ok()) {
      if (op->kind == AsyncOp::kWrite) {
        GrowSize(op->offset + op->len);
        Touched();
        c_->write_bytes_ += op->len;
        ++c_->write_ops_;
      } else if (op->kind == AsyncOp::kRead) {
        c_->read_bytes_ += op->len;
        read_some_ = true;
        ++c_->read_ops_;
      }
    }
    c_->io_.End(op->begun_ms, NowUs() - op->begun_us);
    op->done(st);
    c_->AsyncFinished();
    std::lock_guard<std::mutex> l(ops_mu_);  // last: Close may return (and the File go) now
    if (--ops_ == 0) ops_cv_.notify_all();
  };
  if (op->kind == AsyncOp::kSync && st.ok() && !op->internal) {
    ++c_->fsyncs_;
    if (sz_->dirty.load() || sz_->write_ns.load() != 0) {  // the size and mtime go to the MDS: slow path
      if (!c_->slow_->Submit([this, end] { end(PersistSize()); }))
        end(Err(Code::kUnavailable, "the client is shutting down"));
      return;
    }
  }
  end(st);
}

void File::WriteAsync(uint64_t offset, const char* data, size_t len, DoneFn done) {
  if (!write_) return done(Err(Code::kPermission, "file is not open for writing"));
  auto op = std::make_shared<AsyncOp>();
  op->kind = AsyncOp::kWrite;
  op->offset = offset;
  op->len = len;
  op->wdata = data;
  op->done = std::move(done);
  // Each piece goes down its chain as slices, all of them in flight at once (up to the
  // window), so every CS of the chain works on a different slice.
  for (const Piece& p : SplitRange(offset, len, chunk_size_, kMaxPiece))
    for (uint64_t o = 0; o < p.len; o += kSubPiece)
      op->units.push_back(Piece{p.index, p.chunk_off + o, p.buf_off + o, std::min(kSubPiece, p.len - o)});
  if (c_->replay_bytes_.load() + static_cast<int64_t>(len) > kMaxReplayBytes) {  // rare: the lock only then
    bool have_kept;
    {
      std::lock_guard<std::mutex> l(sz_->mu);
      have_kept = sz_->kept_bytes > 0;
    }
    // The kept writes would pass the budget: sync this file's first so they can go (if the
    // sync fails, this write is simply not kept).
    if (have_kept) return StartSync(true, [this, op](Status) { Start(op); });
  }
  Start(op);
}

void File::ReadAsync(uint64_t offset, size_t len, char* out, ReadDoneFn done) {
  // The size this client knows: every handle's writes, and what the MDS said at the last
  // getattr (which the kernel sends before a read past the size it knows).
  uint64_t size = sz_->size.load();
  if (offset >= size) return done(size_t{0});
  len = std::min<uint64_t>(len, size - offset);
  auto op = std::make_shared<AsyncOp>();
  op->kind = AsyncOp::kRead;
  op->offset = offset;
  op->len = len;
  op->rdata = out;
  op->done = [done = std::move(done), len](Status st) {
    if (st.ok()) done(len);
    else done(st);
  };
  op->units = SplitRange(offset, len, chunk_size_, kMaxPiece);
  Start(op);
}

void File::FsyncAsync(DoneFn done) { StartSync(false, std::move(done)); }

void File::StartSync(bool internal, DoneFn done) {
  auto op = std::make_shared<AsyncOp>();
  op->kind = AsyncOp::kSync;
  op->internal = internal;
  op->done = std::move(done);
  {
    std::lock_guard<std::mutex> l(sz_->mu);
    // The writes stay kept until their chunk's sync succeeds (Synced).
    for (const auto& [idx, u] : sz_->unsynced) op->units.push_back(Piece{idx, 0, 0, 0, std::min(u.oldest, u.lost_version), sz_->next_seq});
  }
  Start(op);
}

Status File::ReadPiece(const Piece& p, char* out) {
  Status last;
  for (int attempt = 0; attempt < 6; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    bool exists = false;
    auto m = Map(p.index, false, &exists);
    if (!m.ok()) return m.status();
    if (!exists) {
      std::memset(out + p.buf_off, 0, p.len);
      return Status::Ok();
    }
    if (NeedsReplay(p.index, m->version)) {  // read what this client wrote, not what the reset left
      RETURN_IF_ERROR(Replay(p.index).Annotate("read of inode " + ino_.str()));
      continue;
    }
    bool stale = false;
    std::vector<CsId> corrupt;
    for (const auto& r : m->replicas) {
      auto c = c_->cs_pool_->Acquire(r.addr);
      if (!c.ok()) {
        last = c.status();
        continue;
      }
      rpc::Frame f;
      size_t got = 0;
      proto::CsReadReq req{m->id, m->version, p.chunk_off, static_cast<uint32_t>(p.len), true};
      Status st = (*c)->CallRaw(MsgType::kCsRead, proto::EncodeToString(req), nullptr, 0, &f, kCsCallTimeoutMs,
                                out + p.buf_off, p.len, &got);
      c_->cs_pool_->Release(std::move(c).value());
      if (st.ok() && got != p.len) st = Err(Code::kProtocol, "short read reply from CS#" + r.cs.str());
      // Damaged on the way (not on the CS's disk: it checked those): another replica, or this
      // one again on the next round; never a replica reported as corrupt.
      if (st.ok()) st = CheckReadCrcs(f, p.chunk_off, out + p.buf_off, p.len).Annotate("CS#" + r.cs.str());
      if (st.ok()) {
        if (!corrupt.empty()) {
          // Served from a good replica; the MDS drops the bad ones and recovery rebuilds them.
          proto::GetChunkReply rep;
          proto::ReportCsFailureReq rr{ino_, p.index, m->id, m->version, corrupt, c_->id_};
          rr.reason = static_cast<uint16_t>(Code::kCorrupt);
          Status rs = c_->MdsCall(MsgType::kReportCsFailure, rr, &rep);
          if (!rs.ok()) LOG_WARN("reporting a checksum mismatch: %s", rs.ToString().c_str());
          Forget(p.index);
        }
        return Status::Ok();
      }
      if (st.code() == Code::kCorrupt) corrupt.push_back(r.cs);
      last = st;
      if (Transport(st)) c_->cs_pool_->Forget(r.addr);
      if (st.code() == Code::kStaleVersion || st.code() == Code::kNotFound) stale = true;
      LOG_WARN("read of chunk %s from CS#%s: %s; trying another replica", m->id.str().c_str(), r.cs.str().c_str(),
               st.ToString().c_str());
    }
    (void)stale;
    Forget(p.index);  // every replica failed: ask the MDS again
  }
  return last.Annotate("read of inode " + ino_.str());
}

Status File::SyncChunk(uint64_t index) {
  int64_t deadline = RealClock()->NowMs() + c_->opts_.io_timeout_ms;
  Status last;
  std::string lost;  // writes the reset lost that were not kept: said once the rest is synced
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      if (RealClock()->NowMs() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * attempt, 1000)));
    }
    bool exists = false;
    auto m = Map(index, false, &exists);
    if (!m.ok()) return m.status();
    if (!exists) return Status::Ok();  // truncated away meanwhile
    if (NeedsReplay(index, m->version)) {
      RETURN_IF_ERROR(Replay(index).Annotate("fsync of inode " + ino_.str()));
      continue;  // with the map the replay left
    }
    {
      std::lock_guard<std::mutex> l(sz_->mu);
      auto it = sz_->unsynced.find(index);
      if (it != sz_->unsynced.end() && it->second.lost_version != UINT64_MAX &&
          proto::ChunkResetEpoch(it->second.lost_version) < proto::ChunkResetEpoch(m->version)) {
        it->second.lost_version = UINT64_MAX;
        lost = "chunk " + m->id.str() + " of inode " + ino_.str() +
               ": every replica lost power and it was rebuilt from one of them; writes since the last fsync "
               "that this client could not keep to send again (more than " +
               std::to_string(kMaxReplayBytes >> 20) + " MiB unsynced) may be lost";
      }
    }
    std::vector<proto::ReplicaLoc> chain(m->replicas.begin() + 1, m->replicas.end());
    proto::CsWriteReply rep;
    Status st = c_->cs_pool_->Call(m->replicas[0].addr, MsgType::kCsSync, proto::CsSyncReq{m->id, m->version, chain},
                                   &rep, kCsCallTimeoutMs);
    std::vector<CsId> failed = rep.failed;
    if (st.ok() && failed.empty()) return lost.empty() ? Status::Ok() : Err(Code::kIoError, lost);
    if (st.code() == Code::kStaleVersion) {
      Forget(index);
      continue;
    }
    if (st.code() == Code::kTryAgain) {  // the head CS is starting up: not a failure
      last = st;
      continue;
    }
    if (!st.ok()) {
      if (Transport(st)) c_->cs_pool_->Forget(m->replicas[0].addr);
      failed = {m->replicas[0].cs};
    }
    // The replicas that remain acknowledged every write; once they sync, the data is durable.
    proto::GetChunkReply nm;
    Status rs = c_->MdsCall(MsgType::kReportCsFailure,
                            proto::ReportCsFailureReq{ino_, index, m->id, m->version, failed, c_->id_}, &nm);
    Forget(index);
    if (rs.ok() && nm.exists) Remember(nm.map);
    last = rs.ok() ? st : rs;
  }
  return Err(Code::kUnavailable, "fsync of inode " + ino_.str() + " gave up after " +
                                     std::to_string(c_->opts_.io_timeout_ms / 1000) + " s: " + last.message());
}

void File::Keep(uint64_t index, uint64_t version, const Piece& p, const char* data, PieceOp op) {
  std::shared_ptr<const std::string> copy;
  bool kept = true;
  if (op == PieceOp::kData) {
    const auto n = static_cast<int64_t>(p.len);
    if (c_->replay_bytes_.fetch_add(n) + n <= kMaxReplayBytes) {
      copy = std::make_shared<const std::string>(data, p.len);  // outside the lock
    } else {
      c_->replay_bytes_.fetch_sub(n);
      kept = false;
    }
  }
  std::lock_guard<std::mutex> l(sz_->mu);
  Unsynced& u = sz_->unsynced[index];
  uint64_t seq = ++sz_->next_seq;
  if (!kept) {
    u.lost_version = std::min(u.lost_version, version);
    u.lost_seq = seq;
    return;
  }
  if (copy) sz_->kept_bytes += static_cast<int64_t>(p.len);
  u.writes.push_back(Kept{seq, version, p.chunk_off, p.len, op, std::move(copy)});
  u.oldest = std::min(u.oldest, version);
}

bool File::NeedsReplay(uint64_t index, uint64_t map_version) {
  std::lock_guard<std::mutex> l(sz_->mu);
  return NeedsReplayLocked(index, map_version);
}

bool File::NeedsReplayLocked(uint64_t index, uint64_t map_version) {
  auto it = sz_->unsynced.find(index);
  return it != sz_->unsynced.end() && it->second.oldest != UINT64_MAX &&
         proto::ChunkResetEpoch(it->second.oldest) < proto::ChunkResetEpoch(map_version);
}

// Data bytes of the kept writes [b, e) (what they hold of the Client's budget).
template <typename It>
static int64_t DataBytes(It b, It e) {
  int64_t n = 0;
  for (; b != e; ++b)
    if (b->data) n += static_cast<int64_t>(b->len);
  return n;
}

Status File::Replay(uint64_t index) {
  {
    std::unique_lock<std::mutex> l(sz_->mu);
    sz_->replay_cv.wait(l, [&] { return !sz_->replaying.count(index); });
    sz_->replaying.insert(index);
  }
  struct Ended {
    OpenSize* sz;
    uint64_t index;
    ~Ended() {
      std::lock_guard<std::mutex> l(sz->mu);
      sz->replaying.erase(index);
      sz->replay_cv.notify_all();
    }
  } ended{sz_.get(), index};
  for (int round = 0;; ++round) {
    bool exists = false;
    auto m = Map(index, false, &exists);
    if (!m.ok()) return m.status();
    if (!exists) return Status::Ok();  // truncated away: nothing to put back
    const uint64_t epoch = proto::ChunkResetEpoch(m->version);
    std::vector<Kept> todo;  // copies: the data is shared, and `mu` is not held while sending
    {
      std::lock_guard<std::mutex> l(sz_->mu);
      auto it = sz_->unsynced.find(index);
      if (it != sz_->unsynced.end())
        for (const Kept& w : it->second.writes)
          if (proto::ChunkResetEpoch(w.version) < epoch) todo.push_back(w);
    }
    if (todo.empty()) return Status::Ok();
    if (round == kMaxReplayRounds)
      return Err(Code::kUnavailable, "chunk " + m->id.str() + " was reset " + std::to_string(round) +
                                         " times while its unsynced writes were being sent again");
    LOG_WARN("chunk %s of inode %s was reset (every replica lost power): sending its %zu unsynced writes again",
             m->id.str().c_str(), ino_.str().c_str(), todo.size());
    std::vector<uint64_t> versions;
    for (const Kept& w : todo) {
      uint64_t v = 0;
      RETURN_IF_ERROR(WritePiece(Piece{index, w.chunk_off, 0, w.len}, w.data ? w.data->data() : nullptr, w.op,
                                 /*replaying=*/true, &v));
      versions.push_back(v);
    }
    // The writes now stand at the versions they went with: if the chunk was reset again
    // meanwhile, those before the reset go once more (the next round).
    std::lock_guard<std::mutex> l(sz_->mu);
    auto it = sz_->unsynced.find(index);
    if (it == sz_->unsynced.end()) return Status::Ok();  // truncated meanwhile
    size_t j = 0;  // both in seq order
    for (Kept& w : it->second.writes) {
      while (j < todo.size() && todo[j].seq < w.seq) ++j;
      if (j < todo.size() && todo[j].seq == w.seq) w.version = versions[j];
    }
    it->second.Reckon();
  }
}

void File::Synced(uint64_t index, uint64_t seq_upto) {
  int64_t freed = 0;
  {
    std::lock_guard<std::mutex> l(sz_->mu);
    auto it = sz_->unsynced.find(index);
    if (it == sz_->unsynced.end()) return;
    Unsynced& u = it->second;
    auto end = std::find_if(u.writes.begin(), u.writes.end(), [&](const Kept& w) { return w.seq > seq_upto; });
    freed = DataBytes(u.writes.begin(), end);
    u.writes.erase(u.writes.begin(), end);
    if (u.lost_seq <= seq_upto) u.lost_version = UINT64_MAX;
    u.Reckon();
    if (u.writes.empty() && u.lost_version == UINT64_MAX) sz_->unsynced.erase(it);
    sz_->kept_bytes -= freed;
  }
  if (freed) c_->replay_bytes_.fetch_sub(freed);
}

void File::DropKeptFrom(uint64_t first_index) {
  int64_t freed = 0;
  {
    std::lock_guard<std::mutex> l(sz_->mu);
    for (auto it = sz_->unsynced.lower_bound(first_index); it != sz_->unsynced.end();) {
      freed += DataBytes(it->second.writes.begin(), it->second.writes.end());
      it = sz_->unsynced.erase(it);
    }
    sz_->kept_bytes -= freed;
  }
  if (freed) c_->replay_bytes_.fetch_sub(freed);
}

Status File::PersistSize() {
  // The size this client wrote up to, and the time of its last data change (mtime: the
  // kernel sends no setattr for writes through this mount).
  int64_t w = sz_->write_ns.exchange(0);
  bool dirty = sz_->dirty.exchange(false);
  if (!dirty && w == 0) return Status::Ok();
  proto::AttrReply r;
  uint64_t s = sz_->size.load();
  uint32_t mask = (dirty ? uint32_t{proto::kGrowSize} : 0u) | (w ? uint32_t{proto::kSetMtime} : 0u);
  Status st = c_->MdsCall(MsgType::kSetAttr, proto::SetAttrReq{ino_, mask, s, w, 0, c_->id_}, &r);
  if (!st.ok()) {
    if (dirty) sz_->dirty = true;
    int64_t none = 0;
    if (w) sz_->write_ns.compare_exchange_strong(none, w);
  }
  return st;
}

void File::Touched() { sz_->write_ns = RealClock()->WallNs(); }

void File::GrowSize(uint64_t end) {
  uint64_t cur = sz_->size.load();
  while (end > cur && !sz_->size.compare_exchange_weak(cur, end)) {
  }
  if (end > cur) sz_->dirty = true;
}

Status File::Zero(uint64_t offset, uint64_t len) {
  // No data travels: a piece may be a whole chunk.
  for (const Piece& p : SplitRange(offset, len, chunk_size_, chunk_size_))
    RETURN_IF_ERROR(WritePiece(p, nullptr, PieceOp::kZero));
  return Status::Ok();
}

Status File::Allocate(uint64_t offset, uint64_t len, bool keep_size) {
  if (!write_) return Err(Code::kPermission, "file is not open for writing");
  IoTimer timer(&c_->io_);
  for (const Piece& p : SplitRange(offset, len, chunk_size_, chunk_size_))
    RETURN_IF_ERROR(WritePiece(p, nullptr, PieceOp::kReserve));
  if (!keep_size) GrowSize(offset + len);
  if (!keep_size) Touched();
  return Status::Ok();
}

Status File::PunchHole(uint64_t offset, uint64_t len) {
  if (!write_) return Err(Code::kPermission, "file is not open for writing");
  ASSIGN_OR_RETURN(bool enabled, c_->PunchHoleEnabled());
  if (!enabled)
    return Err(Code::kNotSupported, "punch hole is off in this cluster (gen.do_punch_hole=0); turn it on with "
                                    "`vstorage set-config gen.do_punch_hole=1`");
  IoTimer timer(&c_->io_);
  uint64_t size = sz_->size.load();
  if (offset >= size) return Status::Ok();  // past the end: nothing there
  RETURN_IF_ERROR(Zero(offset, std::min(len, size - offset)));
  Touched();
  return Status::Ok();
}

Status File::ZeroRange(uint64_t offset, uint64_t len, bool keep_size) {
  if (!write_) return Err(Code::kPermission, "file is not open for writing");
  IoTimer timer(&c_->io_);
  uint64_t size = sz_->size.load();
  if (offset < size) RETURN_IF_ERROR(Zero(offset, std::min(len, size - offset)));
  if (!keep_size) GrowSize(offset + len);
  Touched();
  return Status::Ok();
}

Status File::Truncate(uint64_t size) {
  if (!write_) return Err(Code::kPermission, "file is not open for writing");
  return c_->SetAttr(ino_, proto::kSetSize, size, 0, 0).status();
}

Status File::Close(bool wait_release) {
  {
    std::unique_lock<std::mutex> l(ops_mu_);
    ops_cv_.wait(l, [&] { return ops_ == 0; });
  }
  if (closed_.exchange(true)) return Status::Ok();
  Status st = write_ ? PersistSize() : Status::Ok();
  c_->FileClosed(this);
  proto::ReleaseReq req{ino_, c_->id_, write_, read_some_.load()};
  if (!wait_release) {
    c_->MdsCallRawAsync(MsgType::kRelease, proto::EncodeToString(req), [ino = ino_](Status rel, std::string) {
      if (!rel.ok()) LOG_WARN("release of inode %s: %s", ino.str().c_str(), rel.ToString().c_str());
    });
    return st;
  }
  proto::Empty e;
  Status rel = c_->MdsCall(MsgType::kRelease, req, &e);
  return st.ok() ? rel : st;
}

}  // namespace vstorage
