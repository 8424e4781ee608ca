// On-disk chunk replicas of one CS repository: one file per chunk in DIR/chunks/, CRC32C of
// every 4 KiB block verified on every read (a mismatch is Code::kCorrupt, never wrong bytes),
// and a chunk version that refuses stale writers (ARCHITECTURE §4).
//
// File layout (all little endian):
//   [0, 4096)            header: "VSCHUNK1" | chunk id u64 | version u64 | chunk_size u64 |
//                        crc32c of the preceding 32 bytes u32
//   [4096, data_off)     CRC table: one u32 per 4 KiB block of the chunk (0 = never written)
//   [data_off, ...)      the chunk's bytes; the file ends at the last written byte
// A block that was never written reads as zeros; its table entry is 0 and its bytes must be
// zeros too. Data and table are written without fsync; Sync() makes both durable.
//
// Disk path (DiskIo, cs/disk_io.h): a write sends its bytes and their table entries to the
// kernel in one io_uring submission (two SQEs at two offsets; pwrite when io_uring is not
// available). The two land in no particular order, as they always could in the page cache:
// only Sync() orders anything, and until then a torn pair reads as kCorrupt, never as
// wrong bytes.
//
// Thread-safety: every public member function may be called from any number of threads at
// once. Per chunk, writes (Write, Zero, Reserve, SetVersion, Delete) take the chunk's lock
// exclusively and are serialised; Read, VerifyMeta, Stat and List take it shared only and
// run side by side, also while the chunk's CRC table is being loaded lazily (a separate
// per-chunk mutex guards that one-time load). Sync() takes no chunk lock at all: the file
// descriptor is opened once and closed only when the last shared_ptr to the chunk goes, so
// holding that pointer keeps the fd valid while fdatasync runs, and writes to the chunk go
// on during a sync (a shared lock would have made them wait: std::shared_mutex lets a
// writer in only once every reader has left). No disk call is made under the store-wide
// mutex, and no fdatasync under a chunk's exclusive lock.
//
// Group sync: concurrent Sync() calls share their work. Every write bumps the chunk's write
// generation once its bytes are in the page cache; Sync() returns at once when the chunk's
// synced generation has caught up (and its directory entry is durable); otherwise it queues
// the chunk. A waiting caller leads a round: it takes up to kMaxSyncBatch queued requests,
// issues one fdatasync per distinct dirty chunk and a single directory fsync for all chunks
// whose entry is not durable yet, all in one submission, then wakes every caller its round
// covered. Up to kMaxSyncLeaders rounds run at once: with a single one, callers coming back
// from a round would always miss the next, which had begun meanwhile, and batches would
// halve (measured: half the syncs/s of the old one-fdatasync-per-caller code on ext4, whose
// journal already commits concurrent fdatasyncs together). The queue holds at most
// kMaxSyncQueue requests; more callers wait.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/io_meter.h"
#include "common/status.h"
#include "cs/disk_io.h"
#include "cs/intent_log.h"
#include "proto/messages.h"

namespace vstorage::cs {

struct Space {
  uint64_t total_bytes = 0, free_bytes = 0, used_bytes = 0;
};

// Counters of the group sync (monotonic since Open).
struct SyncStats {
  uint64_t calls = 0;       // Sync() calls, SetVersion's included
  uint64_t skipped = 0;     // calls that found the chunk synced already: no disk call
  uint64_t rounds = 0;      // leader rounds, each one submission of syncs
  uint64_t fdatasyncs = 0;  // chunk files synced
  uint64_t dir_fsyncs = 0;  // fsyncs of DIR/chunks
};

class ChunkStore {
 public:
  static constexpr size_t kMaxSyncBatch = 32;  // requests one leader round takes
  static constexpr size_t kMaxSyncQueue = 4 * kMaxSyncBatch;  // requests waiting for a leader
  static constexpr size_t kMaxSyncLeaders = 2;  // rounds in flight at once
  static constexpr size_t kMaxSweepSyncs = 64;  // idle dirty chunks one SweepIntents syncs

