#include "cs/disk_io.h"

#include <fcntl.h>
#include <liburing.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace vstorage::cs {

Status DiskError(int e, const std::string& what) {
  return Err(e == ENOSPC || e == EDQUOT ? Code::kNoSpace : Code::kIoError, what + ": " + std::strerror(e));
}

struct DiskIo::Ring {
  io_uring ring{};
  // A submission failed in a way that leaves SQEs of a finished call queued: the ring is
  // never used again, or its next user would submit them with dangling buffers. Touched
  // only by the thread holding the ring.
  bool broken = false;
};

struct DiskIo::Op {
  enum Kind { kWrite, kFdatasync, kFsync } kind = kWrite;
  int fd = -1;
  const char* p = nullptr;  // what is left to write
  size_t len = 0;
  uint64_t off = 0;
  bool done = false;
  Status result;
};

namespace {
// One line per process, not one per store or per call: the cause is the environment.
std::atomic<bool> g_fallback_logged{false};

bool Retryable(int e) { return e == EAGAIN || e == EINTR; }
}  // namespace

DiskIo::DiskIo(DiskIoMode mode) : mode_(mode) {
  if (mode == DiskIoMode::kPwrite) return;
  for (size_t i = 0; i < kRings; ++i) {
    auto r = std::make_unique<Ring>();
    int rc = io_uring_queue_init(kRingEntries, &r->ring, 0);
    if (rc < 0) {
      if (rings_.empty() && !g_fallback_logged.exchange(true))
        LOG_WARN("io_uring is not available (%s): chunk I/O falls back to pwrite/fdatasync", std::strerror(-rc));
      break;  // fewer rings than asked for still work; none means the fallback
    }
    free_.push_back(r.get());
    rings_.push_back(std::move(r));
    ++alive_;
  }
}

DiskIo::~DiskIo() {
  for (auto& r : rings_) io_uring_queue_exit(&r->ring);
}

DiskIo::Ring* DiskIo::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (!free_.empty()) {
      Ring* r = free_.back();
      free_.pop_back();
      return r;
    }
    if (alive_ == 0) return nullptr;  // every ring retired: the blocking syscalls
    cv_.wait(l);
  }
}

void DiskIo::Release(Ring* r) {
  std::lock_guard<std::mutex> l(mu_);
  if (r->broken) {
    --alive_;
    cv_.notify_all();  // waiters may have to take the fallback now
  } else {
    free_.push_back(r);
    cv_.notify_one();
  }
}

void DiskIo::RunBlocking(Op& o) {
  if (o.done) return;
  switch (o.kind) {
    case Op::kWrite: o.result = PwriteAll(o.fd, o.p, o.len, o.off); break;
    case Op::kFdatasync: o.result = Fdatasync(o.fd); break;
    case Op::kFsync: o.result = Fsync(o.fd); break;
  }
  o.done = true;
}

