#include "mds/invalidation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace vstorage::mds {
namespace {

const ClientId kA{1001}, kB{1002}, kC{1003};

proto::Invalidation Entry(uint64_t dir, const std::string& name) {
  return proto::Invalidation{proto::InvalKind::kEntry, InodeId{dir}, name};
}
proto::Invalidation Inode(uint64_t ino) { return proto::Invalidation{proto::InvalKind::kInode, InodeId{ino}, ""}; }

TEST(InvalidationHub, ChangesGoToOtherWatchersNotToTheirOrigin) {
  InvalidationHub hub;
  EXPECT_TRUE(hub.Wait(kA, 0, 0, 0).changes.empty());
  EXPECT_TRUE(hub.Wait(kB, 0, 0, 0).changes.empty());
  hub.Publish(kA, {Entry(1, "f"), Inode(1)}, 0);
  auto a = hub.Wait(kA, 0, 0, 0);
  EXPECT_TRUE(a.changes.empty());
  EXPECT_FALSE(a.resync);
  auto b = hub.Wait(kB, 0, 0, 0);
  ASSERT_EQ(b.changes.size(), 2u);
  EXPECT_FALSE(b.resync);
  EXPECT_EQ(b.changes[0].kind, proto::InvalKind::kEntry);
  EXPECT_EQ(b.changes[0].ino, InodeId{1});
  EXPECT_EQ(b.changes[0].name, "f");
  EXPECT_EQ(b.changes[1].kind, proto::InvalKind::kInode);
  EXPECT_EQ(b.seq, 2u);
  // Not acknowledged (the reply was lost): sent again; acknowledged: gone.
  EXPECT_EQ(hub.Wait(kB, 0, 0, 0).changes.size(), 2u);
  auto again = hub.Wait(kB, 2, 0, 0);
  EXPECT_TRUE(again.changes.empty());
  EXPECT_EQ(again.seq, 2u);
  // A change of nobody in particular (the MDS itself) reaches its cause too.
  hub.Publish(ClientId{}, {Inode(5)}, 0);
  EXPECT_EQ(hub.Wait(kA, a.seq, 0, 0).changes.size(), 1u);
}

TEST(InvalidationHub, ClientsThatNeverWatchedGetNothingQueued) {
  InvalidationHub hub;
  hub.Publish(kA, {Inode(7)}, 0);
  EXPECT_EQ(hub.watchers(), 0u);
  // Its first watch starts from now: nothing of before (it cached nothing then).
  auto c = hub.Wait(kC, 0, 0, 0);
  EXPECT_TRUE(c.changes.empty());
  EXPECT_FALSE(c.resync);
}

TEST(InvalidationHub, OverflowTellsTheClientToResyncThenQueuesAgain) {
  InvalidationHub hub(/*max_queue=*/4);
  hub.Wait(kB, 0, 0, 0);
  hub.Publish(kA, {Inode(1), Inode(2), Inode(3)}, 0);
  hub.Publish(kA, {Inode(4), Inode(5)}, 0);  // 5 > 4: the queue is dropped
  auto r = hub.Wait(kB, 0, 0, 0);
  EXPECT_TRUE(r.resync);
  EXPECT_TRUE(r.changes.empty());
  EXPECT_GT(r.seq, 0u);
  // The resync answer lost: asked again from the old number, it is resync again.
  auto r2 = hub.Wait(kB, 0, 0, 0);
  EXPECT_TRUE(r2.resync);
  // A change after the resync answer but before its acknowledgement is not lost.
  hub.Publish(kA, {Inode(9)}, 0);
  auto next = hub.Wait(kB, r2.seq, 0, 0);
  EXPECT_FALSE(next.resync);
  ASSERT_EQ(next.changes.size(), 1u);
  EXPECT_EQ(next.changes[0].ino, InodeId{9});
  EXPECT_TRUE(hub.Wait(kB, next.seq, 0, 0).changes.empty());
}

TEST(InvalidationHub, AClientUnknownToTheHubWithHistoryResyncs) {
  InvalidationHub hub;  // as after an MDS restart
  auto r = hub.Wait(kB, 40, 0, 0);
  EXPECT_TRUE(r.resync);
  EXPECT_GT(r.seq, 40u);
  hub.Publish(kA, {Inode(3)}, 0);
  auto n = hub.Wait(kB, r.seq, 0, 0);
  EXPECT_FALSE(n.resync);
  ASSERT_EQ(n.changes.size(), 1u);
  // A number ahead of the hub's (it restarted while the client was between polls): resync.
  EXPECT_TRUE(hub.Wait(kB, n.seq + 100, 0, 0).resync);
}

TEST(InvalidationHub, IdleWatchersAreForgottenAndResyncWhenTheyComeBack) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, /*now_ms=*/0);
  hub.Wait(kC, 0, 0, 0);
  hub.Publish(kA, {Inode(1)}, 1000);
  auto c = hub.Wait(kC, 0, 0, kWatcherIdleMs);
  ASSERT_EQ(c.changes.size(), 1u);
  hub.Publish(kA, {Inode(2)}, kWatcherIdleMs + 1000);  // B has not watched since 0
  EXPECT_EQ(hub.watchers(), 1u);
  EXPECT_TRUE(hub.Wait(kB, 1, 0, kWatcherIdleMs + 2000).resync);
  EXPECT_EQ(hub.Wait(kC, c.seq, 0, kWatcherIdleMs + 2000).changes.size(), 1u);
}

