#include "cs/chunk_store.h"

// No raw syscall here: they all go through DiskIo (cs/disk_io.h).
#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "common/crc32c.h"
#include "common/limits.h"
#include "common/log.h"

namespace vstorage::cs {

namespace {

constexpr char kMagic[8] = {'V', 'S', 'C', 'H', 'U', 'N', 'K', '1'};
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kBlock = kCsumBlockBytes;
static_assert(kBlock == kE2eBlockBytes, "end-to-end checksums are cut at the blocks the store checksums");
constexpr uint64_t kMaxChunkBytes = 1ull << 30;

uint64_t DataOffset(uint64_t chunk_size) {
  uint64_t table = (chunk_size / kBlock) * 4;
  return kHeaderBytes + ((table + kBlock - 1) / kBlock) * kBlock;
}

std::string FileName(ChunkId id) {
  char b[32];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(id.v));
  return b;
}

// The chunk a file name stands for, if it is one FileName() makes.
std::optional<ChunkId> ParseFileName(const std::string& n) {
  if (n.size() != 16) return std::nullopt;
  char* end = nullptr;
  ChunkId id;
  id.v = std::strtoull(n.c_str(), &end, 16);
  if (!end || *end != 0 || FileName(id) != n) return std::nullopt;
  return id;
}

// Reads and writes that need no batch: one syscall each.
Status PreadAll(int fd, char* p, size_t n, uint64_t off, size_t* got) { return DiskIo::PreadAll(fd, p, n, off, got); }
Status PwriteAll(int fd, const char* p, size_t n, uint64_t off) { return DiskIo::PwriteAll(fd, p, n, off); }

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace

ChunkStore::Chunk::~Chunk() { DiskIo::Close(fd.load()); }

ChunkStore::~ChunkStore() { DiskIo::Close(dir_fd_); }

ChunkStore::Locked::~Locked() {
  if (c && l.owns_lock()) c->write_gen.fetch_add(1, std::memory_order_release);
}

Status ChunkStore::Count(Status st, const std::string& what) {
  if (st.code() == Code::kIoError) ++io_errors_;
  return st.Annotate(what);
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const std::string& repo_dir, bool checksums,
                                                     DiskIoMode io_mode) {
  std::unique_ptr<ChunkStore> s(new ChunkStore(repo_dir + "/chunks", io_mode));
  s->repo_ = repo_dir;
  s->checksums_ = checksums;
  RETURN_IF_ERROR(DiskIo::MakeDir(s->dir_));
  ASSIGN_OR_RETURN(s->dir_fd_, DiskIo::OpenDir(s->dir_));
  if (io_mode == DiskIoMode::kAuto && s->io_.uring()) {
    // Writes the kernel would only hand to a worker thread are cheaper as two pwrites.
    bool nowait = DiskIo::BufferedNowaitWrites(s->dir_);
    s->io_.SetUringWrites(nowait);
    LOG_INFO("chunk writes in %s go through %s", s->dir_.c_str(),
             nowait ? "io_uring (one submission for data and checksums)"
                    : "pwrite (the file system has no non-blocking buffered writes: io_uring would add a thread hop)");
  }
  RETURN_IF_ERROR(s->Scan());
  std::set<ChunkId> found;
  bool rebooted = false;
  const std::string boot_id = IntentLog::ReadBootId();
  auto log = IntentLog::Open(repo_dir, boot_id, &found, &rebooted);
  if (!log.ok() && log.status().code() == Code::kCorrupt) {
    // Which chunks were being written is unknown: all of them are suspect.
    LOG_ERROR("%s; every chunk of this CS is treated as possibly torn", log.status().ToString().c_str());
    RETURN_IF_ERROR(DiskIo::Unlink(repo_dir + "/intents", true));
    log = IntentLog::Open(repo_dir, boot_id, &found, &rebooted);
    if (log.ok())
      for (const auto& [id, c] : s->chunks_) RETURN_IF_ERROR((*log)->Mark(id));
    for (const auto& [id, c] : s->chunks_) found.insert(id);
    rebooted = true;
  }
  if (!log.ok()) return log.status();
  s->intents_ = std::move(log).value();
  if (found.empty()) return s;
  if (!rebooted) {
    // Only the process died: the page cache kept every write that returned. Their chunks
    // stay marked until the sweep has synced them.
    LOG_INFO("chunk store %s: %zu chunks were being written when this CS stopped; the machine did not restart "
             "since, so no write was lost", s->dir_.c_str(), found.size());
    return s;
  }
  s->suspects_.assign(found.begin(), found.end());
  LOG_WARN("chunk store %s: %zu chunks were being written when this machine lost power or crashed; the MDS "
           "decides which of those replicas are kept", s->dir_.c_str(), found.size());
  return s;
}

Status ChunkStore::RepairSuspect(ChunkId id) {
  if (!checksums_) return Status::Ok();  // make-cs -S: nothing to check the bytes against
  auto chunk = Find(id);
  if (!chunk) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  {
    std::unique_lock<std::shared_mutex> l(chunk->mu);
    if (chunk->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
    RETURN_IF_ERROR(EnsureOpen(*chunk));
    uint64_t fixed = 0;
    RETURN_IF_ERROR(RepairLocked(*chunk, &fixed));
    chunk->write_gen.fetch_add(1, std::memory_order_release);
    if (!fixed) return Status::Ok();
  }
  return SyncChunk(chunk);  // no fdatasync under the chunk's exclusive lock
}

Status ChunkStore::RepairLocked(Chunk& c, uint64_t* fixed_out) {
  RETURN_IF_ERROR(LoadCrcs(c));
  constexpr uint64_t kStep = 256;  // blocks read at once
  std::vector<char> buf(kStep * kBlock);
  uint64_t fixed = 0;
  const uint64_t nblocks = c.crcs.size();
  for (uint64_t b0 = 0; b0 < nblocks; b0 += kStep) {
    uint64_t n = std::min(kStep, nblocks - b0);
    size_t got = 0;
    if (b0 * kBlock < c.data_len) {
      Status st = PreadAll(c.fd, buf.data(), n * kBlock, c.data_off + b0 * kBlock, &got);
      if (!st.ok()) return Count(st, "chunk " + c.id.str());
    }
    std::memset(buf.data() + got, 0, n * kBlock - got);
    for (uint64_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * kBlock;
      uint32_t want = c.crcs[b0 + i], have = Crc32c(p, kBlock);
      bool zero = AllZero(p, kBlock);
      if (want == have || (want == 0 && zero)) continue;
      // Bytes and checksum were cut apart: keep the bytes (each sector holds the old or the
      // new data), and say so. A block of zeros is "never written", as Zero() leaves it.
      uint32_t now = zero ? 0 : have;
      RETURN_IF_ERROR(Count(PwriteAll(c.fd, reinterpret_cast<const char*>(&now), 4, kHeaderBytes + (b0 + i) * 4),
                            "chunk " + c.id.str()));
      c.crcs[b0 + i] = now;
      ++fixed;
    }
  }
  if (fixed) {
    LOG_WARN("chunk %s: %llu blocks whose checksum disagreed with their bytes after an unclean stop now hold "
             "the bytes on disk", c.id.str().c_str(), static_cast<unsigned long long>(fixed));
    torn_blocks_ += fixed;
  }
  *fixed_out = fixed;
  return Status::Ok();
}

std::vector<ChunkId> ChunkStore::Suspect() {
  std::lock_guard<std::mutex> l(mu_);
  return suspects_;
}

void ChunkStore::SuspectsReported(const std::vector<ChunkId>& ids) {
  std::lock_guard<std::mutex> l(mu_);
  for (ChunkId id : ids) suspects_.erase(std::remove(suspects_.begin(), suspects_.end(), id), suspects_.end());
}

void ChunkStore::SweepIntents() {
  std::vector<std::shared_ptr<Chunk>> flush;  // idle but unsynced: synced here, cleared next time
  {
    std::lock_guard<std::mutex> g(sweep_mu_);
    std::vector<ChunkId> keep = Suspect();
    std::map<ChunkId, uint64_t> seen;
    for (ChunkId id : intents_->Marked()) {
      if (std::find(keep.begin(), keep.end(), id) != keep.end()) continue;
      auto c = Find(id);
      if (!c) {
        // Deleted, or marked by a write that has not created the chunk yet: that write
        // checks the mark again under the chunk's lock and marks it anew.
        intents_->Clear(id);
        continue;
      }
      // Under the chunk's lock: a writer holding it has seen the mark and writes under it.
      std::unique_lock<std::shared_mutex> l(c->mu, std::try_to_lock);
      if (!l.owns_lock()) continue;
      uint64_t gen = c->write_gen.load(std::memory_order_acquire);
      bool synced = c->synced_gen.load(std::memory_order_acquire) >= gen && c->durable_entry.load();
      auto prev = swept_gen_.find(id);
      bool idle = prev != swept_gen_.end() && prev->second == gen;
      if (c->deleted || (synced && idle)) {
        intents_->Clear(id);
        continue;
      }
      if (idle && !synced && flush.size() < kMaxSweepSyncs) flush.push_back(c);
      seen[id] = gen;
    }
    swept_gen_ = std::move(seen);
  }
  for (const auto& c : flush)
    if (Status st = SyncChunk(c); !st.ok()) LOG_WARN("chunk %s: %s", c->id.str().c_str(), st.ToString().c_str());
  if (Status st = intents_->Flush(); !st.ok()) LOG_WARN("%s", st.ToString().c_str());
}

Status ChunkStore::Scan() {
  ASSIGN_OR_RETURN(std::vector<std::string> names, DiskIo::ListDir(dir_));
  for (const auto& n : names) {
    std::string path = dir_ + "/" + n;
    auto opened = DiskIo::OpenReadOnly(path);
    int fd = opened.ok() ? *opened : -1;
    char h[40];
    size_t got = 0;
    bool ok = fd >= 0 && PreadAll(fd, h, sizeof h, 0, &got).ok() && got == sizeof h &&
              std::memcmp(h, kMagic, 8) == 0;
    uint32_t crc = 0;
    if (ok) {
      std::memcpy(&crc, h + 32, 4);
      ok = Crc32c(h, 32) == crc;
    }
    if (ok) {
      // The chunk size sizes the CRC table (LoadCrcs): one no writer could have made
      // (CheckRange: at most kMaxChunkBytes) is a damaged header, not an allocation.
      uint64_t chunk_size = 0;
      std::memcpy(&chunk_size, h + 24, 8);
      ok = CheckRange(ChunkId{}, chunk_size, 0, 0).ok();
    }
    uint64_t file_size = 0;
    if (ok) {
      auto size = DiskIo::FileSize(fd);
      ok = size.ok();
      if (ok) file_size = *size;
    }
    DiskIo::Close(fd);
    if (!ok) {
      auto id = ParseFileName(n);
      if (got == sizeof h && id) {
        // A whole header that does not check out: damage, not a create cut short. The file
        // is kept aside for inspection, and the chunk refuses I/O here until the MDS has
        // dropped this replica and rebuilt it elsewhere (a write must never recreate it
        // with holes where the lost data was).
        Quarantine(*id, path);
        continue;
      }
      // A chunk whose creation was cut short by a crash (never acknowledged) or a stray file.
      LOG_WARN("removing %s: not a complete chunk file", path.c_str());
      (void)DiskIo::Unlink(path, true);  // best effort: it is ignored again at the next start
      continue;
    }
    auto c = std::make_shared<Chunk>();
    std::memcpy(&c->id.v, h + 8, 8);
    std::memcpy(&c->version, h + 16, 8);
    std::memcpy(&c->chunk_size, h + 24, 8);
    c->path = path;
    c->data_off = DataOffset(c->chunk_size);
    c->data_len = file_size > c->data_off ? file_size - c->data_off : 0;
    c->size_hint = c->data_len;
    // A previous process may have written without syncing and died; the page cache still
    // holds that. The first Sync() after a start must not skip the fdatasync (a client
    // retrying only its sync would be told "durable" of bytes that are not).
    c->write_gen = 1;
    chunks_[c->id] = c;
  }
  // The entries found here may be as fresh in the cache as those bytes; one fsync now
  // makes all of them durable, instead of leaving that to the first syncs.
  if (Status st = DiskIo::Fsync(dir_fd_); st.ok()) {
    for (auto& [id, c] : chunks_) c->durable_entry = true;
  } else {
    LOG_WARN("chunk store %s: %s; the first syncs will retry it", dir_.c_str(), st.ToString().c_str());
  }
  // Damaged replicas quarantined by an earlier start stay refused until the MDS deletes them.
  if (auto q = DiskIo::ListDir(repo_ + "/quarantine"); q.ok()) {
    for (const auto& n : *q)
      if (auto id = ParseFileName(n); id && !chunks_.count(*id)) lost_[*id] = repo_ + "/quarantine/" + n;
  }
  LOG_INFO("chunk store %s: %zu chunks, %zu damaged replicas in quarantine", dir_.c_str(), chunks_.size(),
           lost_.size());
  return Status::Ok();
}

void ChunkStore::Quarantine(ChunkId id, const std::string& path) {
  std::string qdir = repo_ + "/quarantine";
  std::string to = qdir + "/" + FileName(id);
  if (!DiskIo::MakeDir(qdir).ok()) to.clear();
  if (!to.empty() && !DiskIo::Rename(path, to, false).ok()) to.clear();
  if (to.empty()) to = path;  // could not move it: left where it is, still refused
  LOG_ERROR("chunk %s: the header of %s is damaged; the file is kept in %s and the replica is rebuilt "
            "from the others", id.str().c_str(), path.c_str(), to.c_str());
  ++csum_errors_;
  lost_[id] = to;
}

std::vector<ChunkId> ChunkStore::Lost() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<ChunkId> out;
  for (const auto& [id, where] : lost_) out.push_back(id);
  return out;
}

Status ChunkStore::LostError(ChunkId id, const std::string& where) {
  return Err(Code::kCorrupt, "the replica of chunk " + id.str() + " on this CS is damaged (kept in " + where +
                                 "); it is rebuilt from the other replicas");
}

std::shared_ptr<ChunkStore::Chunk> ChunkStore::Find(ChunkId id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = chunks_.find(id);
  return it == chunks_.end() ? nullptr : it->second;
}

Status ChunkStore::EnsureOpen(Chunk& c) {
  if (c.fd.load(std::memory_order_acquire) >= 0) return Status::Ok();
  std::lock_guard<std::mutex> g(c.load_mu);
  return EnsureOpenLoadMuHeld(c);
}

Status ChunkStore::EnsureOpenLoadMuHeld(Chunk& c) {
  if (c.fd.load(std::memory_order_acquire) >= 0) return Status::Ok();
  auto fd = DiskIo::OpenFile(c.path, false);
  if (!fd.ok()) return Count(fd.status(), "chunk " + c.id.str());
  c.fd.store(*fd, std::memory_order_release);
  return Status::Ok();
}

// Readers get here with c.mu shared only: the first of them loads the table under load_mu
// while the others wait for it there, and the flag lets every later read skip the mutex.
// Writers (mu exclusive) cannot run meanwhile, so nobody changes crcs during the load.
Status ChunkStore::LoadCrcs(Chunk& c) {
  if (c.crcs_loaded.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> g(c.load_mu);
  if (c.crcs_loaded.load(std::memory_order_acquire)) return Status::Ok();
  RETURN_IF_ERROR(EnsureOpenLoadMuHeld(c));
  std::vector<uint32_t> table(c.chunk_size / kBlock, 0);
  size_t got = 0;
  Status st = PreadAll(c.fd, reinterpret_cast<char*>(table.data()), table.size() * 4, kHeaderBytes, &got);
  if (!st.ok()) return Count(st, "chunk " + c.id.str());
  c.crcs = std::move(table);
  c.crcs_loaded.store(true, std::memory_order_release);
  return Status::Ok();
}

Status ChunkStore::WriteHeader(Chunk& c) {
  char h[kHeaderBytes] = {};
  std::memcpy(h, kMagic, 8);
  std::memcpy(h + 8, &c.id.v, 8);
  std::memcpy(h + 16, &c.version, 8);
  std::memcpy(h + 24, &c.chunk_size, 8);
  uint32_t crc = Crc32c(h, 32);
  std::memcpy(h + 32, &crc, 4);
  // The header fits one sector-aligned page; it is rewritten in place.
  return PwriteAll(c.fd, h, sizeof h, 0);
}

Result<std::shared_ptr<ChunkStore::Chunk>> ChunkStore::Create(ChunkId id, uint64_t version, uint64_t chunk_size) {
  auto c = std::make_shared<Chunk>();
  c->id = id;
  c->version = version;
  c->chunk_size = chunk_size;
  c->data_off = DataOffset(chunk_size);
  c->path = dir_ + "/" + FileName(id);
  // Listed first, locked by us: others find it and wait for the file to exist. The file is
  // made outside mu_, so a hung disk stalls this chunk only, not the whole store.
  std::unique_lock<std::shared_mutex> cl(c->mu);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = chunks_.find(id);
    if (it != chunks_.end()) return it->second;
    if (auto lost = lost_.find(id); lost != lost_.end()) return LostError(id, lost->second);
    chunks_[id] = c;
  }
  auto fail = [&](Status st) {
    c->deleted = true;
    std::lock_guard<std::mutex> l(mu_);
    auto it = chunks_.find(id);
    if (it != chunks_.end() && it->second == c) chunks_.erase(it);
    if (st.code() == Code::kIoError) ++io_errors_;
    return st.Annotate("cannot create chunk " + id.str() + " in " + repo_);
  };
  auto fd = DiskIo::OpenFile(c->path, true);
  if (!fd.ok()) return fail(fd.status());
  c->fd = *fd;
  Status st = WriteHeader(*c);
  if (!st.ok()) {
    (void)DiskIo::Unlink(c->path, true);  // best effort: a torn file is removed at the next start
    return fail(st);
  }
  c->crcs.assign(chunk_size / kBlock, 0);
  c->crcs_loaded = true;
  c->write_gen = 1;  // the header: even if no write follows, a Sync() must make it durable
  return c;
}

Status ChunkStore::CheckRange(ChunkId id, uint64_t chunk_size, uint64_t offset, uint64_t len) {
  if (chunk_size < kBlock || chunk_size > kMaxChunkBytes || chunk_size % kBlock != 0)
    return Err(Code::kInvalidArgument, "invalid chunk size " + std::to_string(chunk_size));
  if (offset > chunk_size || len > chunk_size - offset)
    return Err(Code::kInvalidArgument, "write [" + std::to_string(offset) + ", +" + std::to_string(len) +
                                           ") is outside chunk " + id.str() + " of " + std::to_string(chunk_size) + " bytes");
  return Status::Ok();
}

Result<ChunkStore::Locked> ChunkStore::LockForWrite(ChunkId id, uint64_t version, uint64_t chunk_size,
                                                     uint64_t offset, uint64_t len, bool create) {
  RETURN_IF_ERROR(CheckRange(id, chunk_size, offset, len));
  // The write intent is durable before any byte of the write can reach the disk, and is
  // checked again under the chunk's lock: the sweep clears intents under that lock only.
  std::shared_ptr<Chunk> c;
  std::unique_lock<std::shared_mutex> l;
  for (;;) {
    RETURN_IF_ERROR(Count(intents_->Mark(id), "chunk " + id.str()));
    c = Find(id);
    if (!c && !create) return Err(Code::kNotFound, "chunk " + id.str() + " vanished from this CS during the write");
    if (!c) {
      ASSIGN_OR_RETURN(c, Create(id, version, chunk_size));
    }
    l = std::unique_lock<std::shared_mutex>(c->mu);
    if (intents_->Contains(id)) break;
    l.unlock();
  }
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + ": write with version " + std::to_string(version) +
                                        ", the replica has version " + std::to_string(c->version));
  if (c->chunk_size != chunk_size)
    return Err(Code::kInvalidArgument, "chunk " + id.str() + " has size " + std::to_string(c->chunk_size));
  RETURN_IF_ERROR(EnsureOpen(*c));
  return Locked(std::move(c), std::move(l));
}

