#define FUSE_USE_VERSION 34
#include "fuse/mount.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/posix_acl.h"
#include "fuse/mount_point.h"
#include "rpc/payload_pool.h"
#include "vstorage/client.h"

namespace vstorage::fuse {

namespace {

// Without invalidations from the MDS (an older MDS, or the watch failing), attributes are
// not cached: another mount may change a file's size at any time.
constexpr double kEntryTimeoutS = 1.0;
constexpr double kAttrTimeoutS = 0.0;
// With them (kWatchChanges: the MDS tells this mount of every change another client makes,
// mds/invalidation.h) names and attributes are cached this long. The timeout only bounds
// what an invalidation racing a reply in flight could leave behind.
constexpr double kWatchedTimeoutS = 30.0;
constexpr uint32_t kWatchWaitMs = 10000;  // one long poll
constexpr int kWatchRetryMs = 200;        // after a failed poll
constexpr size_t kMaxNamesPerInode = 8;   // names remembered per inode, for a resync
constexpr size_t kMaxListedDirs = 1024;   // directories whose every name this mount knows
constexpr size_t kMaxNamesPerListedDir = 100000;
constexpr size_t kMaxXattrInodes = 4096;  // inodes whose extended attributes are cached
constexpr size_t kMaxDirAttrs = 4096;     // directories whose attributes are cached
constexpr unsigned kMaxWrite = 1u << 20;
constexpr unsigned kReadAheadKb = 8192;
// The cluster parameters set-attr/get-attr reach as "vstorage.<name>" (guide 3.5.1).
const char* kVstorageAttrs[] = {"replicas", "chunk-size", "tier", "failure-domain"};

// What the kernel caches and how long (the mount's userdata).
//
// Invalidations arrive on the watch thread. `epoch` moves before each batch is applied: a
// reply whose request started in an earlier epoch may carry what was just invalidated, so
// it is cached only briefly. `known` counts the kernel's lookups of each inode (FUSE's
// nlookup, ended by forget) with the names it was looked up by, so that a resync (the MDS
// lost track of what we missed) can invalidate all of it.
struct Mount {
  Client* client = nullptr;
  fuse_session* se = nullptr;
  std::atomic<bool> watching{false};
  // The kernel agreed to POSIX ACLs (FUSE_CAP_POSIX_ACL): it checks them on access, we keep
  // system.posix_acl_* and the MDS applies the umask (FUSE_CAP_DONT_MASK). Set in OpInit.
  std::atomic<bool> acls{false};
  std::atomic<uint64_t> epoch{0};
  std::atomic<bool> readdir_plus{true};  // the MDS answers kReaddirPlus
  std::atomic<bool> stop_watch{false};

  struct Known {
    uint64_t nlookup = 0;
    std::deque<std::pair<fuse_ino_t, std::string>> names;
  };
  std::mutex mu;  // guards known
  std::unordered_map<fuse_ino_t, Known> known;

  std::mutex notify_mu;  // held while notifying; the session is destroyed only after `stopping`
  bool stopping = false;

  // Directories whose names this mount knows all of (it made them, or listed them), kept
  // as a superset of the truth: a name another client touched is added (the MDS is asked
  // about it), one removed here is taken out. A lookup of a name not in such a set is
  // answered ENOENT without asking the MDS (a create's lookup, mostly). Only while
  // watching; a resync forgets them all.
  std::mutex dir_mu;  // guards dirs; the watch thread moves `epoch` under it
  std::unordered_map<fuse_ino_t, std::unordered_set<std::string>> dirs;
  // Moves (under dir_mu) with every name change, ours or another client's: a listing asked
  // for before one may lack it.
  std::atomic<uint64_t> dir_epoch{0};

  // A listing the MDS gave in a request that started at dir_epoch `since`: kept if no name
  // changed meanwhile.
  void Listed(fuse_ino_t dir, std::unordered_set<std::string> names, uint64_t since) {
    std::lock_guard<std::mutex> l(dir_mu);
    if (!watching.load() || dir_epoch.load() != since || names.size() > kMaxNamesPerListedDir) return;
    if (dirs.size() >= kMaxListedDirs) dirs.clear();
    dirs[dir] = std::move(names);
  }
  bool KnownAbsent(fuse_ino_t dir, const char* name) {
    if (!watching.load()) return false;
    std::lock_guard<std::mutex> l(dir_mu);
    auto it = dirs.find(dir);
    return it != dirs.end() && it->second.count(name) == 0;
  }
  // Called before and after each of our own operations that may make the name.
  void MayExist(fuse_ino_t dir, const std::string& name) {
    std::lock_guard<std::mutex> l(dir_mu);
    MayExistLocked(dir, name);
  }
  void MayExistLocked(fuse_ino_t dir, const std::string& name) {
    dir_epoch.fetch_add(1);
    auto it = dirs.find(dir);
    if (it == dirs.end()) return;
    if (it->second.size() >= kMaxNamesPerListedDir) dirs.erase(it);
    else it->second.insert(name);
  }
  void Removed(fuse_ino_t dir, const char* name) {
    std::lock_guard<std::mutex> l(dir_mu);
    dir_epoch.fetch_add(1);
    auto it = dirs.find(dir);
    if (it != dirs.end()) it->second.erase(name);
  }

  // The extended attributes (user., trusted., security.) of inodes as the MDS gave them,
  // kept only while watching. The kernel asks for security.capability before every write
  // to a FUSE file, which would otherwise cost an MDS round trip per write. An entry goes
  // with an invalidation of its inode (another client's setxattr publishes one), with a
  // resync, and before and after each of our own changes of the inode's attributes.
  using Xattrs = std::map<std::string, std::string>;
  std::mutex xattr_mu;  // guards xattrs; xattr_epoch moves under it with every drop
  std::unordered_map<fuse_ino_t, Xattrs> xattrs;
  std::atomic<uint64_t> xattr_epoch{0};

