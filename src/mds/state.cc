#include "mds/state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <unordered_set>

#include "common/limits.h"
#include "common/posix_acl.h"

namespace vstorage::mds {

namespace {

// Milliseconds of a record written before nanoseconds were, as nanoseconds; false when they
// do not fit (only a damaged record holds such a time).
bool MsToNs(int64_t ms, int64_t* ns) { return !__builtin_mul_overflow(ms, int64_t{1000000}, ns); }

// 2: CsRecord.releasing; 3: CsRecord.created_ms; 4: Attr in ns with uid, gid, atime.
constexpr uint32_t kImageFormat = 5;

struct ConfigParam {
  const char* key;
  int64_t def;
  int64_t min;
  int64_t max;
};
// The cluster parameters `get-config` lists (guide 5.3, 5.6.1, 7.6.5).
constexpr ConfigParam kParams[] = {
    {"mds.wd.offline_tout", 300000, 1000, 86400000},
    {"mds.wd.max_offline_cs", 2, 0, 1000000},
    {"mds.wd.max_offline_cs_hosts", 2, 0, 1000000},
    {"mds.wd.verify_chunks", 2, 0, 1000000},
    // Additions beyond the guide: how hard self-healing may work (docs/design/recovery.md).
    {"mds.recovery.parallel", 4, 1, 64},          // chunk copies at once
    {"mds.recovery.max_rate_mb", 200, 0, 100000},  // MB/s per copy, 0 = unlimited
    {"mds.wd.io_tout", 10000, 1000, 3600000},      // ms a client I/O may hang before flag T
    // Guide 3.5.4.3: the failure domain is a rule (1, default) or advice (0: when too few
    // domains are available, replicas are kept apart by a smaller one, never one disk).
    {"mds.alloc.strict_failure_domain", 1, 0, 1},
    // Beyond the guide: 1 keeps data on its tier (ENOSPC when full) instead of 3.5.5.2's fallback.
    {"mds.alloc.strict_tier", 0, 0, 1},
    // Guide 3.5.7: punch hole (TRIM from VM guests) gives space back; 0 = EOPNOTSUPP. On by
    // default here: every chunk server of this project supports it.
    {"gen.do_punch_hole", 1, 0, 1},
    // Beyond the guide (its 6.x lists unencrypted traffic as a limitation): TLS 1.3 on every
    // connection, keyed by the cluster key (rpc/tls.h); 0 for a trusted network.
    {"gen.encryption", 1, 0, 1},
};

const ConfigParam* FindParam(const std::string& key) {
  for (const auto& p : kParams)
    if (key == p.key) return &p;
  return nullptr;
}

bool ParseU64(const std::string& s, uint64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *v = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

Status CheckName(const std::string& name) {
  if (name.empty() || name == "." || name == "..")
    return Err(Code::kInvalidArgument, "invalid file name '" + name + "'");
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos)
    return Err(Code::kInvalidArgument, "file name '" + name + "' contains '/' or NUL");
  if (name.size() > kMaxNameBytes)
    return Err(Code::kNameTooLong, "file name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  return Status::Ok();
}

// Format 5: format 4 with each inode's tier and failure domain after its replica counts.
struct InodeImage {
  proto::Attr attr;
  InodeId parent;
  std::string symlink;
  uint32_t norm = 1, min = 1;
  uint8_t tier = 0, domain = static_cast<uint8_t>(FailureDomain::kHost);
  std::vector<proto::DirEntry> children;
  std::map<std::string, std::string> xattrs;
  VS_FIELDS(attr, parent, symlink, norm, min, tier, domain, children, xattrs)
};
struct InodeImageV4 {
  proto::Attr attr;
  InodeId parent;
  std::string symlink;
  uint32_t norm = 1, min = 1;
  std::vector<proto::DirEntry> children;
  std::map<std::string, std::string> xattrs;
  VS_FIELDS(attr, parent, symlink, norm, min, children, xattrs)
};

// Inodes and attributes as formats 2 and 3 kept them: times in milliseconds, no owners, no
// atime, no device numbers, no extended attributes.
struct AttrV3 {
  InodeId ino;
  proto::NodeType type = proto::NodeType::kFile;
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ms = 0, ctime_ms = 0;
  uint32_t nlink = 1;
  uint64_t chunk_size = 0;
  VS_FIELDS(ino, type, mode, size, mtime_ms, ctime_ms, nlink, chunk_size)
};
struct InodeImageV3 {
  AttrV3 attr;
  InodeId parent;
  std::string symlink;
  uint32_t norm = 1, min = 1;
  std::vector<proto::DirEntry> children;
  VS_FIELDS(attr, parent, symlink, norm, min, children)
};

template <typename Cs, typename I = InodeImage>
struct StateImageOf {
  uint32_t format = kImageFormat;
  uint64_t next_ino = 0, next_chunk = 0, next_cs = 0;
  std::vector<I> inodes;
  std::vector<ChunkInfo> chunks;
  std::vector<Cs> cs;
  std::map<std::string, std::string> config;
  std::vector<EventRecord> events;
  VS_FIELDS(format, next_ino, next_chunk, next_cs, inodes, chunks, cs, config, events)
};
using StateImage = StateImageOf<CsRecord>;

// Format 2 (before CsRecord.created_ms), still read so an upgraded MDS keeps its snapshot.
struct CsRecordV2 {
  CsId id;
  std::string host_id;
  uint32_t tier = 0;
  std::string addr;
  bool dropped = false;
  bool releasing = false;
  VS_FIELDS(id, host_id, tier, addr, dropped, releasing)
};

// Formats 3 and 4 (before CsRecord.location).
struct CsRecordV4 {
  CsId id;
  std::string host_id;
  uint32_t tier = 0;
  std::string addr;
  bool dropped = false;
  bool releasing = false;
  int64_t created_ms = 0;
  VS_FIELDS(id, host_id, tier, addr, dropped, releasing, created_ms)
  CsRecord Upgraded() const { return {id, host_id, tier, addr, dropped, releasing, created_ms, ""}; }
};

}  // namespace

Result<std::pair<uint32_t, uint32_t>> ParseReplicas(const std::string& v) {
  auto bad = [&] {
    return Err(Code::kInvalidArgument,
               "invalid replicas value '" + v + "': use N or N:M with 1 <= M <= N <= " +
                   std::to_string(kMaxReplicas) + " (M defaults to N/2 rounded up)");
  };
  size_t colon = v.find(':');
  uint64_t n = 0, m = 0;
  if (!ParseU64(v.substr(0, colon), &n)) return bad();
  if (colon == std::string::npos) m = (n + 1) / 2;
  else if (!ParseU64(v.substr(colon + 1), &m)) return bad();
  if (n < 1 || n > kMaxReplicas || m < 1 || m > n) return bad();
  return std::make_pair(static_cast<uint32_t>(n), static_cast<uint32_t>(m));
}

Result<uint32_t> ParseTierValue(const std::string& v) {
  uint64_t t = 0;
  if (!ParseU64(v, &t) || t > kMaxTier)
    return Err(Code::kInvalidArgument,
               "invalid tier '" + v + "': use 0 to " + std::to_string(kMaxTier) + " (guide 3.5.5)");
  return static_cast<uint32_t>(t);
}

Result<FailureDomain> ParseFailureDomainValue(const std::string& v) {
  auto d = ParseFailureDomain(v);
  if (!d)
    return Err(Code::kInvalidArgument,
               "invalid failure-domain '" + v + "': use disk, host, rack, row or room (guide 3.5.4.2)");
  return *d;
}

Result<uint64_t> ParseChunkSizeValue(const std::string& v) {
  auto bad = [&] {
    return Err(Code::kInvalidArgument,
               "invalid chunk-size '" + v + "': use a power of two from 1M to 1G (bytes, or "
               "with a K/M/G suffix)");
  };
  std::string s = v;
  if (!s.empty() && (s.back() == 'B' || s.back() == 'b')) s.pop_back();
  uint64_t mult = 1;
  if (!s.empty()) {
    char c = s.back();
    if (c == 'K' || c == 'k') mult = 1ull << 10;
    else if (c == 'M' || c == 'm') mult = 1ull << 20;
    else if (c == 'G' || c == 'g') mult = 1ull << 30;
    if (mult != 1) s.pop_back();
  }
  uint64_t n = 0;
  if (!ParseU64(s, &n) || n > (1ull << 40)) return bad();
  n *= mult;
  if (n < kMinChunkSizeBytes || n > (1ull << 30) || (n & (n - 1)) != 0) return bad();
  return n;
}

MdsState::MdsState() {
  Inode root;
  root.ino = kRootInode.v;
  root.type = proto::NodeType::kDir;
  root.mode = 0755;
  root.nlink = 2;
  root.chunk_size = kDefaultChunkSizeBytes;
  root.parent = kRootInode;
  inodes_.Insert(std::move(root));
}

proto::Attr MdsState::Inode::attr() const {
  return proto::Attr{InodeId{ino}, type, mode, size, mtime_ns, ctime_ns, nlink, chunk_size,
                     uid, gid, atime_ns, extra ? extra->rdev : 0};
}

const std::string& MdsState::Inode::symlink() const {
  static const std::string kNone;
  return extra ? extra->symlink : kNone;
}

Result<const MdsState::Inode*> MdsState::Find(InodeId ino) const {
  const Inode* n = inodes_.Find(ino.v);
  if (!n) return Err(Code::kNotFound, "no such inode " + ino.str());
  return n;
}

Result<const MdsState::Inode*> MdsState::Dir(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  if (n->type != proto::NodeType::kDir)
    return Err(Code::kNotDir, "inode " + ino.str() + " is not a directory");
  return n;
}

Result<proto::Attr> MdsState::Lookup(InodeId parent, const std::string& name) const {
  ASSIGN_OR_RETURN(const Inode* d, Dir(parent));
  if (name.size() > kMaxNameBytes)  // as on ext4: too long is not "not found"
    return Err(Code::kNameTooLong, "file name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  InodeId child = d->Child(name);
  if (!child.v) return Err(Code::kNotFound, "no such file or directory: " + name);
  return At(child).attr();
}

Result<proto::Attr> MdsState::GetAttr(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  return n->attr();
}

Result<std::vector<proto::DirEntry>> MdsState::Readdir(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* d, Dir(ino));
  std::vector<proto::DirEntry> out;
  if (!d->children()) return out;
  auto sorted = d->children()->Sorted();
  out.reserve(sorted.size());
  for (const auto& [name, child] : sorted) out.push_back({std::string(name), child, At(child).type});
  return out;
}

Result<std::string> MdsState::Readlink(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  if (n->type != proto::NodeType::kSymlink)
    return Err(Code::kInvalidArgument, "inode " + ino.str() + " is not a symlink");
  return n->symlink();
}

std::string MdsState::PathOf(InodeId ino) const {
  std::vector<std::string> parts;
  for (int depth = 0; ino != kRootInode && depth < 4096; ++depth) {
    const Inode* n = inodes_.Find(ino.v);
    if (!n) return "";
    const Inode* p = inodes_.Find(n->parent.v);
    if (!p) return "";
    // Of several names of ino in the directory, the last in name order.
    std::string_view best;
    bool found = false;
    if (p->children())
      p->children()->ForEach([&](std::string_view name, InodeId child) {
        if (child == ino && (!found || name > best)) {
          best = name;
          found = true;
        }
      });
    parts.emplace_back(best);
    ino = n->parent;
  }
  if (parts.empty()) return "/";
  std::string path;
  for (auto i = parts.rbegin(); i != parts.rend(); ++i) path += "/" + *i;
  return path;
}

Result<std::map<std::string, std::string>> MdsState::GetXattrs(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  std::map<std::string, std::string> x;
  x["replicas"] = std::to_string(n->norm) + ":" + std::to_string(n->min);
  x["chunk-size"] = std::to_string(n->chunk_size);
  x["tier"] = std::to_string(n->tier);
  x["failure-domain"] = FailureDomainName(n->domain);
  if (n->extra)
    for (const auto& [k, v] : n->extra->xattrs) x[k] = v;  // namespaced: no clash with the two above
  return x;
}

Result<std::pair<uint32_t, uint32_t>> MdsState::ReplicasOf(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  return std::make_pair(uint32_t{n->norm}, uint32_t{n->min});
}

Result<FilePlacement> MdsState::PlacementOf(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  return FilePlacement{n->norm, n->min, n->tier, n->domain};
}

// ---- Chunks ----

std::vector<CsId> MdsState::ReplicaList(const Chunk& c) const {
  if (c.spilled) return spilled_replicas_.at(c.id);
  std::vector<CsId> out(c.n_replicas);
  for (size_t i = 0; i < c.n_replicas; ++i) out[i] = CsId{c.replicas[i]};
  return out;
}

ChunkInfo MdsState::InfoOf(const Chunk& c) const {
  return ChunkInfo{ChunkId{c.id}, c.ino, c.index, c.version, ReplicaList(c)};
}

void MdsState::SetReplicas(Chunk& c, const std::vector<CsId>& replicas) {
  std::vector<CsId> old = ReplicaList(c);
  for (CsId cs : old) {
    if (std::find(replicas.begin(), replicas.end(), cs) != replicas.end()) continue;
    auto it = chunks_by_cs_.find(cs);
    if (it == chunks_by_cs_.end()) continue;
    it->second.Erase(c.id);
    if (it->second.empty()) chunks_by_cs_.erase(it);
  }
  for (CsId cs : replicas)
    if (std::find(old.begin(), old.end(), cs) == old.end()) chunks_by_cs_[cs].Insert(c.id);
  bool fits = replicas.size() <= kInlineReplicas;
  for (CsId cs : replicas) fits = fits && cs.v <= UINT32_MAX;
  if (c.spilled && fits) spilled_replicas_.erase(c.id);
  c.spilled = !fits;
  if (fits) {
    c.n_replicas = static_cast<uint8_t>(replicas.size());
    for (size_t i = 0; i < kInlineReplicas; ++i)
      c.replicas[i] = i < replicas.size() ? static_cast<uint32_t>(replicas[i].v) : 0;
  } else {
    c.n_replicas = 0;
    std::fill(std::begin(c.replicas), std::end(c.replicas), 0u);
    spilled_replicas_[c.id] = replicas;
  }
}

MdsState::Chunk& MdsState::InsertChunk(const ChunkInfo& info) {
  if (info.id.v <= chunks_.LastKey())  // only a stale next_chunk_ or a malformed image
    if (Chunk* old = chunks_.Find(info.id.v)) EraseChunk(*old);
  Chunk rec;
  rec.id = info.id.v;
  rec.ino = info.ino;
  rec.index = info.index;
  rec.version = info.version;
  Chunk& c = chunks_.Insert(rec);
  SetReplicas(c, info.replicas);
  return c;
}

void MdsState::EraseChunk(Chunk& c) {
  SetReplicas(c, {});
  chunks_.Erase(c.id);
}

std::optional<ChunkInfo> MdsState::GetChunk(InodeId ino, uint64_t index) const {
  const Inode* n = inodes_.Find(ino.v);
  if (!n) return std::nullopt;
  auto it = std::lower_bound(n->chunks.begin(), n->chunks.end(), index,
                             [](const ChunkRef& r, uint64_t i) { return r.index < i; });
  if (it == n->chunks.end() || it->index != index) return std::nullopt;
  return InfoOf(*chunks_.Find(it->id.v));
}

std::optional<ChunkInfo> MdsState::ChunkById(ChunkId id) const {
  const Chunk* c = chunks_.Find(id.v);
  if (!c) return std::nullopt;
  return InfoOf(*c);
}

std::vector<ChunkInfo> MdsState::FileChunks(InodeId ino) const {
  std::vector<ChunkInfo> out;
  const Inode* n = inodes_.Find(ino.v);
  if (!n) return out;
  out.reserve(n->chunks.size());
  for (const ChunkRef& r : n->chunks) out.push_back(InfoOf(*chunks_.Find(r.id.v)));
  return out;
}

void MdsState::ForEachChunk(const std::function<void(const ChunkInfo&)>& fn) const {
  ChunkInfo info;  // reused: its replica vector keeps its capacity
  chunks_.ForEach([&](const Chunk& c) {
    info.id = ChunkId{c.id};
    info.ino = c.ino;
    info.index = c.index;
    info.version = c.version;
    if (c.spilled) {
      info.replicas = spilled_replicas_.at(c.id);
    } else {
      info.replicas.resize(c.n_replicas);
      for (size_t i = 0; i < c.n_replicas; ++i) info.replicas[i] = CsId{c.replicas[i]};
    }
    fn(info);
  });
}

uint64_t MdsState::ForEachChunkFrom(uint64_t from, size_t max, const std::function<void(const ChunkInfo&)>& fn) const {
  return chunks_.ForEachFrom(from, max, [&](const Chunk& c) { fn(InfoOf(c)); });
}

void MdsState::ForEachChunkOnCs(CsId cs, const std::function<void(const ChunkInfo&)>& fn) const {
  auto it = chunks_by_cs_.find(cs);
  if (it == chunks_by_cs_.end()) return;
  it->second.ForEach([&](uint64_t id) { fn(InfoOf(*chunks_.Find(id))); });
}

size_t MdsState::ChunkCountOnCs(CsId cs) const {
  auto it = chunks_by_cs_.find(cs);
  return it == chunks_by_cs_.end() ? 0 : it->second.size();
}

Result<CsRecord> MdsState::Cs(CsId id) const {
  auto it = cs_.find(id);
  if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + id.str() + " is not in this cluster");
  return it->second;
}

std::vector<CsRecord> MdsState::AllCs() const {
  std::vector<CsRecord> out;
  for (const auto& [id, c] : cs_) out.push_back(c);
  return out;
}

std::map<std::string, std::string> MdsState::Config() const {
  std::map<std::string, std::string> out;
  for (const auto& p : kParams) out[p.key] = std::to_string(p.def);
  for (const auto& [k, v] : config_) out[k] = v;
  return out;
}

int64_t MdsState::ConfigValue(const std::string& key) const {
  auto it = config_.find(key);
  if (it != config_.end()) return std::strtoll(it->second.c_str(), nullptr, 10);
  const ConfigParam* p = FindParam(key);
  return p ? p->def : 0;
}

StateCounts MdsState::Counts() const {
  StateCounts c;
  c.inodes = inodes_.size();
  inodes_.ForEach([&](const Inode& n) {
    if (n.type == proto::NodeType::kFile) {
      ++c.files;
      c.file_bytes += n.size;
    }
  });
  c.chunks = chunks_.size();
  chunks_.ForEach([&](const Chunk& ch) {
    c.chunk_replicas += ch.spilled ? spilled_replicas_.at(ch.id).size() : ch.n_replicas;
  });
  return c;
}

uint64_t MdsState::CountFilesFrom(uint64_t from, size_t max, StateCounts* c) const {
  c->inodes = inodes_.size();
  c->chunks = chunks_.size();
  return inodes_.ForEachFrom(from, max, [&](const Inode& n) {
    if (n.type == proto::NodeType::kFile) {
      ++c->files;
      c->file_bytes += n.size;
    }
  });
}

Result<ApplyResult> MdsState::Apply(const Command& cmd) {
  auto r = ApplyOne(cmd);
  // No pointer into the tables lives past ApplyOne: the dead records may go now.
  inodes_.MaybeCompact();
  chunks_.MaybeCompact();
  return r;
}

Result<ApplyResult> MdsState::ApplyOne(const Command& cmd) {
  // Records written before a field was appended to their command still replay.
  auto decode = [&](auto* body) { return proto::DecodeStoredRecord(cmd.body, body, "journal command"); };
  // File timestamps are nanoseconds; records written before time_ns carry milliseconds.
  int64_t now_ns = cmd.time_ns;
  if (!now_ns && !MsToNs(cmd.time_ms, &now_ns))
    return Err(Code::kCorrupt, "command time " + std::to_string(cmd.time_ms) + " ms is out of range");
  switch (cmd.type) {
    case CommandType::kCreateNode: {
      CreateNodeCmd c;
      RETURN_IF_ERROR(decode(&c));
      return CreateNode(c, now_ns);
    }
    case CommandType::kUnlink: {
      UnlinkCmd c;
      RETURN_IF_ERROR(decode(&c));
      return Unlink(c, now_ns);
    }
    case CommandType::kLink: {
      LinkCmd c;
      RETURN_IF_ERROR(decode(&c));
      return Link(c, now_ns);
    }
    case CommandType::kFreeOrphan: {
      FreeOrphanCmd c;
      RETURN_IF_ERROR(decode(&c));
      return FreeOrphan(c);
    }
    case CommandType::kRename: {
      RenameCmd c;
      RETURN_IF_ERROR(decode(&c));
      return Rename(c, now_ns);
    }
    case CommandType::kSetAttr: {
      SetAttrCmd c;
      RETURN_IF_ERROR(decode(&c));
      return SetAttr(c, now_ns);
    }
    case CommandType::kSetXattr: {
      SetXattrCmd c;
      RETURN_IF_ERROR(decode(&c));
      return SetXattr(c, now_ns);
    }
    case CommandType::kAllocChunk: {
      AllocChunkCmd c;
      RETURN_IF_ERROR(decode(&c));
      return AllocChunk(c);
    }
    case CommandType::kUpdateChunk: {
      UpdateChunkCmd c;
      RETURN_IF_ERROR(decode(&c));
      return UpdateChunk(c);
    }
    case CommandType::kCreateCs: {
      CreateCsCmd c;
      RETURN_IF_ERROR(decode(&c));
      if (c.host_id.empty()) return Err(Code::kInvalidArgument, "a CS needs a host id");
      CsRecord r;
      r.id = CsId{next_cs_++};
      r.host_id = c.host_id;
      r.tier = c.tier;
      r.created_ms = cmd.time_ms;
      cs_[r.id] = r;
      ApplyResult res;
      res.cs = r.id;
      return res;
    }
    case CommandType::kUpdateCs: {
      UpdateCsCmd c;
      RETURN_IF_ERROR(decode(&c));
      auto it = cs_.find(c.cs);
      if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      it->second.addr = c.addr;
      it->second.tier = c.tier;
      return ApplyResult{};
    }
    case CommandType::kDropCs: {
      DropCsCmd c;
      RETURN_IF_ERROR(decode(&c));
      auto it = cs_.find(c.cs);
      if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      it->second.dropped = true;
      it->second.releasing = false;
      return RemoveCsFromChunks(c.cs, true);
    }
    case CommandType::kRemoveCsReplicas: {
      RemoveCsReplicasCmd c;
      RETURN_IF_ERROR(decode(&c));
      if (!cs_.count(c.cs)) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      return RemoveCsFromChunks(c.cs, false);
    }
    case CommandType::kSetCsReleasing: {
      SetCsReleasingCmd c;
      RETURN_IF_ERROR(decode(&c));
      auto it = cs_.find(c.cs);
      if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      if (it->second.dropped) return Err(Code::kInvalidArgument, "CS#" + c.cs.str() + " is already dropped");
      it->second.releasing = c.releasing;
      return ApplyResult{};
    }
    case CommandType::kSetCsHost: {
      SetCsHostCmd c;
      RETURN_IF_ERROR(decode(&c));
      if (c.host_id.empty()) return Err(Code::kInvalidArgument, "a CS needs a host id");
      auto it = cs_.find(c.cs);
      if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      it->second.host_id = c.host_id;
      return ApplyResult{};
    }
    case CommandType::kSetCsLocation: {
      SetCsLocationCmd c;
      RETURN_IF_ERROR(decode(&c));
      if (!ValidLocation(c.location))
        return Err(Code::kInvalidArgument, "invalid location '" + c.location + "': use ROOM.ROW.RACK");
      auto it = cs_.find(c.cs);
      if (it == cs_.end()) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      it->second.location = c.location;
      return ApplyResult{};
    }
    case CommandType::kSetConfig: {
      SetConfigCmd c;
      RETURN_IF_ERROR(decode(&c));
      return SetConfig(c);
    }
    case CommandType::kSetConfigMany: {
      SetConfigManyCmd c;
      RETURN_IF_ERROR(decode(&c));
      return SetConfigMany(c);
    }
    case CommandType::kAddEvent: {
      AddEventCmd c;
      RETURN_IF_ERROR(decode(&c));
      events_.push_back({cmd.time_ms, c.sys, c.sev, c.message});
      while (events_.size() > kMaxEvents) events_.pop_front();
      return ApplyResult{};
    }
  }
  return Err(Code::kCorrupt, "unknown command type " + std::to_string(static_cast<int>(cmd.type)));
}

Result<ApplyResult> MdsState::RemoveCsFromChunks(CsId cs, bool drop) {
  ApplyResult res;
  auto it = chunks_by_cs_.find(cs);
  if (it == chunks_by_cs_.end()) return res;
  // In chunk id order, as the freed list always came out.
  for (uint64_t id : it->second.Sorted()) {
    Chunk& ch = *chunks_.Find(id);
    std::vector<CsId> replicas = ReplicaList(ch);
    auto pos = std::find(replicas.begin(), replicas.end(), cs);
    if (pos == replicas.end() || (!drop && replicas.size() == 1)) continue;
    replicas.erase(pos);
    SetReplicas(ch, replicas);
    if (drop) res.freed.push_back({ChunkId{id}, {cs}});
  }
  return res;
}

Result<ApplyResult> MdsState::CreateNode(const CreateNodeCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.name));
  ASSIGN_OR_RETURN(const Inode* cd, Dir(c.parent));
  InodeId existing = cd->Child(c.name);
  if (existing.v) {
    const Inode& e = At(existing);
    if (c.exclusive || e.type != c.type || c.type != proto::NodeType::kFile)
      return Err(Code::kExists, "'" + c.name + "' already exists");
    ApplyResult res;
    res.attr = e.attr();
    return res;
  }
  if (c.type == proto::NodeType::kSymlink && (c.symlink_target.empty() || c.symlink_target.size() > kMaxPathBytes))
    return Err(Code::kInvalidArgument, "symlink target must be 1.." + std::to_string(kMaxPathBytes) + " bytes");
  if (c.type < proto::NodeType::kFile || c.type > proto::NodeType::kSocket)
    return Err(Code::kInvalidArgument, "unsupported node type");
  Inode& d = At(c.parent);
  Inode n;
  n.ino = next_ino_++;
  n.type = c.type;
  n.mode = c.mode & 07777;
  n.size = c.type == proto::NodeType::kSymlink ? c.symlink_target.size() : 0;
  n.mtime_ns = n.ctime_ns = n.atime_ns = now;
  n.uid = c.uid;
  if ((c.type == proto::NodeType::kCharDev || c.type == proto::NodeType::kBlockDev) && c.rdev)
    n.extra.GetOrCreate().rdev = c.rdev;
  // A set-group-ID directory hands its group down, and its bit to subdirectories.
  n.gid = (d.mode & S_ISGID) ? d.gid : c.gid;
  if ((d.mode & S_ISGID) && c.type == proto::NodeType::kDir) n.mode |= S_ISGID;
  n.nlink = c.type == proto::NodeType::kDir ? 2 : 1;
  InheritAcl(d, c, &n);
  n.chunk_size = d.chunk_size;  // inherited, as are the replica counts
  n.norm = d.norm;
  n.min = d.min;
  n.tier = d.tier;
  n.domain = d.domain;
  n.parent = c.parent;
  if (!c.symlink_target.empty()) n.extra.GetOrCreate().symlink = c.symlink_target;
  d.extra.GetOrCreate().children.Set(c.name, InodeId{n.ino});
  d.mtime_ns = d.ctime_ns = now;
  if (c.type == proto::NodeType::kDir) ++d.nlink;
  ApplyResult res;
  res.attr = n.attr();
  inodes_.Insert(std::move(n));  // last: d is not used after the table may grow
  return res;
}

