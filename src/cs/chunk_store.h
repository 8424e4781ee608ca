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
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/io_meter.h"
#include "common/status.h"
#include "proto/messages.h"

namespace vstorage::cs {

struct Space {
  uint64_t total_bytes = 0, free_bytes = 0, used_bytes = 0;
};

class ChunkStore {
 public:
  // checksums=false (make-cs -S, guide 7.6.4): no CRC32C is computed, stored or verified.
  static Result<std::unique_ptr<ChunkStore>> Open(const std::string& repo_dir, bool checksums = true);
  bool checksums() const { return checksums_; }
  ~ChunkStore();

  // create=false: the chunk must exist already (a copy in progress whose file vanished must
  // fail, not restart with a hole at its head).
  Status Write(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset,
               const char* data, size_t len, bool create = true);
  // [offset, offset+len) reads as zeros afterwards. Whole 4 KiB blocks give their space
  // back (a hole punched in the chunk file, or the file cut when the range reaches its end)
  // and their table entries become 0; partly covered blocks are rewritten with their
  // checksums. Creates the chunk like Write if this CS has none of it yet.
  Status Zero(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len);
  // Reserves disk space for [offset, offset+len) (fallocate mode 0 on the mount): a later
  // write there cannot fail for lack of space. The bytes and the replica's size stay.
  // kNoSpace if the disk cannot hold it.
  Status Reserve(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len);
  Status Read(ChunkId id, uint64_t version, uint64_t offset, uint32_t len, char* out);
  Status Sync(ChunkId id);
  // Scrubbing: the header and CRC table on disk must match what this CS serves from memory
  // (a flipped byte there would only show after a restart). kCorrupt if not.
  Status VerifyMeta(ChunkId id, uint64_t version);
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
  // Age of the oldest disk operation still running (0: none): a hung disk (flag T).
  int64_t OldestDiskOpMs() { return disk_.OldestInFlightMs(); }

 private:
  struct Chunk {
    std::shared_mutex mu;
    ChunkId id;
    std::string path;
    int fd = -1;
    uint64_t version = 0;
    uint64_t chunk_size = 0;
    uint64_t data_off = 0;
    uint64_t data_len = 0;       // bytes from data_off to the end of the file
    // data_len, readable without the lock: space accounting must not wait for a write
    // stuck on a hung disk (the heartbeat reports that very hang).
    std::atomic<uint64_t> size_hint{0};
    std::vector<uint32_t> crcs;  // loaded on first use
    bool crcs_loaded = false;
    bool durable_entry = false;  // the directory entry was fsynced
    bool deleted = false;
    ~Chunk();
  };
  explicit ChunkStore(std::string dir) : dir_(std::move(dir)) {}
  Status Scan();
  std::shared_ptr<Chunk> Find(ChunkId id);
  Status EnsureOpen(Chunk& c);
  Status LoadCrcs(Chunk& c);
  Status WriteHeader(Chunk& c);
  static Status CheckRange(ChunkId id, uint64_t chunk_size, uint64_t offset, uint64_t len);
  // The chunk of a write-like call (write, zero, reserve), checked (range, version, size),
  // created if `create`, open, and locked exclusively for as long as the result lives.
  struct Locked {
    std::shared_ptr<Chunk> c;
    std::unique_lock<std::shared_mutex> l;
  };
  Result<Locked> LockForWrite(ChunkId id, uint64_t version, uint64_t chunk_size, uint64_t offset, uint64_t len,
                              bool create);
  // The write itself, c.mu held exclusively and the file open.
  Status WriteLocked(Chunk& c, uint64_t offset, const char* data, size_t len);
  Status IoError(const std::string& what);
  Result<std::shared_ptr<Chunk>> Create(ChunkId id, uint64_t version, uint64_t chunk_size);

  std::string dir_;  // DIR/chunks
  std::string repo_;
  std::mutex mu_;
  std::map<ChunkId, std::shared_ptr<Chunk>> chunks_;
  bool checksums_ = true;
  std::atomic<uint64_t> csum_errors_{0}, io_errors_{0};
  IoMeter disk_;  // chunk writes, reads, syncs, version bumps, deletes
  std::map<ChunkId, std::string> lost_;  // under mu_: damaged replicas -> where the file is kept
  void Quarantine(ChunkId id, const std::string& path);
  static Status LostError(ChunkId id, const std::string& where);
};

}  // namespace vstorage::cs
