// The MDS journal: an append-only file of commands (each record fdatasync'ed before the
// command is acknowledged) plus a periodic snapshot of the whole state. Recovery loads the
// snapshot and replays the records after it (ARCHITECTURE §2, docs/design/mds.md).
//
// Files in the MDS repository:
//   snapshot  "VSSNAP01" | last index u64 | image length u64 | crc32c u32 | image
//   journal   records: magic u32 | length u32 | crc32c u32 | index u64 | term u64 | data
// Records carry a log index and term so that the MDS quorum can replicate this very log.
// A torn record at the end (a crash during an append, never acknowledged) is cut off; a bad
// record followed by good ones is corruption and recovery refuses to guess.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "mds/state.h"

namespace vstorage::mds {

class Journal {
 public:
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Loads the snapshot and replays the journal. Call once, before Append.
  Result<MdsState> Recover();
  // Appends records (one encoded Command each) and makes them durable.
  Status Append(const std::vector<std::string>& records, uint64_t term);
  // Writes a snapshot of `state` (which must include every appended record) and empties
  // the journal.
  Status WriteSnapshot(const MdsState& state);

  uint64_t RecordsSinceSnapshot() const { return since_snapshot_; }
  uint64_t last_index() const { return last_index_; }

 private:
  explicit Journal(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  int fd_ = -1;
  uint64_t end_ = 0;  // append offset
  uint64_t last_index_ = 0;
  uint64_t since_snapshot_ = 0;
};

}  // namespace vstorage::mds