void MdsState::FreeChunks(Inode& n, uint64_t first_index, std::vector<FreedChunk>* freed) {
  auto first = std::lower_bound(n.chunks.begin(), n.chunks.end(), first_index,
                                [](const ChunkRef& r, uint64_t i) { return r.index < i; });
  for (auto it = first; it != n.chunks.end(); ++it) {
    Chunk* c = chunks_.Find(it->id.v);
    if (!c) continue;
    freed->push_back({it->id, ReplicaList(*c)});
    EraseChunk(*c);
  }
  n.chunks.erase(first, n.chunks.end());
  if (n.chunks.empty()) n.chunks.shrink_to_fit();
}

void MdsState::RemoveInode(InodeId ino, std::vector<FreedChunk>* freed) {
  Inode* n = inodes_.Find(ino.v);
  if (!n) return;
  FreeChunks(*n, 0, freed);
  inodes_.Erase(ino.v);
}

Result<ApplyResult> MdsState::Unlink(const UnlinkCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.name));
  ASSIGN_OR_RETURN(const Inode* cd, Dir(c.parent));
  InodeId victim = cd->Child(c.name);
  if (!victim.v) return Err(Code::kNotFound, "no such file or directory: " + c.name);
  const Inode& v = At(victim);
  bool is_dir = v.type == proto::NodeType::kDir;
  if (c.dir && !is_dir) return Err(Code::kNotDir, "'" + c.name + "' is not a directory");
  if (!c.dir && is_dir) return Err(Code::kIsDir, "'" + c.name + "' is a directory");
  if (is_dir && v.child_count() > 0) return Err(Code::kNotEmpty, "directory '" + c.name + "' is not empty");
  Inode& d = At(c.parent);
  d.extra->children.Erase(c.name);
  d.mtime_ns = d.ctime_ns = now;
  if (is_dir) --d.nlink;
  ApplyResult res;
  if (!is_dir && v.nlink > 1) {  // one name of several: the file stays
    Inode& f = At(victim);
    --f.nlink;
    f.ctime_ns = now;
    if (f.parent == c.parent) f.parent = InodeId{};  // a hint only for a file with links
    return res;
  }
  if (c.keep_open && !is_dir) Orphan(victim, now);
  else RemoveInode(victim, &res.freed);
  return res;
}