  std::optional<Xattrs> CachedXattrs(fuse_ino_t ino) {
    if (!watching.load()) return std::nullopt;
    std::lock_guard<std::mutex> l(xattr_mu);
    auto it = xattrs.find(ino);
    if (it == xattrs.end()) return std::nullopt;
    return it->second;
  }
  // What the MDS answered to a request that started at xattr_epoch `since`: kept if
  // nothing was dropped meanwhile.
  void XattrsRead(fuse_ino_t ino, const Xattrs& x, uint64_t since) {
    std::lock_guard<std::mutex> l(xattr_mu);
    if (!watching.load() || xattr_epoch.load() != since) return;
    if (xattrs.size() >= kMaxXattrInodes) xattrs.clear();
    xattrs[ino] = x;
  }
  void DropXattrs(fuse_ino_t ino, bool all) {
    std::lock_guard<std::mutex> l(xattr_mu);
    xattr_epoch.fetch_add(1);
    if (all) xattrs.clear();
    else xattrs.erase(ino);
  }

  // Attributes of directories as the MDS last gave them, kept only while watching. The
  // kernel asks for a directory's attributes after every create or unlink in it (it drops
  // them on each change, and default_permissions needs the mode for the next one): an MDS
  // round trip per create. The MDS returns the parent's attributes with a create or an
  // unlink (CreateReply, UnlinkReply), and the kernel's next getattr is answered from here.
  // Of two answers for one directory the one with the later ctime stays (the master's
  // command times only grow). An entry goes with an invalidation of its inode (another
  // client's change), a resync, and before and after each of our own changes of it that
  // does not return its new attributes; dattr_epoch moves with every drop, and an answer to
  // a request that started before a drop is not kept.
  std::mutex dattr_mu;  // guards dir_attrs
  std::unordered_map<fuse_ino_t, proto::Attr> dir_attrs;
  std::atomic<uint64_t> dattr_epoch{0};

  std::optional<proto::Attr> CachedDirAttr(fuse_ino_t ino) {
    if (!watching.load()) return std::nullopt;
    std::lock_guard<std::mutex> l(dattr_mu);
    auto it = dir_attrs.find(ino);
    if (it == dir_attrs.end()) return std::nullopt;
    return it->second;
  }
  void DirAttrRead(const proto::Attr& a, uint64_t since) {
    if (a.type != proto::NodeType::kDir) return;
    std::lock_guard<std::mutex> l(dattr_mu);
    if (!watching.load() || dattr_epoch.load() != since) return;
    if (dir_attrs.size() >= kMaxDirAttrs) dir_attrs.clear();
    auto [it, fresh] = dir_attrs.try_emplace(a.ino.v, a);
    if (!fresh && it->second.ctime_ns <= a.ctime_ns) it->second = a;
  }
  void DropDirAttr(fuse_ino_t ino, bool all) {
    std::lock_guard<std::mutex> l(dattr_mu);
    dattr_epoch.fetch_add(1);
    if (all) dir_attrs.clear();
    else dir_attrs.erase(ino);
  }

