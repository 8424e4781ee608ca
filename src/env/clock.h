// Time behind an interface: a real (POSIX) clock for daemons and a manual one that tests and
// the simulator move explicitly, so that nothing which waits or stamps time needs real time
// to pass.
//
// This is the Env clock; common/clock.h keeps the older vstorage::Clock that today's callers
// use until they are moved over (the names NowMs/WallMs/WallNs mean the same in both).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>

namespace vstorage::env {

inline constexpr int64_t kNsPerMs = 1'000'000;
inline constexpr int64_t kNsPerSec = 1'000'000'000;

// Thread-safe: every implementation may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time in nanoseconds from an arbitrary origin; never decreases.
  virtual int64_t NowNs() const = 0;
  // Realtime in nanoseconds since the Unix epoch (stamps shown to users, file times). May
  // jump in either direction; never use it to measure an interval.
  virtual int64_t WallNs() const = 0;
  // Returns once NowNs() >= deadline_ns (at once when it already is). A manual clock returns
  // only when some other thread advances it that far (or, in auto-advance mode, jumps there).
  virtual void SleepUntilNs(int64_t deadline_ns) = 0;

  int64_t NowMs() const { return NowNs() / kNsPerMs; }
  int64_t WallMs() const { return WallNs() / kNsPerMs; }
  void SleepMs(int64_t ms) { SleepUntilNs(NowNs() + ms * kNsPerMs); }
};

// CLOCK_MONOTONIC, CLOCK_REALTIME and clock_nanosleep (env/posix.cc). The caller owns it.
std::unique_ptr<Clock> NewPosixClock();

// A clock that moves only when told. Deterministic: its readings depend on nothing but the
// calls made to it. Thread-safe; SleepUntilNs blocks the calling thread on a condition
// variable until AdvanceNs (from another thread) reaches the deadline.
//
// Auto-advance mode is for a single-threaded simulator: a sleep jumps the clock to its
// deadline instead of blocking (there is nobody else to advance it).
class ManualClock : public Clock {
 public:
  // The monotonic reading starts at now_ns; the wall clock at wall_ns (2024-01-01 UTC by
  // default, so that stamps look plausible) and moves together with it.
  static constexpr int64_t kDefaultWallNs = 1'704'067'200LL * kNsPerSec;
  explicit ManualClock(int64_t now_ns = 0, int64_t wall_ns = kDefaultWallNs);

  int64_t NowNs() const override;
  int64_t WallNs() const override;
  void SleepUntilNs(int64_t deadline_ns) override;

  // Moves both readings forward by delta_ns (>= 0, checked) and wakes the sleepers whose
  // deadline has come.
  void AdvanceNs(int64_t delta_ns);
  void AdvanceMs(int64_t delta_ms) { AdvanceNs(delta_ms * kNsPerMs); }
  // Steps the wall clock alone (an NTP correction); the monotonic reading does not move.
  void SetWallNs(int64_t wall_ns);
  void set_auto_advance(bool on);

  // Threads blocked in SleepUntilNs right now.
  int Sleepers() const;
  // Earliest deadline among the blocked sleepers, or -1 when none: lets a driver advance
  // exactly to the next event.
  int64_t NextWakeNs() const;
  // Test handshake: waits (in real time, at most timeout_ms) until at least n threads sleep
  // on this clock, so that an Advance is known to find them. True when they do.
  bool WaitForSleepers(int n, int64_t timeout_ms) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int64_t now_ns_;
  int64_t wall_offset_ns_;  // WallNs() = now_ns_ + wall_offset_ns_
  bool auto_advance_ = false;
  std::multiset<int64_t> deadlines_;  // of blocked sleepers
};

}  // namespace vstorage::env
