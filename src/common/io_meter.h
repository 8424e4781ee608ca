// Windowed I/O statistics as `stat` and `top` show them (guide 5.3, 5.4): over the last
// 20 seconds, the average and maximum time one operation took (IOLAT), the share of time
// with at least one operation in flight (IOWAIT, like iostat's %util) and the average
// number of operations in flight (QDEPTH). Thread-safe; one mutex, no allocation per op.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <set>

#include "common/clock.h"

namespace vstorage {

class IoMeter {
 public:
  static constexpr int64_t kWindowMs = 20000;

  struct Sample {
    uint32_t lat_avg_ms = 0;  // rounded to the nearest millisecond
    uint32_t lat_max_ms = 0;  // rounded up: an operation that took any time shows >= its avg
    uint32_t busy_pct = 0;    // IOWAIT
    uint32_t busy_x10 = 0;    // the same in tenths of a percent (the MDS's %CTIME)
    uint32_t qdepth_x10 = 0;  // QDEPTH, tenths
    uint64_t ops = 0;         // operations finished in the window
    int64_t span_ms = 0;      // how long the window is (shorter while the meter is young)
  };

  explicit IoMeter(const Clock* clock = RealClock());

  // An operation starts (Begin returns its start, for End) and finishes after latency_us.
  int64_t Begin();
  void End(int64_t begun_ms, int64_t latency_us);
  Sample Take();
  // How long the oldest operation still in flight has been running (0: none is): a disk
  // that stopped answering shows here long before anything times out.
  int64_t OldestInFlightMs();

 private:
  static constexpr int kSlots = kWindowMs / 1000;
  struct Slot {
    int64_t second = -1;
    uint64_t ops = 0, lat_sum_us = 0, lat_max_us = 0;
    uint64_t busy_ms = 0, depth_ms = 0;  // time with I/O in flight; in-flight count x time
  };
  Slot& At(int64_t second);
  void Accrue(int64_t now_ms);

  const Clock* clock_;
  std::mutex mu_;
  std::array<Slot, kSlots> slots_{};
  int64_t start_ms_;
  int64_t last_ms_;  // time accrued up to here
  std::multiset<int64_t> begun_;  // start times of the operations in flight
};

// Measures one operation on a meter: Begin() now, End() when it goes out of scope.
class IoTimer {
 public:
  explicit IoTimer(IoMeter* m);
  ~IoTimer();
  IoTimer(const IoTimer&) = delete;
  IoTimer& operator=(const IoTimer&) = delete;

 private:
  IoMeter* m_;
  int64_t begun_ms_;
  int64_t start_ns_;
};

}  // namespace vstorage