  // checksums=false (make-cs -S, guide 7.6.4): no CRC32C is computed, stored or verified.
  // io_mode=kPwrite: never io_uring (kAuto falls back by itself when io_uring is missing).
  static Result<std::unique_ptr<ChunkStore>> Open(const std::string& repo_dir, bool checksums = true,
                                                  DiskIoMode io_mode = DiskIoMode::kAuto);
  bool checksums() const { return checksums_; }
  ~ChunkStore();

  // create=false: the chunk must exist already (a copy in progress whose file vanished must
  // fail, not restart with a hole at its head).
  // crcs: the end-to-end checksums of the data (SegmentCrcs, common/crc32c.h), which the
  // caller checked against the bytes it received; the block checksums stored are built from
  // them (Crc32cCombine with the rest of a partly covered block), so a byte that changes
  // after that check reads as kCorrupt later, never as data. nullptr: computed here.
  Status Write(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset,
               const char* data, size_t len, bool create = true, const uint32_t* crcs = nullptr);
  // [offset, offset+len) reads as zeros afterwards. Whole 4 KiB blocks give their space
  // back (a hole punched in the chunk file, or the file cut when the range reaches its end)
  // and their table entries become 0; partly covered blocks are rewritten with their
  // checksums. Creates the chunk like Write if this CS has none of it yet.
  Status Zero(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len);
  // Reserves disk space for [offset, offset+len) (fallocate mode 0 on the mount): a later
  // write there cannot fail for lack of space. The bytes and the replica's size stay.
  // kNoSpace if the disk cannot hold it.
  Status Reserve(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len);
  // crcs_out (SegmentCount(offset, len) values): the end-to-end checksums of what was read,
  // derived from the stored block checksums the bytes were verified against (for a block
  // read in part: the checksum of that part, checked to combine with the rest into the
  // stored one). On a store without checksums: computed over the bytes read.
  Status Read(ChunkId id, uint64_t version, uint64_t offset, uint32_t len, char* out, uint32_t* crcs_out = nullptr);
  // Every write to the chunk that returned before this call is durable (data, table, and the
  // file's directory entry) when it returns Ok. Shares its work with concurrent calls (see
  // the top of this file); blocks only on the sync itself, never on the chunk's writers.
  Status Sync(ChunkId id);
  // Scrubbing: the header and CRC table on disk must match what this CS serves from memory
  // (a flipped byte there would only show after a restart). kCorrupt if not.
  Status VerifyMeta(ChunkId id, uint64_t version);
  // Durable when it returns Ok (the header is synced like Sync(), after the chunk lock is
  // released: writes with the new version may proceed while the sync runs).
  Status SetVersion(ChunkId id, uint64_t old_version, uint64_t new_version);
  Status Delete(ChunkId id, uint64_t max_version = UINT64_MAX);
  std::vector<proto::ChunkReplicaState> List();
  Result<proto::ChunkReplicaState> Stat(ChunkId id);
  Result<Space> GetSpace();

