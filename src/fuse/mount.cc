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
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/log.h"
#include "fuse/mount_point.h"
#include "vstorage/client.h"

namespace vstorage::fuse {

namespace {

constexpr double kEntryTimeoutS = 1.0;
// Attributes are not cached: another mount may change a file's size at any time.
constexpr double kAttrTimeoutS = 0.0;
constexpr unsigned kMaxWrite = 1u << 20;
constexpr unsigned kReadAheadKb = 8192;
const char* kXattrReplicas = "vstorage.replicas";
const char* kXattrChunkSize = "vstorage.chunk-size";

Client* Cl(fuse_req_t req) { return static_cast<Client*>(fuse_req_userdata(req)); }
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

void ReplyEntry(fuse_req_t req, const Result<proto::Attr>& a) {
  if (!a.ok()) {
    fuse_reply_err(req, Errno(a.status()));
    return;
  }
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = a->ino.v;
  e.attr_timeout = kAttrTimeoutS;
  e.entry_timeout = kEntryTimeoutS;
  FillStat(*a, &e.attr);
  fuse_reply_entry(req, &e);
}

void ReplyAttr(fuse_req_t req, const Result<proto::Attr>& a) {
  if (!a.ok()) {
    fuse_reply_err(req, Errno(a.status()));
    return;
  }
  struct stat st;
  FillStat(*a, &st);
  fuse_reply_attr(req, &st, kAttrTimeoutS);
}

void ReplyStatus(fuse_req_t req, const Status& st) { fuse_reply_err(req, st.ok() ? 0 : Errno(st)); }

void OpInit(void*, fuse_conn_info* conn) {
  conn->max_write = kMaxWrite;
  conn->max_readahead = kReadAheadKb * 1024;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // Each mount keeps no dirty data of its own: writes go to the chunk servers at once, so
  // another mount sees them (and leases stay meaningful).
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyEntry(req, Cl(req)->Lookup(Ino(parent), name)); }

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { ReplyAttr(req, Cl(req)->GetAttr(Ino(ino))); }

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Client* c = Cl(req);
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
    ReplyAttr(req, c->GetAttr(Ino(ino)));
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
  auto r = c->SetAttr(Ino(ino), mask, static_cast<uint64_t>(attr->st_size), mtime, attr->st_mode & 07777, atime,
                      attr->st_uid, attr->st_gid);
  if (!r.ok()) {
    fuse_reply_err(req, Errno(r.status()));
    return;
  }
  ReplyAttr(req, c->GetAttr(Ino(ino)));
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  auto t = Cl(req)->Readlink(Ino(ino));
  if (!t.ok()) fuse_reply_err(req, Errno(t.status()));
  else fuse_reply_readlink(req, t->c_str());
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  proto::NodeType t;
  switch (mode & S_IFMT) {
    case S_IFREG:
    case 0: ReplyEntry(req, Cl(req)->Create(Ino(parent), name, mode & 07777, true, ctx->uid, ctx->gid)); return;
    case S_IFIFO: t = proto::NodeType::kFifo; break;
    case S_IFSOCK: t = proto::NodeType::kSocket; break;
    case S_IFCHR: t = proto::NodeType::kCharDev; break;
    case S_IFBLK: t = proto::NodeType::kBlockDev; break;
    default: fuse_reply_err(req, EINVAL); return;
  }
  ReplyEntry(req, Cl(req)->Mknod(Ino(parent), name, t, mode & 07777, rdev, ctx->uid, ctx->gid));
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  ReplyEntry(req, Cl(req)->Mkdir(Ino(parent), name, mode & 07777, ctx->uid, ctx->gid));
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyStatus(req, Cl(req)->Unlink(Ino(parent), name)); }
void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyStatus(req, Cl(req)->Rmdir(Ino(parent), name)); }

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  ReplyEntry(req, Cl(req)->Symlink(Ino(parent), name, link, ctx->uid, ctx->gid));
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
  ReplyStatus(req, c->Rename(Ino(parent), name, Ino(newparent), newname));
}

