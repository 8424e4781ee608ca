// The fault wrapper fails and stalls exactly what it is told to, and nothing else.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "env/fault_file_system.h"
#include "env/mem_file_system.h"

namespace vstorage::env {
namespace {

class FaultFsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mem_.CreateDir("/d").ok()); }
  std::unique_ptr<WritableFile> Open(const std::string& path) {
    auto f = faults_.NewWritableFile(path, WriteMode::kAppend);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(f).value() : nullptr;
  }
  std::string BaseRead(const std::string& path) {
    auto r = mem_.ReadFile(path);
    return r.ok() ? *r : "<" + r.status().ToString() + ">";
  }

  MemFileSystem mem_;
  SeededRandom random_{7};
  FaultFileSystem faults_{&mem_, &random_};
};

TEST_F(FaultFsTest, FailsOnceWithTheChosenCodeAndAMessageNamingOpAndPath) {
  int id = faults_.AddFault({.path_prefix = "/d/journal", .ops = OpBit(Op::kSync), .code = Code::kIoError});
  EXPECT_GT(id, 0);
  auto f = Open("/d/journal");
  auto other = Open("/d/other");
  ASSERT_TRUE(f->Append("x").ok());
  Status st = f->Sync();
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_EQ(st.message(), "sync /d/journal: injected fault #" + std::to_string(id));
  EXPECT_TRUE(f->Sync().ok());  // once only
  EXPECT_TRUE(other->Sync().ok());
  EXPECT_EQ(faults_.Injected(id), 1);
  EXPECT_EQ(faults_.Calls(Op::kSync), 3);
}

TEST_F(FaultFsTest, SkipThenFailNTimes) {
  faults_.AddFault({.ops = OpBit(Op::kAppend), .code = Code::kNoSpace, .skip = 2, .times = 3});
  auto f = Open("/d/f");
  std::vector<Code> codes;
  for (int i = 0; i < 7; ++i) codes.push_back(f->Append("a").code());
  EXPECT_EQ(codes, (std::vector<Code>{Code::kOk, Code::kOk, Code::kNoSpace, Code::kNoSpace, Code::kNoSpace,
                                      Code::kOk, Code::kOk}));
  EXPECT_EQ(BaseRead("/d/f"), "aaaa");  // the failed appends never reached the file
}

TEST_F(FaultFsTest, ForeverUntilRemoved) {
  int id = faults_.AddFault({.path_prefix = "/d", .ops = OpBit(Op::kCreateDir), .times = kForever});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(faults_.CreateDir("/d/x").code(), Code::kIoError);
  EXPECT_FALSE(mem_.Exists("/d/x").value());
  EXPECT_EQ(faults_.Injected(id), 5);
  faults_.RemoveFault(id);
  EXPECT_TRUE(faults_.CreateDir("/d/x").ok());
  faults_.AddFault({.times = kForever});
  faults_.ClearFaults();
  EXPECT_TRUE(faults_.SyncDir("/d").ok());
}

TEST_F(FaultFsTest, OnlyTheChosenOpsAndPathsFail) {
  faults_.AddFault({.path_prefix = "/d/a", .ops = OpBit(Op::kSyncDir) | OpBit(Op::kRemove), .times = kForever});
  auto f = Open("/d/a");
  ASSERT_TRUE(f->Append("x").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Close().ok());
  EXPECT_TRUE(faults_.SyncDir("/d").ok());  // "/d" does not start with "/d/a"
  EXPECT_EQ(faults_.Remove("/d/a").code(), Code::kIoError);
  EXPECT_EQ(faults_.Remove("/d/ab").code(), Code::kIoError);  // a string prefix: "/d/a" matches it
  EXPECT_EQ(faults_.Remove("/d/b").code(), Code::kNotFound);   // reaches the base
  EXPECT_EQ(BaseRead("/d/a"), "x");
}

TEST_F(FaultFsTest, FailedOperationsDoNotReachTheBase) {
  ASSERT_TRUE(mem_.WriteFileAtomic("/d/f", "content").ok());
  faults_.AddFault({.times = kForever});
  EXPECT_FALSE(faults_.Rename("/d/f", "/d/g").ok());
  EXPECT_FALSE(faults_.Remove("/d/f").ok());
  EXPECT_FALSE(faults_.NewWritableFile("/d/f", WriteMode::kTruncate).ok());
  EXPECT_FALSE(faults_.LockFile("/d/LOCK").ok());
  EXPECT_FALSE(faults_.CreateDir("/d/e").ok());
  EXPECT_EQ(mem_.ListDir("/d").value(), std::vector<std::string>{"f"});
  EXPECT_EQ(BaseRead("/d/f"), "content");
}

TEST_F(FaultFsTest, TornAppendWritesAPrefixThenFails) {
  faults_.AddFault({.ops = OpBit(Op::kAppend), .code = Code::kNoSpace, .append_bytes_before_failing = 3});
  auto f = Open("/d/j");
  EXPECT_EQ(f->Append("abcdef").code(), Code::kNoSpace);
  EXPECT_EQ(BaseRead("/d/j"), "abc");
  EXPECT_EQ(f->Size(), 3u);
}

TEST_F(FaultFsTest, RenameMatchesEitherPath) {
  ASSERT_TRUE(mem_.WriteFileAtomic("/d/a", "A").ok());
  ASSERT_TRUE(mem_.CreateDir("/e").ok());
  faults_.AddFault({.path_prefix = "/e/", .ops = OpBit(Op::kRename), .times = kForever});
  Status st = faults_.Rename("/d/a", "/e/a");
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_NE(st.message().find("rename /d/a -> /e/a"), std::string::npos) << st.message();
  EXPECT_TRUE(faults_.Rename("/d/a", "/d/b").ok());
}

