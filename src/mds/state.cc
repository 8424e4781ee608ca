#include "mds/state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>

#include "common/limits.h"

namespace vstorage::mds {

namespace {

// 2: CsRecord.releasing; 3: CsRecord.created_ms; 4: Attr in ns with uid, gid, atime.
constexpr uint32_t kImageFormat = 4;

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
    // Guide 3.5.7: punch hole (TRIM from VM guests) gives space back; 0 = EOPNOTSUPP. On by
    // default here: every chunk server of this project supports it.
    {"gen.do_punch_hole", 1, 0, 1},
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

struct InodeImage {
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
  root.attr.ino = kRootInode;
  root.attr.type = proto::NodeType::kDir;
  root.attr.mode = 0755;
  root.attr.nlink = 2;
  root.attr.chunk_size = kDefaultChunkSizeBytes;
  root.parent = kRootInode;
  inodes_[kRootInode] = root;
}

Result<const MdsState::Inode*> MdsState::Find(InodeId ino) const {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return Err(Code::kNotFound, "no such inode " + ino.str());
  return &it->second;
}

Result<const MdsState::Inode*> MdsState::Dir(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  if (n->attr.type != proto::NodeType::kDir)
    return Err(Code::kNotDir, "inode " + ino.str() + " is not a directory");
  return n;
}

Result<proto::Attr> MdsState::Lookup(InodeId parent, const std::string& name) const {
  ASSIGN_OR_RETURN(const Inode* d, Dir(parent));
  if (name.size() > kMaxNameBytes)  // as on ext4: too long is not "not found"
    return Err(Code::kNameTooLong, "file name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  auto it = d->children.find(name);
  if (it == d->children.end()) return Err(Code::kNotFound, "no such file or directory: " + name);
  return inodes_.at(it->second).attr;
}

Result<proto::Attr> MdsState::GetAttr(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  return n->attr;
}

Result<std::vector<proto::DirEntry>> MdsState::Readdir(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* d, Dir(ino));
  std::vector<proto::DirEntry> out;
  out.reserve(d->children.size());
  for (const auto& [name, child] : d->children)
    out.push_back({name, child, inodes_.at(child).attr.type});
  return out;
}

Result<std::string> MdsState::Readlink(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  if (n->attr.type != proto::NodeType::kSymlink)
    return Err(Code::kInvalidArgument, "inode " + ino.str() + " is not a symlink");
  return n->symlink;
}

std::string MdsState::PathOf(InodeId ino) const {
  std::vector<std::string> parts;
  for (int depth = 0; ino != kRootInode && depth < 4096; ++depth) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) return "";
    auto p = inodes_.find(it->second.parent);
    if (p == inodes_.end()) return "";
    std::string name;
    for (const auto& [n, child] : p->second.children)
      if (child == ino) name = n;
    parts.push_back(name);
    ino = it->second.parent;
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
  x["chunk-size"] = std::to_string(n->attr.chunk_size);
  for (const auto& [k, v] : n->xattrs) x[k] = v;  // namespaced: no clash with the two above
  return x;
}

Result<std::pair<uint32_t, uint32_t>> MdsState::ReplicasOf(InodeId ino) const {
  ASSIGN_OR_RETURN(const Inode* n, Find(ino));
  return std::make_pair(n->norm, n->min);
}

std::optional<ChunkInfo> MdsState::GetChunk(InodeId ino, uint64_t index) const {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  auto c = it->second.chunks.find(index);
  if (c == it->second.chunks.end()) return std::nullopt;
  return chunks_.at(c->second);
}

std::optional<ChunkInfo> MdsState::ChunkById(ChunkId id) const {
  auto it = chunks_.find(id);
  if (it == chunks_.end()) return std::nullopt;
  return it->second;
}

std::vector<ChunkInfo> MdsState::FileChunks(InodeId ino) const {
  std::vector<ChunkInfo> out;
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return out;
  for (const auto& [index, id] : it->second.chunks) out.push_back(chunks_.at(id));
  return out;
}

void MdsState::ForEachChunk(const std::function<void(const ChunkInfo&)>& fn) const {
  for (const auto& [id, c] : chunks_) fn(c);
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
  for (const auto& [ino, n] : inodes_)
    if (n.attr.type == proto::NodeType::kFile) {
      ++c.files;
      c.file_bytes += n.attr.size;
    }
  c.chunks = chunks_.size();
  for (const auto& [id, ch] : chunks_) c.chunk_replicas += ch.replicas.size();
  return c;
}

Result<ApplyResult> MdsState::Apply(const Command& cmd) {
  // Records written before a field was appended to their command still replay.
  auto decode = [&](auto* body) { return proto::DecodeStoredRecord(cmd.body, body, "journal command"); };
  // File timestamps are nanoseconds; records written before time_ns carry milliseconds.
  const int64_t now_ns = cmd.time_ns ? cmd.time_ns : cmd.time_ms * 1000000;
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
      ApplyResult res;
      for (auto& [id, ch] : chunks_) {
        auto pos = std::find(ch.replicas.begin(), ch.replicas.end(), c.cs);
        if (pos == ch.replicas.end()) continue;
        ch.replicas.erase(pos);
        res.freed.push_back({id, {c.cs}});
      }
      return res;
    }
    case CommandType::kRemoveCsReplicas: {
      RemoveCsReplicasCmd c;
      RETURN_IF_ERROR(decode(&c));
      if (!cs_.count(c.cs)) return Err(Code::kNotFound, "CS#" + c.cs.str() + " is not in this cluster");
      for (auto& [id, ch] : chunks_) {
        auto pos = std::find(ch.replicas.begin(), ch.replicas.end(), c.cs);
        if (pos == ch.replicas.end() || ch.replicas.size() == 1) continue;
        ch.replicas.erase(pos);
      }
      return ApplyResult{};
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

Result<ApplyResult> MdsState::CreateNode(const CreateNodeCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.name));
  ASSIGN_OR_RETURN(const Inode* cd, Dir(c.parent));
  Inode& d = inodes_.at(c.parent);
  auto existing = cd->children.find(c.name);
  if (existing != cd->children.end()) {
    const Inode& e = inodes_.at(existing->second);
    if (c.exclusive || e.attr.type != c.type || c.type != proto::NodeType::kFile)
      return Err(Code::kExists, "'" + c.name + "' already exists");
    ApplyResult res;
    res.attr = e.attr;
    return res;
  }
  if (c.type == proto::NodeType::kSymlink && (c.symlink_target.empty() || c.symlink_target.size() > kMaxPathBytes))
    return Err(Code::kInvalidArgument, "symlink target must be 1.." + std::to_string(kMaxPathBytes) + " bytes");
  if (c.type < proto::NodeType::kFile || c.type > proto::NodeType::kSocket)
    return Err(Code::kInvalidArgument, "unsupported node type");
  Inode n;
  n.attr.ino = InodeId{next_ino_++};
  n.attr.type = c.type;
  n.attr.mode = c.mode & 07777;
  n.attr.size = c.type == proto::NodeType::kSymlink ? c.symlink_target.size() : 0;
  n.attr.mtime_ns = n.attr.ctime_ns = n.attr.atime_ns = now;
  n.attr.uid = c.uid;
  if (c.type == proto::NodeType::kCharDev || c.type == proto::NodeType::kBlockDev) n.attr.rdev = c.rdev;
  // A set-group-ID directory hands its group down, and its bit to subdirectories.
  n.attr.gid = (d.attr.mode & S_ISGID) ? d.attr.gid : c.gid;
  if ((d.attr.mode & S_ISGID) && c.type == proto::NodeType::kDir) n.attr.mode |= S_ISGID;
  n.attr.nlink = c.type == proto::NodeType::kDir ? 2 : 1;
  n.attr.chunk_size = d.attr.chunk_size;  // inherited, as are the replica counts
  n.norm = d.norm;
  n.min = d.min;
  n.parent = c.parent;
  n.symlink = c.symlink_target;
  d.children[c.name] = n.attr.ino;
  d.attr.mtime_ns = d.attr.ctime_ns = now;
  if (c.type == proto::NodeType::kDir) ++d.attr.nlink;
  ApplyResult res;
  res.attr = n.attr;
  inodes_[n.attr.ino] = std::move(n);
  return res;
}

