#include "cs/write_order.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <chrono>
#include <thread>
#include <vector>

namespace vstorage::cs {
namespace {

template <typename Pred>
bool WaitFor(Pred p) {
  for (int i = 0; i < 2000 && !p(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return p();
}

TEST(WriteOrder, NonOverlappingRangesAndOtherChunksDoNotWait) {
  WriteOrder o;
  auto a = o.Acquire(ChunkId{1}, 0, 4096);
  auto b = o.Acquire(ChunkId{1}, 4096, 4096);  // adjacent, not overlapping
  auto c = o.Acquire(ChunkId{2}, 0, 4096);     // another chunk
  EXPECT_EQ(o.pending(ChunkId{1}), 2u);
  EXPECT_EQ(o.pending(ChunkId{2}), 1u);
}

TEST(WriteOrder, OverlappingWritesGoInArrivalOrder) {
  WriteOrder o;
  std::vector<int> applied;
  std::mutex mu;
  std::optional<WriteOrder::Hold> first(o.Acquire(ChunkId{1}, 0, 100));
  std::vector<std::thread> ts;
  for (int i = 1; i <= 3; ++i) {
    // Each arrives after the previous one is queued: 1, 2, 3.
    ts.emplace_back([&, i] {
      auto h = o.Acquire(ChunkId{1}, 50, 100);
      std::lock_guard<std::mutex> l(mu);
      applied.push_back(i);
    });
    ASSERT_TRUE(WaitFor([&] { return o.pending(ChunkId{1}) == static_cast<size_t>(i + 1); }));
  }
  {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_TRUE(applied.empty());  // all wait for the first
  }
  first.reset();
  for (auto& t : ts) t.join();
  EXPECT_EQ(applied, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(o.pending(ChunkId{1}), 0u);
}

TEST(WriteOrder, ALaterDisjointWriteOvertakesAWaitingOne) {
  WriteOrder o;
  std::optional<WriteOrder::Hold> a(o.Acquire(ChunkId{1}, 0, 100));
  std::atomic<bool> b_done{false};
  std::thread tb([&] {
    auto h = o.Acquire(ChunkId{1}, 50, 10);  // waits for a
    b_done = true;
  });
  ASSERT_TRUE(WaitFor([&] { return o.pending(ChunkId{1}) == 2; }));
  auto c = o.Acquire(ChunkId{1}, 200, 10);  // overlaps neither: goes at once
  EXPECT_FALSE(b_done);
  a.reset();
  tb.join();
  EXPECT_TRUE(b_done);
}

}  // namespace
}  // namespace vstorage::cs