TEST_F(FaultFsTest, ReadsFailThroughReadFile) {
  ASSERT_TRUE(mem_.WriteFileAtomic("/d/f", "content").ok());
  int id = faults_.AddFault({.path_prefix = "/d/f", .ops = OpBit(Op::kRead)});
  auto r = faults_.ReadFile("/d/f");
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_EQ(r.status().message().rfind("read /d/f", 0), 0u) << r.status().message();
  EXPECT_EQ(faults_.Injected(id), 1);
  EXPECT_EQ(faults_.ReadFile("/d/f").value(), "content");
  faults_.AddFault({.ops = OpBit(Op::kStat)});
  EXPECT_FALSE(faults_.Exists("/d/f").ok());
  EXPECT_TRUE(faults_.Exists("/d/f").value());
}

std::vector<bool> FailurePattern(uint64_t seed, double p, int n) {
  MemFileSystem mem;
  SeededRandom random(seed);
  FaultFileSystem faults(&mem, &random);
  faults.AddFault({.ops = OpBit(Op::kSyncDir), .times = kForever, .probability = p});
  std::vector<bool> failed;
  for (int i = 0; i < n; ++i) failed.push_back(!faults.SyncDir("/").ok());
  return failed;
}

TEST_F(FaultFsTest, ProbabilisticFaultsFollowTheSeed) {
  std::vector<bool> a = FailurePattern(11, 0.3, 1000);
  EXPECT_EQ(a, FailurePattern(11, 0.3, 1000));
  EXPECT_NE(a, FailurePattern(12, 0.3, 1000));
  int64_t n = std::count(a.begin(), a.end(), true);
  EXPECT_GT(n, 240);
  EXPECT_LT(n, 360);
  std::vector<bool> never = FailurePattern(11, 0.0, 100);
  EXPECT_EQ(std::count(never.begin(), never.end(), true), 0);
}

TEST_F(FaultFsTest, StallBlocksUntilReleased) {
  ASSERT_TRUE(mem_.WriteFileAtomic("/d/a", "A").ok());
  int id = faults_.AddStall("/d/a", OpBit(Op::kRename));
  Status result = Err(Code::kInternal, "not run");
  std::thread t([&] { result = faults_.Rename("/d/a", "/d/b"); });
  ASSERT_TRUE(faults_.WaitStalled(id, 1, 10000));
  EXPECT_EQ(faults_.Stalled(id), 1);
  // While it waits, the rename has not happened and other operations go through.
  EXPECT_TRUE(mem_.Exists("/d/a").value());
  EXPECT_FALSE(mem_.Exists("/d/b").value());
  EXPECT_TRUE(faults_.SyncDir("/d").ok());
  EXPECT_EQ(faults_.ReadFile("/d/a").value(), "A");
  faults_.ReleaseStall(id);
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_TRUE(mem_.Exists("/d/b").value());
  EXPECT_EQ(faults_.Stalled(id), 0);
  EXPECT_FALSE(faults_.WaitStalled(id, 1, 0));
}

TEST_F(FaultFsTest, StalledSyncOfAFileHandle) {
  auto f = Open("/d/j");
  ASSERT_TRUE(f->Append("abc").ok());
  int id = faults_.AddStall("/d/j", OpBit(Op::kSync));
  std::thread t([&] { EXPECT_TRUE(f->Sync().ok()); });
  ASSERT_TRUE(faults_.WaitStalled(id, 1, 10000));
  EXPECT_EQ(mem_.UnsyncedBytes(), 3u);  // the fdatasync is "in flight"
  faults_.ReleaseStall(id);
  t.join();
  EXPECT_EQ(mem_.UnsyncedBytes(), 0u);
}

TEST_F(FaultFsTest, HookSeesEveryStepOfWriteFileAtomic) {
  std::mutex mu;
  std::vector<std::string> seen;
  faults_.SetHook([&](Op op, const std::string& path) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(std::string(OpName(op)) + " " + path);
  });
  ASSERT_TRUE(faults_.WriteFileAtomic("/d/conf", "x").ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"open-write /d/conf.tmp", "append /d/conf.tmp", "sync /d/conf.tmp",
                                            "close /d/conf.tmp", "rename /d/conf.tmp", "sync-dir /d"}));
  faults_.SetHook(nullptr);
  ASSERT_TRUE(faults_.SyncDir("/d").ok());
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(faults_.Calls(Op::kSyncDir), 2);
  EXPECT_EQ(faults_.Calls(Op::kRename), 1);
}

TEST_F(FaultFsTest, FailedCloseStillReleasesTheFile) {
  std::string tmpl = ::testing::TempDir() + "vs_fault_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  std::unique_ptr<FileSystem> posix = NewPosixFileSystem();
  FaultFileSystem faults(posix.get());
  faults.AddFault({.ops = OpBit(Op::kClose)});
  auto f = faults.NewWritableFile(tmpl + "/f", WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("data").ok());
  EXPECT_EQ((*f)->Close().code(), Code::kIoError);
  EXPECT_EQ(faults.ReadFile(tmpl + "/f").value(), "data");
  // Over the real file system too: a failing fdatasync of a real file.
  faults.AddFault({.path_prefix = tmpl + "/g", .ops = OpBit(Op::kSync), .code = Code::kIoError});
  auto g = faults.NewWritableFile(tmpl + "/g", WriteMode::kTruncate);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->Sync().message(), "sync " + tmpl + "/g: injected fault #2");
  EXPECT_TRUE((*g)->Sync().ok());
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace vstorage::env