Result<ApplyResult> MdsState::Link(const LinkCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.new_name));
  ASSIGN_OR_RETURN(const Inode* f, Find(c.ino));
  if (f->type == proto::NodeType::kDir) return Err(Code::kPermission, "hard links to directories are not allowed");
  if (f->nlink == 0) return Err(Code::kNotFound, "the file was removed");  // an orphan
  if (f->nlink >= kMaxLinks) return Err(Code::kTooManyLinks, "the file has " + std::to_string(kMaxLinks) + " links");
  ASSIGN_OR_RETURN(const Inode* d, Dir(c.new_parent));
  if (d->Child(c.new_name).v) return Err(Code::kExists, "'" + c.new_name + "' exists");
  Inode& dir = At(c.new_parent);
  dir.extra.GetOrCreate().children.Set(c.new_name, c.ino);
  dir.mtime_ns = dir.ctime_ns = now;
  Inode& n = At(c.ino);
  ++n.nlink;
  n.ctime_ns = now;
  if (!inodes_.Find(n.parent.v)) n.parent = c.new_parent;
  ApplyResult res;
  res.attr = n.attr();
  return res;
}

void MdsState::Orphan(InodeId ino, int64_t now) {
  Inode& n = At(ino);
  n.nlink = 0;
  n.ctime_ns = now;
  n.parent = InodeId{};
  orphans_.insert(ino);
}