void MdsState::FreeChunks(Inode& n, uint64_t first_index, std::vector<FreedChunk>* freed) {
  for (auto it = n.chunks.lower_bound(first_index); it != n.chunks.end();) {
    auto c = chunks_.find(it->second);
    if (c != chunks_.end()) {
      freed->push_back({c->first, c->second.replicas});
      chunks_.erase(c);
    }
    it = n.chunks.erase(it);
  }
}

void MdsState::RemoveInode(InodeId ino, std::vector<FreedChunk>* freed) {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  FreeChunks(it->second, 0, freed);
  inodes_.erase(it);
}

Result<ApplyResult> MdsState::Unlink(const UnlinkCmd& c, int64_t now) {
  RETURN_IF_ERROR(CheckName(c.name));
  ASSIGN_OR_RETURN(const Inode* cd, Dir(c.parent));
  auto it = cd->children.find(c.name);
  if (it == cd->children.end()) return Err(Code::kNotFound, "no such file or directory: " + c.name);
  InodeId victim = it->second;
  const Inode& v = inodes_.at(victim);
  bool is_dir = v.attr.type == proto::NodeType::kDir;
  if (c.dir && !is_dir) return Err(Code::kNotDir, "'" + c.name + "' is not a directory");
  if (!c.dir && is_dir) return Err(Code::kIsDir, "'" + c.name + "' is a directory");
  if (is_dir && !v.children.empty()) return Err(Code::kNotEmpty, "directory '" + c.name + "' is not empty");
  Inode& d = inodes_.at(c.parent);
  d.children.erase(c.name);
  d.attr.mtime_ns = d.attr.ctime_ns = now;
  if (is_dir) --d.attr.nlink;
  ApplyResult res;
  if (!is_dir && v.attr.nlink > 1) {  // one name of several: the file stays
    Inode& f = inodes_.at(victim);
    --f.attr.nlink;
    f.attr.ctime_ns = now;
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
  if (f->attr.type == proto::NodeType::kDir) return Err(Code::kPermission, "hard links to directories are not allowed");
  if (f->attr.nlink == 0) return Err(Code::kNotFound, "the file was removed");  // an orphan
  if (f->attr.nlink >= kMaxLinks) return Err(Code::kTooManyLinks, "the file has " + std::to_string(kMaxLinks) + " links");
  ASSIGN_OR_RETURN(const Inode* d, Dir(c.new_parent));
  if (d->children.count(c.new_name)) return Err(Code::kExists, "'" + c.new_name + "' exists");
  Inode& dir = inodes_.at(c.new_parent);
  dir.children[c.new_name] = c.ino;
  dir.attr.mtime_ns = dir.attr.ctime_ns = now;
  Inode& n = inodes_.at(c.ino);
  ++n.attr.nlink;
  n.attr.ctime_ns = now;
  if (!inodes_.count(n.parent)) n.parent = c.new_parent;
  ApplyResult res;
  res.attr = n.attr;
  return res;
}

void MdsState::Orphan(InodeId ino, int64_t now) {
  Inode& n = inodes_.at(ino);
  n.attr.nlink = 0;
  n.attr.ctime_ns = now;
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
  auto it = src_dir->children.find(c.name);
  if (it == src_dir->children.end()) return Err(Code::kNotFound, "no such file or directory: " + c.name);
  InodeId moving = it->second;
  bool moving_dir = inodes_.at(moving).attr.type == proto::NodeType::kDir;
  if (moving_dir) {
    // A directory may not move into its own subtree.
    for (InodeId p = c.new_parent;; p = inodes_.at(p).parent) {
      if (p == moving) return Err(Code::kInvalidArgument, "cannot move a directory into itself");
      if (p == kRootInode) break;
    }
  }
  ApplyResult res;
  auto dst = dst_dir->children.find(c.new_name);
  if (dst != dst_dir->children.end()) {
    if (dst->second == moving) return res;  // rename onto itself
    const Inode& t = inodes_.at(dst->second);
    bool t_dir = t.attr.type == proto::NodeType::kDir;
    if (moving_dir && !t_dir) return Err(Code::kNotDir, "'" + c.new_name + "' is not a directory");
    if (!moving_dir && t_dir) return Err(Code::kIsDir, "'" + c.new_name + "' is a directory");
    if (t_dir && !t.children.empty()) return Err(Code::kNotEmpty, "directory '" + c.new_name + "' is not empty");
    InodeId victim = dst->second;
    if (t_dir) --inodes_.at(c.new_parent).attr.nlink;
    inodes_.at(c.new_parent).children.erase(c.new_name);
    if (!t_dir && t.attr.nlink > 1) {  // the replaced name was one of several
      Inode& f = inodes_.at(victim);
      --f.attr.nlink;
      f.attr.ctime_ns = now;
    } else if (c.keep_replaced && !t_dir) Orphan(victim, now);
    else RemoveInode(victim, &res.freed);
  }
  Inode& s = inodes_.at(c.parent);
  s.children.erase(c.name);
  s.attr.mtime_ns = s.attr.ctime_ns = now;
  Inode& d = inodes_.at(c.new_parent);
  d.children[c.new_name] = moving;
  d.attr.mtime_ns = d.attr.ctime_ns = now;
  if (moving_dir && c.parent != c.new_parent) {
    --s.attr.nlink;
    ++d.attr.nlink;
  }
  Inode& m = inodes_.at(moving);
  m.parent = c.new_parent;
  m.attr.ctime_ns = now;
  return res;
}

Result<ApplyResult> MdsState::SetAttr(const SetAttrCmd& c, int64_t now) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if ((c.mask & (proto::kSetSize | proto::kGrowSize)) && cn->attr.type != proto::NodeType::kFile)
    return Err(cn->attr.type == proto::NodeType::kDir ? Code::kIsDir : Code::kInvalidArgument,
               "only regular files have a settable size");
  Inode& n = inodes_.at(c.ino);
  ApplyResult res;
  if (c.mask & proto::kSetSize) {
    // Whatever the old size: a writer may have written past the size it had reported.
    uint64_t cs = n.attr.chunk_size;
    FreeChunks(n, (c.size + cs - 1) / cs, &res.freed);
    n.attr.size = c.size;
    n.attr.mtime_ns = now;
  }
  bool grew = false;
  if ((c.mask & proto::kGrowSize) && c.size > n.attr.size) {
    n.attr.size = c.size;
    n.attr.mtime_ns = now;
    grew = true;
  }
  if (c.mask & proto::kSetMtime) n.attr.mtime_ns = c.mtime_ns ? c.mtime_ns : c.mtime_ms * 1000000;
  if (c.mask & proto::kSetAtime) n.attr.atime_ns = c.atime_ns;
  if (c.mask & proto::kSetMode) n.attr.mode = c.mode & 07777;
  if (c.mask & proto::kSetUid) n.attr.uid = c.uid;
  if (c.mask & proto::kSetGid) n.attr.gid = c.gid;
  // An access-time update, or a size report that changed nothing, leaves ctime alone.
  if (grew || (c.mask & ~static_cast<uint32_t>(proto::kSetAtime | proto::kGrowSize))) n.attr.ctime_ns = now;
  res.attr = n.attr;
  return res;
}