Status ChunkStore::Write(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset,
                         const char* data, size_t len, bool create, const uint32_t* crcs) {
  IoTimer disk_op(&disk_);
  ASSIGN_OR_RETURN(Locked k, LockForWrite(id, version, chunk_size, offset, len, create));
  if (len == 0) return Status::Ok();
  return WriteLocked(*k.c, offset, data, len, crcs);
}

Status ChunkStore::WriteLocked(Chunk& c_ref, uint64_t offset, const char* data, size_t len, const uint32_t* crcs) {
  Chunk* c = &c_ref;
  const ChunkId id = c->id;
  if (!checksums_) {  // make-cs -S: the bytes only
    WriteSpan span{data, len, c->data_off + offset};
    Status st = io_.WriteSpans(c->fd, &span, 1);
    if (!st.ok()) {
      if (st.code() == Code::kIoError) ++io_errors_;
      return st.Annotate("chunk " + id.str() + " in " + repo_);
    }
    c->data_len = std::max(c->data_len, offset + len);
    c->size_hint = c->data_len;
    return Status::Ok();
  }
  RETURN_IF_ERROR(LoadCrcs(*c));

  uint64_t end = offset + len;
  uint64_t b0 = offset / kBlock, b1 = (end + kBlock - 1) / kBlock;
  // Edge blocks only partly covered by the write: merge with what is on disk first.
  char head[kBlock], tail[kBlock];
  auto load_block = [&](uint64_t b, char* buf) -> Status {
    std::memset(buf, 0, kBlock);
    uint64_t boff = b * kBlock;
    if (boff >= c->data_len) return Status::Ok();
    size_t got = 0;
    Status st = PreadAll(c->fd, buf, kBlock, c->data_off + boff, &got);
    if (!st.ok()) {
      ++io_errors_;
      return st;
    }
    // The rest of this block is kept: it must be intact, or the new checksum would bless
    // a flipped byte and this replica would differ silently from the others.
    uint32_t want = c->crcs[b];
    if (checksums_ && Crc32c(buf, kBlock) != want && !(want == 0 && AllZero(buf, kBlock))) {
      ++csum_errors_;
      return Err(Code::kCorrupt, "checksum mismatch in chunk " + id.str() + " at offset " + std::to_string(boff) +
                                     " in " + repo_ + " (found while merging a partial write)");
    }
    return Status::Ok();
  };
  bool head_partial = offset % kBlock != 0 || (b1 - b0 == 1 && end % kBlock != 0);
  bool tail_partial = end % kBlock != 0 && b1 - 1 != b0;
  if (head_partial) {
    RETURN_IF_ERROR(load_block(b0, head));
    uint64_t in = offset - b0 * kBlock;
    std::memcpy(head + in, data, std::min<uint64_t>(len, kBlock - in));
  }
  if (tail_partial) {
    RETURN_IF_ERROR(load_block(b1 - 1, tail));
    std::memcpy(tail, data + ((b1 - 1) * kBlock - offset), end - (b1 - 1) * kBlock);
  }
  std::vector<uint32_t> new_crcs(b1 - b0);
  for (uint64_t b = b0; b < b1; ++b) {
    const uint64_t bstart = b * kBlock;
    if (!crcs) {
      const char* p;
      if (b == b0 && head_partial) p = head;
      else if (b == b1 - 1 && tail_partial) p = tail;
      else p = data + (bstart - offset);
      new_crcs[b - b0] = Crc32c(p, kBlock);
      continue;
    }
    // From the writer's checksum of its segment of the block, plus those of the block's
    // bytes around it that were on disk (checked above): never from the received bytes.
    const uint64_t s = std::max(offset, bstart) - bstart, e = std::min(end, bstart + kBlock) - bstart;
    const char* merged = (b == b0 && head_partial) ? head : (b == b1 - 1 && tail_partial) ? tail : nullptr;
    uint32_t crc = crcs[b - b0];
    if (s > 0) crc = Crc32cCombine(Crc32c(merged, s), crc, e - s);
    if (e < kBlock) crc = Crc32cCombine(crc, Crc32c(merged + e, kBlock - e), kBlock - e);
    new_crcs[b - b0] = crc;
  }
  // Bytes and table entries in one submission; only Sync() orders them (see the header).
  WriteSpan spans[2] = {{data, len, c->data_off + offset},
                        {reinterpret_cast<const char*>(new_crcs.data()), new_crcs.size() * 4, kHeaderBytes + b0 * 4}};
  Status st = io_.WriteSpans(c->fd, spans, 2);
  if (!st.ok()) {
    if (st.code() == Code::kIoError) ++io_errors_;
    // The table on disk may now disagree with the data of these blocks; keep memory in line
    // with what we tried so that a retry of the same write repairs both.
    return st.Annotate("chunk " + id.str() + " in " + repo_);
  }
  std::copy(new_crcs.begin(), new_crcs.end(), c->crcs.begin() + static_cast<long>(b0));
  c->data_len = std::max(c->data_len, end);
  c->size_hint = c->data_len;
  return Status::Ok();
}

