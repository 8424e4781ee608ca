// The FileSystem contract, one test body for every implementation: POSIX in a temp dir, the
// in-memory one, and the fault wrapper (with no rules) over the in-memory one.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "env/env.h"

namespace vstorage::env {
namespace {

enum class Kind { kPosix, kMem, kFaultOverMem };

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::kPosix: return "Posix";
    case Kind::kMem: return "Mem";
    case Kind::kFaultOverMem: return "FaultOverMem";
  }
  return "?";
}

class FsTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kPosix) {
      std::string tmpl = ::testing::TempDir() + "vs_env_test_XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
      root_ = tmpl;
      fs_ = NewPosixFileSystem();
    } else {
      mem_ = std::make_unique<MemFileSystem>();
      root_ = "/work";
      ASSERT_TRUE(mem_->CreateDir(root_).ok());
      if (GetParam() == Kind::kFaultOverMem) fault_ = std::make_unique<FaultFileSystem>(mem_.get());
    }
  }
  void TearDown() override {
    if (GetParam() == Kind::kPosix) std::filesystem::remove_all(root_);
  }

  FileSystem* fs() {
    if (fault_) return fault_.get();
    if (mem_) return mem_.get();
    return fs_.get();
  }
  std::string P(const std::string& name) const { return root_ + "/" + name; }

  void Write(const std::string& path, const std::string& data) {
    auto f = fs()->NewWritableFile(path, WriteMode::kTruncate);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append(data).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  std::string Read(const std::string& path) {
    auto r = fs()->ReadFile(path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "<error>";
  }
  Code CodeOf(const Status& s) { return s.code(); }
  template <typename T>
  Code CodeOf(const Result<T>& r) {
    return r.status().code();
  }

  std::string root_;
  std::unique_ptr<FileSystem> fs_;
  std::unique_ptr<MemFileSystem> mem_;
  std::unique_ptr<FaultFileSystem> fault_;
};

INSTANTIATE_TEST_SUITE_P(All, FsTest, ::testing::Values(Kind::kPosix, Kind::kMem, Kind::kFaultOverMem),
                         KindName);

TEST_P(FsTest, AppendSyncCloseReadBack) {
  auto f = fs()->NewWritableFile(P("f"), WriteMode::kTruncate);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->path(), P("f"));
  EXPECT_EQ((*f)->Size(), 0u);
  ASSERT_TRUE((*f)->Append("hello").ok());
  ASSERT_TRUE((*f)->Append(" world").ok());
  ASSERT_TRUE((*f)->Append("").ok());
  EXPECT_EQ((*f)->Size(), 11u);
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(Read(P("f")), "hello world");
  auto size = fs()->FileSize(P("f"));
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 11u);
  auto info = fs()->Stat(P("f"));
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->is_dir);
  EXPECT_EQ(info->size_bytes, 11u);
}

TEST_P(FsTest, BinaryDataRoundTrips) {
  std::string data;
  for (int i = 0; i < 70000; ++i) data.push_back(static_cast<char>(i * 7));
  Write(P("bin"), data);
  EXPECT_EQ(Read(P("bin")), data);
}

TEST_P(FsTest, AppendModeKeepsContentTruncateModeEmptiesIt) {
  Write(P("f"), "abc");
  {
    auto f = fs()->NewWritableFile(P("f"), WriteMode::kAppend);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->Size(), 3u);
    ASSERT_TRUE((*f)->Append("def").ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  EXPECT_EQ(Read(P("f")), "abcdef");
  {
    auto f = fs()->NewWritableFile(P("f"), WriteMode::kTruncate);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->Size(), 0u);
    ASSERT_TRUE((*f)->Close().ok());
  }
  EXPECT_EQ(Read(P("f")), "");
  // kAppend creates a missing file too.
  auto g = fs()->NewWritableFile(P("g"), WriteMode::kAppend);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->Size(), 0u);
  ASSERT_TRUE(fs()->Exists(P("g")).value());
}

TEST_P(FsTest, TruncateCutsTheTailAndAppendsGoToTheNewEnd) {
  auto f = fs()->NewWritableFile(P("j"), WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("0123456789").ok());
  ASSERT_TRUE((*f)->Truncate(4).ok());
  EXPECT_EQ((*f)->Size(), 4u);
  EXPECT_EQ(Read(P("j")), "0123");
  ASSERT_TRUE((*f)->Append("xy").ok());
  EXPECT_EQ(Read(P("j")), "0123xy");
  ASSERT_TRUE((*f)->Truncate(8).ok());  // zero-extends
  EXPECT_EQ((*f)->Size(), 8u);
  EXPECT_EQ(Read(P("j")), std::string("0123xy\0\0", 8));
  ASSERT_TRUE((*f)->Append("!").ok());
  EXPECT_EQ(Read(P("j")), std::string("0123xy\0\0!", 9));
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
}

