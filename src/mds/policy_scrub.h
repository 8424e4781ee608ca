// Scrub scheduling (pure): guide 7.6.5, mds.wd.verify_chunks chunks per minute on each CS.
// Each CS has a cursor (its chunks are verified in id order, wrapping around) and the time
// its next verification is due. The service ticks every kScrubTickMs: ScrubDue() tells which
// CS owe verifications; for those it lists the chunks they hold and ScheduleScrub() picks
// them and moves the cursor and the due time; the service then has each CS verify them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/ids.h"

namespace vstorage::mds {

inline constexpr int kScrubTickMs = 250;
// Verifications one CS is asked for per tick at most (a high verify_chunks owes several
// chunks a tick; a CS that fell further behind skips the rest rather than catching up).
inline constexpr int kMaxScrubPerTick = 64;

struct ScrubChunk {
  ChunkId id;
  uint64_t version = 0;
};

struct ScrubCsView {
  CsId cs;
  ChunkId cursor;            // the last chunk verified (0: none yet)
  int64_t next_scrub_ms = 0;  // when the next verification is due (0: not scheduled yet)
  // The chunks it holds that are not being copied, in any order. Needed only when
  // ScrubDue() says so; otherwise it may be left empty.
  std::vector<ScrubChunk> held;
};

struct ScrubTask {
  CsId cs;
  ChunkId chunk;
  uint64_t version = 0;
  bool operator==(const ScrubTask&) const = default;
};

struct ScrubDecision {
  std::vector<ScrubTask> tasks;
  ChunkId cursor;             // the CS's new cursor
  int64_t next_scrub_ms = 0;  // its new due time
};

// The interval between two verifications on one CS at per_min a minute (at least 1 ms);
// per_min <= 0 disables scrubbing (and then nothing is ever due).
int64_t ScrubIntervalMs(int64_t per_min);

// Whether this CS owes a verification at now_ms (and so needs `held` filled).
bool ScrubDue(const ScrubCsView& cs, int64_t per_min, int64_t now_ms);

// The verifications owed by one CS now: a due time not set yet, or further away than one
// interval (the rate was raised), becomes now + interval; then each interval passed owes
// the next chunk after the cursor in id order (wrapping around), at most kMaxScrubPerTick;
// a CS still behind after that is due one interval from now. A CS that holds nothing owes
// nothing (one interval is consumed, as if a chunk had been verified).
ScrubDecision ScheduleScrub(const ScrubCsView& cs, int64_t per_min, int64_t now_ms);

}  // namespace vstorage::mds