Status ChunkStore::Zero(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len) {
  IoTimer disk_op(&disk_);
  ASSIGN_OR_RETURN(Locked k, LockForWrite(id, version, chunk_size, offset, len, true));
  Chunk* c = k.c.get();
  if (len == 0 || offset >= c->data_len) return Status::Ok();  // past the file's end: zeros already
  if (checksums_) RETURN_IF_ERROR(LoadCrcs(*c));
  static const char kZeroBlock[kBlock] = {};
  const uint64_t end = offset + len;
  const bool to_end = end >= c->data_len;  // the range covers the rest of the data: cut the file
  const uint64_t a = (offset + kBlock - 1) / kBlock * kBlock;  // first whole block of the range
  const uint64_t b = end / kBlock * kBlock;                      // end of its last whole block
  // A partly covered first block: merged like a write, so its checksum stays right.
  if (offset < a) {
    uint64_t h_end = to_end ? std::min(a, c->data_len) : std::min(end, a);
    RETURN_IF_ERROR(WriteLocked(*c, offset, kZeroBlock, h_end - offset));
    if (!to_end && end <= a) return Status::Ok();
  }
  // Whole blocks: their space is given back to the file system; their table entries become
  // 0 ("never written"), which is what a block of zeros with no checksum means.
  uint64_t cut_from = a, cut_to = to_end ? std::max(a, (c->data_len + kBlock - 1) / kBlock * kBlock) : b;
  if (cut_from < cut_to) {
    Status cut;
    if (to_end) {
      cut = DiskIo::Ftruncate(c->fd, c->data_off + cut_from);
    } else {
      cut = DiskIo::PunchHole(c->fd, c->data_off + cut_from, cut_to - cut_from);
      if (cut.code() == Code::kNotSupported) {  // a file system without holes: write the zeros
        cut = Status::Ok();
        for (uint64_t o = cut_from; o < cut_to; o += kBlock) {
          Status st = PwriteAll(c->fd, kZeroBlock, kBlock, c->data_off + o);
          if (!st.ok()) return st.Annotate("chunk " + id.str() + " in " + repo_);
        }
      }
    }
    if (!cut.ok()) return Count(cut, c->path);
    if (checksums_) {
      uint64_t b0 = cut_from / kBlock, b1 = std::min<uint64_t>(cut_to / kBlock, c->crcs.size());
      std::vector<uint32_t> zeros(b1 - b0, 0);
      Status st = PwriteAll(c->fd, reinterpret_cast<const char*>(zeros.data()), zeros.size() * 4, kHeaderBytes + b0 * 4);
      if (!st.ok()) {
        if (st.code() == Code::kIoError) ++io_errors_;
        return st.Annotate("chunk " + id.str() + " in " + repo_);
      }
      std::fill(c->crcs.begin() + static_cast<long>(b0), c->crcs.begin() + static_cast<long>(b1), 0u);
    }
    if (to_end) {
      c->data_len = std::min(c->data_len, cut_from);
      c->size_hint = c->data_len;
    }
  }
  // A partly covered last block (inside the data): merged like a write.
  if (!to_end && end % kBlock != 0 && b >= a) RETURN_IF_ERROR(WriteLocked(*c, b, kZeroBlock, end - b));
  return Status::Ok();
}