  void Remember(fuse_ino_t ino, fuse_ino_t parent, const char* name) {
    std::lock_guard<std::mutex> l(mu);
    Known& k = known[ino];
    ++k.nlookup;
    for (const auto& n : k.names)
      if (n.first == parent && n.second == name) return;
    if (k.names.size() >= kMaxNamesPerInode) k.names.pop_front();
    k.names.emplace_back(parent, name);
  }
  void Forget(fuse_ino_t ino, uint64_t n) {
    std::lock_guard<std::mutex> l(mu);
    auto it = known.find(ino);
    if (it == known.end()) return;
    if (it->second.nlookup <= n) known.erase(it);
    else it->second.nlookup -= n;
  }
};

Mount* M(fuse_req_t req) { return static_cast<Mount*>(fuse_req_userdata(req)); }
Client* Cl(fuse_req_t req) { return M(req)->client; }

struct Timeouts {
  double entry_s, attr_s;
};
// How long a reply to a request that started in epoch `since` may be cached.
Timeouts CacheFor(fuse_req_t req, uint64_t since) {
  Mount* m = M(req);
  if (m->watching.load() && m->epoch.load() == since) return {kWatchedTimeoutS, kWatchedTimeoutS};
  return {kEntryTimeoutS, kAttrTimeoutS};
}
uint64_t Epoch(fuse_req_t req) { return M(req)->epoch.load(); }
File* Fh(fuse_file_info* fi) { return reinterpret_cast<File*>(fi->fh); }
InodeId Ino(fuse_ino_t i) { return InodeId{i}; }

int Errno(const Status& st) { return CodeToErrno(st.code()); }

void FillStat(const proto::Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = a.ino.v;
  mode_t type = S_IFREG;
  switch (a.type) {
    case proto::NodeType::kDir: type = S_IFDIR; break;
    case proto::NodeType::kSymlink: type = S_IFLNK; break;
    case proto::NodeType::kFifo: type = S_IFIFO; break;
    case proto::NodeType::kCharDev: type = S_IFCHR; break;
    case proto::NodeType::kBlockDev: type = S_IFBLK; break;
    case proto::NodeType::kSocket: type = S_IFSOCK; break;
    case proto::NodeType::kFile: break;
  }
  st->st_mode = type | (a.mode & 07777);
  st->st_rdev = static_cast<dev_t>(a.rdev);
  st->st_nlink = a.nlink;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = kMaxWrite;
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  auto ts = [](int64_t ns) {
    timespec t;
    t.tv_sec = static_cast<time_t>(ns / 1000000000);
    t.tv_nsec = static_cast<long>(ns % 1000000000);
    return t;
  };
  st->st_mtim = ts(a.mtime_ns);
  st->st_ctim = ts(a.ctime_ns);
  st->st_atim = ts(a.atime_ns);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
int64_t Ns(const timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

fuse_entry_param EntryOf(fuse_req_t req, const proto::Attr& a, uint64_t since) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = a.ino.v;
  Timeouts t = CacheFor(req, since);
  e.attr_timeout = t.attr_s;
  e.entry_timeout = t.entry_s;
  FillStat(a, &e.attr);
  return e;
}

// `since`: Epoch(req) before the MDS was asked.
void ReplyEntry(fuse_req_t req, fuse_ino_t parent, const char* name, const Result<proto::Attr>& a, uint64_t since) {
  if (!a.ok()) {
    fuse_reply_err(req, Errno(a.status()));
    return;
  }
  fuse_entry_param e = EntryOf(req, *a, since);
  Mount* m = M(req);
  // Counted before the kernel can forget it; taken back if the reply did not arrive.
  m->Remember(e.ino, parent, name);
  if (fuse_reply_entry(req, &e) != 0) m->Forget(e.ino, 1);
}

void ReplyAttr(fuse_req_t req, const Result<proto::Attr>& a, uint64_t since) {
  if (!a.ok()) {
    fuse_reply_err(req, Errno(a.status()));
    return;
  }
  struct stat st;
  FillStat(*a, &st);
  fuse_reply_attr(req, &st, CacheFor(req, since).attr_s);
}

void ReplyStatus(fuse_req_t req, const Status& st) { fuse_reply_err(req, st.ok() ? 0 : Errno(st)); }

void OpInit(void* userdata, fuse_conn_info* conn) {
  conn->max_write = kMaxWrite;
  conn->max_readahead = kReadAheadKb * 1024;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // Each mount keeps no dirty data of its own: writes go to the chunk servers at once, so
  // another mount sees them (and leases stay meaningful).
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // POSIX ACLs want both: the umask must not be applied where a default ACL is inherited.
  constexpr unsigned kAcl = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  if ((conn->capable & kAcl) == kAcl) {
    conn->want |= kAcl;
    static_cast<Mount*>(userdata)->acls = true;
  }
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  // A name too long is the MDS's to refuse (ENAMETOOLONG, not ENOENT).
  if (std::strlen(name) <= kMaxNameBytes && M(req)->KnownAbsent(parent, name)) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  uint64_t since = Epoch(req);
  ReplyEntry(req, parent, name, Cl(req)->Lookup(Ino(parent), name), since);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  M(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) M(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Mount* m = M(req);
  if (auto a = m->CachedDirAttr(ino)) {
    struct stat st;
    FillStat(*a, &st);
    fuse_reply_attr(req, &st, kWatchedTimeoutS);
    return;
  }
  uint64_t since = Epoch(req);
  uint64_t dattr_since = m->dattr_epoch.load();
  auto a = Cl(req)->GetAttr(Ino(ino));
  if (a.ok()) m->DirAttrRead(*a, dattr_since);
  ReplyAttr(req, a, since);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Client* c = Cl(req);
  uint64_t since = Epoch(req);
  uint32_t mask = 0;
  int64_t mtime = 0, atime = 0;
  if (to_set & FUSE_SET_ATTR_SIZE) mask |= proto::kSetSize;
  if (to_set & FUSE_SET_ATTR_MODE) mask |= proto::kSetMode;
  if (to_set & FUSE_SET_ATTR_UID) mask |= proto::kSetUid;
  if (to_set & FUSE_SET_ATTR_GID) mask |= proto::kSetGid;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    mask |= proto::kSetMtime;
    mtime = NowNs();
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    mask |= proto::kSetMtime;
    mtime = Ns(attr->st_mtim);
  }
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    mask |= proto::kSetAtime;
    atime = NowNs();
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    mask |= proto::kSetAtime;
    atime = Ns(attr->st_atim);
  }
  if (mask == 0) {  // ctime alone: the MDS keeps it
    ReplyAttr(req, c->GetAttr(Ino(ino)), since);
    return;
  }
  if (mask & (proto::kSetUid | proto::kSetGid)) {
    // The kernel checks this too (default_permissions); the daemon does not rely on it.
    const fuse_ctx* ctx = fuse_req_ctx(req);
    auto cur = c->GetAttr(Ino(ino));
    if (!cur.ok()) {
      fuse_reply_err(req, Errno(cur.status()));
      return;
    }
    bool uid_change = (mask & proto::kSetUid) && attr->st_uid != cur->uid;
    bool gid_change = (mask & proto::kSetGid) && attr->st_gid != cur->gid;
    if (ctx->uid != 0 && (uid_change || (gid_change && ctx->uid != cur->uid))) {
      fuse_reply_err(req, EPERM);
      return;
    }
  }
  if ((mask & proto::kSetSize) && fi && fi->fh && !Fh(fi)->writable()) {
    fuse_reply_err(req, EBADF);
    return;
  }
  // A mode change rewrites the access ACL, if any (the MDS keeps them in step).
  bool acl_change = (mask & proto::kSetMode) != 0;
  if (acl_change) M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);
  auto r = c->SetAttr(Ino(ino), mask, static_cast<uint64_t>(attr->st_size), mtime, attr->st_mode & 07777, atime,
                      attr->st_uid, attr->st_gid);
  if (acl_change) M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);
  if (!r.ok()) {
    fuse_reply_err(req, Errno(r.status()));
    return;
  }
  // The MDS answered with the attributes after the change; our unflushed writes may make
  // the file longer than it knows.
  proto::Attr a = r.value();
  c->MergeOpenSize(&a);
  ReplyAttr(req, a, since);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  auto t = Cl(req)->Readlink(Ino(ino));
  if (!t.ok()) fuse_reply_err(req, Errno(t.status()));
  else fuse_reply_readlink(req, t->c_str());
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  uint64_t since = Epoch(req);
  M(req)->MayExist(parent, name);
  M(req)->DropDirAttr(parent, false);  // its attributes are not in the reply
  proto::NodeType t;
  switch (mode & S_IFMT) {
    case S_IFREG:
    case 0: {
      auto a = Cl(req)->Create(Ino(parent), name, mode & 07777, true, ctx->uid, ctx->gid, ctx->umask);
      M(req)->DropDirAttr(parent, false);
      M(req)->MayExist(parent, name);
      ReplyEntry(req, parent, name, a, since);
      return;
    }
    case S_IFIFO: t = proto::NodeType::kFifo; break;
    case S_IFSOCK: t = proto::NodeType::kSocket; break;
    case S_IFCHR: t = proto::NodeType::kCharDev; break;
    case S_IFBLK: t = proto::NodeType::kBlockDev; break;
    default: fuse_reply_err(req, EINVAL); return;
  }
  auto a = Cl(req)->Mknod(Ino(parent), name, t, mode & 07777, rdev, ctx->uid, ctx->gid, ctx->umask);
  M(req)->DropDirAttr(parent, false);
  M(req)->MayExist(parent, name);
  ReplyEntry(req, parent, name, a, since);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  uint64_t since = Epoch(req);
  Mount* m = M(req);
  m->MayExist(parent, name);
  uint64_t dir_since = m->dir_epoch.load();
  uint64_t dattr_since = m->dattr_epoch.load();
  std::optional<proto::Attr> parent_after;
  auto a = Cl(req)->Mkdir(Ino(parent), name, mode & 07777, ctx->uid, ctx->gid, ctx->umask, &parent_after);
  if (a.ok()) m->Listed(a->ino.v, {}, dir_since);  // a new directory is empty
  if (a.ok()) m->DirAttrRead(*a, dattr_since);
  if (parent_after) m->DirAttrRead(*parent_after, dattr_since);
  m->MayExist(parent, name);
  ReplyEntry(req, parent, name, a, since);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Mount* m = M(req);
  uint64_t dattr_since = m->dattr_epoch.load();
  std::optional<proto::Attr> parent_after;
  Status st = Cl(req)->Unlink(Ino(parent), name, &parent_after);
  if (st.ok()) m->Removed(parent, name);
  if (parent_after) m->DirAttrRead(*parent_after, dattr_since);
  ReplyStatus(req, st);
}
void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Mount* m = M(req);
  // The removed directory's own attributes change too (nlink 0), and the reply does not
  // say which inode it was: forget every directory's.
  m->DropDirAttr(0, true);
  Status st = Cl(req)->Rmdir(Ino(parent), name);
  if (st.ok()) m->Removed(parent, name);
  m->DropDirAttr(0, true);
  ReplyStatus(req, st);
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  uint64_t since = Epoch(req);
  M(req)->MayExist(parent, name);
  M(req)->DropDirAttr(parent, false);  // its attributes are not in the reply
  auto a = Cl(req)->Symlink(Ino(parent), name, link, ctx->uid, ctx->gid);
  M(req)->DropDirAttr(parent, false);
  M(req)->MayExist(parent, name);
  ReplyEntry(req, parent, name, a, since);
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
              unsigned int flags) {
  Client* c = Cl(req);
  if (flags & RENAME_EXCHANGE) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (flags & RENAME_NOREPLACE) {
    auto e = c->Lookup(Ino(newparent), newname);
    if (e.ok()) {
      fuse_reply_err(req, EEXIST);
      return;
    }
  }
  M(req)->MayExist(newparent, newname);
  // Both parents change, and a moved directory too (its ctime): forget every directory's
  // attributes.
  M(req)->DropDirAttr(0, true);
  Status st = c->Rename(Ino(parent), name, Ino(newparent), newname);
  M(req)->DropDirAttr(0, true);
  M(req)->MayExist(newparent, newname);
  if (st.ok()) M(req)->Removed(parent, name);
  ReplyStatus(req, st);
}

