// The write-intent log of a CS repository (issue 13 item 3; docs/design/cs.md "Power cuts").
//
// A chunk write reaches the disk in pieces (its bytes, its CRC table entries), and until a
// Sync() nothing orders them: a power cut can leave a block whose bytes and checksum
// disagree, or a replica that lost writes the client was told had reached every replica
// (acknowledged, not yet synced) while its version still looks current. So before the first
// write to a chunk, its id is made durable here ("this chunk may hold unsynced writes").
// After a power cut (the log was written under another boot id: the machine restarted), the
// ids found are the suspect chunks: the chunk store reports them to the MDS, which drops the
// replica when an intact one exists elsewhere and otherwise makes one replica the chunk's
// content (docs/design/cs.md). When only the process died (same boot id), the page cache
// kept every write that returned, and nothing is suspect.
//
// An id leaves the log lazily: the chunk store clears it (ChunkStore::SweepIntents) once the
// chunk has been synced and idle for a while, so a chunk written steadily pays the log's
// fdatasync once, not once per sync. Clears need no sync: a lost clear only makes a chunk
// suspect needlessly.
//
// File REPO/intents, little endian:
//   header (64 bytes): "VSINTNT1" | format version u32 (=1) | boot id of the machine that
//                      wrote the log, ASCII, NUL-padded to 48 bytes | crc32c of the first 60 u32
//   records (16 bytes each): chunk id u64 | op u32 (1 = may be dirty, 2 = clean) |
//                            crc32c of the record's first 12 bytes u32
// Replay stops at the first short or damaged record (a torn append: its write never went
// out, since the data write waits for the append's fdatasync). At Open the log is rewritten
// (tmp file, fdatasync, rename, directory fsync) with one record per id still present, and
// whenever it has grown past kCompactBytes.
//
// Thread-safety: every member function may be called from any number of threads at once.
// Marks share their work: concurrent Mark() calls are appended and synced by one leader in
// one round (group commit). mu_ is never held across a disk call; one round at a time.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace vstorage::cs {

class IntentLog {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kHeaderBytes = 64;
  static constexpr size_t kMaxBootIdBytes = 48;
  static constexpr size_t kRecordBytes = 16;
  static constexpr uint64_t kCompactBytes = 1u << 20;  // rewrite the log past this size
  static constexpr size_t kMaxRoundIds = 4096;         // ids one round appends at most

  // Opens (or creates) REPO/intents under this boot id (ReadBootId()). *found: the ids the
  // log held; they stay marked. *rebooted: the log was written under another boot id (or
  // holds none), so unsynced writes to the chunks in *found may have been lost.
  static Result<std::unique_ptr<IntentLog>> Open(const std::string& repo_dir, const std::string& boot_id,
                                                 std::set<ChunkId>* found, bool* rebooted);
  // The machine's boot id (/proc/sys/kernel/random/boot_id). A simulated host (the system
  // tests' power cuts) names another file in VSTORAGE_BOOT_ID_FILE.
  static std::string ReadBootId();
  ~IntentLog();

  bool Contains(ChunkId id);
  // Durable when it returns Ok: a power cut from now on leaves `id` in the log.
  Status Mark(ChunkId id);
  // The chunk is synced and idle: forget it (written with the next round, no sync).
  void Clear(ChunkId id);
  // Writes the clears not yet written, and compacts the log when it has grown.
  Status Flush();
  std::vector<ChunkId> Marked();
  uint64_t rounds() const;  // rounds that appended marks (each one fdatasync)

  // The bytes of a record and of the header (golden tests pin them).
  static std::string EncodeHeader(const std::string& boot_id);
  static std::string EncodeRecord(ChunkId id, uint32_t op);

 private:
  IntentLog(std::string repo, std::string path, std::string boot_id)
      : repo_(std::move(repo)), path_(std::move(path)), boot_id_(std::move(boot_id)) {}
  // Rewrites the log holding exactly `ids`; fd_ then appends to the new file.
  Status Rewrite(const std::set<ChunkId>& ids);
  // One round, leader only (writing_ set, mu_ not held): appends clears and marks, syncs if
  // there are marks, compacts when the file is big.
  Status RunRound(const std::vector<ChunkId>& clears, const std::vector<ChunkId>& marks);

  const std::string repo_, path_, boot_id_;
  int fd_ = -1;            // appends; changed only by a round (or Open)
  uint64_t end_ = 0;       // file size; only the round's leader touches it
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<ChunkId> marked_;              // under mu_: durable in the log
  std::set<ChunkId> want_;                // under mu_: waiting for a round
  std::vector<ChunkId> clears_;           // under mu_: cleared, not yet written
  std::map<ChunkId, Status> failed_;      // under mu_: marks whose round failed
  bool writing_ = false;                  // under mu_: a round is running
  uint64_t rounds_ = 0;                   // under mu_
};

}  // namespace vstorage::cs
