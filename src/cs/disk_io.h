// The raw disk syscalls of the chunk store, in one place: positioned reads and writes,
// syncs, space calls and the io_uring rings that submit several of them at once.
//
// DiskIo submits a batch of operations (writes at different offsets of one file, or the
// syncs of many files) to the kernel with ONE io_uring_submit_and_wait, so that the data
// of a chunk write and its checksum table entries, which sit at different file offsets,
// travel together, and the fdatasyncs of a group sync run side by side in the kernel.
// When io_uring is not available (io_uring_queue_init fails, e.g. seccomp in a sandbox)
// or DiskIoMode::kPwrite is asked for, the same calls run one syscall at a time
// (pwrite / fdatasync); the fallback is logged once per process.
//
// Thread-safety: every member function may be called from any number of threads at once.
// The rings form a bounded pool (kRings); a caller takes one for the duration of its
// batch and waits for one when all are busy (the chunk store's sync leaders hold at most
// ChunkStore::kMaxSyncLeaders, fewer than kRings, so writers always have the others).
// Buffers passed in must stay valid until the call returns; no call keeps a pointer past
// its return: every submitted SQE is reaped first.
//
// Cost: on a file system that cannot do buffered writes without blocking (ext4 and tmpfs
// on the 6.18 kernel of the dev machine), the kernel hands each buffered write SQE to an
// io-wq worker, so a write pays two thread hops that two pwrites do not (measured ~8-10 us
// against ~1.5-3 us for a 4 KiB write plus its table entry; for the 256 KiB - 1 MiB writes
// of a sequential stream it cost 20-30% more CPU per GiB across the cluster). So in kAuto
// writes go through io_uring only where the file system takes non-blocking buffered
// writes (BufferedNowaitWrites, probed by the chunk store on its directory); syncs always
// do, since there the single submission lets many fdatasyncs run side by side.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace vstorage::cs {

// A Status for a failed syscall: kNoSpace for ENOSPC/EDQUOT, kIoError otherwise.
Status DiskError(int err, const std::string& what);

enum class DiskIoMode {
  kAuto,    // io_uring if the kernel lets us (writes: see SetUringWrites), else pwrite
  kPwrite,  // never io_uring (tests of the fallback; operators who distrust it)
  kUring,   // io_uring for writes too, even where the kernel punts them to a worker
};

// One piece of a multi-offset write to one file.
struct WriteSpan {
  const char* data = nullptr;
  size_t len = 0;
  uint64_t off = 0;
};

// One file to make durable: fdatasync (datasync) or fsync (a directory). `result` is set.
struct SyncOp {
  int fd = -1;
  bool datasync = true;
  Status result;
};

class DiskIo {
 public:
  static constexpr size_t kRings = 4;             // rings in the pool, shared by all threads
  static constexpr unsigned kRingEntries = 64;    // SQEs per ring: the most ops per submission
  static constexpr size_t kMaxWriteSpans = 8;     // spans per WriteSpans call
  static constexpr int kMaxResubmitRounds = 16;   // short writes / EAGAIN retried this often,
                                                  // then the rest is written with pwrite
  static constexpr size_t kMaxSqeBytes = 1u << 30;  // one SQE's length is a u32

  explicit DiskIo(DiskIoMode mode = DiskIoMode::kAuto);
  ~DiskIo();
  DiskIo(const DiskIo&) = delete;
  DiskIo& operator=(const DiskIo&) = delete;

  // True when io_uring rings were set up (false: the pwrite fallback). A ring whose
  // submission failed is retired; with none left, batches take the fallback too.
  bool uring() const { return !rings_.empty(); }
  // Whether WriteSpans uses the rings (uring() and, in kAuto, SetUringWrites(true), the
  // default). Syncs use them whenever uring().
  bool uring_writes() const { return uring() && uring_writes_.load(std::memory_order_relaxed); }
  void SetUringWrites(bool on) {
    if (mode_ == DiskIoMode::kAuto) uring_writes_.store(on, std::memory_order_relaxed);
  }
  // Whether buffered writes to a new file in dir can complete without blocking
  // (pwritev2 RWF_NOWAIT is not refused with EOPNOTSUPP): then io_uring does them inline
  // instead of handing them to a worker thread. The probe file is removed again.
  static bool BufferedNowaitWrites(const std::string& dir);
  // io_uring submissions made so far (each io_uring_submit_and_wait counts once).
  uint64_t submissions() const { return submissions_.load(std::memory_order_relaxed); }

  // Writes all of every span to fd (n <= kMaxWriteSpans), all spans in one submission;
  // short writes and -EAGAIN/-EINTR are resubmitted. Returns the first error; on error
  // some spans may be written wholly or partly (nothing is rolled back).
  Status WriteSpans(int fd, const WriteSpan* spans, size_t n);
  // Makes every op's file durable, all in one submission per kRingEntries ops; each op's
  // result says how its file fared.
  void SyncAll(SyncOp* ops, size_t n);

  // Single syscalls (EINTR retried). PreadAll stops at end of file: *got says how much came.
  static Status PreadAll(int fd, char* p, size_t n, uint64_t off, size_t* got);
  static Status PwriteAll(int fd, const char* p, size_t n, uint64_t off);
  static Result<int> OpenFile(const std::string& path, bool create_truncate);
  static Result<int> OpenDir(const std::string& path);
  static void Close(int fd);
  static Status Fdatasync(int fd);
  static Status Fsync(int fd);
  static Status Ftruncate(int fd, uint64_t size);
  // kNotSupported when the file system cannot punch holes / reserve.
  static Status PunchHole(int fd, uint64_t off, uint64_t len);
  static Status Reserve(int fd, uint64_t off, uint64_t len);
  // Names in a directory, "." and ".." left out.
  static Result<std::vector<std::string>> ListDir(const std::string& path);
  static Result<int> OpenReadOnly(const std::string& path);
  static Result<uint64_t> FileSize(int fd);
  static Status MakeDir(const std::string& path);  // Ok if it exists already
  // missing_ok: a path that does not exist (ENOENT) is Ok.
  static Status Unlink(const std::string& path, bool missing_ok);
  static Status Rename(const std::string& from, const std::string& to, bool missing_ok);
  struct FsSpace {
    uint64_t total_bytes = 0, avail_bytes = 0;
  };
  static Result<FsSpace> StatFs(const std::string& path);

 private:
  struct Ring;
  struct Op;  // one SQE's worth of work, with what is left of it
  Ring* Acquire();
  void Release(Ring* r);
  // Runs ops (n <= kRingEntries) on ring r: one submission per round, rounds repeated for
  // what came back short or with -EAGAIN/-EINTR, at most kMaxResubmitRounds times.
  void RunOnRing(Ring* r, Op* ops, size_t n);
  static void RunBlocking(Op& op);

  DiskIoMode mode_;
  std::atomic<bool> uring_writes_{true};
  std::vector<std::unique_ptr<Ring>> rings_;  // fixed after construction
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Ring*> free_;  // under mu_
  size_t alive_ = 0;         // under mu_: rings not retired after a failed submission
  std::atomic<uint64_t> submissions_{0};
};

}  // namespace vstorage::cs