Status ChunkStore::Reserve(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len) {
  IoTimer disk_op(&disk_);
  ASSIGN_OR_RETURN(Locked k, LockForWrite(id, version, chunk_size, offset, len, true));
  Chunk* c = k.c.get();
  if (len == 0) return Status::Ok();
  Status st = DiskIo::Reserve(c->fd, c->data_off + offset, len);
  if (st.code() == Code::kNotSupported) return Status::Ok();  // a file system that cannot reserve: writes will allocate
  if (st.code() == Code::kNoSpace)
    return Err(Code::kNoSpace, "no space to reserve " + std::to_string(len) + " bytes for chunk " + id.str() + " in " +
                                   repo_);
  return Count(st, c->path);
}

Status ChunkStore::Read(ChunkId id, uint64_t version, uint64_t offset, uint32_t len, char* out, uint32_t* crcs_out) {
  IoTimer disk_op(&disk_);
  auto c = Find(id);
  if (!c) {
    std::lock_guard<std::mutex> l(mu_);
    if (auto lost = lost_.find(id); lost != lost_.end()) return LostError(id, lost->second);
    return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  }
  std::shared_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + ": read with version " + std::to_string(version) +
                                        ", the replica has version " + std::to_string(c->version));
  if (offset > c->chunk_size || len > c->chunk_size - offset)
    return Err(Code::kInvalidArgument, "read outside chunk " + id.str());
  RETURN_IF_ERROR(checksums_ ? LoadCrcs(*c) : EnsureOpen(*c));
  if (read_hook_) read_hook_();
  if (len == 0) return Status::Ok();
  uint64_t end = offset + len;
  uint64_t b0 = offset / kBlock, b1 = (end + kBlock - 1) / kBlock;
  uint64_t aoff = b0 * kBlock, alen = (b1 - b0) * kBlock;
  bool aligned = aoff == offset && alen == len;
  thread_local std::vector<char> tmp;
  char* buf = out;
  if (!aligned) {
    if (tmp.size() < alen) tmp.resize(alen);
    buf = tmp.data();
  }
  size_t got = 0;
  if (aoff < c->data_len) {
    Status st = PreadAll(c->fd, buf, alen, c->data_off + aoff, &got);
    if (!st.ok()) {
      ++io_errors_;
      return st.Annotate("chunk " + id.str() + " in " + repo_);
    }
  }
  if (got < alen) std::memset(buf + got, 0, alen - got);
  for (uint64_t b = b0; checksums_ && b < b1; ++b) {
    const char* p = buf + (b - b0) * kBlock;
    uint32_t want = c->crcs[b];
    // The part of the block that was asked for, [s, e): its checksum goes to the reader.
    const uint64_t s = std::max(offset, b * kBlock) - b * kBlock, e = std::min(end, (b + 1) * kBlock) - b * kBlock;
    uint32_t part = 0, whole;
    if (s == 0 && e == kBlock) {
      whole = part = Crc32c(p, kBlock);
    } else {  // one pass over the block: the part's checksum is checked by the whole's
      part = Crc32c(p + s, e - s);
      whole = part;
      if (s > 0) whole = Crc32cCombine(Crc32c(p, s), whole, e - s);
      if (e < kBlock) whole = Crc32cCombine(whole, Crc32c(p + e, kBlock - e), kBlock - e);
    }
    if (crcs_out) crcs_out[b - b0] = part;
    if (whole == want) continue;
    if (want == 0 && AllZero(p, kBlock)) continue;  // never written
    ++csum_errors_;
    return Err(Code::kCorrupt, "checksum mismatch in chunk " + id.str() + " at offset " +
                                   std::to_string(b * kBlock) + " in " + repo_);
  }
  if (!aligned) std::memcpy(out, buf + (offset - aoff), len);
  if (crcs_out && !checksums_) {
    std::vector<uint32_t> v = SegmentCrcs(offset, out, len);
    std::copy(v.begin(), v.end(), crcs_out);
  }
  return Status::Ok();
}

