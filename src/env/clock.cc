#include "env/clock.h"

#include <chrono>

#include "common/status.h"

namespace vstorage::env {

ManualClock::ManualClock(int64_t now_ns, int64_t wall_ns)
    : now_ns_(now_ns), wall_offset_ns_(wall_ns - now_ns) {}

int64_t ManualClock::NowNs() const {
  std::lock_guard<std::mutex> l(mu_);
  return now_ns_;
}

int64_t ManualClock::WallNs() const {
  std::lock_guard<std::mutex> l(mu_);
  return now_ns_ + wall_offset_ns_;
}

void ManualClock::SleepUntilNs(int64_t deadline_ns) {
  std::unique_lock<std::mutex> l(mu_);
  if (now_ns_ >= deadline_ns) return;
  if (auto_advance_) {
    now_ns_ = deadline_ns;
    // Another thread may sleep on an earlier deadline that has now passed.
    cv_.notify_all();
    return;
  }
  auto it = deadlines_.insert(deadline_ns);
  cv_.notify_all();  // WaitForSleepers
  cv_.wait(l, [&] { return now_ns_ >= deadline_ns; });
  deadlines_.erase(it);
  cv_.notify_all();
}

void ManualClock::AdvanceNs(int64_t delta_ns) {
  VS_CHECK(delta_ns >= 0);
  std::lock_guard<std::mutex> l(mu_);
  now_ns_ += delta_ns;
  cv_.notify_all();
}

void ManualClock::SetWallNs(int64_t wall_ns) {
  std::lock_guard<std::mutex> l(mu_);
  wall_offset_ns_ = wall_ns - now_ns_;
}

void ManualClock::set_auto_advance(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  auto_advance_ = on;
}

int ManualClock::Sleepers() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(deadlines_.size());
}

int64_t ManualClock::NextWakeNs() const {
  std::lock_guard<std::mutex> l(mu_);
  return deadlines_.empty() ? -1 : *deadlines_.begin();
}

bool ManualClock::WaitForSleepers(int n, int64_t timeout_ms) const {
  std::unique_lock<std::mutex> l(mu_);
  // Real time on purpose: this is the test's safety net against a sleeper that never comes.
  return cv_.wait_for(l, std::chrono::milliseconds(timeout_ms),
                      [&] { return static_cast<int>(deadlines_.size()) >= n; });
}

}  // namespace vstorage::env