  uint64_t csum_errors() const { return csum_errors_; }
  uint64_t io_errors() const { return io_errors_; }
  // Chunks whose file had a damaged header at start: moved to <repo>/quarantine, and refused
  // (kCorrupt) until a delete from the MDS says the replica is no longer counted.
  std::vector<ChunkId> Lost();
  // Chunks that may have lost or torn writes: they were in the write-intent log at start
  // (cs/intent_log.h), so the last stop may have cut writes that were not synced. The MDS
  // decides whether such a replica is kept (docs/design/cs.md "Power cuts"); until it has
  // been told, they stay marked.
  std::vector<ChunkId> Suspect();
  void SuspectsReported(const std::vector<ChunkId>& ids);
  // For a suspect replica the MDS keeps as the chunk's content: every block whose checksum
  // disagrees with its bytes takes the bytes on disk (after a torn write each sector holds
  // the old or the new data), and the table is made durable. Not done at Open: on a replica
  // that is dropped, a mismatch must stay an error (it may be a flipped bit, not a tear).
  Status RepairSuspect(ChunkId id);
  // Blocks whose checksum RepairSuspect had to take from the bytes on disk.
  uint64_t torn_blocks() const { return torn_blocks_; }
  // Forgets the write intents of chunks that are synced and were not written since the
  // previous sweep (the CS calls it every heartbeat); never those still Suspect(). Idle
  // chunks with unsynced writes (nobody asked for a sync) are synced, at most
  // kMaxSweepSyncs per sweep, and forgotten by a later sweep.
  void SweepIntents();
  IntentLog& intents() { return *intents_; }
  // Age of the oldest disk operation still running (0: none): a hung disk (flag T).
  int64_t OldestDiskOpMs() { return disk_.OldestInFlightMs(); }

  SyncStats sync_stats() const;
  uint64_t sync_rounds() const { return sync_rounds_.load(std::memory_order_relaxed); }
  // Whether writes go through io_uring, and how many submissions it has made.
  bool uring() const { return io_.uring_writes(); }
  uint64_t io_submissions() const { return io_.submissions(); }

  // Test hooks, set before the store is used concurrently and never changed after. Called
  // by the sync leader before each round's disk calls (no lock held), and by Read() with
  // the chunk's lock held shared, after the table is loaded.
  void SetSyncRoundHookForTest(std::function<void()> f) { sync_round_hook_ = std::move(f); }
  void SetReadHookForTest(std::function<void()> f) { read_hook_ = std::move(f); }
  // Replaces the result of each chunk's fdatasync in a sync round when it returns an error.
  void SetSyncResultHookForTest(std::function<Status(ChunkId)> f) { sync_result_hook_ = std::move(f); }

 private:
  struct Chunk {
    // Exclusive: changes to the file or to the fields below. Shared: reading them.
    std::shared_mutex mu;
    // The one-time open of the file and load of the CRC table, which readers do holding mu
    // shared only; the atomics below publish the result to readers that skip this mutex.
    std::mutex load_mu;
    ChunkId id;
    std::string path;  // fixed once the chunk is listed
    // Opened once, closed only by ~Chunk: a shared_ptr<Chunk> is the reference that keeps
    // it valid, e.g. for a sync running without the lock.
    std::atomic<int> fd{-1};
    uint64_t version = 0;
    uint64_t chunk_size = 0;
    uint64_t data_off = 0;
    uint64_t data_len = 0;       // bytes from data_off to the end of the file
    // data_len, readable without the lock: space accounting must not wait for a write
    // stuck on a hung disk (the heartbeat reports that very hang).
    std::atomic<uint64_t> size_hint{0};
    std::vector<uint32_t> crcs;  // loaded on first use; changed under mu exclusive
    std::atomic<bool> crcs_loaded{false};
    std::atomic<bool> durable_entry{false};  // the directory entry was fsynced
    // An fdatasync of this chunk failed. Linux then marks the pages clean and a retry would
    // succeed without writing them, so every later Sync() fails: the replica is rebuilt.
    std::atomic<bool> sync_failed{false};
    // Bumped after every write-like call's disk calls, under mu exclusive; synced_gen is the
    // highest write_gen an fdatasync that completed had seen before it began.
    std::atomic<uint64_t> write_gen{0};
    std::atomic<uint64_t> synced_gen{0};
    bool deleted = false;
    ~Chunk();
  };
  ChunkStore(std::string dir, DiskIoMode io_mode) : dir_(std::move(dir)), io_(io_mode) {}
  Status Scan();
  std::shared_ptr<Chunk> Find(ChunkId id);
  // Both need c.mu held (either mode) or the chunk not yet shared; thread-safe among readers.
  Status EnsureOpen(Chunk& c);
  Status EnsureOpenLoadMuHeld(Chunk& c);
  Status LoadCrcs(Chunk& c);
  Status WriteHeader(Chunk& c);
  // RepairSuspect's work, c.mu held exclusively and the file open.
  Status RepairLocked(Chunk& c, uint64_t* fixed);
  static Status CheckRange(ChunkId id, uint64_t chunk_size, uint64_t offset, uint64_t len);
  // The chunk of a write-like call (write, zero, reserve), checked (range, version, size),
  // created if `create`, open, and locked exclusively for as long as the result lives. Its
  // destruction bumps the chunk's write generation before unlocking: whatever the call did
  // to the file is then in the page cache, and a later Sync() cannot skip it.
  struct Locked {
    std::shared_ptr<Chunk> c;
    std::unique_lock<std::shared_mutex> l;
    Locked(std::shared_ptr<Chunk> chunk, std::unique_lock<std::shared_mutex> lock)
        : c(std::move(chunk)), l(std::move(lock)) {}
    Locked(Locked&&) = default;
    Locked& operator=(Locked&&) = delete;
    ~Locked();
  };
  Result<Locked> LockForWrite(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len,
                              bool create);
  // The write itself, c.mu held exclusively and the file open.
  Status SyncFailedError(const Chunk& c);
  Status WriteLocked(Chunk& c, uint64_t offset, const char* data, size_t len, const uint32_t* crcs = nullptr);
  // st annotated, and counted in io_errors_ when it is an I/O error.
  Status Count(Status st, const std::string& what);
  Result<std::shared_ptr<Chunk>> Create(ChunkId id, uint64_t version, uint64_t chunk_size);