static bool IsNamespacedXattr(const std::string& name) {
  for (const char* ns : {"user.", "trusted.", "security."})
    if (name.size() > std::strlen(ns) && name.compare(0, std::strlen(ns), ns) == 0) return true;
  return false;
}

Result<ApplyResult> MdsState::SetXattr(const SetXattrCmd& c, int64_t now) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if (IsNamespacedXattr(c.name)) {
    Inode& n = inodes_.at(c.ino);
    auto it = n.xattrs.find(c.name);
    if (c.remove) {
      if (it == n.xattrs.end()) return Err(Code::kNoData, "no attribute " + c.name);
      n.xattrs.erase(it);
      n.attr.ctime_ns = now;
      return ApplyResult{};
    }
    if (c.name.size() > kMaxXattrNameBytes)
      return Err(Code::kRange, "attribute name longer than " + std::to_string(kMaxXattrNameBytes) + " bytes");
    if (c.value.size() > kMaxXattrValueBytes)
      return Err(Code::kTooBig, "attribute value larger than " + std::to_string(kMaxXattrValueBytes) + " bytes");
    if ((c.flags & 1) && it != n.xattrs.end()) return Err(Code::kExists, "attribute " + c.name + " exists");
    if ((c.flags & 2) && it == n.xattrs.end()) return Err(Code::kNoData, "no attribute " + c.name);
    size_t total = c.name.size() + c.value.size();
    for (const auto& [k, v] : n.xattrs)
      if (k != c.name) total += k.size() + v.size();
    if (total > kMaxXattrBytesPerInode)
      return Err(Code::kNoSpace, "the extended attributes of this inode would exceed " +
                                     std::to_string(kMaxXattrBytesPerInode) + " bytes");
    n.xattrs[c.name] = c.value;
    n.attr.ctime_ns = now;
    return ApplyResult{};
  }
  if (c.remove) return Err(Code::kPermission, "'" + c.name + "' cannot be removed");
  if (c.name == "replicas") {
    ASSIGN_OR_RETURN(auto nm, ParseReplicas(c.value));
    Inode& n = inodes_.at(c.ino);
    n.norm = nm.first;
    n.min = nm.second;
  } else if (c.name == "chunk-size") {
    ASSIGN_OR_RETURN(uint64_t size, ParseChunkSizeValue(c.value));
    if (cn->attr.type == proto::NodeType::kFile && !cn->chunks.empty() && size != cn->attr.chunk_size)
      return Err(Code::kBusy, proto::kChunkSizeOfFileWithDataReason);
    inodes_.at(c.ino).attr.chunk_size = size;
  } else {
    return Err(Code::kInvalidArgument, "unknown attribute '" + c.name + "' (known: replicas, chunk-size)");
  }
  inodes_.at(c.ino).attr.ctime_ns = now;
  return ApplyResult{};
}