Result<ApplyResult> MdsState::FreeOrphan(const FreeOrphanCmd& c) {
  ApplyResult res;
  if (orphans_.erase(c.ino) == 0) return res;  // freed already: nothing to do
  RemoveInode(c.ino, &res.freed);
  return res;
}

Result<ApplyResult> MdsState::Rename(const RenameCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.name));
  RETURN_IF_ERROR(CheckName(c.new_name));
  ASSIGN_OR_RETURN(const Inode* src_dir, Dir(c.parent));
  ASSIGN_OR_RETURN(const Inode* dst_dir, Dir(c.new_parent));
  InodeId moving = src_dir->Child(c.name);
  if (!moving.v) return Err(Code::kNotFound, "no such file or directory: " + c.name);
  bool moving_dir = At(moving).type == proto::NodeType::kDir;
  if (moving_dir) {
    // A directory may not move into its own subtree.
    for (InodeId p = c.new_parent;; p = At(p).parent) {
      if (p == moving) return Err(Code::kInvalidArgument, "cannot move a directory into itself");
      if (p == kRootInode) break;
    }
  }
  ApplyResult res;
  InodeId victim = dst_dir->Child(c.new_name);
  if (victim.v) {
    if (victim == moving) return res;  // rename onto itself
    const Inode& t = At(victim);
    bool t_dir = t.type == proto::NodeType::kDir;
    if (moving_dir && !t_dir) return Err(Code::kNotDir, "'" + c.new_name + "' is not a directory");
    if (!moving_dir && t_dir) return Err(Code::kIsDir, "'" + c.new_name + "' is a directory");
    if (t_dir && t.child_count() > 0) return Err(Code::kNotEmpty, "directory '" + c.new_name + "' is not empty");
    if (t_dir) --At(c.new_parent).nlink;
    At(c.new_parent).extra->children.Erase(c.new_name);
    if (!t_dir && t.nlink > 1) {  // the replaced name was one of several
      Inode& f = At(victim);
      --f.nlink;
      f.ctime_ns = now;
    } else if (c.keep_replaced && !t_dir) Orphan(victim, now);
    else RemoveInode(victim, &res.freed);
  }
  Inode& s = At(c.parent);
  s.extra->children.Erase(c.name);
  s.mtime_ns = s.ctime_ns = now;
  Inode& d = At(c.new_parent);
  d.extra.GetOrCreate().children.Set(c.new_name, moving);
  d.mtime_ns = d.ctime_ns = now;
  if (moving_dir && c.parent != c.new_parent) {
    --s.nlink;
    ++d.nlink;
  }
  Inode& m = At(moving);
  m.parent = c.new_parent;
  m.ctime_ns = now;
  return res;
}