Status ChunkStore::VerifyMeta(ChunkId id, uint64_t version) {
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  std::shared_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + " has version " + std::to_string(c->version));
  RETURN_IF_ERROR(LoadCrcs(*c));
  char h[40];
  size_t got = 0;
  Status st = PreadAll(c->fd, h, sizeof h, 0, &got);
  if (!st.ok()) {
    ++io_errors_;
    return st.Annotate("chunk " + id.str() + " in " + repo_);
  }
  uint32_t hcrc = 0;
  std::memcpy(&hcrc, h + 32, 4);
  uint64_t hid = 0, hver = 0;
  std::memcpy(&hid, h + 8, 8);
  std::memcpy(&hver, h + 16, 8);
  if (got != sizeof h || std::memcmp(h, kMagic, 8) != 0 || Crc32c(h, 32) != hcrc || hid != id.v || hver != version) {
    ++csum_errors_;
    return Err(Code::kCorrupt, "damaged header of chunk " + id.str() + " in " + repo_);
  }
  std::vector<uint32_t> disk(c->crcs.size());
  st = PreadAll(c->fd, reinterpret_cast<char*>(disk.data()), disk.size() * 4, kHeaderBytes, &got);
  if (!st.ok()) {
    ++io_errors_;
    return st.Annotate("chunk " + id.str() + " in " + repo_);
  }
  for (size_t b = 0; b < disk.size(); ++b)
    if (disk[b] != c->crcs[b]) {
      ++csum_errors_;
      return Err(Code::kCorrupt, "checksum table of chunk " + id.str() + " is damaged on disk at block " +
                                     std::to_string(b) + " in " + repo_);
    }
  return Status::Ok();
}