Result<ApplyResult> MdsState::AllocChunk(const AllocChunkCmd& c) {
  ASSIGN_OR_RETURN(const Inode* cn, Find(c.ino));
  if (cn->attr.type != proto::NodeType::kFile) return Err(Code::kIsDir, "not a regular file");
  if (cn->chunks.count(c.index)) return Err(Code::kExists, "chunk already allocated");
  if (c.replicas.empty()) return Err(Code::kInvalidArgument, "a chunk needs at least one replica");
  for (CsId cs : c.replicas)
    if (!cs_.count(cs)) return Err(Code::kNotFound, "CS#" + cs.str() + " is not in this cluster");
  ChunkInfo ch;
  ch.id = ChunkId{next_chunk_++};
  ch.ino = c.ino;
  ch.index = c.index;
  ch.version = c.version;
  ch.replicas = c.replicas;
  inodes_.at(c.ino).chunks[c.index] = ch.id;
  chunks_[ch.id] = ch;
  ApplyResult res;
  res.chunk = ch.id;
  return res;
}

Result<ApplyResult> MdsState::UpdateChunk(const UpdateChunkCmd& c) {
  auto it = chunks_.find(c.chunk);
  if (it == chunks_.end()) return Err(Code::kNotFound, "chunk " + c.chunk.str() + " no longer exists");
  if (c.cas && (it->second.version != c.expect_version || it->second.replicas != c.expect_replicas))
    return Err(Code::kStaleVersion, "chunk " + c.chunk.str() + " changed meanwhile");
  if (c.version < it->second.version)
    return Err(Code::kStaleVersion, "chunk " + c.chunk.str() + " version would go back");
  for (CsId cs : c.replicas)
    if (!cs_.count(cs)) return Err(Code::kNotFound, "CS#" + cs.str() + " is not in this cluster");
  it->second.version = c.version;
  it->second.replicas = c.replicas;
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

std::string MdsState::Encode() const {
  StateImage im;
  im.next_ino = next_ino_;
  im.next_chunk = next_chunk_;
  im.next_cs = next_cs_;
  for (const auto& [ino, n] : inodes_) {
    InodeImage ii{n.attr, n.parent, n.symlink, n.norm, n.min, {}, n.xattrs};
    for (const auto& [name, child] : n.children) ii.children.push_back({name, child, inodes_.at(child).attr.type});
    im.inodes.push_back(std::move(ii));
  }
  for (const auto& [id, c] : chunks_) im.chunks.push_back(c);
  for (const auto& [id, c] : cs_) im.cs.push_back(c);
  im.config = config_;
  im.events.assign(events_.begin(), events_.end());
  return proto::EncodeToString(im);
}

Status MdsState::Decode(std::string_view image) {
  StateImage im;
  uint32_t format = 0;
  {
    Decoder d(image);
    if (!d.U32(&format)) return Err(Code::kProtocol, "malformed MDS snapshot");
  }
  auto convert_inodes = [&](std::vector<InodeImageV3>& old) {
    for (auto& o : old) {
      const AttrV3& a = o.attr;
      proto::Attr n{a.ino, a.type, a.mode, a.size, a.mtime_ms * 1000000, a.ctime_ms * 1000000, a.nlink, a.chunk_size,
                    0, 0, a.mtime_ms * 1000000, 0};
      im.inodes.push_back({n, o.parent, std::move(o.symlink), o.norm, o.min, std::move(o.children), {}});
    }
  };
  if (format == 2) {
    StateImageOf<CsRecordV2, InodeImageV3> old;
    RETURN_IF_ERROR(proto::DecodeFromString(image, &old, "MDS snapshot"));
    im = {kImageFormat, old.next_ino, old.next_chunk, old.next_cs, {}, std::move(old.chunks),
          {}, std::move(old.config), std::move(old.events)};
    convert_inodes(old.inodes);
    for (const auto& c : old.cs) im.cs.push_back({c.id, c.host_id, c.tier, c.addr, c.dropped, c.releasing, 0});
  } else if (format == 3) {
    StateImageOf<CsRecord, InodeImageV3> old;
    RETURN_IF_ERROR(proto::DecodeFromString(image, &old, "MDS snapshot"));
    im = {kImageFormat, old.next_ino, old.next_chunk, old.next_cs, {}, std::move(old.chunks),
          std::move(old.cs), std::move(old.config), std::move(old.events)};
    convert_inodes(old.inodes);
  } else if (format == kImageFormat) {
    RETURN_IF_ERROR(proto::DecodeFromString(image, &im, "MDS snapshot"));
  } else {
    return Err(Code::kCorrupt, "MDS snapshot format " + std::to_string(format) + " is not supported");
  }
  MdsState s;
  s.inodes_.clear();
  s.next_ino_ = im.next_ino;
  s.next_chunk_ = im.next_chunk;
  s.next_cs_ = im.next_cs;
  for (auto& ii : im.inodes) {
    Inode n;
    n.attr = ii.attr;
    n.parent = ii.parent;
    n.symlink = ii.symlink;
    n.norm = ii.norm;
    n.min = ii.min;
    for (const auto& e : ii.children) n.children[e.name] = e.ino;
    n.xattrs = std::move(ii.xattrs);
    // An unlinked file still open when the snapshot was taken: nlink 0, no parent.
    if (n.attr.type == proto::NodeType::kFile && n.attr.nlink == 0) s.orphans_.insert(n.attr.ino);
    s.inodes_[n.attr.ino] = std::move(n);
  }
  for (auto& c : im.chunks) {
    auto it = s.inodes_.find(c.ino);
    if (it == s.inodes_.end()) return Err(Code::kCorrupt, "MDS snapshot: chunk " + c.id.str() + " of a missing inode");
    it->second.chunks[c.index] = c.id;
    s.chunks_[c.id] = c;
  }
  for (auto& c : im.cs) s.cs_[c.id] = c;
  s.config_ = im.config;
  s.events_.assign(im.events.begin(), im.events.end());
  if (!s.inodes_.count(kRootInode)) return Err(Code::kCorrupt, "MDS snapshot has no root directory");
  *this = std::move(s);
  return Status::Ok();
}

}  // namespace vstorage::mds
