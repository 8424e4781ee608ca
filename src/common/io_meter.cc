#include "common/io_meter.h"

#include <algorithm>
#include <chrono>

namespace vstorage {

IoMeter::IoMeter(const Clock* clock) : clock_(clock), start_ms_(clock->NowMs()), last_ms_(start_ms_) {}

IoMeter::Slot& IoMeter::At(int64_t second) {
  Slot& s = slots_[static_cast<size_t>(second % kSlots)];
  if (s.second != second) s = Slot{second};
  return s;
}

void IoMeter::Accrue(int64_t now_ms) {
  if (now_ms <= last_ms_) return;
  // Time older than the window is of no use: skip it in one step, however long the gap.
  int64_t from = std::max(last_ms_, now_ms - kWindowMs - 1000);
  while (from < now_ms) {
    int64_t second = from / 1000;
    int64_t to = std::min(now_ms, (second + 1) * 1000);
    if (!begun_.empty()) {
      Slot& s = At(second);
      s.busy_ms += static_cast<uint64_t>(to - from);
      s.depth_ms += static_cast<uint64_t>(to - from) * static_cast<uint64_t>(begun_.size());
    }
    from = to;
  }
  last_ms_ = now_ms;
}

int64_t IoMeter::Begin() {
  std::lock_guard<std::mutex> l(mu_);
  int64_t now = clock_->NowMs();
  Accrue(now);
  begun_.insert(now);
  return now;
}

void IoMeter::End(int64_t begun_ms, int64_t latency_us) {
  std::lock_guard<std::mutex> l(mu_);
  int64_t now = clock_->NowMs();
  Accrue(now);
  if (auto it = begun_.find(begun_ms); it != begun_.end()) begun_.erase(it);
  Slot& s = At(now / 1000);
  uint64_t us = static_cast<uint64_t>(std::max<int64_t>(latency_us, 0));
  ++s.ops;
  s.lat_sum_us += us;
  s.lat_max_us = std::max(s.lat_max_us, us);
}

IoMeter::Sample IoMeter::Take() {
  std::lock_guard<std::mutex> l(mu_);
  int64_t now = clock_->NowMs();
  Accrue(now);
  int64_t first_second = now / 1000 - (kSlots - 1);
  uint64_t ops = 0, sum = 0, max = 0, busy = 0, depth = 0;
  for (const Slot& s : slots_) {
    if (s.second < first_second || s.second > now / 1000) continue;
    ops += s.ops;
    sum += s.lat_sum_us;
    max = std::max(max, s.lat_max_us);
    busy += s.busy_ms;
    depth += s.depth_ms;
  }
  // The window covers the whole seconds before this one and the part of this one gone by,
  // but never time before the meter existed.
  int64_t span = now - std::max(start_ms_, first_second * 1000);
  Sample out;
  out.ops = ops;
  out.span_ms = span;
  if (ops) {
    out.lat_avg_ms = static_cast<uint32_t>((sum / ops + 500) / 1000);
    out.lat_max_ms = static_cast<uint32_t>((max + 999) / 1000);
  }
  if (span > 0) {
    out.busy_pct = static_cast<uint32_t>(std::min<uint64_t>(100, busy * 100 / static_cast<uint64_t>(span)));
    out.busy_x10 = static_cast<uint32_t>(std::min<uint64_t>(1000, busy * 1000 / static_cast<uint64_t>(span)));
    out.qdepth_x10 = static_cast<uint32_t>(depth * 10 / static_cast<uint64_t>(span));
  }
  return out;
}

int64_t IoMeter::OldestInFlightMs() {
  std::lock_guard<std::mutex> l(mu_);
  return begun_.empty() ? 0 : std::max<int64_t>(0, clock_->NowMs() - *begun_.begin());
}

namespace {
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

IoTimer::IoTimer(IoMeter* m) : m_(m), begun_ms_(m->Begin()), start_ns_(SteadyNs()) {}
IoTimer::~IoTimer() { m_->End(begun_ms_, (SteadyNs() - start_ns_) / 1000); }

}  // namespace vstorage