void DiskIo::RunOnRing(Ring* r, Op* ops, size_t n) {
  VS_CHECK(n <= kRingEntries);
  for (int round = 0; round < kMaxResubmitRounds; ++round) {
    size_t queued_idx[kRingEntries];
    unsigned queued = 0;
    for (size_t i = 0; i < n; ++i) {
      Op& o = ops[i];
      if (o.done) continue;
      io_uring_sqe* sqe = io_uring_get_sqe(&r->ring);
      VS_CHECK(sqe != nullptr);  // n <= kRingEntries and every CQE is reaped before the next round
      if (o.kind == Op::kWrite)
        io_uring_prep_write(sqe, o.fd, o.p, static_cast<unsigned>(std::min(o.len, kMaxSqeBytes)), o.off);
      else
        io_uring_prep_fsync(sqe, o.fd, o.kind == Op::kFdatasync ? IORING_FSYNC_DATASYNC : 0);
      io_uring_sqe_set_data64(sqe, i);
      queued_idx[queued++] = i;
    }
    if (queued == 0) return;
    // Normally one call submits everything and returns once all of it has completed.
    unsigned submitted = 0;
    int tries = 0;
    while (submitted < queued) {
      int rc = io_uring_submit_and_wait(&r->ring, submitted == 0 ? queued : 0);
      if (rc > 0) {
        submitted += static_cast<unsigned>(rc);
        submissions_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if ((rc == 0 || Retryable(-rc) || rc == -EBUSY) && ++tries < kMaxResubmitRounds) continue;
      LOG_ERROR("io_uring submission failed (%s): this ring is retired, the rest goes through pwrite",
                std::strerror(rc < 0 ? -rc : EIO));
      r->broken = true;
      break;
    }
    // Every submitted SQE is reaped before returning: the kernel may still read the
    // caller's buffers until its completion arrives.
    for (unsigned k = 0; k < submitted; ++k) {
      io_uring_cqe* cqe = nullptr;
      int rc;
      while ((rc = io_uring_wait_cqe(&r->ring, &cqe)) < 0 && Retryable(-rc)) {
      }
      VS_CHECK(rc == 0);  // a CQ with room for every completion cannot fail to deliver one
      Op& o = ops[io_uring_cqe_get_data64(cqe)];
      int res = cqe->res;
      io_uring_cqe_seen(&r->ring, cqe);
      if (res < 0) {
        if (!Retryable(-res)) {
          o.result = DiskError(-res, o.kind == Op::kWrite ? "write" : "fsync");
          o.done = true;
        }
        continue;
      }
      if (o.kind != Op::kWrite) {
        o.done = true;
        continue;
      }
      // A short write (res == 0 included) leaves the rest for the next round.
      size_t w = std::min(static_cast<size_t>(res), o.len);
      o.p += w;
      o.len -= w;
      o.off += w;
      if (o.len == 0) o.done = true;
    }
    if (r->broken) {
      for (unsigned k = submitted; k < queued; ++k) RunBlocking(ops[queued_idx[k]]);
      return;
    }
  }
  // Still short after kMaxResubmitRounds: blocking syscalls finish the job.
  for (size_t i = 0; i < n; ++i) RunBlocking(ops[i]);
}

Status DiskIo::WriteSpans(int fd, const WriteSpan* spans, size_t n) {
  VS_CHECK(n <= kMaxWriteSpans);
  Op ops[kMaxWriteSpans];
  for (size_t i = 0; i < n; ++i) {
    ops[i].kind = Op::kWrite;
    ops[i].fd = fd;
    ops[i].p = spans[i].data;
    ops[i].len = spans[i].len;
    ops[i].off = spans[i].off;
    ops[i].done = spans[i].len == 0;
  }
  if (Ring* r = uring_writes() ? Acquire() : nullptr) {
    RunOnRing(r, ops, n);
    Release(r);
  } else {
    for (size_t i = 0; i < n; ++i) RunBlocking(ops[i]);
  }
  for (size_t i = 0; i < n; ++i)
    if (!ops[i].result.ok()) return ops[i].result;
  return Status::Ok();
}

bool DiskIo::BufferedNowaitWrites(const std::string& dir) {
  std::string path = dir + "/.nowait-probe";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  char block[4096] = {};
  iovec v{block, sizeof block};
  ssize_t r;
  while ((r = ::pwritev2(fd, &v, 1, 0, RWF_NOWAIT)) < 0 && errno == EINTR) {
  }
  bool nowait = r >= 0 || errno == EAGAIN;  // EAGAIN: supported, just not right now
  ::close(fd);
  ::unlink(path.c_str());
  return nowait;
}

void DiskIo::SyncAll(SyncOp* sync_ops, size_t n) {
  for (size_t base = 0; base < n; base += kRingEntries) {
    size_t m = std::min<size_t>(kRingEntries, n - base);
    std::vector<Op> ops(m);
    for (size_t i = 0; i < m; ++i) {
      ops[i].kind = sync_ops[base + i].datasync ? Op::kFdatasync : Op::kFsync;
      ops[i].fd = sync_ops[base + i].fd;
    }
    if (Ring* r = rings_.empty() ? nullptr : Acquire()) {
      RunOnRing(r, ops.data(), m);
      Release(r);
    } else {
      for (auto& o : ops) RunBlocking(o);
    }
    for (size_t i = 0; i < m; ++i) sync_ops[base + i].result = ops[i].result;
  }
}

Status DiskIo::PreadAll(int fd, char* p, size_t n, uint64_t off, size_t* got) {
  *got = 0;
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return DiskError(errno, "read");
    }
    if (r == 0) break;
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status DiskIo::PwriteAll(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      return DiskError(errno, "write");
    }
    p += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Result<int> DiskIo::OpenFile(const std::string& path, bool create_truncate) {
  int flags = O_RDWR | O_CLOEXEC | (create_truncate ? O_CREAT | O_TRUNC : 0);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return DiskError(errno, create_truncate ? "cannot create " + path : "cannot open " + path);
  return fd;
}

Result<int> DiskIo::OpenDir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return DiskError(errno, "cannot open " + path);
  return fd;
}

