#include "cs/chunk_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "common/crc32c.h"
#include "common/limits.h"
#include "common/log.h"

namespace vstorage::cs {

namespace {

constexpr char kMagic[8] = {'V', 'S', 'C', 'H', 'U', 'N', 'K', '1'};
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kBlock = kCsumBlockBytes;
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

Status FromErrno(int e, const std::string& what) {
  return Err(e == ENOSPC || e == EDQUOT ? Code::kNoSpace : Code::kIoError, what + ": " + std::strerror(e));
}

Status PreadAll(int fd, char* p, size_t n, uint64_t off, size_t* got) {
  *got = 0;
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "read");
    }
    if (r == 0) break;
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return FromErrno(errno, "write");
    }
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

}  // namespace

ChunkStore::Chunk::~Chunk() {
  if (fd >= 0) ::close(fd);
}

ChunkStore::~ChunkStore() = default;

Status ChunkStore::IoError(const std::string& what) {
  ++io_errors_;
  return FromErrno(errno, what);
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::Open(const std::string& repo_dir, bool checksums) {
  std::unique_ptr<ChunkStore> s(new ChunkStore(repo_dir + "/chunks"));
  s->repo_ = repo_dir;
  s->checksums_ = checksums;
  if (::mkdir(s->dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return FromErrno(errno, "cannot create " + s->dir_);
  RETURN_IF_ERROR(s->Scan());
  return s;
}

Status ChunkStore::Scan() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return FromErrno(errno, "cannot open " + dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string path = dir_ + "/" + n;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char h[40];
    size_t got = 0;
    bool ok = fd >= 0 && PreadAll(fd, h, sizeof h, 0, &got).ok() && got == sizeof h &&
              std::memcmp(h, kMagic, 8) == 0;
    uint32_t crc = 0;
    if (ok) {
      std::memcpy(&crc, h + 32, 4);
      ok = Crc32c(h, 32) == crc;
    }
    struct stat st {};
    if (ok) ok = ::fstat(fd, &st) == 0;
    if (fd >= 0) ::close(fd);
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
      ::unlink(path.c_str());
      continue;
    }
    auto c = std::make_shared<Chunk>();
    std::memcpy(&c->id.v, h + 8, 8);
    std::memcpy(&c->version, h + 16, 8);
    std::memcpy(&c->chunk_size, h + 24, 8);
    c->path = path;
    c->data_off = DataOffset(c->chunk_size);
    c->data_len = static_cast<uint64_t>(st.st_size) > c->data_off ? st.st_size - c->data_off : 0;
    c->size_hint = c->data_len;
    c->durable_entry = true;
    chunks_[c->id] = c;
  }
  // Damaged replicas quarantined by an earlier start stay refused until the MDS deletes them.
  if (DIR* q = ::opendir((repo_ + "/quarantine").c_str())) {
    while (dirent* e = ::readdir(q)) {
      std::string n = e->d_name;
      if (auto id = ParseFileName(n); id && !chunks_.count(*id)) lost_[*id] = repo_ + "/quarantine/" + n;
    }
    ::closedir(q);
  }
  LOG_INFO("chunk store %s: %zu chunks, %zu damaged replicas in quarantine", dir_.c_str(), chunks_.size(),
           lost_.size());
  return Status::Ok();
}

void ChunkStore::Quarantine(ChunkId id, const std::string& path) {
  std::string qdir = repo_ + "/quarantine";
  std::string to = qdir + "/" + FileName(id);
  if (::mkdir(qdir.c_str(), 0700) != 0 && errno != EEXIST) to.clear();
  if (!to.empty() && ::rename(path.c_str(), to.c_str()) != 0) to.clear();
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
  if (c.fd >= 0) return Status::Ok();
  c.fd = ::open(c.path.c_str(), O_RDWR | O_CLOEXEC);
  if (c.fd < 0) return IoError("cannot open chunk file " + c.path);
  return Status::Ok();
}

Status ChunkStore::LoadCrcs(Chunk& c) {
  if (c.crcs_loaded) return Status::Ok();
  RETURN_IF_ERROR(EnsureOpen(c));
  c.crcs.assign(c.chunk_size / kBlock, 0);
  size_t got = 0;
  Status st = PreadAll(c.fd, reinterpret_cast<char*>(c.crcs.data()), c.crcs.size() * 4, kHeaderBytes, &got);
  if (!st.ok()) {
    ++io_errors_;
    return st.Annotate("chunk " + c.id.str());
  }
  c.crcs_loaded = true;
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
  c->fd = ::open(c->path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (c->fd < 0) return fail(IoError("cannot create chunk file " + c->path));
  Status st = WriteHeader(*c);
  if (!st.ok()) {
    ::unlink(c->path.c_str());
    return fail(st);
  }
  c->crcs.assign(chunk_size / kBlock, 0);
  c->crcs_loaded = true;
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
  auto c = Find(id);
  if (!c && !create) return Err(Code::kNotFound, "chunk " + id.str() + " vanished from this CS during the write");
  if (!c) {
    ASSIGN_OR_RETURN(c, Create(id, version, chunk_size));
  }
  std::unique_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + ": write with version " + std::to_string(version) +
                                        ", the replica has version " + std::to_string(c->version));
  if (c->chunk_size != chunk_size)
    return Err(Code::kInvalidArgument, "chunk " + id.str() + " has size " + std::to_string(c->chunk_size));
  RETURN_IF_ERROR(EnsureOpen(*c));
  return Locked{std::move(c), std::move(l)};
}

Status ChunkStore::Write(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset,
                         const char* data, size_t len, bool create) {
  IoTimer disk_op(&disk_);
  ASSIGN_OR_RETURN(Locked k, LockForWrite(id, version, chunk_size, offset, len, create));
  if (len == 0) return Status::Ok();
  return WriteLocked(*k.c, offset, data, len);
}

Status ChunkStore::WriteLocked(Chunk& c_ref, uint64_t offset, const char* data, size_t len) {
  Chunk* c = &c_ref;
  const ChunkId id = c->id;
  if (!checksums_) {  // make-cs -S: the bytes only
    Status st = PwriteAll(c->fd, data, len, c->data_off + offset);
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
    const char* p;
    size_t n = kBlock;
    if (b == b0 && head_partial) p = head;
    else if (b == b1 - 1 && tail_partial) p = tail;
    else p = data + (b * kBlock - offset);
    (void)n;
    new_crcs[b - b0] = Crc32c(p, kBlock);
  }
  Status st = PwriteAll(c->fd, data, len, c->data_off + offset);
  if (st.ok()) st = PwriteAll(c->fd, reinterpret_cast<const char*>(new_crcs.data()), new_crcs.size() * 4, kHeaderBytes + b0 * 4);
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
    int rc;
    if (to_end) {
      rc = ::ftruncate(c->fd, static_cast<off_t>(c->data_off + cut_from));
    } else {
      rc = ::fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(c->data_off + cut_from),
                       static_cast<off_t>(cut_to - cut_from));
      if (rc != 0 && errno == EOPNOTSUPP) {  // a file system without holes: write the zeros
        rc = 0;
        for (uint64_t o = cut_from; o < cut_to; o += kBlock) {
          Status st = PwriteAll(c->fd, kZeroBlock, kBlock, c->data_off + o);
          if (!st.ok()) return st.Annotate("chunk " + id.str() + " in " + repo_);
        }
      }
    }
    if (rc != 0) return IoError(std::string(to_end ? "ftruncate " : "punch a hole in ") + c->path);
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
  if (::fallocate(c->fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(c->data_off + offset), static_cast<off_t>(len)) != 0) {
    int e = errno;
    if (e == EOPNOTSUPP) return Status::Ok();  // a file system that cannot reserve: writes will allocate
    if (e == ENOSPC) return Err(Code::kNoSpace, "no space to reserve " + std::to_string(len) + " bytes for chunk " +
                                                    id.str() + " in " + repo_);
    errno = e;
    return IoError("fallocate " + c->path);
  }
  return Status::Ok();
}

