#include "cs/disk_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace vstorage::cs {
namespace {

class DiskIoTest : public ::testing::TestWithParam<DiskIoMode> {
 protected:
  void SetUp() override {
    char t[] = "/tmp/vs_dio_XXXXXX";
    dir = mkdtemp(t);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string Slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  std::string dir;
};

TEST_P(DiskIoTest, SpansAtManyOffsetsLandWhereTheyBelongFromManyThreads) {
  DiskIo io(GetParam());
  if (GetParam() == DiskIoMode::kPwrite) {
    EXPECT_FALSE(io.uring());
  }
  constexpr int kThreads = 8;  // more than kRings: some wait for a ring
  std::vector<std::string> paths;
  std::vector<std::thread> ts;
  std::vector<std::string> want(kThreads);
  for (int t = 0; t < kThreads; ++t) paths.push_back(dir + "/f" + std::to_string(t));
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      auto fd = DiskIo::OpenFile(paths[t], true);
      ASSERT_TRUE(fd.ok()) << fd.status().ToString();
      std::mt19937 g(t);
      std::string model;
      for (int round = 0; round < 10; ++round) {
        std::vector<std::string> bufs(DiskIo::kMaxWriteSpans);
        WriteSpan spans[DiskIo::kMaxWriteSpans];
        for (size_t i = 0; i < DiskIo::kMaxWriteSpans; ++i) {
          bufs[i].resize(1 + g() % 70000);
          for (auto& c : bufs[i]) c = static_cast<char>(g());
          uint64_t off = (i * 2 + round % 2) * 100000 + g() % 1000;  // disjoint spans
          spans[i] = {bufs[i].data(), bufs[i].size(), off};
          if (model.size() < off + bufs[i].size()) model.resize(off + bufs[i].size(), '\0');
          model.replace(off, bufs[i].size(), bufs[i]);
        }
        ASSERT_TRUE(io.WriteSpans(*fd, spans, DiskIo::kMaxWriteSpans).ok());
      }
      want[t] = model;
      SyncOp op{*fd, true, Status::Ok()};
      io.SyncAll(&op, 1);
      EXPECT_TRUE(op.result.ok()) << op.result.ToString();
      DiskIo::Close(*fd);
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(Slurp(paths[t]) == want[t]) << "file " << t;
}

TEST_P(DiskIoTest, SyncAllReportsEachFileOnItsOwn) {
  DiskIo io(GetParam());
  // More ops than one ring takes at once: split into several submissions.
  std::vector<SyncOp> ops;
  std::vector<int> fds;
  for (unsigned i = 0; i < DiskIo::kRingEntries + 3; ++i) {
    auto fd = DiskIo::OpenFile(dir + "/s" + std::to_string(i), true);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(DiskIo::PwriteAll(*fd, "x", 1, 0).ok());
    fds.push_back(*fd);
    ops.push_back({*fd, true, Status::Ok()});
  }
  auto dfd = DiskIo::OpenDir(dir);
  ASSERT_TRUE(dfd.ok());
  ops.push_back({*dfd, false, Status::Ok()});
  ops.push_back({-1, true, Status::Ok()});  // a bad fd fails alone
  uint64_t before = io.submissions();
  io.SyncAll(ops.data(), ops.size());
  for (size_t i = 0; i + 1 < ops.size(); ++i) EXPECT_TRUE(ops[i].result.ok()) << i << ": " << ops[i].result.ToString();
  EXPECT_EQ(ops.back().result.code(), Code::kIoError);
  EXPECT_EQ(io.submissions() - before, io.uring() ? 2u : 0u);
  for (int fd : fds) DiskIo::Close(fd);
  DiskIo::Close(*dfd);
}

TEST_P(DiskIoTest, AWriteToABadFdIsAnErrorNotACrash) {
  DiskIo io(GetParam());
  WriteSpan s[2] = {{"abc", 3, 0}, {"def", 3, 100}};
  EXPECT_EQ(io.WriteSpans(-1, s, 2).code(), Code::kIoError);
  EXPECT_TRUE(io.WriteSpans(-1, s, 0).ok());
}

// kAuto sends writes as pwrites once told the file system would only punt them to an
// io_uring worker (the chunk store asks BufferedNowaitWrites); syncs still use the rings;
// kUring keeps the rings for writes whatever it is told.
TEST_F(DiskIoTest, WritesLeaveTheRingsOnlyInAutoModeWhenToldTo) {
  bool nowait = DiskIo::BufferedNowaitWrites(dir);
  EXPECT_TRUE(std::filesystem::is_empty(dir)) << "the probe file was left behind";
  std::fprintf(stderr, "note: buffered non-blocking writes in %s: %s\n", dir.c_str(), nowait ? "yes" : "no");
  for (DiskIoMode mode : {DiskIoMode::kAuto, DiskIoMode::kUring}) {
    DiskIo io(mode);
    if (!io.uring()) GTEST_SKIP() << "io_uring is not available here";
    EXPECT_TRUE(io.uring_writes());
    io.SetUringWrites(false);
    EXPECT_EQ(io.uring_writes(), mode == DiskIoMode::kUring);
    auto fd = DiskIo::OpenFile(dir + "/w", true);
    ASSERT_TRUE(fd.ok());
    WriteSpan s[2] = {{"abc", 3, 0}, {"def", 3, 100}};
    uint64_t before = io.submissions();
    ASSERT_TRUE(io.WriteSpans(*fd, s, 2).ok());
    EXPECT_EQ(io.submissions() - before, mode == DiskIoMode::kUring ? 1u : 0u);
    SyncOp op{*fd, true, Status::Ok()};
    io.SyncAll(&op, 1);
    EXPECT_TRUE(op.result.ok());
    EXPECT_EQ(io.submissions() - before, mode == DiskIoMode::kUring ? 2u : 1u);  // the sync: a ring
    DiskIo::Close(*fd);
    std::string want = "abc" + std::string(97, '\0') + "def";
    EXPECT_EQ(Slurp(dir + "/w"), want);
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, DiskIoTest, ::testing::Values(DiskIoMode::kAuto, DiskIoMode::kPwrite),
                         [](const auto& info) { return info.param == DiskIoMode::kAuto ? "IoUring" : "Pwrite"; });

}  // namespace
}  // namespace vstorage::cs