Result<ApplyResult> MdsState::SetAttr(const SetAttrCmd& c, int64_t now) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if ((c.mask & (proto::kSetSize | proto::kGrowSize)) && cn->type != proto::NodeType::kFile)
    return Err(cn->type == proto::NodeType::kDir ? Code::kIsDir : Code::kInvalidArgument,
               "only regular files have a settable size");
  int64_t mtime_ns = c.mtime_ns;
  if ((c.mask & proto::kSetMtime) && !mtime_ns && !MsToNs(c.mtime_ms, &mtime_ns))
    return Err(Code::kInvalidArgument, "mtime " + std::to_string(c.mtime_ms) + " ms is out of range");
  Inode& n = At(c.ino);
  ApplyResult res;
  if (c.mask & proto::kSetSize) {
    // Whatever the old size: a writer may have written past the size it had reported.
    uint64_t cs = n.chunk_size;
    FreeChunks(n, (c.size + cs - 1) / cs, &res.freed);
    n.size = c.size;
    n.mtime_ns = now;
  }
  bool grew = false;
  if ((c.mask & proto::kGrowSize) && c.size > n.size) {
    n.size = c.size;
    n.mtime_ns = now;
    grew = true;
  }
  if (c.mask & proto::kSetMtime) n.mtime_ns = mtime_ns;
  if (c.mask & proto::kSetAtime) n.atime_ns = c.atime_ns;
  if (c.mask & proto::kSetMode) {
    n.mode = c.mode & 07777;
    if (n.extra) ChmodAcl(n);
  }
  if (c.mask & proto::kSetUid) n.uid = c.uid;
  if (c.mask & proto::kSetGid) n.gid = c.gid;
  // An access-time update, or a size report that changed nothing, leaves ctime alone.
  if (grew || (c.mask & ~static_cast<uint32_t>(proto::kSetAtime | proto::kGrowSize))) n.ctime_ns = now;
  res.attr = n.attr();
  return res;
}

void MdsState::ChmodAcl(Inode& n) {
  auto it = n.extra->xattrs.find(acl::kAccessXattr);
  if (it == n.extra->xattrs.end()) return;
  auto a = acl::Parse(it->second);
  if (!a.ok()) return;  // stored only after Parse accepted it
  acl::Chmod(&*a, n.mode);
  it->second = acl::Serialize(*a);
}

// A new node in a directory with a default ACL takes it (narrowed by the mode it was made
// with) as its access ACL, and a new directory takes it as its default too; without one
// the creator's umask applies (the kernel leaves it to us: FUSE_CAP_DONT_MASK).
void MdsState::InheritAcl(const Inode& dir, const CreateNodeCmd& c, Inode* n) {
  if (c.type == proto::NodeType::kSymlink) return;  // always 0777, never an ACL
  const std::string* dflt = nullptr;
  if (dir.extra) {
    auto it = dir.extra->xattrs.find(acl::kDefaultXattr);
    if (it != dir.extra->xattrs.end()) dflt = &it->second;
  }
  if (!dflt) {
    n->mode &= ~(c.umask & 0777);
    return;
  }
  auto d = acl::Parse(*dflt);
  if (!d.ok()) return;
  uint32_t mode = n->mode;
  acl::Acl access = acl::Inherit(*d, &mode);
  n->mode = mode;
  if (!access.entries.empty()) n->extra.GetOrCreate().xattrs[acl::kAccessXattr] = acl::Serialize(access);
  if (c.type == proto::NodeType::kDir) n->extra.GetOrCreate().xattrs[acl::kDefaultXattr] = *dflt;
}

// kNoSpace when setting `name` to `value` would take the inode's attributes (names and
// values, ACLs included) past kMaxXattrBytesPerInode.
Status MdsState::CheckXattrSpace(const Inode& n, const std::string& name, const std::string& value) {
  size_t total = name.size() + value.size();
  if (n.extra)
    for (const auto& [k, v] : n.extra->xattrs)
      if (k != name) total += k.size() + v.size();
  if (total > kMaxXattrBytesPerInode)
    return Err(Code::kNoSpace,
               "the extended attributes of this inode would exceed " + std::to_string(kMaxXattrBytesPerInode) + " bytes");
  return Status::Ok();
}

static bool IsNamespacedXattr(const std::string& name) {
  for (const char* ns : {"user.", "trusted.", "security."})
    if (name.size() > std::strlen(ns) && name.compare(0, std::strlen(ns), ns) == 0) return true;
  return false;
}

// A POSIX ACL (system.posix_acl_access/default): parsed and checked; an access ACL sets the
// mode's permission bits and is kept only when it says more than they do; removing one that
// is not there succeeds (as on ext4: setfacl -b of a file without one).
Result<ApplyResult> MdsState::SetAcl(const SetXattrCmd& c, int64_t now) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  bool access = c.name == acl::kAccessXattr;
  if (!access && cn->type != proto::NodeType::kDir)
    return Err(Code::kNotDir, "only a directory has a default ACL");
  std::optional<acl::Acl> a;
  if (!c.remove) {
    ASSIGN_OR_RETURN(a, acl::Parse(c.value));
    if (a->entries.empty()) a.reset();  // the kernel's way of saying "remove"
  }
  Inode& n = At(c.ino);
  if (a && access && acl::IsMinimal(*a)) {
    n.mode = acl::ModeOf(*a, n.mode);
    a.reset();
  }
  if (!a) {
    if (n.extra) n.extra->xattrs.erase(c.name);
  } else {
    std::string v = acl::Serialize(*a);
    RETURN_IF_ERROR(CheckXattrSpace(n, c.name, v));
    if (access) n.mode = acl::ModeOf(*a, n.mode);
    n.extra.GetOrCreate().xattrs[c.name] = std::move(v);
  }
  n.ctime_ns = now;
  return ApplyResult{};
}