Status ChunkStore::Read(ChunkId id, uint64_t version, uint64_t offset, uint32_t len, char* out) {
  IoTimer disk_op(&disk_);
  auto c = Find(id);
  if (!c) {
    std::lock_guard<std::mutex> l(mu_);
    if (auto lost = lost_.find(id); lost != lost_.end()) return LostError(id, lost->second);
    return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  }
  {
    std::unique_lock<std::shared_mutex> l(c->mu);
    RETURN_IF_ERROR(LoadCrcs(*c));
  }
  std::shared_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + ": read with version " + std::to_string(version) +
                                        ", the replica has version " + std::to_string(c->version));
  if (offset > c->chunk_size || len > c->chunk_size - offset)
    return Err(Code::kInvalidArgument, "read outside chunk " + id.str());
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
    if (Crc32c(p, kBlock) == want) continue;
    if (want == 0 && AllZero(p, kBlock)) continue;  // never written
    ++csum_errors_;
    return Err(Code::kCorrupt, "checksum mismatch in chunk " + id.str() + " at offset " +
                                   std::to_string(b * kBlock) + " in " + repo_);
  }
  if (!aligned) std::memcpy(out, buf + (offset - aoff), len);
  return Status::Ok();
}

Status ChunkStore::VerifyMeta(ChunkId id, uint64_t version) {
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  {
    std::unique_lock<std::shared_mutex> l(c->mu);
    RETURN_IF_ERROR(LoadCrcs(*c));
  }
  std::shared_lock<std::shared_mutex> l(c->mu);
  if (c->deleted) return Err(Code::kNotFound, "chunk " + id.str() + " was deleted");
  if (c->version != version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + " has version " + std::to_string(c->version));
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
  bool need_dir;
  int fd;
  {
    std::unique_lock<std::shared_mutex> l(c->mu);
    RETURN_IF_ERROR(EnsureOpen(*c));
    fd = c->fd;
    need_dir = !c->durable_entry;
    if (::fdatasync(fd) != 0) return IoError("fdatasync " + c->path);
  }
  if (need_dir) {
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return IoError("open " + dir_);
    int r = ::fsync(dfd);
    ::close(dfd);
    if (r != 0) return IoError("fsync " + dir_);
    std::unique_lock<std::shared_mutex> l(c->mu);
    c->durable_entry = true;
  }
  return Status::Ok();
}

