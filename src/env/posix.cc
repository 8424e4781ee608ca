// Every raw syscall of the Env: the POSIX clock, the OS seed and the POSIX file system.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "env/clock.h"
#include "env/file_system.h"
#include "env/random.h"

namespace vstorage::env {

namespace {

// --- clock ---

int64_t ReadClock(clockid_t id) {
  timespec ts;
  VS_CHECK(::clock_gettime(id, &ts) == 0);
  return int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec;
}

class PosixClock : public Clock {
 public:
  int64_t NowNs() const override { return ReadClock(CLOCK_MONOTONIC); }
  int64_t WallNs() const override { return ReadClock(CLOCK_REALTIME); }
  void SleepUntilNs(int64_t deadline_ns) override {
    if (deadline_ns <= 0) return;
    timespec ts{static_cast<time_t>(deadline_ns / kNsPerSec), static_cast<long>(deadline_ns % kNsPerSec)};
    // An absolute deadline, so that a signal's EINTR does not make the sleep longer.
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
  }
};

// --- files ---

Code CodeOfErrno(int e) {
  switch (e) {
    case ENOENT: return Code::kNotFound;
    case EEXIST: return Code::kExists;
    case ENOTDIR: return Code::kNotDir;
    case EISDIR: return Code::kIsDir;
    case ENOTEMPTY: return Code::kNotEmpty;
    case ENOSPC:
    case EDQUOT: return Code::kNoSpace;
    case EACCES:
    case EPERM:
    case EROFS: return Code::kPermission;
    case ENAMETOOLONG: return Code::kNameTooLong;
    case EWOULDBLOCK: return Code::kBusy;
    case EINVAL: return Code::kInvalidArgument;
    case EFBIG: return Code::kTooBig;
    default: return Code::kIoError;
  }
}

// Reads errno, so call it right after the failing syscall.
Status ErrnoStatus(const char* op, const std::string& path) {
  int e = errno;
  return Err(CodeOfErrno(e), std::string(op) + " " + path + ": " + std::strerror(e));
}

int OpenRetry(const char* path, int flags, mode_t mode = 0) {
  for (;;) {
    int fd = ::open(path, flags, mode);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    VS_CHECK(fd_ >= 0);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      // O_APPEND: the write lands at the end even after a Truncate.
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("append", path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    VS_CHECK(fd_ >= 0);
    if (::fdatasync(fd_) != 0) return ErrnoStatus("sync", path_);
    return Status::Ok();
  }

  Status Truncate(uint64_t size_bytes) override {
    VS_CHECK(fd_ >= 0);
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) return ErrnoStatus("truncate", path_);
    size_ = size_bytes;
    return Status::Ok();
  }

  Status Close() override {
    VS_CHECK(fd_ >= 0);
    int fd = fd_;
    fd_ = -1;
    // Not retried on EINTR: Linux releases the descriptor whatever close returns.
    if (::close(fd) != 0) return ErrnoStatus("close", path_);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  int fd_;
  std::atomic<uint64_t> size_;  // Size() may run concurrently with Append
};

class PosixRandomAccessFile : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, buf + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("read", path_);
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("stat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileLock : public FileLock {
 public:
  PosixFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // releases the flock
  const std::string& path() const override { return path_; }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileSystem : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path, WriteMode mode) override {
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (mode == WriteMode::kTruncate ? O_TRUNC : 0);
    int fd = OpenRetry(path.c_str(), flags, 0600);
    if (fd < 0) return ErrnoStatus("open-write", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      Status s = ErrnoStatus("stat", path);
      ::close(fd);
      return s;
    }
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open-read", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      Status s = ErrnoStatus("stat", path);
      ::close(fd);
      return s;
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Err(Code::kIsDir, "open-read " + path + ": is a directory");
    }
    return std::unique_ptr<RandomAccessFile>(std::make_unique<PosixRandomAccessFile>(path, fd));
  }

  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path);
    FileInfo info;
    info.is_dir = S_ISDIR(st.st_mode);
    info.size_bytes = info.is_dir ? 0 : static_cast<uint64_t>(st.st_size);
    return info;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("list", dir);
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      dirent* e = ::readdir(d);
      if (e == nullptr) {
        if (errno != 0) {
          Status s = ErrnoStatus("list", dir);
          ::closedir(d);
          return s;
        }
        break;
      }
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus("mkdir", dir);
    return Status::Ok();
  }

  Status RemoveDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) {
      // rmdir may say EEXIST for a non-empty directory.
      if (errno == EEXIST) errno = ENOTEMPTY;
      return ErrnoStatus("rmdir", dir);
    }
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      // POSIX allows EPERM for a directory; Linux says EISDIR. Say the same everywhere.
      if (errno == EPERM) {
        struct stat st;
        if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) errno = EISDIR;
      }
      return ErrnoStatus("remove", path);
    }
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      if (errno == EEXIST) errno = ENOTEMPTY;
      return ErrnoStatus("rename", from + " -> " + to);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = OpenRetry(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("sync-dir", dir);
    int r = ::fsync(fd);
    Status s = r == 0 ? Status::Ok() : ErrnoStatus("sync-dir", dir);
    ::close(fd);
    return s;
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("lock", path);
    // flock, not fcntl locks: those are per process, and a second lock from this very
    // process would succeed and be dropped when any descriptor of the file closes.
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) return Err(Code::kBusy, "lock " + path + ": held by another process or handle");
      errno = e;
      return ErrnoStatus("lock", path);
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(path, fd));
  }
};

}  // namespace

std::unique_ptr<Clock> NewPosixClock() { return std::make_unique<PosixClock>(); }

std::unique_ptr<FileSystem> NewPosixFileSystem() { return std::make_unique<PosixFileSystem>(); }

uint64_t RealSeed() {
  uint64_t seed = 0;
  char* p = reinterpret_cast<char*>(&seed);
  size_t got = 0;
  while (got < sizeof seed) {
    ssize_t n = ::getrandom(p + got, sizeof seed - got, 0);
    if (n < 0 && errno == EINTR) continue;
    VS_CHECK(n > 0);  // getrandom(0) of 8 bytes fails only without kernel support
    got += static_cast<size_t>(n);
  }
  return seed;
}

}  // namespace vstorage::env