Result<ApplyResult> MdsState::SetXattr(const SetXattrCmd& c, int64_t now) {
  if (acl::IsAclXattr(c.name)) return SetAcl(c, now);
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if (IsNamespacedXattr(c.name)) {
    Inode& n = At(c.ino);
    static const std::map<std::string, std::string> kNone;
    const auto& xattrs = n.extra ? n.extra->xattrs : kNone;
    auto it = xattrs.find(c.name);
    if (c.remove) {
      if (it == xattrs.end()) return Err(Code::kNoData, "no attribute " + c.name);
      n.extra->xattrs.erase(it);
      n.ctime_ns = now;
      return ApplyResult{};
    }
    if (c.name.size() > kMaxXattrNameBytes)
      return Err(Code::kRange, "attribute name longer than " + std::to_string(kMaxXattrNameBytes) + " bytes");
    if (c.value.size() > kMaxXattrValueBytes)
      return Err(Code::kTooBig, "attribute value larger than " + std::to_string(kMaxXattrValueBytes) + " bytes");
    if ((c.flags & 1) && it != xattrs.end()) return Err(Code::kExists, "attribute " + c.name + " exists");
    if ((c.flags & 2) && it == xattrs.end()) return Err(Code::kNoData, "no attribute " + c.name);
    RETURN_IF_ERROR(CheckXattrSpace(n, c.name, c.value));
    n.extra.GetOrCreate().xattrs[c.name] = c.value;
    n.ctime_ns = now;
    return ApplyResult{};
  }
  if (c.remove) return Err(Code::kPermission, "'" + c.name + "' cannot be removed");
  if (c.name == "replicas") {
    ASSIGN_OR_RETURN(auto nm, ParseReplicas(c.value));
    Inode& n = At(c.ino);
    n.norm = static_cast<uint8_t>(nm.first);
    n.min = static_cast<uint8_t>(nm.second);
  } else if (c.name == "chunk-size") {
    ASSIGN_OR_RETURN(uint64_t size, ParseChunkSizeValue(c.value));
    if (cn->type == proto::NodeType::kFile && !cn->chunks.empty() && size != cn->chunk_size)
      return Err(Code::kBusy, proto::kChunkSizeOfFileWithDataReason);
    At(c.ino).chunk_size = size;
  } else if (c.name == "tier") {
    ASSIGN_OR_RETURN(uint32_t tier, ParseTierValue(c.value));
    At(c.ino).tier = static_cast<uint8_t>(tier);
  } else if (c.name == "failure-domain") {
    ASSIGN_OR_RETURN(FailureDomain d, ParseFailureDomainValue(c.value));
    At(c.ino).domain = d;
  } else {
    return Err(Code::kInvalidArgument,
               "unknown attribute '" + c.name + "' (known: replicas, chunk-size, tier, failure-domain)");
  }
  At(c.ino).ctime_ns = now;
  return ApplyResult{};
}

Result<ApplyResult> MdsState::AllocChunk(const AllocChunkCmd& c) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if (cn->type != proto::NodeType::kFile) return Err(Code::kIsDir, "not a regular file");
  auto pos = std::lower_bound(cn->chunks.begin(), cn->chunks.end(), c.index,
                              [](const ChunkRef& r, uint64_t i) { return r.index < i; });
  if (pos != cn->chunks.end() && pos->index == c.index) return Err(Code::kExists, "chunk already allocated");
  if (c.replicas.empty()) return Err(Code::kInvalidArgument, "a chunk needs at least one replica");
  for (CsId cs : c.replicas)
    if (!cs_.count(cs)) return Err(Code::kNotFound, "CS#" + cs.str() + " is not in this cluster");
  ChunkId id{next_chunk_++};
  InsertChunk(ChunkInfo{id, c.ino, c.index, c.version, c.replicas});
  Inode& n = At(c.ino);
  n.chunks.insert(n.chunks.begin() + (pos - cn->chunks.begin()), ChunkRef{c.index, id});
  ApplyResult res;
  res.chunk = id;
  return res;
}

Result<ApplyResult> MdsState::UpdateChunk(const UpdateChunkCmd& c) {
  Chunk* ch = chunks_.Find(c.chunk.v);
  if (!ch) return Err(Code::kNotFound, "chunk " + c.chunk.str() + " no longer exists");
  if (c.cas && (ch->version != c.expect_version || ReplicaList(*ch) != c.expect_replicas))
    return Err(Code::kStaleVersion, "chunk " + c.chunk.str() + " changed meanwhile");
  if (c.version < ch->version)
    return Err(Code::kStaleVersion, "chunk " + c.chunk.str() + " version would go back");
  for (CsId cs : c.replicas)
    if (!cs_.count(cs)) return Err(Code::kNotFound, "CS#" + cs.str() + " is not in this cluster");
  ch->version = c.version;
  SetReplicas(*ch, c.replicas);
  return ApplyResult{};
}
Status MdsState::CheckConfig(const std::string& key, const std::string& value) {
  const ConfigParam* p = FindParam(key);
  if (!p) {
    std::string known;
    for (const auto& q : kParams) known += std::string(known.empty() ? "" : ", ") + q.key;
    return Err(Code::kInvalidArgument, "unknown parameter '" + key + "'; known: " + known);
  }
  uint64_t v = 0;
  if (!ParseU64(value, &v) || static_cast<int64_t>(v) < p->min || static_cast<int64_t>(v) > p->max)
    return Err(Code::kInvalidArgument, "invalid value '" + value + "' for " + key + ": an integer from " +
                                           std::to_string(p->min) + " to " + std::to_string(p->max));
  return Status::Ok();
}

Result<ApplyResult> MdsState::SetConfig(const SetConfigCmd& c) {
  RETURN_IF_ERROR(CheckConfig(c.key, c.value));
  uint64_t v = 0;
  ParseU64(c.value, &v);
  config_[c.key] = std::to_string(v);
  return ApplyResult{};
}

Result<ApplyResult> MdsState::SetConfigMany(const SetConfigManyCmd& c) {
  if (c.values.empty()) return Err(Code::kInvalidArgument, "no parameter to set");
  std::string bad;
  size_t n_bad = 0;
  for (const auto& [k, v] : c.values) {
    Status st = CheckConfig(k, v);
    if (st.ok()) continue;
    ++n_bad;
    bad += (bad.empty() ? "" : "; ") + st.message();
  }
  if (n_bad)
    return Err(Code::kInvalidArgument,
               std::to_string(n_bad) + " of " + std::to_string(c.values.size()) +
                   " parameters are invalid, so none was changed: " + bad);
  for (const auto& [k, v] : c.values) {
    uint64_t x = 0;
    ParseU64(v, &x);
    config_[k] = std::to_string(x);
  }
  return ApplyResult{};
}