Status ChunkStore::Sync(ChunkId id) {
  IoTimer disk_op(&disk_);
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  return SyncChunk(c);
}

Status ChunkStore::SyncFailedError(const Chunk& c) {
  return Err(Code::kIoError, "chunk " + c.id.str() + " in " + repo_ +
                                 ": an earlier fdatasync of it failed, so writes before it may never reach the disk "
                                 "(the kernel drops failed pages); this replica must be rebuilt from another");
}

Status ChunkStore::SyncChunk(const std::shared_ptr<Chunk>& c) {
  sync_calls_.fetch_add(1, std::memory_order_relaxed);
  if (c->sync_failed.load(std::memory_order_acquire)) return SyncFailedError(*c);
  // The fast path: nothing written since a sync that had begun after the last write ended.
  if (c->synced_gen.load(std::memory_order_acquire) >= c->write_gen.load(std::memory_order_acquire) &&
      c->durable_entry.load(std::memory_order_acquire)) {
    sync_skipped_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  RETURN_IF_ERROR(EnsureOpen(*c));  // a chunk found at start and never used since
  SyncReq req;
  req.c = c;
  std::unique_lock<std::mutex> l(sync_mu_);
  sync_cv_.wait(l, [&] { return sync_queue_.size() < kMaxSyncQueue; });
  sync_queue_.push_back(&req);
  while (!req.done) {
    // Queue empty: our request is in a round that is running. All leaders busy: wait.
    if (sync_queue_.empty() || sync_leaders_ >= kMaxSyncLeaders) {
      sync_cv_.wait(l);
      continue;
    }
    // Lead one round; it may not include our request (more than kMaxSyncBatch ahead of it),
    // then the loop leads or waits again.
    ++sync_leaders_;
    size_t n = std::min(kMaxSyncBatch, sync_queue_.size());
    std::vector<SyncReq*> batch(sync_queue_.begin(), sync_queue_.begin() + static_cast<long>(n));
    sync_queue_.erase(sync_queue_.begin(), sync_queue_.begin() + static_cast<long>(n));
    sync_cv_.notify_all();  // room in the queue for callers waiting to join the next round
    l.unlock();
    RunSyncRound(batch);
    l.lock();
    for (SyncReq* r : batch) r->done = true;
    --sync_leaders_;
    sync_cv_.notify_all();
  }
  return req.st;
}

// A whole round (a sync per chunk and the directory's) goes to the kernel in one submission.
static_assert(ChunkStore::kMaxSyncBatch + 1 <= DiskIo::kRingEntries);
// Sync leaders never take every ring: writes keep one to submit with.
static_assert(ChunkStore::kMaxSyncLeaders < DiskIo::kRings);

void ChunkStore::RunSyncRound(const std::vector<SyncReq*>& batch) {
  sync_rounds_.fetch_add(1, std::memory_order_relaxed);
  struct Item {
    Chunk* c;
    uint64_t gen;      // write_gen seen before the sync began: what it covers
    bool dirty;        // synced_gen < gen: needs an fdatasync
    bool entry;        // its directory entry needs the directory fsync
    size_t op = SIZE_MAX;
  };
  std::vector<Item> items;
  for (SyncReq* r : batch) {
    Chunk* c = r->c.get();
    if (std::any_of(items.begin(), items.end(), [&](const Item& i) { return i.c == c; })) continue;
    uint64_t gen = c->write_gen.load(std::memory_order_acquire);
    items.push_back({c, gen, c->synced_gen.load(std::memory_order_relaxed) < gen,
                     !c->durable_entry.load(std::memory_order_acquire)});
  }
  std::vector<SyncOp> ops;
  bool need_dir = false;
  for (auto& i : items) {
    if (i.dirty) {
      i.op = ops.size();
      ops.push_back({i.c->fd.load(std::memory_order_acquire), true, Status::Ok()});
    }
    need_dir |= i.entry;
  }
  // One fsync of the directory stands for every new chunk of the round.
  size_t dir_op = SIZE_MAX;
  if (need_dir) {
    dir_op = ops.size();
    ops.push_back({dir_fd_, false, Status::Ok()});
  }
  if (sync_round_hook_) sync_round_hook_();
  io_.SyncAll(ops.data(), ops.size());
  if (sync_result_hook_)
    for (auto& i : items)
      if (i.dirty)
        if (Status st = sync_result_hook_(i.c->id); !st.ok()) ops[i.op].result = st;
  fdatasyncs_.fetch_add(ops.size() - (need_dir ? 1 : 0), std::memory_order_relaxed);
  if (need_dir) dir_fsyncs_.fetch_add(1, std::memory_order_relaxed);
  Status dir_st = need_dir ? ops[dir_op].result : Status::Ok();
  if (!dir_st.ok()) dir_st = Count(dir_st, "fsync " + dir_);
  for (auto& i : items) {
    if (i.dirty && !ops[i.op].result.ok()) {
      // No retry can make up for it (see Chunk::sync_failed): this replica is done.
      ops[i.op].result = Count(ops[i.op].result, "fdatasync " + i.c->path);
      i.c->sync_failed.store(true, std::memory_order_release);
    } else if (i.dirty) {
      // Rounds may finish out of order: synced_gen only ever goes up.
      uint64_t seen = i.c->synced_gen.load(std::memory_order_relaxed);
      while (seen < i.gen && !i.c->synced_gen.compare_exchange_weak(seen, i.gen, std::memory_order_release,
                                                                     std::memory_order_relaxed)) {
      }
    }
    if (i.entry && dir_st.ok()) i.c->durable_entry.store(true, std::memory_order_release);
  }
  for (SyncReq* r : batch) {
    auto& i = *std::find_if(items.begin(), items.end(), [&](const Item& it) { return it.c == r->c.get(); });
    if (i.dirty && !ops[i.op].result.ok()) {
      r->st = ops[i.op].result;
    } else if (i.c->sync_failed.load(std::memory_order_acquire)) {  // failed in a round beside ours
      r->st = SyncFailedError(*i.c);
    } else if (i.entry) {
      r->st = dir_st;
    }
  }
}

Status ChunkStore::SetVersion(ChunkId id, uint64_t old_version, uint64_t new_version) {
  IoTimer disk_op(&disk_);
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  {
    std::unique_lock<std::shared_mutex> l(c->mu);
    if (c->version == new_version) {
      l.unlock();
      return SyncChunk(c);  // a retry of a bump whose sync failed must still make it durable
    }
    if (c->version != old_version)
      return Err(Code::kStaleVersion, "chunk " + id.str() + " has version " + std::to_string(c->version) +
                                          ", not " + std::to_string(old_version));
    RETURN_IF_ERROR(EnsureOpen(*c));
    uint64_t prev = c->version;
    c->version = new_version;
    Status st = WriteHeader(*c);
    // After the header write, failed or not: the page cache may hold a new header either way.
    c->write_gen.fetch_add(1, std::memory_order_release);
    if (!st.ok()) {
      c->version = prev;
      return Count(st, "chunk " + id.str() + " in " + repo_);
    }
  }
  // The sync runs without the chunk lock: reads and writes at the new version go on meanwhile.
  // If it fails the bump stays in memory and in the page cache, unconfirmed; the caller sees
  // the error and retries (the retry syncs again, above) or gives the replica up.
  return SyncChunk(c);
}

Status ChunkStore::Delete(ChunkId id, uint64_t max_version) {
  IoTimer disk_op(&disk_);
  // No disk call and no wait for a chunk lock happens under mu_: on a hung disk that would
  // stall every chunk of this CS, and the heartbeat that reports the hang (flag T).
  auto c = Find(id);
  if (!c) {
    // The MDS no longer counts a damaged replica here: copies of the chunk may come again.
    // Its file stays in quarantine for inspection, renamed so that it is not refused again.
    // The rename runs outside mu_; the replica stays refused until the entry goes after it.
    std::string where;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto lost = lost_.find(id);
      if (lost == lost_.end()) return Status::Ok();
      where = lost->second;
    }
    RETURN_IF_ERROR(Count(DiskIo::Rename(where, where + ".dropped", true), "chunk " + id.str()));
    std::lock_guard<std::mutex> l(mu_);
    if (auto lost = lost_.find(id); lost != lost_.end() && lost->second == where) lost_.erase(lost);
    return Status::Ok();
  }
  std::unique_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Status::Ok();
  // Checked under the chunk lock: a replica copied anew at a higher version is never
  // removed by a late delete of the old one.
  if (c->version > max_version) {
    LOG_INFO("chunk %s: kept version %llu (delete asked for versions up to %llu)", id.str().c_str(),
             static_cast<unsigned long long>(c->version), static_cast<unsigned long long>(max_version));
    return Status::Ok();
  }
  // Unlinked while the entry still exists: a Create of the same chunk only happens once
  // Find() misses it, so it makes a new file that this delete never removes.
  RETURN_IF_ERROR(Count(DiskIo::Unlink(c->path, true), "chunk " + id.str()));
  c->deleted = true;
  std::lock_guard<std::mutex> g(mu_);
  auto it = chunks_.find(id);
  if (it != chunks_.end() && it->second == c) chunks_.erase(it);
  return Status::Ok();
}