TEST_P(FsTest, ReadAtReadsRangesAndShortAtTheEnd) {
  std::string data;
  for (int i = 0; i < 100; ++i) data.push_back(static_cast<char>('a' + i % 26));
  Write(P("r"), data);
  auto f = fs()->NewRandomAccessFile(P("r"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->path(), P("r"));
  EXPECT_EQ((*f)->Size().value(), 100u);
  char buf[16];
  auto n = (*f)->ReadAt(10, buf, 5);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), data.substr(10, 5));
  n = (*f)->ReadAt(95, buf, 10);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), data.substr(95));
  EXPECT_EQ((*f)->ReadAt(100, buf, 10).value(), 0u);
  EXPECT_EQ((*f)->ReadAt(1000, buf, 10).value(), 0u);
  // A reader sees appends made after it was opened.
  auto w = fs()->NewWritableFile(P("r"), WriteMode::kAppend);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("XYZ").ok());
  n = (*f)->ReadAt(99, buf, 10);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), data.substr(99) + "XYZ");
  EXPECT_EQ((*f)->Size().value(), 103u);
}

TEST_P(FsTest, MissingPathsAreNotFoundAndNamed) {
  const std::string p = P("missing");
  auto r = fs()->ReadFile(p);
  EXPECT_EQ(CodeOf(r), Code::kNotFound);
  EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message();
  EXPECT_EQ(CodeOf(fs()->NewRandomAccessFile(p)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->Stat(p)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->FileSize(p)), Code::kNotFound);
  EXPECT_FALSE(fs()->Exists(p).value());
  Status s = fs()->Remove(p);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message().rfind("remove " + p, 0), 0u) << s.message();
  EXPECT_EQ(CodeOf(fs()->RemoveDir(p)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->ListDir(p)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->SyncDir(p)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->Rename(p, P("x"))), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->NewWritableFile(P("nodir/f"), WriteMode::kTruncate)), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->CreateDir(P("nodir/d"))), Code::kNotFound);
  EXPECT_EQ(CodeOf(fs()->LockFile(P("nodir/LOCK"))), Code::kNotFound);
  EXPECT_FALSE(fs()->Exists(P("x")).value());
}

