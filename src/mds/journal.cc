#include "mds/journal.h"

#include "common/log.h"
#include "proto/codec.h"

namespace vstorage::mds {

Result<MdsState> LoadState(const Log& log, uint64_t upto) {
  MdsState state;
  SnapshotMeta snap = log.snapshot();
  ASSIGN_OR_RETURN(std::string image, log.ReadSnapshotImage());
  if (!image.empty()) RETURN_IF_ERROR(state.Decode(image));
  uint64_t replayed = 0;
  for (uint64_t next = snap.index + 1; next <= upto;) {
    ASSIGN_OR_RETURN(std::vector<LogEntry> entries, log.Read(next, upto));
    if (entries.empty()) break;
    for (const auto& e : entries) {
      Command cmd;
      RETURN_IF_ERROR(proto::DecodeStoredRecord(e.data, &cmd, "journal record"));
      // A command is journaled before it is applied, so one that failed when it was
      // applied (say, a create of a name taken by the command ahead of it) fails the same
      // way now: Apply is deterministic, and a failed Apply changes nothing.
      auto r = state.Apply(cmd);
      if (!r.ok())
        LOG_DEBUG("journal record %llu did not apply, as when it was made: %s",
                  static_cast<unsigned long long>(e.index), r.status().ToString().c_str());
      ++replayed;
    }
    next = entries.back().index + 1;
  }
  LOG_DEBUG("state at index %llu: snapshot at %llu, %llu records replayed", static_cast<unsigned long long>(upto),
            static_cast<unsigned long long>(snap.index), static_cast<unsigned long long>(replayed));
  return state;
}

Status BuildSnapshot(Log& log) {
  uint64_t upto = log.last_index();
  if (upto <= log.snapshot().index) return Status::Ok();
  ASSIGN_OR_RETURN(uint64_t term, log.TermAt(upto));
  ASSIGN_OR_RETURN(MdsState state, LoadState(log, upto));
  std::string image = state.Encode();
  return log.SaveSnapshot(SnapshotMeta{upto, term}, image);
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir) {
  return std::unique_ptr<Journal>(new Journal(nullptr, dir));
}

Result<std::unique_ptr<Journal>> Journal::Open(env::FileSystem* fs, const std::string& dir) {
  return std::unique_ptr<Journal>(new Journal(fs, dir));
}

Result<MdsState> Journal::Recover() {
  if (fs_) {
    ASSIGN_OR_RETURN(log_, Log::Open(fs_, dir_));
  } else {
    ASSIGN_OR_RETURN(log_, Log::Open(dir_));
  }
  uint64_t last = log_->last_index();
  ASSIGN_OR_RETURN(MdsState state, LoadState(*log_, last));
  LOG_INFO("MDS state recovered: snapshot at index %llu, %llu journal records replayed",
           static_cast<unsigned long long>(log_->snapshot().index),
           static_cast<unsigned long long>(last - log_->snapshot().index));
  return state;
}

Status Journal::Append(const std::vector<std::string>& records, uint64_t term) {
  std::vector<LogEntry> entries;
  entries.reserve(records.size());
  uint64_t index = log_->last_index();
  for (const auto& r : records) entries.push_back({++index, term, r});
  return log_->Append(entries);
}

Status Journal::WriteSnapshot(const MdsState& state) {
  uint64_t upto = log_->last_index();
  ASSIGN_OR_RETURN(uint64_t term, log_->TermAt(upto));
  return log_->SaveSnapshot(SnapshotMeta{upto, term}, state.Encode());
}

}  // namespace vstorage::mds