TEST(InvalidationHub, ALongPollIsAnsweredByAPublishByForgetAndByStop) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, 0);
  auto t0 = std::chrono::steady_clock::now();
  std::thread pub([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hub.Publish(kA, {Entry(1, "x")}, 0);
  });
  auto r = hub.Wait(kB, 0, 5000, 0);
  pub.join();
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));

  std::thread forget([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hub.Forget(kB);
  });
  auto f = hub.Wait(kB, r.seq, 5000, 0);
  forget.join();
  EXPECT_TRUE(f.changes.empty());
  EXPECT_EQ(hub.watchers(), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));

  hub.Wait(kC, 0, 0, 0);
  std::thread stop([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hub.Stop();
  });
  auto s = hub.Wait(kC, 0, 5000, 0);
  stop.join();
  EXPECT_TRUE(s.changes.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
}

// What an async poll was answered with, and when.
struct AsyncAnswer {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<proto::WatchChangesReply> rep;
  InvalidationHub::WaitDone Done() {
    return [this](proto::WatchChangesReply r) {
      std::lock_guard<std::mutex> l(mu);
      rep = std::move(r);
      cv.notify_all();
    };
  }
  bool Wait(int ms = 5000) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::milliseconds(ms), [&] { return rep.has_value(); });
  }
  bool answered() {
    std::lock_guard<std::mutex> l(mu);
    return rep.has_value();
  }
};

TEST(InvalidationHub, AParkedPollIsAnsweredByAPublishAForgetATimeoutAndStop) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, 0);
  AsyncAnswer a;
  hub.WaitAsync(kB, 0, 5000, 0, a.Done());
  EXPECT_FALSE(a.answered());  // parked: nothing new yet
  hub.Publish(kA, {Entry(1, "x")}, 0);
  ASSERT_TRUE(a.answered());  // answered by the publishing thread itself
  ASSERT_EQ(a.rep->changes.size(), 1u);

  AsyncAnswer f;
  hub.WaitAsync(kB, a.rep->seq, 5000, 0, f.Done());
  EXPECT_FALSE(f.answered());
  hub.Forget(kB);
  ASSERT_TRUE(f.answered());
  EXPECT_TRUE(f.rep->changes.empty());

  hub.Wait(kC, 0, 0, 0);
  AsyncAnswer t;
  auto t0 = std::chrono::steady_clock::now();
  hub.WaitAsync(kC, 0, 100, 0, t.Done());
  ASSERT_TRUE(t.Wait());  // the timer thread answers at the deadline
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
  EXPECT_TRUE(t.rep->changes.empty());

  AsyncAnswer s;
  hub.WaitAsync(kC, t.rep->seq, 5000, 0, s.Done());
  EXPECT_FALSE(s.answered());
  hub.Stop();
  EXPECT_TRUE(s.answered());
  AsyncAnswer after;
  hub.WaitAsync(kC, t.rep->seq, 5000, 0, after.Done());
  EXPECT_TRUE(after.answered());  // a stopped hub parks nothing
}

TEST(InvalidationHub, ANewerPollOfAClientAnswersTheOlderOne) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, 0);
  AsyncAnswer first, second;
  hub.WaitAsync(kB, 0, 5000, 0, first.Done());
  hub.WaitAsync(kB, 0, 5000, 0, second.Done());
  ASSERT_TRUE(first.answered());
  EXPECT_TRUE(first.rep->changes.empty());
  EXPECT_FALSE(second.answered());
  hub.Publish(kA, {Inode(5)}, 0);
  ASSERT_TRUE(second.answered());
  EXPECT_EQ(second.rep->changes.size(), 1u);
}

TEST(InvalidationHub, AWaitWithNothingNewTimesOut) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = hub.Wait(kB, 0, 100, 0);
  EXPECT_TRUE(r.changes.empty());
  EXPECT_FALSE(r.resync);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
}

TEST(InvalidationHub, ARepliesCarryAtMostTheLimitAndTheRestFollows) {
  InvalidationHub hub;
  hub.Wait(kB, 0, 0, 0);
  std::vector<proto::Invalidation> many;
  for (size_t i = 0; i < kMaxInvalidationsPerReply + 10; ++i) many.push_back(Inode(i + 2));
  hub.Publish(kA, many, 0);
  auto r = hub.Wait(kB, 0, 0, 0);
  ASSERT_EQ(r.changes.size(), kMaxInvalidationsPerReply);
  EXPECT_EQ(r.seq, kMaxInvalidationsPerReply);
  auto rest = hub.Wait(kB, r.seq, 0, 0);
  ASSERT_EQ(rest.changes.size(), 10u);
  EXPECT_EQ(rest.changes.back().ino, InodeId{kMaxInvalidationsPerReply + 11});
}

}  // namespace
}  // namespace vstorage::mds