// No hard links, as in the guide.
void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  uint64_t since = Epoch(req);
  M(req)->MayExist(newparent, newname);
  M(req)->DropDirAttr(newparent, false);  // its attributes are not in the reply
  auto a = Cl(req)->Link(Ino(ino), Ino(newparent), newname);
  M(req)->DropDirAttr(newparent, false);
  M(req)->MayExist(newparent, newname);
  ReplyEntry(req, newparent, newname, a, since);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
  auto f = Cl(req)->Open(Ino(ino), write);
  if (!f.ok()) {
    fuse_reply_err(req, Errno(f.status()));
    return;
  }
  if ((fi->flags & O_TRUNC) && write) {
    Status st = (*f)->Truncate(0);
    if (!st.ok()) {
      fuse_reply_err(req, Errno(st));
      return;
    }
  }
  fi->fh = reinterpret_cast<uint64_t>(f->release());
  fi->keep_cache = 0;
  // A read-only handle has no size to report at close (OpFlush does nothing for it), and
  // this mount takes no POSIX locks through FUSE: the kernel need not send FLUSH for it.
  fi->noflush = !write;
  if (fuse_reply_open(req, fi) == -ENOENT) delete Fh(fi);  // the opener went away
}

// One MDS round trip: the node is made and opened for writing together (Client::CreateOpen).
void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Client* c = Cl(req);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  uint64_t since = Epoch(req);
  Mount* m = M(req);
  m->MayExist(parent, name);
  uint64_t dattr_since = m->dattr_epoch.load();
  std::optional<proto::Attr> parent_after;
  auto r = c->CreateOpen(Ino(parent), name, mode & 07777, (fi->flags & O_EXCL) != 0, ctx->uid, ctx->gid, ctx->umask,
                         &parent_after);
  if (parent_after) m->DirAttrRead(*parent_after, dattr_since);
  m->MayExist(parent, name);
  if (!r.ok()) {
    fuse_reply_err(req, Errno(r.status()));
    return;
  }
  proto::Attr a = r->first;
  std::unique_ptr<File> f = std::move(r->second);
  if ((fi->flags & O_TRUNC) && a.size > 0) {
    Status st = f->Truncate(0);
    if (!st.ok()) {
      fuse_reply_err(req, Errno(st));
      return;
    }
    a.size = 0;
  }
  fi->fh = reinterpret_cast<uint64_t>(f.release());
  fuse_entry_param e = EntryOf(req, a, since);
  m->Remember(e.ino, parent, name);
  if (fuse_reply_create(req, &e, fi) != 0) {
    m->Forget(e.ino, 1);
    delete Fh(fi);
  }
}

