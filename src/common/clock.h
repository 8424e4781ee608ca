// Time behind an interface so pure code can be driven by a fake clock in tests.
#pragma once
#include <cstdint>

namespace vstorage {
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;       // monotonic
  virtual int64_t WallMs() const = 0;      // realtime, for stamps shown to users
  // Realtime in nanoseconds (file timestamps); by default WallMs() in nanoseconds.
  virtual int64_t WallNs() const { return WallMs() * 1000000; }
};
Clock* RealClock();
}  // namespace vstorage
