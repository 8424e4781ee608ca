#include "common/clock.h"

#include <ctime>

namespace vstorage {
namespace {
class PosixClock : public Clock {
 public:
  int64_t NowMs() const override { return Get(CLOCK_MONOTONIC); }
  int64_t WallMs() const override { return Get(CLOCK_REALTIME); }
  int64_t WallNs() const override {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }

 private:
  static int64_t Get(clockid_t c) {
    timespec ts;
    clock_gettime(c, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }
};
}  // namespace
Clock* RealClock() {
  static PosixClock c;
  return &c;
}
}  // namespace vstorage