  // Group sync. A request lives on its caller's stack until `done`.
  struct SyncReq {
    std::shared_ptr<Chunk> c;
    Status st;
    bool done = false;  // under sync_mu_
  };
  Status SyncChunk(const std::shared_ptr<Chunk>& c);
  // The leader's round, sync_mu_ not held: syncs what `batch` needs and sets each st.
  void RunSyncRound(const std::vector<SyncReq*>& batch);

  std::string dir_;  // DIR/chunks
  std::string repo_;
  int dir_fd_ = -1;  // DIR/chunks, for the directory fsyncs
  DiskIo io_;
  std::mutex mu_;
  std::map<ChunkId, std::shared_ptr<Chunk>> chunks_;
  bool checksums_ = true;
  std::atomic<uint64_t> csum_errors_{0}, io_errors_{0};
  IoMeter disk_;  // chunk writes, reads, syncs, version bumps, deletes
  std::map<ChunkId, std::string> lost_;  // under mu_: damaged replicas -> where the file is kept
  std::unique_ptr<IntentLog> intents_;   // set by Open
  std::vector<ChunkId> suspects_;        // under mu_
  std::atomic<uint64_t> torn_blocks_{0};
  std::mutex sweep_mu_;                  // one sweep at a time; no disk call under it
  std::map<ChunkId, uint64_t> swept_gen_;  // under sweep_mu_: write_gen at the last sweep
  void Quarantine(ChunkId id, const std::string& path);
  static Status LostError(ChunkId id, const std::string& where);

  std::mutex sync_mu_;  // never held with mu_ or a chunk lock, nor across a disk call
  std::condition_variable sync_cv_;
  std::deque<SyncReq*> sync_queue_;  // under sync_mu_, at most kMaxSyncQueue
  size_t sync_leaders_ = 0;          // under sync_mu_: rounds running, at most kMaxSyncLeaders
  std::atomic<uint64_t> sync_calls_{0}, sync_skipped_{0}, sync_rounds_{0}, fdatasyncs_{0}, dir_fsyncs_{0};
  std::function<void()> sync_round_hook_, read_hook_;
  std::function<Status(ChunkId)> sync_result_hook_;
};

}  // namespace vstorage::cs