std::vector<proto::ChunkReplicaState> ChunkStore::List() {
  std::vector<std::shared_ptr<Chunk>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [id, c] : chunks_) all.push_back(c);
  }
  std::vector<proto::ChunkReplicaState> out;
  for (auto& c : all) {
    std::shared_lock<std::shared_mutex> l(c->mu);
    out.push_back({c->id, c->version, c->data_len});
  }
  return out;
}

Result<proto::ChunkReplicaState> ChunkStore::Stat(ChunkId id) {
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  std::shared_lock<std::shared_mutex> l(c->mu);
  return proto::ChunkReplicaState{c->id, c->version, c->data_len};
}

SyncStats ChunkStore::sync_stats() const {
  SyncStats s;
  s.calls = sync_calls_.load(std::memory_order_relaxed);
  s.skipped = sync_skipped_.load(std::memory_order_relaxed);
  s.rounds = sync_rounds_.load(std::memory_order_relaxed);
  s.fdatasyncs = fdatasyncs_.load(std::memory_order_relaxed);
  s.dir_fsyncs = dir_fsyncs_.load(std::memory_order_relaxed);
  return s;
}

Result<Space> ChunkStore::GetSpace() {
  auto fs = DiskIo::StatFs(dir_);
  if (!fs.ok()) return Count(fs.status(), "chunk store");
  Space s;
  s.total_bytes = fs->total_bytes;
  s.free_bytes = fs->avail_bytes;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, c] : chunks_) s.used_bytes += c->size_hint.load(std::memory_order_relaxed);
  return s;
}

}  // namespace vstorage::cs