void DiskIo::Close(int fd) {
  if (fd >= 0) ::close(fd);
}

Status DiskIo::Fdatasync(int fd) {
  return ::fdatasync(fd) == 0 ? Status::Ok() : DiskError(errno, "fdatasync");
}

Status DiskIo::Fsync(int fd) { return ::fsync(fd) == 0 ? Status::Ok() : DiskError(errno, "fsync"); }

Status DiskIo::Ftruncate(int fd, uint64_t size) {
  return ::ftruncate(fd, static_cast<off_t>(size)) == 0 ? Status::Ok() : DiskError(errno, "ftruncate");
}

Status DiskIo::PunchHole(int fd, uint64_t off, uint64_t len) {
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                  static_cast<off_t>(len)) == 0)
    return Status::Ok();
  if (errno == EOPNOTSUPP) return Err(Code::kNotSupported, "punch hole: not supported by the file system");
  return DiskError(errno, "punch a hole");
}

Status DiskIo::Reserve(int fd, uint64_t off, uint64_t len) {
  if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off), static_cast<off_t>(len)) == 0)
    return Status::Ok();
  if (errno == EOPNOTSUPP) return Err(Code::kNotSupported, "fallocate: not supported by the file system");
  return DiskError(errno, "fallocate");
}

Result<std::vector<std::string>> DiskIo::ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return DiskError(errno, "cannot open " + path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  return names;
}

Result<int> DiskIo::OpenReadOnly(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return DiskError(errno, "cannot open " + path);
  return fd;
}

Result<uint64_t> DiskIo::FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return DiskError(errno, "fstat");
  return static_cast<uint64_t>(st.st_size);
}

Status DiskIo::MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  return DiskError(errno, "cannot create " + path);
}

Status DiskIo::Unlink(const std::string& path, bool missing_ok) {
  if (::unlink(path.c_str()) == 0 || (missing_ok && errno == ENOENT)) return Status::Ok();
  return DiskError(errno, "unlink " + path);
}

Status DiskIo::Rename(const std::string& from, const std::string& to, bool missing_ok) {
  if (::rename(from.c_str(), to.c_str()) == 0 || (missing_ok && errno == ENOENT)) return Status::Ok();
  return DiskError(errno, "rename " + from);
}

Result<DiskIo::FsSpace> DiskIo::StatFs(const std::string& path) {
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) return DiskError(errno, "statvfs " + path);
  FsSpace s;
  s.total_bytes = static_cast<uint64_t>(v.f_blocks) * v.f_frsize;
  s.avail_bytes = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  return s;
}

}  // namespace vstorage::cs