Status ChunkStore::SetVersion(ChunkId id, uint64_t old_version, uint64_t new_version) {
  IoTimer disk_op(&disk_);
  auto c = Find(id);
  if (!c) return Err(Code::kNotFound, "chunk " + id.str() + " is not on this CS");
  std::unique_lock<std::shared_mutex> l(c->mu);
  if (c->version == new_version) return Status::Ok();
  if (c->version != old_version)
    return Err(Code::kStaleVersion, "chunk " + id.str() + " has version " + std::to_string(c->version) +
                                        ", not " + std::to_string(old_version));
  RETURN_IF_ERROR(EnsureOpen(*c));
  uint64_t prev = c->version;
  c->version = new_version;
  Status st = WriteHeader(*c);
  if (st.ok() && ::fdatasync(c->fd) != 0) st = IoError("fdatasync " + c->path);
  if (!st.ok()) c->version = prev;
  return st;
}

Status ChunkStore::Delete(ChunkId id, uint64_t max_version) {
  IoTimer disk_op(&disk_);
  // No disk call and no wait for a chunk lock happens under mu_: on a hung disk that would
  // stall every chunk of this CS, and the heartbeat that reports the hang (flag T).
  auto c = Find(id);
  if (!c) {
    // The MDS no longer counts a damaged replica here: copies of the chunk may come again.
    // Its file stays in quarantine for inspection, renamed so that it is not refused again.
    std::lock_guard<std::mutex> l(mu_);
    auto lost = lost_.find(id);
    if (lost != lost_.end()) {
      if (::rename(lost->second.c_str(), (lost->second + ".dropped").c_str()) != 0 && errno != ENOENT)
        return IoError("rename " + lost->second);
      lost_.erase(lost);
    }
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
  if (::unlink(c->path.c_str()) != 0 && errno != ENOENT) return IoError("unlink " + c->path);
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

Result<Space> ChunkStore::GetSpace() {
  struct statvfs v {};
  if (::statvfs(dir_.c_str(), &v) != 0) return IoError("statvfs " + dir_);
  Space s;
  s.total_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  s.free_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, c] : chunks_) s.used_bytes += c->size_hint.load(std::memory_order_relaxed);
  return s;
}

}  // namespace vstorage::cs