// Buffers for reads answered from ReadAsync's callback: the session thread goes back to the
// kernel at once, so reads of one or many files overlap (the kernel's readahead sends up to
// max_background of them). Freed buffers are kept for the next read (PayloadPool's bounds).
rpc::PayloadPool g_read_bufs;

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto buf = std::make_shared<std::string>();
  g_read_bufs.Take(buf.get(), size);
  Fh(fi)->ReadAsync(static_cast<uint64_t>(off), size, buf->data(), [req, buf](Result<size_t> n) {
    if (!n.ok()) {
      LOG_WARN("read: %s", n.status().ToString().c_str());
      fuse_reply_err(req, Errno(n.status()));
    } else {
      fuse_reply_buf(req, buf->data(), *n);
    }
    g_read_bufs.Give(std::move(*buf));
  });
}

void OpWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info* fi) {
  File* f = Fh(fi);
  if (!f->writable()) {
    fuse_reply_err(req, EBADF);
    return;
  }
  Status st = f->Write(static_cast<uint64_t>(off), data, size);
  if (!st.ok()) {
    LOG_WARN("write: %s", st.ToString().c_str());
    fuse_reply_err(req, Errno(st));
    return;
  }
  fuse_reply_write(req, size);
}

// fallocate(2): mode 0 and KEEP_SIZE reserve space on every replica, PUNCH_HOLE (with
// KEEP_SIZE, as the kernel requires) and ZERO_RANGE make the range read as zeros and give
// its space back. Other modes (collapse, insert, unshare) are not supported.
void OpFallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  File* f = Fh(fi);
  if (!f->writable()) {
    fuse_reply_err(req, EBADF);
    return;
  }
  if (off < 0 || len <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  bool keep = mode & FALLOC_FL_KEEP_SIZE;
  uint64_t o = static_cast<uint64_t>(off), n = static_cast<uint64_t>(len);
  Status st;
  if ((mode & ~known) != 0 || ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))) {
    st = Err(Code::kNotSupported, "fallocate mode " + std::to_string(mode) + " is not supported");
  } else if (mode & FALLOC_FL_PUNCH_HOLE) {
    st = keep ? f->PunchHole(o, n) : Err(Code::kNotSupported, "punch hole needs FALLOC_FL_KEEP_SIZE");
  } else if (mode & FALLOC_FL_ZERO_RANGE) {
    st = f->ZeroRange(o, n, keep);
  } else {
    st = f->Allocate(o, n, keep);
  }
  if (!st.ok() && st.code() != Code::kNotSupported) LOG_WARN("fallocate: %s", st.ToString().c_str());
  ReplyStatus(req, st);
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  File* f = Fh(fi);
  ReplyStatus(req, f->writable() ? f->Flush() : Status::Ok());
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  File* f = Fh(fi);
  // The kernel sends RELEASE after close(2) returned: nobody waits for the lease to go.
  Status st = f->Close(/*wait_release=*/false);
  delete f;
  if (!st.ok()) LOG_WARN("release: %s", st.ToString().c_str());
  fuse_reply_err(req, 0);
}

void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  File* f = Fh(fi);
  Status st = f->writable() ? f->Fsync() : Status::Ok();
  if (!st.ok()) LOG_WARN("fsync: %s", st.ToString().c_str());
  ReplyStatus(req, st);
}

// The listing is read at opendir, with every entry's attributes when the MDS gives them
// (kReaddirPlus), so that readdirplus answers `ls -l` without a lookup per name.
struct DirHandle {
  std::vector<proto::DirEntryPlus> entries;  // [0], [1]: "." and ".."
  bool plus = false;                         // entries carry full attributes
  uint64_t since = 0;                        // the epoch before the MDS was asked
};

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Mount* m = M(req);
  auto* h = new DirHandle;
  h->since = Epoch(req);
  uint64_t dir_since = m->dir_epoch.load();
  auto add_dot = [&](const char* n) {
    proto::DirEntryPlus d;
    d.name = n;
    d.attr.ino = Ino(ino);
    d.attr.type = proto::NodeType::kDir;
    h->entries.push_back(d);
  };
  add_dot(".");
  add_dot("..");
  if (m->readdir_plus.load()) {
    auto d = m->client->ReaddirPlus(Ino(ino));
    if (d.ok()) {
      h->plus = true;
      for (auto& e : *d) h->entries.push_back(std::move(e));
    } else if (d.status().code() == Code::kProtocol) {
      m->readdir_plus = false;  // an older MDS
    } else {
      delete h;
      fuse_reply_err(req, Errno(d.status()));
      return;
    }
  }
  if (!h->plus) {
    auto d = m->client->Readdir(Ino(ino));
    if (!d.ok()) {
      delete h;
      fuse_reply_err(req, Errno(d.status()));
      return;
    }
    for (auto& e : *d) {
      proto::DirEntryPlus p;
      p.name = std::move(e.name);
      p.attr.ino = e.ino;
      p.attr.type = e.type;
      h->entries.push_back(std::move(p));
    }
  }
  std::unordered_set<std::string> names;
  for (size_t i = 2; i < h->entries.size(); ++i) names.insert(h->entries[i].name);
  m->Listed(ino, std::move(names), dir_since);
  fi->fh = reinterpret_cast<uint64_t>(h);
  if (fuse_reply_open(req, fi) == -ENOENT) delete h;
}

void OpReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < h->entries.size(); ++i) {
    const auto& e = h->entries[i];
    struct stat st;
    FillStat(e.attr, &st);
    size_t n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st, static_cast<off_t>(i + 1));
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

// Each entry given with its inode (not "." and "..", nor entries without attributes) counts
// as a lookup of it by the kernel.
void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<DirHandle*>(fi->fh);
  Mount* m = M(req);
  std::vector<char> buf(size);
  std::vector<fuse_ino_t> counted;
  size_t used = 0;
  for (size_t i = static_cast<size_t>(off); i < h->entries.size(); ++i) {
    const auto& d = h->entries[i];
    fuse_entry_param e = EntryOf(req, d.attr, h->since);
    if (!h->plus || i < 2) e.ino = 0;  // the name only
    size_t n = fuse_add_direntry_plus(req, buf.data() + used, size - used, d.name.c_str(), &e,
                                      static_cast<off_t>(i + 1));
    if (n > size - used) break;
    used += n;
    if (e.ino != 0) {
      m->Remember(e.ino, ino, d.name.c_str());
      counted.push_back(e.ino);
    }
  }
  if (fuse_reply_buf(req, buf.data(), used) != 0)
    for (fuse_ino_t i : counted) m->Forget(i, 1);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  auto s = Cl(req)->Statfs();
  if (!s.ok()) {
    fuse_reply_err(req, Errno(s.status()));
    return;
  }
  struct statvfs v;
  std::memset(&v, 0, sizeof v);
  v.f_bsize = v.f_frsize = 4096;
  v.f_blocks = s->total_bytes / 4096;
  v.f_bfree = s->free_bytes / 4096;
  v.f_bavail = s->allocatable_bytes / 4096;
  v.f_files = s->files + (1u << 30);
  v.f_ffree = 1u << 30;
  v.f_favail = v.f_ffree;
  v.f_namemax = 255;
  fuse_reply_statfs(req, &v);
}

const char* AttrName(const char* xname) {
  if (std::strncmp(xname, "vstorage.", 9) != 0) return nullptr;
  for (const char* a : kVstorageAttrs)
    if (std::strcmp(xname + 9, a) == 0) return a;
  return nullptr;
}

// The namespaces kept for any program (as on ext4), and the two POSIX ACL names when the
// kernel enforces them; any other system.* name is EOPNOTSUPP.
bool Namespaced(fuse_req_t req, const char* n) {
  for (const char* ns : {"user.", "trusted.", "security."})
    if (std::strncmp(n, ns, std::strlen(ns)) == 0 && n[std::strlen(ns)] != 0) return true;
  return M(req)->acls && acl::IsAclXattr(n);
}

// trusted.* is for root only (CAP_SYS_ADMIN): the kernel checks it on set and get; listing
// hides those names from others, as ext4 does.
bool MaySeeTrusted(fuse_req_t req) { return fuse_req_ctx(req)->uid == 0; }

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  if (const char* a = AttrName(name)) {
    M(req)->DropDirAttr(ino, false);
    Status st = Cl(req)->SetXattr(Ino(ino), a, std::string(value, size));
    M(req)->DropDirAttr(ino, false);
    ReplyStatus(req, st);
    return;
  }
  if (!Namespaced(req, name)) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);  // an ACL changes the mode, any xattr the ctime
  Status st = Cl(req)->SetXattr(Ino(ino), name, std::string(value, size), static_cast<uint32_t>(flags) & 3);
  M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);
  ReplyStatus(req, st);
}

// The inode's attributes for a user./trusted./security. name: from the mount's cache while
// watching, else from the MDS (and cached). Names of vstorage's own (AttrName) are always
// asked of the MDS: a directory's replicas may change without an invalidation of it.
Result<Mount::Xattrs> NamespacedXattrs(fuse_req_t req, fuse_ino_t ino) {
  Mount* m = M(req);
  if (auto c = m->CachedXattrs(ino)) return std::move(*c);
  uint64_t since = m->xattr_epoch.load();
  auto x = Cl(req)->GetXattrs(Ino(ino));
  if (x.ok()) m->XattrsRead(ino, *x, since);
  return x;
}