// The image is StateImage byte for byte (format 5; format 4 as the std::map-based state
// wrote it, plus tier, domain and location), written and read field by field so 10M chunks
// need no intermediate vectors.
std::string MdsState::Encode() const {
  std::string out;
  out.reserve(64 + inodes_.size() * 112 + chunks_.size() * 60);
  Encoder e(&out);
  e.U32(kImageFormat);
  e.U64(next_ino_);
  e.U64(next_chunk_);
  e.U64(next_cs_);
  e.U32(static_cast<uint32_t>(inodes_.size()));
  inodes_.ForEach([&](const Inode& n) {  // InodeImage
    n.attr().Encode(e);
    e.U64(n.parent.v);
    e.Str(n.symlink());
    e.U32(n.norm);
    e.U32(n.min);
    e.U8(n.tier);
    e.U8(static_cast<uint8_t>(n.domain));
    if (n.children()) {
      auto sorted = n.children()->Sorted();
      e.U32(static_cast<uint32_t>(sorted.size()));
      for (const auto& [name, child] : sorted) {  // proto::DirEntry
        e.Str(name);
        e.U64(child.v);
        e.U8(static_cast<uint8_t>(At(child).type));
      }
    } else {
      e.U32(0);
    }
    if (n.extra) proto::Put(e, n.extra->xattrs);
    else e.U32(0);
  });
  e.U32(static_cast<uint32_t>(chunks_.size()));
  chunks_.ForEach([&](const Chunk& c) {  // ChunkInfo
    e.U64(c.id);
    e.U64(c.ino.v);
    e.U64(c.index);
    e.U64(c.version);
    if (c.spilled) {
      e.Ids(spilled_replicas_.at(c.id));
    } else {
      e.U32(c.n_replicas);
      for (size_t i = 0; i < c.n_replicas; ++i) e.U64(c.replicas[i]);
    }
  });
  e.U32(static_cast<uint32_t>(cs_.size()));
  for (const auto& [id, c] : cs_) c.Encode(e);
  proto::Put(e, config_);
  e.U32(static_cast<uint32_t>(events_.size()));
  for (const auto& ev : events_) ev.Encode(e);
  return out;
}

Status MdsState::InsertDecodedInode(const proto::Attr& a, InodeId parent, std::string symlink, uint32_t norm,
                                    uint32_t min, uint32_t tier, uint32_t domain, const std::vector<proto::DirEntry>& children,
                                    std::map<std::string, std::string> xattrs) {
  if (norm > UINT8_MAX || min > UINT8_MAX)
    return Err(Code::kCorrupt, "MDS snapshot: inode " + a.ino.str() + " has replicas " + std::to_string(norm));
  if (tier > kMaxTier || domain > kMaxFailureDomain)
    return Err(Code::kCorrupt, "MDS snapshot: inode " + a.ino.str() + " has tier " + std::to_string(tier) +
                                   " and failure domain " + std::to_string(domain));
  if (!a.chunk_size)  // file sizes are divided by it (and new nodes inherit it)
    return Err(Code::kCorrupt, "MDS snapshot: inode " + a.ino.str() + " has chunk size 0");
  Inode n;
  n.ino = a.ino.v;
  n.parent = parent;
  n.size = a.size;
  n.chunk_size = a.chunk_size;
  n.mtime_ns = a.mtime_ns;
  n.ctime_ns = a.ctime_ns;
  n.atime_ns = a.atime_ns;
  n.mode = a.mode;
  n.nlink = a.nlink;
  n.uid = a.uid;
  n.gid = a.gid;
  n.type = a.type;
  n.norm = static_cast<uint8_t>(norm);
  n.min = static_cast<uint8_t>(min);
  n.tier = static_cast<uint8_t>(tier);
  n.domain = static_cast<FailureDomain>(domain);
  if (a.rdev) n.extra.GetOrCreate().rdev = a.rdev;
  if (!symlink.empty()) n.extra.GetOrCreate().symlink = std::move(symlink);
  if (!xattrs.empty()) n.extra.GetOrCreate().xattrs = std::move(xattrs);
  for (const auto& e : children) {
    if (!e.ino.v || e.name.size() > UINT16_MAX)
      return Err(Code::kCorrupt, "MDS snapshot: bad entry in directory " + a.ino.str());
    n.extra.GetOrCreate().children.Set(e.name, e.ino);
  }
  // An unlinked file still open when the snapshot was taken: nlink 0, no parent.
  if (n.type == proto::NodeType::kFile && n.nlink == 0) orphans_.insert(a.ino);
  inodes_.Insert(std::move(n));
  return Status::Ok();
}

Status MdsState::InsertDecodedChunk(const ChunkInfo& c, Inode** last) {
  Inode* n = *last && (*last)->ino == c.ino.v ? *last : inodes_.Find(c.ino.v);
  if (!n) return Err(Code::kCorrupt, "MDS snapshot: chunk " + c.id.str() + " of a missing inode");
  if (!c.id.v) return Err(Code::kCorrupt, "MDS snapshot: chunk id 0");
  *last = n;
  if (n->chunks.empty() || n->chunks.back().index < c.index) {
    n->chunks.push_back({c.index, c.id});
  } else {
    auto pos = std::lower_bound(n->chunks.begin(), n->chunks.end(), c.index,
                                [](const ChunkRef& r, uint64_t i) { return r.index < i; });
    if (pos != n->chunks.end() && pos->index == c.index) pos->id = c.id;
    else n->chunks.insert(pos, ChunkRef{c.index, c.id});
  }
  InsertChunk(c);
  return Status::Ok();
}

Status MdsState::CheckDecoded() {
  if (!inodes_.Find(kRootInode.v)) return Err(Code::kCorrupt, "MDS snapshot has no root directory");
  if (!At(kRootInode).is_dir()) return Err(Code::kCorrupt, "MDS snapshot: the root is not a directory");
  // A new inode, chunk or CS takes the next id: one in use would be overwritten.
  if (inodes_.Find(0) || next_ino_ <= inodes_.LastKey() || next_chunk_ <= chunks_.LastKey() ||
      (!cs_.empty() && next_cs_ <= cs_.rbegin()->first.v))
    return Err(Code::kCorrupt, "MDS snapshot: the next inode, chunk or CS id is one in use");
  // Every chunk a file lists is there and says it belongs to that file at that index, and
  // no chunk is listed twice or by nobody (FileChunks, truncate and unlink follow the lists).
  size_t refs = 0;
  Status chunk_bad = Status::Ok();
  inodes_.ForEach([&](const Inode& n) {
    for (const ChunkRef& r : n.chunks) {
      if (!chunk_bad.ok()) return;
      ++refs;
      const Chunk* c = chunks_.Find(r.id.v);
      if (n.type != proto::NodeType::kFile || !c || c->ino.v != n.ino || c->index != r.index)
        chunk_bad = Err(Code::kCorrupt, "MDS snapshot: inode " + std::to_string(n.ino) + " lists chunk " + r.id.str() +
                                            " at index " + std::to_string(r.index) + ", which is not its own");
    }
  });
  RETURN_IF_ERROR(chunk_bad);
  if (refs != chunks_.size())
    return Err(Code::kCorrupt, "MDS snapshot: " + std::to_string(chunks_.size()) + " chunks, " +
                                   std::to_string(refs) + " of them listed by their files");
  // Encode, Unlink and Rename look entries up with At(), Unlink frees a file at its last
  // link, and Rename walks up the parent links of directories to the root: a dangling entry,
  // a link count that disagrees with the names, or a cycle would crash or hang there.
  Status bad = Status::Ok();
  size_t dirs = 0;
  auto for_each_entry = [&](auto&& fn) {
    inodes_.ForEach([&](const Inode& n) {
      if (bad.ok() && n.children())
        n.children()->ForEach([&](std::string_view name, InodeId child) {
          if (bad.ok()) fn(n, name, child);
        });
    });
  };
  inodes_.ForEach([&](const Inode& n) { dirs += n.is_dir(); });
  // Every name of a file takes one off its link count (put back below): all must end at 0.
  for_each_entry([&](const Inode& n, std::string_view name, InodeId child) {
    Inode* c = inodes_.Find(child.v);
    if (!n.is_dir())
      bad = Err(Code::kCorrupt, "MDS snapshot: inode " + std::to_string(n.ino) + " has entries but is no directory");
    else if (!c || child == kRootInode)
      bad = Err(Code::kCorrupt, "MDS snapshot: entry '" + std::string(name) + "' of directory " +
                                    std::to_string(n.ino) + " names inode " + child.str() + ", which it cannot");
    else if (c->is_dir() && c->parent.v != n.ino)
      bad = Err(Code::kCorrupt, "MDS snapshot: directory " + child.str() + " is in directory " +
                                    std::to_string(n.ino) + " but has parent " + c->parent.str());
    else if (!c->is_dir())
      --c->nlink;
  });
  if (bad.ok())
    inodes_.ForEach([&](const Inode& n) {
      if (bad.ok() && !n.is_dir() && n.nlink != 0)
        bad = Err(Code::kCorrupt, "MDS snapshot: the link count of inode " + std::to_string(n.ino) +
                                      " disagrees with the names it has");
    });
  RETURN_IF_ERROR(bad);
  for_each_entry([&](const Inode&, std::string_view, InodeId child) {
    if (Inode* c = inodes_.Find(child.v); !c->is_dir()) ++c->nlink;
  });
  // Each directory's parent lists it (above); walking down from the root must then reach
  // every directory, each once (not: a cycle of its own, or two names).
  std::vector<InodeId> todo{kRootInode};
  std::unordered_set<uint64_t> reached{kRootInode.v};
  while (!todo.empty() && bad.ok()) {
    const Inode& d = At(todo.back());
    todo.pop_back();
    if (d.children())
      d.children()->ForEach([&](std::string_view, InodeId child) {
        if (!At(child).is_dir()) return;
        if (!reached.insert(child.v).second)
          bad = Err(Code::kCorrupt, "MDS snapshot: directory " + child.str() + " has more than one name");
        else todo.push_back(child);
      });
  }
  RETURN_IF_ERROR(bad);
  if (reached.size() != dirs)
    return Err(Code::kCorrupt, "MDS snapshot: " + std::to_string(dirs) + " directories, " +
                                   std::to_string(reached.size()) + " of them reached from the root");
  return Status::Ok();
}