TEST_P(FsTest, DirectoriesAndTheirErrors) {
  ASSERT_TRUE(fs()->CreateDir(P("d")).ok());
  EXPECT_EQ(CodeOf(fs()->CreateDir(P("d"))), Code::kExists);
  EXPECT_TRUE(fs()->Exists(P("d")).value());
  EXPECT_TRUE(fs()->Stat(P("d")).value().is_dir);
  EXPECT_EQ(CodeOf(fs()->FileSize(P("d"))), Code::kIsDir);
  Write(P("d/b"), "1");
  Write(P("d/a"), "22");
  ASSERT_TRUE(fs()->CreateDir(P("d/c")).ok());
  auto names = fs()->ListDir(P("d"));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(fs()->ListDir(P("d/c")).value(), std::vector<std::string>{});

  EXPECT_EQ(CodeOf(fs()->CreateDir(P("d/a"))), Code::kExists);  // a file
  EXPECT_EQ(CodeOf(fs()->ListDir(P("d/a"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->SyncDir(P("d/a"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->RemoveDir(P("d/a"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->NewWritableFile(P("d/a/x"), WriteMode::kTruncate)), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->Stat(P("d/a/x"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->RemoveDir(P("d"))), Code::kNotEmpty);
  EXPECT_EQ(CodeOf(fs()->Remove(P("d/c"))), Code::kIsDir);
  EXPECT_EQ(CodeOf(fs()->NewWritableFile(P("d/c"), WriteMode::kAppend)), Code::kIsDir);
  EXPECT_EQ(CodeOf(fs()->NewRandomAccessFile(P("d/c"))), Code::kIsDir);
  EXPECT_EQ(CodeOf(fs()->ReadFile(P("d/c"))), Code::kIsDir);
  EXPECT_EQ(CodeOf(fs()->LockFile(P("d/c"))), Code::kIsDir);
  ASSERT_TRUE(fs()->SyncDir(P("d")).ok());

  ASSERT_TRUE(fs()->RemoveDir(P("d/c")).ok());
  ASSERT_TRUE(fs()->Remove(P("d/a")).ok());
  ASSERT_TRUE(fs()->Remove(P("d/b")).ok());
  EXPECT_EQ(fs()->ListDir(P("d")).value(), std::vector<std::string>{});
  ASSERT_TRUE(fs()->RemoveDir(P("d")).ok());
  EXPECT_FALSE(fs()->Exists(P("d")).value());
}

TEST_P(FsTest, CreateDirsMakesEveryLevel) {
  ASSERT_TRUE(fs()->CreateDirs(P("a/b/c")).ok());
  EXPECT_TRUE(fs()->Stat(P("a/b/c")).value().is_dir);
  ASSERT_TRUE(fs()->CreateDirs(P("a/b/c")).ok());  // again: nothing to do
  ASSERT_TRUE(fs()->CreateDirs(P("a/b/d/")).ok());
  EXPECT_EQ(fs()->ListDir(P("a/b")).value(), (std::vector<std::string>{"c", "d"}));
  Write(P("a/file"), "x");
  EXPECT_EQ(CodeOf(fs()->CreateDirs(P("a/file"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->CreateDirs(P("a/file/sub"))), Code::kNotDir);
}

TEST_P(FsTest, RenameFilesAndDirectories) {
  Write(P("a"), "A");
  ASSERT_TRUE(fs()->Rename(P("a"), P("b")).ok());
  EXPECT_FALSE(fs()->Exists(P("a")).value());
  EXPECT_EQ(Read(P("b")), "A");
  Write(P("c"), "C");
  ASSERT_TRUE(fs()->Rename(P("c"), P("b")).ok());  // replaces
  EXPECT_EQ(Read(P("b")), "C");
  EXPECT_FALSE(fs()->Exists(P("c")).value());
  ASSERT_TRUE(fs()->Rename(P("b"), P("b")).ok());  // onto itself: nothing happens
  EXPECT_EQ(Read(P("b")), "C");

  ASSERT_TRUE(fs()->CreateDirs(P("d1/sub")).ok());
  Write(P("d1/sub/f"), "F");
  ASSERT_TRUE(fs()->CreateDir(P("empty")).ok());
  ASSERT_TRUE(fs()->CreateDir(P("full")).ok());
  Write(P("full/x"), "X");
  EXPECT_EQ(CodeOf(fs()->Rename(P("b"), P("empty"))), Code::kIsDir);
  EXPECT_EQ(CodeOf(fs()->Rename(P("d1"), P("b"))), Code::kNotDir);
  EXPECT_EQ(CodeOf(fs()->Rename(P("d1"), P("full"))), Code::kNotEmpty);
  EXPECT_EQ(CodeOf(fs()->Rename(P("d1"), P("d1/sub/d1"))), Code::kInvalidArgument);
  EXPECT_EQ(CodeOf(fs()->Rename(P("b"), P("nodir/b"))), Code::kNotFound);
  EXPECT_EQ(Read(P("b")), "C");  // the failed renames changed nothing

  ASSERT_TRUE(fs()->Rename(P("d1"), P("empty")).ok());  // a directory over an empty one
  EXPECT_FALSE(fs()->Exists(P("d1")).value());
  EXPECT_EQ(Read(P("empty/sub/f")), "F");
  ASSERT_TRUE(fs()->Rename(P("empty/sub/f"), P("full/f")).ok());  // across directories
  EXPECT_EQ(fs()->ListDir(P("full")).value(), (std::vector<std::string>{"f", "x"}));
  EXPECT_EQ(fs()->ListDir(P("empty/sub")).value(), std::vector<std::string>{});
}

TEST_P(FsTest, OpenHandlesOutliveRemoveAndRename) {
  Write(P("f"), "abc");
  auto r = fs()->NewRandomAccessFile(P("f"));
  ASSERT_TRUE(r.ok());
  auto w = fs()->NewWritableFile(P("f"), WriteMode::kAppend);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(fs()->Rename(P("f"), P("g")).ok());
  ASSERT_TRUE((*w)->Append("def").ok());
  EXPECT_EQ(Read(P("g")), "abcdef");
  ASSERT_TRUE(fs()->Remove(P("g")).ok());
  ASSERT_TRUE((*w)->Append("ghi").ok());
  ASSERT_TRUE((*w)->Sync().ok());
  char buf[16];
  auto n = (*r)->ReadAt(0, buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "abcdefghi");
  EXPECT_FALSE(fs()->Exists(P("g")).value());
  ASSERT_TRUE((*w)->Close().ok());
}

TEST_P(FsTest, WriteFileAtomicReplacesAndLeavesNoTemp) {
  ASSERT_TRUE(fs()->WriteFileAtomic(P("conf"), "v1").ok());
  EXPECT_EQ(Read(P("conf")), "v1");
  ASSERT_TRUE(fs()->WriteFileAtomic(P("conf"), "version two").ok());
  EXPECT_EQ(Read(P("conf")), "version two");
  EXPECT_EQ(fs()->ListDir(root_).value(), std::vector<std::string>{"conf"});
  ASSERT_TRUE(fs()->WriteFileAtomic(P("empty"), "").ok());
  EXPECT_EQ(Read(P("empty")), "");
  EXPECT_EQ(CodeOf(fs()->WriteFileAtomic(P("nodir/conf"), "x")), Code::kNotFound);
}

TEST_P(FsTest, LockFileIsExclusiveUntilReleased) {
  auto a = fs()->LockFile(P("LOCK"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->path(), P("LOCK"));
  EXPECT_TRUE(fs()->Exists(P("LOCK")).value());
  auto b = fs()->LockFile(P("LOCK"));
  EXPECT_EQ(CodeOf(b), Code::kBusy);
  EXPECT_NE(b.status().message().find(P("LOCK")), std::string::npos);
  auto other = fs()->LockFile(P("LOCK2"));
  EXPECT_TRUE(other.ok());
  a.value().reset();
  auto c = fs()->LockFile(P("LOCK"));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

TEST_P(FsTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4, kRecords = 200;
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto f = fs()->NewWritableFile(P("t" + std::to_string(t)), WriteMode::kTruncate);
      if (!f.ok()) return failed.store(true);
      for (int i = 0; i < kRecords; ++i) {
        if (!(*f)->Append(std::string(10, static_cast<char>('a' + t))).ok()) failed.store(true);
        if (i % 20 == 0 && !(*f)->Sync().ok()) failed.store(true);
      }
      if (!(*f)->Close().ok()) failed.store(true);
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 200; ++i) {
      if (!fs()->ListDir(root_).ok()) failed.store(true);
      (void)fs()->Stat(P("t0"));
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(Read(P("t" + std::to_string(t))), std::string(10 * kRecords, static_cast<char>('a' + t)));
}

TEST_P(FsTest, UseAfterCloseIsAProgrammerError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto f = fs()->NewWritableFile(P("f"), WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_DEATH((void)(*f)->Append("x"), "CHECK failed");
}

// --- the Env bundles ---

TEST(EnvTest, SimEnvIsAWholeDeterministicWorld) {
  SimEnv a(42), b(42), c(43);
  EXPECT_EQ(a.env().fs, &a.faults());
  EXPECT_EQ(a.env().clock, &a.clock());
  EXPECT_EQ(a.env().random, &a.random());
  for (int i = 0; i < 5; ++i) {
    uint64_t x = a.env().random->Next();
    EXPECT_EQ(x, b.env().random->Next());
    EXPECT_NE(x, c.env().random->Next());
  }
  // Files written through env().fs live in mem() and obey its power cuts.
  ASSERT_TRUE(a.env().fs->WriteFileAtomic("/conf", "x").ok());
  auto f = a.env().fs->NewWritableFile("/journal", WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("unsynced").ok());
  a.mem().PowerCut();
  EXPECT_EQ(a.mem().ReadFile("/conf").value(), "x");
  EXPECT_FALSE(a.mem().Exists("/journal").value());
  a.faults().AddFault({.path_prefix = "/conf", .ops = OpBit(Op::kOpenRead)});
  EXPECT_EQ(a.env().fs->ReadFile("/conf").status().code(), Code::kIoError);
  a.env().clock->SleepMs(0);
  a.clock().AdvanceMs(5);
  EXPECT_EQ(a.env().clock->NowMs(), 5);
}

TEST(EnvTest, PosixEnvReachesTheRealWorld) {
  PosixEnv real;
  const Env& env = real.env();
  ASSERT_NE(env.clock, nullptr);
  ASSERT_NE(env.random, nullptr);
  ASSERT_NE(env.fs, nullptr);
  std::string tmpl = ::testing::TempDir() + "vs_env_posix_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  ASSERT_TRUE(env.fs->WriteFileAtomic(tmpl + "/f", "data").ok());
  EXPECT_EQ(env.fs->ReadFile(tmpl + "/f").value(), "data");
  // A file that reports no size is read to its end all the same.
  EXPECT_EQ(env.fs->Stat("/proc/self/status").value().size_bytes, 0u);
  EXPECT_NE(env.fs->ReadFile("/proc/self/status").value().find("Name:"), std::string::npos);
  std::filesystem::remove_all(tmpl);
  int64_t t0 = env.clock->NowNs();
  EXPECT_GE(env.clock->NowNs(), t0);
}

}  // namespace
}  // namespace vstorage::env