void ReplyXattrValue(fuse_req_t req, const std::string& v, size_t size) {
  if (size == 0) fuse_reply_xattr(req, v.size());
  else if (size < v.size()) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, v.data(), v.size());
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  const char* a = AttrName(name);
  if (!a && !Namespaced(req, name)) {
    fuse_reply_err(req, std::strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
    return;
  }
  auto x = a ? Cl(req)->GetXattrs(Ino(ino)) : NamespacedXattrs(req, ino);
  if (!x.ok()) {
    fuse_reply_err(req, Errno(x.status()));
    return;
  }
  auto it = x->find(a ? a : name);
  if (it == x->end()) {
    fuse_reply_err(req, ENODATA);
    return;
  }
  ReplyXattrValue(req, it->second, size);
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto x = NamespacedXattrs(req, ino);
  if (!x.ok()) {
    fuse_reply_err(req, Errno(x.status()));
    return;
  }
  std::string names;
  for (const char* a : kVstorageAttrs) names += std::string("vstorage.") + a + '\0';
  bool trusted = MaySeeTrusted(req);
  for (const auto& [k, v] : *x)
    if (Namespaced(req, k.c_str()) && (trusted || k.compare(0, 8, "trusted.") != 0)) names += k + '\0';
  ReplyXattrValue(req, names, size);
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (AttrName(name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (!Namespaced(req, name)) {
    fuse_reply_err(req, std::strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
    return;
  }
  M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);
  Status st = Cl(req)->RemoveXattr(Ino(ino), name);
  M(req)->DropXattrs(ino, false);
  M(req)->DropDirAttr(ino, false);
  ReplyStatus(req, st);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops o;
  std::memset(&o, 0, sizeof o);
  o.init = OpInit;
  o.lookup = OpLookup;
  o.forget = OpForget;
  o.forget_multi = OpForgetMulti;
  o.getattr = OpGetattr;
  o.setattr = OpSetattr;
  o.readlink = OpReadlink;
  o.mknod = OpMknod;
  o.mkdir = OpMkdir;
  o.unlink = OpUnlink;
  o.rmdir = OpRmdir;
  o.symlink = OpSymlink;
  o.rename = OpRename;
  o.link = OpLink;
  o.open = OpOpen;
  o.create = OpCreate;
  o.read = OpRead;
  o.write = OpWrite;
  o.fallocate = OpFallocate;
  o.flush = OpFlush;
  o.release = OpRelease;
  o.fsync = OpFsync;
  o.opendir = OpOpendir;
  o.readdir = OpReaddir;
  o.readdirplus = OpReaddirplus;
  o.releasedir = OpReleasedir;
  o.statfs = OpStatfs;
  o.setxattr = OpSetxattr;
  o.getxattr = OpGetxattr;
  o.listxattr = OpListxattr;
  o.removexattr = OpRemovexattr;
  return o;
}

// Applies one batch of invalidations (all: a resync) to the kernel's cache.
void Invalidate(Mount* m, const std::vector<proto::Invalidation>& changes, bool all) {
  {
    std::lock_guard<std::mutex> l(m->dir_mu);
    m->epoch.fetch_add(1);  // before the kernel drops anything: replies in flight are not cached long
    m->dir_epoch.fetch_add(1);
    if (all) m->dirs.clear();
    for (const auto& c : changes)
      if (c.kind == proto::InvalKind::kEntry) m->MayExistLocked(c.ino.v, c.name);
  }
  if (all) m->DropXattrs(0, true);
  if (all) m->DropDirAttr(0, true);
  for (const auto& c : changes)
    if (c.kind == proto::InvalKind::kInode) {
      m->DropXattrs(c.ino.v, false);
      m->DropDirAttr(c.ino.v, false);
    }
  std::set<std::pair<fuse_ino_t, std::string>> entries;
  std::set<fuse_ino_t> inodes;
  if (all) {
    std::lock_guard<std::mutex> l(m->mu);
    for (const auto& [ino, k] : m->known) {
      inodes.insert(ino);
      for (const auto& n : k.names) entries.insert(n);
    }
    inodes.insert(FUSE_ROOT_ID);
  }
  for (const auto& c : changes) {
    if (c.kind == proto::InvalKind::kEntry) entries.insert({c.ino.v, c.name});
    else inodes.insert(c.ino.v);
  }
  std::lock_guard<std::mutex> l(m->notify_mu);
  if (m->stopping) return;
  // -ENOENT: the kernel does not cache it; nothing to do.
  for (const auto& [parent, name] : entries)
    fuse_lowlevel_notify_inval_entry(m->se, parent, name.c_str(), name.size());
  for (fuse_ino_t ino : inodes) fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
}

// The watch thread: long polls for other clients' changes until stop_watch. While the MDS
// cannot be asked, replies are not cached long (watching is off); once it answers again,
// everything cached is dropped, since changes may have been missed meanwhile.
void WatchLoop(Mount* m, uint64_t after) {
  bool missed = false;
  while (!m->stop_watch.load()) {
    auto r = m->client->WatchChanges(after, kWatchWaitMs);
    if (m->stop_watch.load()) break;
    if (!r.ok()) {
      if (!missed) LOG_WARN("watching for changes of other clients: %s", r.status().ToString().c_str());
      m->watching = false;
      missed = true;
      if (r.status().code() == Code::kProtocol) break;  // the MDS no longer knows the request
      std::this_thread::sleep_for(std::chrono::milliseconds(kWatchRetryMs));
      continue;
    }
    if (r->resync || missed) {
      Invalidate(m, r->changes, true);
      if (missed) LOG_INFO("watching for changes of other clients again");
      missed = false;
      m->watching = true;
    } else if (!r->changes.empty()) {
      Invalidate(m, r->changes, false);
    }
    after = r->seq;
  }
}

int Usage() {
  std::fprintf(stderr,
               "usage: vstorage-mount -c CLUSTER [-f] [-l LOGFILE] [-t IO_TIMEOUT_S] [-o FUSE_OPTIONS] MOUNTPOINT\n"
               "  -t  how long a write waits for chunk servers (e.g. a chunk below its minimum\n"
               "      replicas) before it fails with EIO; default 60 s\n");
  return 2;
}

// Larger kernel readahead for this mount than the 128 KiB default (cold sequential reads).
void RaiseReadahead(const std::string& mnt) {
  struct stat st;
  if (::stat(mnt.c_str(), &st) != 0) return;
  char path[128];
  snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
  FILE* f = std::fopen(path, "w");
  if (!f) return;
  std::fprintf(f, "%u\n", kReadAheadKb);
  std::fclose(f);
}

}  // namespace

int MountMain(int argc, char** argv) {
  std::string cluster, log_file, mnt, opts;
  bool foreground = false;
  int io_timeout_s = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-c" && i + 1 < argc) cluster = argv[++i];
    else if (a == "-l" && i + 1 < argc) log_file = argv[++i];
    else if (a == "-o" && i + 1 < argc) opts += std::string(opts.empty() ? "" : ",") + argv[++i];
    else if (a == "-f") foreground = true;
    else if (a == "-t" && i + 1 < argc) {
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 1 || v > 86400) {
        std::fprintf(stderr, "vstorage-mount: -t takes seconds from 1 to 86400, not '%s'\n", argv[i]);
        return 2;
      }
      io_timeout_s = static_cast<int>(v);
    }
    else if (a == "-h" || a == "--help") return Usage();
    else if (!a.empty() && a[0] != '-' && mnt.empty()) mnt = a;
    else {
      std::fprintf(stderr, "vstorage-mount: unexpected argument '%s'\n", a.c_str());
      return Usage();
    }
  }
  if (cluster.empty() || mnt.empty()) return Usage();
  char real[PATH_MAX];
  if (!::realpath(mnt.c_str(), real)) {
    int e = errno;
    std::fprintf(stderr, "vstorage-mount: mount point %s: %s%s\n", mnt.c_str(), std::strerror(e),
                 e == ENOTCONN ? " (a mount whose process died; unmount it with 'fusermount3 -u DIR')" : "");
    return 1;
  }
  mnt = real;
  {
    auto mountinfo = ReadFile("/proc/self/mountinfo");
    Status st = CheckMountPoint(mnt, cluster, mountinfo.ok() ? mountinfo.value() : "");
    if (!st.ok()) {
      std::fprintf(stderr, "vstorage-mount: %s\n", st.message().c_str());
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  SetLogTag("mount");

  // Without -f: the work happens in a child that reports through a pipe once the mount is
  // ready (or why it failed), so the command returns with the mount usable.
  int report[2] = {-1, -1};
  if (!foreground) {
    if (::pipe(report) != 0) {
      std::perror("vstorage-mount: pipe");
      return 1;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      std::perror("vstorage-mount: fork");
      return 1;
    }
    if (pid > 0) {
      ::close(report[1]);
      std::string msg;
      char b[512];
      ssize_t n;
      while ((n = ::read(report[0], b, sizeof b)) > 0) msg.append(b, static_cast<size_t>(n));
      if (msg == "OK") return 0;
      if (msg.empty()) msg = "the mount process died; see the log";
      std::fprintf(stderr, "vstorage-mount: %s\n", msg.c_str());
      return 1;
    }
    ::close(report[0]);
    ::setsid();
  }
  auto done = [&](const std::string& msg) {
    if (report[1] >= 0) {
      (void)!::write(report[1], msg.data(), msg.size());
      ::close(report[1]);
      report[1] = -1;
    } else if (msg != "OK") {
      std::fprintf(stderr, "vstorage-mount: %s\n", msg.c_str());
    }
  };
  if (!log_file.empty()) {
    int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      done("cannot open log file " + log_file + ": " + std::strerror(errno));
      return 1;
    }
    ::dup2(fd, 2);
    ::close(fd);
  }

  ClientOptions copts{cluster};
  if (io_timeout_s > 0) copts.io_timeout_ms = io_timeout_s * 1000;
  auto client = Client::Connect(copts);
  if (!client.ok()) {
    done("cannot connect to cluster '" + cluster + "': " + client.status().message());
    return 1;
  }
  // default_permissions: the kernel checks mode bits and owners for every caller, as for a
  // local file system (with -o allow_other, other users see EACCES/EPERM as on ext4).
  std::string fsname = "-ofsname=vstorage://" + cluster + ",subtype=vstorage,default_permissions" +
                       (opts.empty() ? "" : "," + opts);
  std::vector<const char*> fargv = {"vstorage-mount", fsname.c_str()};
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), const_cast<char**>(fargv.data()));
  fuse_lowlevel_ops ops = MakeOps();
  Mount mount;
  mount.client = client->get();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &mount);
  mount.se = se;
  if (!se) {
    done("invalid FUSE options '" + opts + "'");
    return 1;
  }
  if (fuse_set_signal_handlers(se) != 0) {
    done("cannot install signal handlers");
    fuse_session_destroy(se);
    return 1;
  }
  if (fuse_session_mount(se, mnt.c_str()) != 0) {
    done("cannot mount on " + mnt + " (is it a directory, and is /dev/fuse available?)");
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return 1;
  }
  LOG_INFO("cluster '%s' mounted on %s as client %s", cluster.c_str(), mnt.c_str(), (*client)->id().str().c_str());
  std::thread ra([mnt] { RaiseReadahead(mnt); });
  ra.detach();
  if (!foreground) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      if (log_file.empty()) ::dup2(null, 2);
      ::close(null);
    }
    if (::chdir("/") != 0) LOG_WARN("chdir /: %s", std::strerror(errno));
  }
  // The first poll, before the kernel caches anything, makes the MDS keep our changes queue.
  std::thread watcher;
  if (auto w = mount.client->WatchChanges(0, 0); w.ok()) {
    mount.watching = true;
    uint64_t after = w->seq;
    watcher = std::thread([&mount, after] { WatchLoop(&mount, after); });
  } else {
    LOG_INFO("the MDS sends no cache invalidations (%s): names and attributes are cached briefly",
             w.status().ToString().c_str());
  }
  done("OK");
  fuse_loop_config cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.clone_fd = 1;  // a /dev/fuse descriptor per session thread: no shared read queue lock
  cfg.max_idle_threads = 16;
  int r = fuse_session_loop_mt(se, &cfg);
  mount.stop_watch = true;
  {
    std::lock_guard<std::mutex> l(mount.notify_mu);
    mount.stopping = true;
  }
  (*client)->Goodbye();  // also ends the watcher's long poll
  if (watcher.joinable()) watcher.join();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  LOG_INFO("unmounted %s", mnt.c_str());
  return r == 0 ? 0 : 1;
}

}  // namespace vstorage::fuse
