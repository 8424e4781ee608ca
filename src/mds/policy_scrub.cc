#include "mds/policy_scrub.h"

#include <algorithm>

namespace vstorage::mds {

int64_t ScrubIntervalMs(int64_t per_min) { return std::max<int64_t>(1, 60000 / std::max<int64_t>(1, per_min)); }

namespace {
int64_t EffectiveNext(const ScrubCsView& cs, int64_t interval, int64_t now_ms) {
  // A raised rate applies at once, not after the interval the old rate scheduled.
  if (cs.next_scrub_ms == 0 || cs.next_scrub_ms > now_ms + interval) return now_ms + interval;
  return cs.next_scrub_ms;
}
}  // namespace

bool ScrubDue(const ScrubCsView& cs, int64_t per_min, int64_t now_ms) {
  if (per_min <= 0) return false;
  return now_ms >= EffectiveNext(cs, ScrubIntervalMs(per_min), now_ms);
}

ScrubDecision ScheduleScrub(const ScrubCsView& cs, int64_t per_min, int64_t now_ms) {
  ScrubDecision d;
  d.cursor = cs.cursor;
  d.next_scrub_ms = cs.next_scrub_ms;
  if (per_min <= 0) return d;
  int64_t interval = ScrubIntervalMs(per_min);
  d.next_scrub_ms = EffectiveNext(cs, interval, now_ms);
  std::vector<ScrubChunk> held = cs.held;
  std::sort(held.begin(), held.end(), [](const ScrubChunk& a, const ScrubChunk& b) { return a.id < b.id; });
  for (int k = 0; k < kMaxScrubPerTick && now_ms >= d.next_scrub_ms; ++k) {
    d.next_scrub_ms += interval;
    if (held.empty()) break;
    auto after = std::upper_bound(held.begin(), held.end(), d.cursor,
                                  [](ChunkId c, const ScrubChunk& h) { return c < h.id; });
    const ScrubChunk& pick = after != held.end() ? *after : held.front();
    d.cursor = pick.id;
    d.tasks.push_back({cs.cs, pick.id, pick.version});
  }
  if (now_ms >= d.next_scrub_ms) d.next_scrub_ms = now_ms + interval;  // fell behind: skip
  return d;
}

}  // namespace vstorage::mds