// No hard links, as in the guide.
void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  ReplyEntry(req, Cl(req)->Link(Ino(ino), Ino(newparent), newname));
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
  if (fuse_reply_open(req, fi) == -ENOENT) delete Fh(fi);  // the opener went away
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Client* c = Cl(req);
  const fuse_ctx* ctx = fuse_req_ctx(req);
  auto a = c->Create(Ino(parent), name, mode & 07777, (fi->flags & O_EXCL) != 0, ctx->uid, ctx->gid);
  if (!a.ok()) {
    fuse_reply_err(req, Errno(a.status()));
    return;
  }
  auto f = c->Open(a->ino, true);
  if (!f.ok()) {
    fuse_reply_err(req, Errno(f.status()));
    return;
  }
  if ((fi->flags & O_TRUNC) && a->size > 0) {
    Status st = (*f)->Truncate(0);
    if (!st.ok()) {
      fuse_reply_err(req, Errno(st));
      return;
    }
    a->size = 0;
  }
  fi->fh = reinterpret_cast<uint64_t>(f->release());
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = a->ino.v;
  e.attr_timeout = kAttrTimeoutS;
  e.entry_timeout = kEntryTimeoutS;
  FillStat(*a, &e.attr);
  if (fuse_reply_create(req, &e, fi) == -ENOENT) delete Fh(fi);
}

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  auto n = Fh(fi)->Read(static_cast<uint64_t>(off), size, buf.data());
  if (!n.ok()) {
    LOG_WARN("read: %s", n.status().ToString().c_str());
    fuse_reply_err(req, Errno(n.status()));
    return;
  }
  fuse_reply_buf(req, buf.data(), *n);
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
  Status st = f->Close();
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

struct DirHandle {
  std::vector<proto::DirEntry> entries;
};

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto d = Cl(req)->Readdir(Ino(ino));
  if (!d.ok()) {
    fuse_reply_err(req, Errno(d.status()));
    return;
  }
  auto* h = new DirHandle{std::move(d).value()};
  h->entries.insert(h->entries.begin(), {proto::DirEntry{".", Ino(ino), proto::NodeType::kDir},
                                         proto::DirEntry{"..", Ino(ino), proto::NodeType::kDir}});
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
    std::memset(&st, 0, sizeof st);
    st.st_ino = e.ino.v;
    st.st_mode = e.type == proto::NodeType::kDir ? S_IFDIR : e.type == proto::NodeType::kSymlink ? S_IFLNK : S_IFREG;
    size_t n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st, static_cast<off_t>(i + 1));
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
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
  if (std::strcmp(xname, kXattrReplicas) == 0) return "replicas";
  if (std::strcmp(xname, kXattrChunkSize) == 0) return "chunk-size";
  return nullptr;
}

// The namespaces kept for any program (as on ext4); system.* (POSIX ACLs) is not supported.
bool Namespaced(const char* n) {
  for (const char* ns : {"user.", "trusted.", "security."})
    if (std::strncmp(n, ns, std::strlen(ns)) == 0 && n[std::strlen(ns)] != 0) return true;
  return false;
}

// trusted.* is for root only (CAP_SYS_ADMIN): the kernel checks it on set and get; listing
// hides those names from others, as ext4 does.
bool MaySeeTrusted(fuse_req_t req) { return fuse_req_ctx(req)->uid == 0; }

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  if (const char* a = AttrName(name)) {
    ReplyStatus(req, Cl(req)->SetXattr(Ino(ino), a, std::string(value, size)));
    return;
  }
  if (!Namespaced(name)) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  ReplyStatus(req, Cl(req)->SetXattr(Ino(ino), name, std::string(value, size), static_cast<uint32_t>(flags) & 3));
}

void ReplyXattrValue(fuse_req_t req, const std::string& v, size_t size) {
  if (size == 0) fuse_reply_xattr(req, v.size());
  else if (size < v.size()) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, v.data(), v.size());
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  const char* a = AttrName(name);
  if (!a && !Namespaced(name)) {
    fuse_reply_err(req, std::strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
    return;
  }
  auto x = Cl(req)->GetXattrs(Ino(ino));
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
  auto x = Cl(req)->GetXattrs(Ino(ino));
  if (!x.ok()) {
    fuse_reply_err(req, Errno(x.status()));
    return;
  }
  std::string names = std::string(kXattrReplicas) + '\0' + kXattrChunkSize + '\0';
  bool trusted = MaySeeTrusted(req);
  for (const auto& [k, v] : *x)
    if (Namespaced(k.c_str()) && (trusted || k.compare(0, 8, "trusted.") != 0)) names += k + '\0';
  ReplyXattrValue(req, names, size);
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (AttrName(name)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (!Namespaced(name)) {
    fuse_reply_err(req, std::strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
    return;
  }
  ReplyStatus(req, Cl(req)->RemoveXattr(Ino(ino), name));
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops o;
  std::memset(&o, 0, sizeof o);
  o.init = OpInit;
  o.lookup = OpLookup;
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
  o.releasedir = OpReleasedir;
  o.statfs = OpStatfs;
  o.setxattr = OpSetxattr;
  o.getxattr = OpGetxattr;
  o.listxattr = OpListxattr;
  o.removexattr = OpRemovexattr;
  return o;
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
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, client->get());
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
  done("OK");
  fuse_loop_config cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.clone_fd = 0;
  cfg.max_idle_threads = 16;
  int r = fuse_session_loop_mt(se, &cfg);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  LOG_INFO("unmounted %s", mnt.c_str());
  return r == 0 ? 0 : 1;
}

}  // namespace vstorage::fuse