Status MdsState::DecodeFormat45(std::string_view image, uint32_t format) {
  MdsState s;
  s.inodes_.Clear();
  Decoder d(image);
  uint32_t n = 0;
  d.U32(&format);
  d.U64(&s.next_ino_);
  d.U64(&s.next_chunk_);
  d.U64(&s.next_cs_);
  if (!d.Count(&n)) return Err(Code::kProtocol, "malformed MDS snapshot");
  for (uint32_t i = 0; i < n; ++i) {
    InodeImage ii;
    if (format == 4) {
      InodeImageV4 o;
      if (!o.Decode(d)) return Err(Code::kProtocol, "malformed MDS snapshot");
      ii = {o.attr, o.parent, std::move(o.symlink), o.norm, o.min, 0, ii.domain, std::move(o.children), std::move(o.xattrs)};
    } else if (!ii.Decode(d)) {
      return Err(Code::kProtocol, "malformed MDS snapshot");
    }
    RETURN_IF_ERROR(s.InsertDecodedInode(ii.attr, ii.parent, std::move(ii.symlink), ii.norm, ii.min, ii.tier, ii.domain,
                                         ii.children, std::move(ii.xattrs)));
  }
  if (!d.Count(&n, 36)) return Err(Code::kProtocol, "malformed MDS snapshot");
  s.chunks_.Reserve(n);
  ChunkInfo c;
  Inode* last = nullptr;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t k = 0;
    d.U64(&c.id.v);
    d.U64(&c.ino.v);
    d.U64(&c.index);
    d.U64(&c.version);
    if (!d.Count(&k, 8)) return Err(Code::kProtocol, "malformed MDS snapshot");
    c.replicas.resize(k);
    for (auto& r : c.replicas) d.U64(&r.v);
    if (d.failed()) return Err(Code::kProtocol, "malformed MDS snapshot");
    RETURN_IF_ERROR(s.InsertDecodedChunk(c, &last));
  }
  std::vector<CsRecord> cs;
  std::vector<EventRecord> events;
  if (format == 4) {
    std::vector<CsRecordV4> old;
    if (!proto::GetAll(d, old)) return Err(Code::kProtocol, "malformed MDS snapshot");
    for (const auto& o : old) cs.push_back(o.Upgraded());
  } else if (!proto::GetAll(d, cs)) {
    return Err(Code::kProtocol, "malformed MDS snapshot");
  }
  if (!proto::GetAll(d, s.config_, events)) return Err(Code::kProtocol, "malformed MDS snapshot");
  for (auto& r : cs) s.cs_[r.id] = std::move(r);
  s.events_.assign(events.begin(), events.end());
  RETURN_IF_ERROR(s.CheckDecoded());
  *this = std::move(s);
  return Status::Ok();
}

Status MdsState::Decode(std::string_view image) {
  uint32_t format = 0;
  {
    Decoder d(image);
    if (!d.U32(&format)) return Err(Code::kProtocol, "malformed MDS snapshot");
  }
  if (format == kImageFormat || format == 4) return DecodeFormat45(image, format);
  StateImage im;
  auto convert_inodes = [&](std::vector<InodeImageV3>& old) -> Status {
    for (auto& o : old) {
      const AttrV3& a = o.attr;
      int64_t mtime_ns = 0, ctime_ns = 0;
      if (!MsToNs(a.mtime_ms, &mtime_ns) || !MsToNs(a.ctime_ms, &ctime_ns))
        return Err(Code::kCorrupt, "MDS snapshot: inode " + a.ino.str() + " has times out of range");
      proto::Attr n{a.ino, a.type, a.mode, a.size, mtime_ns, ctime_ns, a.nlink, a.chunk_size, 0, 0, mtime_ns, 0};
      im.inodes.push_back({n, o.parent, std::move(o.symlink), o.norm, o.min, 0,
                           static_cast<uint8_t>(FailureDomain::kHost), std::move(o.children), {}});
    }
    return Status::Ok();
  };
  if (format == 2) {
    StateImageOf<CsRecordV2, InodeImageV3> old;
    RETURN_IF_ERROR(proto::DecodeFromString(image, &old, "MDS snapshot"));
    im = {kImageFormat, old.next_ino, old.next_chunk, old.next_cs, {}, std::move(old.chunks),
          {}, std::move(old.config), std::move(old.events)};
    RETURN_IF_ERROR(convert_inodes(old.inodes));
    for (const auto& c : old.cs) im.cs.push_back({c.id, c.host_id, c.tier, c.addr, c.dropped, c.releasing, 0, ""});
  } else if (format == 3) {
    StateImageOf<CsRecordV4, InodeImageV3> old;
    RETURN_IF_ERROR(proto::DecodeFromString(image, &old, "MDS snapshot"));
    im = {kImageFormat, old.next_ino, old.next_chunk, old.next_cs, {}, std::move(old.chunks),
          {}, std::move(old.config), std::move(old.events)};
    for (const auto& c : old.cs) im.cs.push_back(c.Upgraded());
    RETURN_IF_ERROR(convert_inodes(old.inodes));
  } else {
    return Err(Code::kCorrupt, "MDS snapshot format " + std::to_string(format) + " is not supported");
  }
  MdsState s;
  s.inodes_.Clear();
  s.next_ino_ = im.next_ino;
  s.next_chunk_ = im.next_chunk;
  s.next_cs_ = im.next_cs;
  for (auto& ii : im.inodes)
    RETURN_IF_ERROR(s.InsertDecodedInode(ii.attr, ii.parent, std::move(ii.symlink), ii.norm, ii.min, ii.tier,
                                         ii.domain, ii.children, std::move(ii.xattrs)));
  Inode* last = nullptr;
  for (const auto& c : im.chunks) RETURN_IF_ERROR(s.InsertDecodedChunk(c, &last));
  for (auto& c : im.cs) s.cs_[c.id] = c;
  s.config_ = im.config;
  s.events_.assign(im.events.begin(), im.events.end());
  RETURN_IF_ERROR(s.CheckDecoded());
  *this = std::move(s);
  return Status::Ok();
}

}  // namespace vstorage::mds
