#include "common/io_meter.h"

#include <gtest/gtest.h>

namespace vstorage {
namespace {

class FakeClock : public Clock {
 public:
  int64_t NowMs() const override { return now; }
  int64_t WallMs() const override { return now; }
  int64_t now = 1'000'000;
};

TEST(IoMeter, IdleMeterShowsZeros) {
  FakeClock clk;
  IoMeter m(&clk);
  clk.now += 5000;
  auto s = m.Take();
  EXPECT_EQ(s.ops, 0u);
  EXPECT_EQ(s.lat_avg_ms, 0u);
  EXPECT_EQ(s.lat_max_ms, 0u);
  EXPECT_EQ(s.busy_pct, 0u);
  EXPECT_EQ(s.qdepth_x10, 0u);
}

TEST(IoMeter, LatencyBusyAndDepthOverTheWindow) {
  FakeClock clk;
  IoMeter m(&clk);
  clk.now += 10000;  // 10 s idle
  // Two operations overlap for 2 s: 4 s busy in all, depth 2 for 2 s.
  int64_t a = m.Begin();
  clk.now += 1000;
  int64_t b = m.Begin();
  clk.now += 500;
  EXPECT_EQ(m.OldestInFlightMs(), 1500);
  clk.now += 1500;
  m.End(a, 3'000'000);
  EXPECT_EQ(m.OldestInFlightMs(), 2000);  // b is the oldest now
  clk.now += 1000;
  m.End(b, 3'000'000);
  EXPECT_EQ(m.OldestInFlightMs(), 0);
  // Then 4 quick ones of 1 ms and 3 ms.
  m.End(m.Begin(), 1000);
  m.End(m.Begin(), 3000);
  m.End(m.Begin(), 1000);
  m.End(m.Begin(), 3000);
  clk.now += 6000;  // 20 s since the start; the window is this second (just begun) and the 19 before
  auto s = m.Take();
  EXPECT_EQ(s.ops, 6u);
  EXPECT_EQ(s.lat_avg_ms, 1001u);  // (6000 + 8) ms / 6
  EXPECT_EQ(s.lat_max_ms, 3000u);
  EXPECT_EQ(s.busy_pct, 21u);     // 4 s of 19
  EXPECT_EQ(s.busy_x10, 210u);
  EXPECT_EQ(s.span_ms, 19000);
  EXPECT_EQ(s.qdepth_x10, 3u);    // (1 + 2*2 + 1) s of depth / 19 s = 0.31
}

TEST(IoMeter, OldActivityLeavesTheWindow) {
  FakeClock clk;
  IoMeter m(&clk);
  int64_t a = m.Begin();
  clk.now += 500;
  m.End(a, 500'000);
  clk.now += 25000;
  auto s = m.Take();
  EXPECT_EQ(s.ops, 0u);
  EXPECT_EQ(s.lat_max_ms, 0u);
  EXPECT_EQ(s.busy_pct, 0u);
}

TEST(IoMeter, AnOperationStillRunningCountsAsBusyAcrossALongGap) {
  FakeClock clk;
  IoMeter m(&clk);
  clk.now += 30000;
  m.Begin();
  clk.now += 3'600'000;  // one hour stuck
  EXPECT_EQ(m.OldestInFlightMs(), 3'600'000);
  auto s = m.Take();
  EXPECT_EQ(s.busy_pct, 100u);
  EXPECT_EQ(s.qdepth_x10, 10u);
  EXPECT_EQ(s.ops, 0u);
}

TEST(IoMeter, SubMillisecondMaxShowsAsOne) {
  FakeClock clk;
  IoMeter m(&clk);
  m.End(m.Begin(), 200);
  clk.now += 1000;
  auto s = m.Take();
  EXPECT_EQ(s.lat_avg_ms, 0u);
  EXPECT_EQ(s.lat_max_ms, 1u);
}

TEST(IoMeter, TimerMeasuresRealTime) {
  IoMeter m;
  { IoTimer t(&m); }
  auto s = m.Take();
  EXPECT_EQ(s.ops, 1u);
}

}  // namespace
}  // namespace vstorage
