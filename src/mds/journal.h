// The MDS journal: the state machine's view of the log (mds/log.h). Recovery loads the
// newest snapshot and replays the entries after it; appends go to the log; snapshots are
// written either in the foreground (WriteSnapshot, from a state that includes every
// appended record) or in the background from the log alone (BuildSnapshot), so the master
// never stops for one (ARCHITECTURE §2, docs/design/mds.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "mds/log.h"
#include "mds/state.h"

namespace vstorage::mds {

// The state after the log's entries up to `upto` (>= the snapshot's index): the snapshot's
// image with the entries after it applied. Reads the log only; thread-safe with appends.
Result<MdsState> LoadState(const Log& log, uint64_t upto);

// Writes a snapshot of the state at the log's current last entry, built from the previous
// snapshot and the log (LoadState), then compacts the log. Costs one extra state in memory
// while it runs and never touches the master's state: call it from a background thread.
Status BuildSnapshot(Log& log);

class Journal {
 public:
  // The journal of the repository dir. Files go through fs (not owned, outlives the
  // Journal); the first form uses a POSIX file system the log owns.
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir);
  static Result<std::unique_ptr<Journal>> Open(env::FileSystem* fs, const std::string& dir);
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Opens the log (converting a v1 repository), loads the snapshot and replays the entries
  // after it. Call once, before anything else.
  Result<MdsState> Recover();
  // Appends records (one encoded Command each) at the next indices, durable on return.
  Status Append(const std::vector<std::string>& records, uint64_t term);
  // Writes a snapshot of `state` (which must include every appended record).
  Status WriteSnapshot(const MdsState& state);

  uint64_t RecordsSinceSnapshot() const { return log_->entries_since_snapshot(); }
  uint64_t last_index() const { return log_->last_index(); }
  Log& log() { return *log_; }

 private:
  Journal(env::FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  env::FileSystem* fs_;  // null: the log's own POSIX file system
  std::string dir_;
  std::unique_ptr<Log> log_;
};

}  // namespace vstorage::mds
