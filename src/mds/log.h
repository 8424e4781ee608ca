// The MDS log, shaped as the Raft quorum will need it (issue 10, docs/design/mds.md):
// indexed entries carrying a term; append, truncate-suffix, read-range, term-at(index); a
// durable hard state (term, vote); and snapshots tagged with (index, term) that compact the
// log without dropping the kLogKeepBehindSnapshot entries before them that a lagging
// follower may still need.
//
// Files in the MDS repository (every format has a version and a golden test, log_test.cc):
//   log/<first index, 20 digits>.seg  segment: "VSLOGSG1" | format u32 (1) | 0 u32 |
//                                     first index u64, then records
//   record      magic "VJRN" u32 | length u32 | crc32c u32 | index u64 | term u64 | data
//               (crc over index, term and data; the record format of the v1 journal)
//   hardstate   "VSHARD01" | format u32 (1) | term u64 | vote u64 | crc32c u32 (of the above)
//   snapshot    "VSSNAP02" | format u32 (2) | index u64 | term u64 | image length u64 |
//               crc32c u32 (of the image) | image (MdsState::Encode)
// Written by earlier versions (v1): "journal" (the same records, no segments) and a
// "VSSNAP01" snapshot (index, no term: term 1). Open converts them: the records become the
// first segment and the snapshot is rewritten, before the v1 files are removed.
//
// Only the tail segment is ever written. A torn record at its end (a crash during an append,
// never acknowledged) is cut off at Open; a bad record followed by good ones, or a gap in
// the indices, is corruption and Open refuses to guess.
//
// Threading: one appender at a time (Append, TruncateSuffix: the pipeline's leader, later
// the Raft loop); any number of readers (Read, TermAt, indices) and one snapshot writer
// (SaveSnapshot, Compact) concurrently with it. An internal mutex guards only the in-memory
// index and is never held across file I/O.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "env/file_system.h"

namespace vstorage::mds {

inline constexpr uint64_t kLogSegmentBytes = 64ull << 20;    // a new segment after this
inline constexpr uint64_t kLogKeepBehindSnapshot = 10000;    // entries kept before a snapshot
inline constexpr uint32_t kMaxLogRecordBytes = 64u << 20;    // a longer record is corruption
inline constexpr size_t kMaxLogReadBytes = 64u << 20;        // bound of one Read

struct LogEntry {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;
  bool operator==(const LogEntry&) const = default;
};

struct HardState {
  uint64_t term = 0;
  uint64_t vote = 0;  // MdsId voted for in term, 0 for none
  bool operator==(const HardState&) const = default;
};

struct SnapshotMeta {
  uint64_t index = 0;  // last entry the image includes (0: no snapshot, the empty state)
  uint64_t term = 0;
};

// Encodings, exposed for the golden tests.
std::string EncodeLogRecord(const LogEntry& e);
std::string EncodeSegmentHeader(uint64_t first_index);
std::string EncodeHardState(const HardState& h);
std::string EncodeSnapshotFile(const SnapshotMeta& m, std::string_view image);

class Log {
 public:
  // Opens (creating if needed) the log of the repository `dir`, converting v1 files. Every
  // file operation goes through fs (not owned; must outlive the Log); the first form uses
  // a POSIX file system of its own.
  static Result<std::unique_ptr<Log>> Open(env::FileSystem* fs, const std::string& dir);
  static Result<std::unique_ptr<Log>> Open(const std::string& dir);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  SnapshotMeta snapshot() const;
  // The image of the newest snapshot ("" when there is none).
  Result<std::string> ReadSnapshotImage() const;
  HardState hard_state() const;
  Status SaveHardState(const HardState& h);

  // Entries held are [first_index(), last_index()]; empty when first > last. Entries up to
  // snapshot().index may have been compacted away.
  uint64_t first_index() const;
  uint64_t last_index() const;
  // Term of an entry held, or of the snapshot's last entry; kNotFound otherwise.
  Result<uint64_t> TermAt(uint64_t index) const;
  // Entries [lo, hi] (hi capped at last_index()), at least one if lo is held, then as many
  // as fit in max_bytes. kNotFound if lo was compacted.
  Result<std::vector<LogEntry>> Read(uint64_t lo, uint64_t hi, size_t max_bytes = kMaxLogReadBytes) const;

  // Appends entries with consecutive indices from last_index() + 1 and makes them durable
  // (fdatasync) before returning. On error nothing of them remains in the log (after a
  // crash, an unacknowledged append may or may not have survived, whole); if the failed
  // write cannot even be cut back, the log refuses every later write until reopened.
  Status Append(const std::vector<LogEntry>& entries);
  // Removes every entry >= from (a follower's conflicting suffix). from > snapshot().index.
  Status TruncateSuffix(uint64_t from);
  // Installs a snapshot image that includes every entry up to m.index (durable on return),
  // then drops segments wholly before m.index - kLogKeepBehindSnapshot.
  Status SaveSnapshot(const SnapshotMeta& m, std::string_view image);

  uint64_t entries_since_snapshot() const;

 private:
  struct Segment {
    uint64_t first_index = 0;
    std::string path;
    std::unique_ptr<env::RandomAccessFile> reader;  // thread-safe
    std::unique_ptr<env::WritableFile> writer;      // the tail segment's only; the appender's
    uint64_t size = 0;  // bytes, header included; changed only by the appender
  };
  struct Slot {  // where an entry lives
    uint64_t term;
    uint64_t offset;  // of its record in seg
    uint32_t len;     // of its data
    Segment* seg;     // owned by segs_
  };
  Log(env::FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  Result<bool> Exists(const std::string& path) const;
  Status Load();
  Status DoTruncateSuffix(uint64_t from);
  // After a write that failed and could not be undone: every later Append and
  // TruncateSuffix fails with why (the appender's only).
  void Break(const std::string& path, const Status& why);
  Status ConvertV1();
  Status LoadSegment(const std::string& path, uint64_t first_index, bool tail);
  Result<std::shared_ptr<Segment>> NewSegment(uint64_t first_index);
  void Compact(uint64_t upto);

  std::unique_ptr<env::FileSystem> owned_fs_;  // set by Open(dir) only
  Status broken_ = Status::Ok();                // the appender's; see Break
  env::FileSystem* const fs_;
  const std::string dir_;
  mutable std::mutex mu_;  // guards everything below; never held across I/O
  std::vector<std::shared_ptr<Segment>> segs_;
  uint64_t first_ = 1;      // index of slots_[0]
  std::vector<Slot> slots_;
  SnapshotMeta snap_;
  HardState hard_;
};

}  // namespace vstorage::mds
