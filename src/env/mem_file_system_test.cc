// The in-memory file system's model of durability: what PowerCut keeps and what it drops.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "env/fault_file_system.h"
#include "env/mem_file_system.h"

namespace vstorage::env {
namespace {

class MemFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // /d exists durably: the tests start from a synced directory.
    ASSERT_TRUE(fs_.CreateDir("/d").ok());
    ASSERT_TRUE(fs_.SyncDir("/").ok());
  }

  // Creates path with content `synced` (Sync()ed), then appends `unsynced`; the name is made
  // durable only when sync_dir.
  void Write(const std::string& path, const std::string& synced, const std::string& unsynced, bool sync_dir) {
    auto f = fs_.NewWritableFile(path, WriteMode::kTruncate);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append(synced).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    ASSERT_TRUE((*f)->Append(unsynced).ok());
    ASSERT_TRUE((*f)->Close().ok());
    if (sync_dir) {
      ASSERT_TRUE(fs_.SyncDir(DirName(path)).ok());
    }
  }
  std::string Read(const std::string& path) {
    auto r = fs_.ReadFile(path);
    return r.ok() ? *r : "<" + r.status().ToString() + ">";
  }
  bool Exists(const std::string& path) { return fs_.Exists(path).value(); }

  MemFileSystem fs_;
};

TEST_F(MemFsTest, PathsMustBeAbsoluteAndPlain) {
  EXPECT_EQ(fs_.CreateDir("rel").code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_.Stat("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_.Stat("/d/../d").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_.Stat("/d/./x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_.CreateDir("/" + std::string(256, 'n')).code(), Code::kNameTooLong);
  EXPECT_TRUE(fs_.CreateDir("/" + std::string(255, 'n')).ok());
  Write("//d///f/", "x", "", false);  // repeated and trailing slashes are ignored
  EXPECT_EQ(Read("/d/f"), "x");
  EXPECT_TRUE(fs_.Stat("/").value().is_dir);
  EXPECT_EQ(fs_.CreateDir("/").code(), Code::kExists);
  EXPECT_EQ(fs_.RemoveDir("/").code(), Code::kInvalidArgument);
  EXPECT_EQ(fs_.Rename("/", "/x").code(), Code::kInvalidArgument);
}

TEST_F(MemFsTest, AppendedButUnsyncedBytesVanishSyncedStay) {
  Write("/d/j", "synced;", "lost", true);
  EXPECT_EQ(Read("/d/j"), "synced;lost");
  EXPECT_EQ(fs_.UnsyncedBytes(), 4u);
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/j"), "synced;");
  EXPECT_EQ(fs_.UnsyncedBytes(), 0u);
}

TEST_F(MemFsTest, SyncedFileWithoutSyncDirIsGone) {
  Write("/d/f", "data", "", false);
  EXPECT_EQ(fs_.PendingNamespaceOps(), 1u);
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/d/f"));
  EXPECT_EQ(fs_.ListDir("/d").value(), std::vector<std::string>{});
}

TEST_F(MemFsTest, SyncDirWithoutDataSyncKeepsAnEmptyFile) {
  auto f = fs_.NewWritableFile("/d/f", WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("never synced").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(fs_.PendingNamespaceOps(), 0u);
  fs_.PowerCut();
  EXPECT_TRUE(Exists("/d/f"));
  EXPECT_EQ(Read("/d/f"), "");
}

TEST_F(MemFsTest, RenameNotFollowedBySyncDirIsUndone) {
  Write("/d/conf", "old", "", true);
  Write("/d/conf.tmp", "new", "", false);
  ASSERT_TRUE(fs_.Rename("/d/conf.tmp", "/d/conf").ok());
  EXPECT_EQ(Read("/d/conf"), "new");
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/conf"), "old");
  EXPECT_FALSE(Exists("/d/conf.tmp"));  // its creation was never durable either

  // The temp file durable, the rename not: both names come back as they were.
  Write("/d/conf.tmp", "new", "", true);
  ASSERT_TRUE(fs_.Rename("/d/conf.tmp", "/d/conf").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/conf"), "old");
  EXPECT_EQ(Read("/d/conf.tmp"), "new");
}

TEST_F(MemFsTest, RenameFollowedBySyncDirSurvives) {
  Write("/d/conf", "old", "", true);
  Write("/d/conf.tmp", "new", "", false);
  ASSERT_TRUE(fs_.Rename("/d/conf.tmp", "/d/conf").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/conf"), "new");
  EXPECT_FALSE(Exists("/d/conf.tmp"));
}

TEST_F(MemFsTest, RemoveNotFollowedBySyncDirComesBack) {
  Write("/d/f", "keep", "", true);
  ASSERT_TRUE(fs_.Remove("/d/f").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/f"), "keep");
  ASSERT_TRUE(fs_.Remove("/d/f").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/d/f"));
}

TEST_F(MemFsTest, NewDirectoryNeedsItsParentSynced) {
  ASSERT_TRUE(fs_.CreateDir("/d/e").ok());
  Write("/d/e/f", "x", "", true);  // syncs /d/e, not /d
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/d/e"));
  ASSERT_TRUE(fs_.CreateDir("/d/e").ok());
  Write("/d/e/f", "x", "", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/e/f"), "x");
  // A grandparent that was not synced takes the whole subtree with it.
  ASSERT_TRUE(fs_.CreateDirs("/n1/n2").ok());
  ASSERT_TRUE(fs_.SyncDir("/n1").ok());
  Write("/n1/n2/f", "x", "", true);
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/n1"));
}

TEST_F(MemFsTest, RemovedDirectoryComesBackWithItsDurableContent) {
  ASSERT_TRUE(fs_.CreateDir("/d/e").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  Write("/d/e/f", "x", "", true);
  ASSERT_TRUE(fs_.Remove("/d/e/f").ok());
  ASSERT_TRUE(fs_.RemoveDir("/d/e").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());  // the rmdir is durable, the unlink inside is not
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/d/e"));
  ASSERT_TRUE(fs_.CreateDir("/d/e").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  Write("/d/e/f", "x", "", true);
  ASSERT_TRUE(fs_.Remove("/d/e/f").ok());
  ASSERT_TRUE(fs_.RemoveDir("/d/e").ok());
  fs_.PowerCut();  // neither durable: the directory and its file are back
  EXPECT_EQ(Read("/d/e/f"), "x");
}

TEST_F(MemFsTest, UnsyncedTruncationIsUndone) {
  Write("/d/f", "abcdef", "", true);
  {
    auto f = fs_.NewWritableFile("/d/f", WriteMode::kAppend);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(2).ok());
    ASSERT_TRUE((*f)->Append("XY").ok());
  }
  EXPECT_EQ(Read("/d/f"), "abXY");
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/f"), "abcdef");
  // Opening with kTruncate is a truncation like any other.
  ASSERT_TRUE(fs_.NewWritableFile("/d/f", WriteMode::kTruncate).ok());
  EXPECT_EQ(Read("/d/f"), "");
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/f"), "abcdef");
  {
    auto f = fs_.NewWritableFile("/d/f", WriteMode::kTruncate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("new").ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/f"), "new");
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/f", "abcdef").ok());
  // Synced, the truncation stays.
  {
    auto f = fs_.NewWritableFile("/d/f", WriteMode::kAppend);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(3).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/f"), "abc");
}

TEST_F(MemFsTest, WriteFileAtomicSurvivesAPowerCut) {
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/conf", "v1").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/conf"), "v1");
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/conf", "v2").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/d/conf"), "v2");
  EXPECT_EQ(fs_.ListDir("/d").value(), std::vector<std::string>{"conf"});
}

TEST_F(MemFsTest, InterruptedWriteFileAtomicLeavesTheOldOrTheNewNeverAMix) {
  ASSERT_TRUE(fs_.WriteFileAtomic("/d/conf", "old content").ok());
  FaultFileSystem faults(&fs_);
  // Each step of the protocol in turn fails; after the power cut the file is whole.
  for (Op op : {Op::kOpenWrite, Op::kAppend, Op::kSync, Op::kClose, Op::kRename, Op::kSyncDir}) {
    SCOPED_TRACE(OpName(op));
    int id = faults.AddFault({.path_prefix = "/d", .ops = OpBit(op)});
    Status st = faults.WriteFileAtomic("/d/conf", "new content");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find(OpName(op)), std::string::npos) << st.message();
    EXPECT_EQ(faults.Injected(id), 1);
    // Before the rename the live file is still old; only a failed SyncDir leaves it new.
    EXPECT_EQ(Read("/d/conf"), op == Op::kSyncDir ? "new content" : "old content");
    fs_.PowerCut();
    EXPECT_EQ(Read("/d/conf"), "old content");
  }
}

TEST_F(MemFsTest, CrossDirectoryRenameIsCommittedWholeBySyncOfEitherSide) {
  ASSERT_TRUE(fs_.CreateDir("/a").ok());
  ASSERT_TRUE(fs_.CreateDir("/b").ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  for (const char* synced_side : {"/a", "/b"}) {
    SCOPED_TRACE(synced_side);
    Write("/a/f", "F", "", true);
    ASSERT_TRUE(fs_.Rename("/a/f", "/b/f").ok());
    ASSERT_TRUE(fs_.SyncDir(synced_side).ok());
    fs_.PowerCut();
    EXPECT_FALSE(Exists("/a/f"));  // never under two names
    EXPECT_EQ(Read("/b/f"), "F");
    ASSERT_TRUE(fs_.Remove("/b/f").ok());
    ASSERT_TRUE(fs_.SyncDir("/b").ok());
  }
}

TEST_F(MemFsTest, ChainedRenamesAreCommittedTogether) {
  ASSERT_TRUE(fs_.CreateDir("/a").ok());
  ASSERT_TRUE(fs_.CreateDir("/b").ok());
  ASSERT_TRUE(fs_.CreateDir("/c").ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  Write("/a/x", "X", "", true);
  ASSERT_TRUE(fs_.Rename("/a/x", "/a/w").ok());  // same directory
  ASSERT_TRUE(fs_.Rename("/a/w", "/b/w").ok());
  ASSERT_TRUE(fs_.Rename("/b/w", "/c/z").ok());
  Write("/a/unrelated", "U", "", false);  // a later change of /a that nothing commits
  ASSERT_TRUE(fs_.SyncDir("/c").ok());
  fs_.PowerCut();
  EXPECT_EQ(Read("/c/z"), "X");
  EXPECT_EQ(fs_.ListDir("/a").value(), std::vector<std::string>{});
  EXPECT_EQ(fs_.ListDir("/b").value(), std::vector<std::string>{});
}

TEST_F(MemFsTest, SyncDirCommitsOnlyItsDirectory) {
  ASSERT_TRUE(fs_.CreateDir("/a").ok());
  ASSERT_TRUE(fs_.CreateDir("/b").ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  Write("/a/g", "G", "", false);
  Write("/b/h", "H", "", false);
  EXPECT_EQ(fs_.PendingNamespaceOps(), 2u);
  ASSERT_TRUE(fs_.SyncDir("/b").ok());
  EXPECT_EQ(fs_.PendingNamespaceOps(), 1u);
  fs_.PowerCut();
  EXPECT_FALSE(Exists("/a/g"));
  EXPECT_EQ(Read("/b/h"), "H");
}

TEST_F(MemFsTest, DirectoryRenamesNeverLeaveACycleOrLoseADirectory) {
  // X starts inside Y; X moves out, then Y moves into X. Committing the second move alone
  // would make X and Y each other's parent, unreachable from the root.
  ASSERT_TRUE(fs_.CreateDirs("/Y/X").ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  ASSERT_TRUE(fs_.SyncDir("/Y").ok());
  Write("/Y/X/f", "f", "", true);
  ASSERT_TRUE(fs_.Rename("/Y/X", "/X").ok());
  ASSERT_TRUE(fs_.Rename("/Y", "/X/Y").ok());
  ASSERT_TRUE(fs_.SyncDir("/X").ok());
  fs_.PowerCut();
  EXPECT_TRUE(Exists("/X/Y"));
  EXPECT_EQ(Read("/X/f"), "f");
  EXPECT_FALSE(Exists("/Y"));
  EXPECT_FALSE(Exists("/X/Y/X"));
}

TEST_F(MemFsTest, TornTailsKeepADeterministicPrefixOfTheAppendedBytes) {
  std::string tail;
  for (int i = 0; i < 1000; ++i) tail.push_back(static_cast<char>('a' + i % 26));
  std::set<size_t> lengths;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    size_t got[2];
    for (size_t& len : got) {
      Write("/d/j", "head", tail, true);
      SeededRandom rng(seed);
      fs_.PowerCut(&rng);
      std::string s = Read("/d/j");
      ASSERT_GE(s.size(), 4u);
      ASSERT_LE(s.size(), 1004u);
      EXPECT_EQ(s, ("head" + tail).substr(0, s.size()));
      len = s.size();
      // What survived is durable now: a second power cut keeps it.
      fs_.PowerCut();
      EXPECT_EQ(Read("/d/j").size(), len);
    }
    EXPECT_EQ(got[0], got[1]) << "seed " << seed;
    lengths.insert(got[0]);
  }
  EXPECT_GT(lengths.size(), 10u);
  // A change that is not a pure append is undone whole even with torn tails.
  Write("/d/j", "head-synced", "", true);
  {
    auto f = fs_.NewWritableFile("/d/j", WriteMode::kAppend);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Truncate(4).ok());
    ASSERT_TRUE((*f)->Append(tail).ok());
  }
  SeededRandom rng(3);
  fs_.PowerCut(&rng);
  EXPECT_EQ(Read("/d/j"), "head-synced");
}

TEST_F(MemFsTest, RandomAppendTruncateSyncAgreesWithAModel) {
  SeededRandom rng(2024);
  std::string live, durable;
  auto f = fs_.NewWritableFile("/d/m", WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  for (int step = 0; step < 3000; ++step) {
    switch (rng.Uniform(10)) {
      case 0:
      case 1:
      case 2:
      case 3: {
        std::string data(rng.Uniform(40), static_cast<char>('a' + rng.Uniform(26)));
        ASSERT_TRUE((*f)->Append(data).ok());
        live += data;
        break;
      }
      case 4:
      case 5: {
        uint64_t size = rng.Uniform(live.size() + 20);
        ASSERT_TRUE((*f)->Truncate(size).ok());
        live.resize(size, '\0');
        break;
      }
      case 6:
      case 7:
        ASSERT_TRUE((*f)->Sync().ok());
        durable = live;
        break;
      case 8:
        ASSERT_EQ(Read("/d/m"), live) << "step " << step;
        break;
      case 9:
        fs_.PowerCut();
        live = durable;
        ASSERT_EQ(Read("/d/m"), durable) << "step " << step;
        f = fs_.NewWritableFile("/d/m", WriteMode::kAppend);
        ASSERT_TRUE(f.ok());
        ASSERT_EQ((*f)->Size(), live.size());
        break;
    }
  }
}

TEST_F(MemFsTest, PowerCutKillsEveryHandleAndLock) {
  Write("/d/f", "abc", "", true);
  auto w = fs_.NewWritableFile("/d/f", WriteMode::kAppend);
  ASSERT_TRUE(w.ok());
  auto r = fs_.NewRandomAccessFile("/d/f");
  ASSERT_TRUE(r.ok());
  auto lock = fs_.LockFile("/d/LOCK");
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.PowerCut();

  Status st = (*w)->Append("x");
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_NE(st.message().find("append /d/f"), std::string::npos) << st.message();
  EXPECT_EQ((*w)->Sync().code(), Code::kIoError);
  EXPECT_EQ((*w)->Truncate(0).code(), Code::kIoError);
  char buf[4];
  EXPECT_EQ((*r)->ReadAt(0, buf, 3).status().code(), Code::kIoError);
  EXPECT_EQ((*r)->Size().status().code(), Code::kIoError);
  EXPECT_EQ(Read("/d/f"), "abc");

  // The dead process's lock is gone; releasing it later leaves the new holder's lock alone.
  auto again = fs_.LockFile("/d/LOCK");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  lock.value().reset();
  EXPECT_EQ(fs_.LockFile("/d/LOCK").status().code(), Code::kBusy);
  EXPECT_EQ((*w)->Close().code(), Code::kIoError);
}

TEST_F(MemFsTest, LockFollowsTheInodeNotTheName) {
  auto lock = fs_.LockFile("/d/LOCK");
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(fs_.Rename("/d/LOCK", "/d/LOCK.old").ok());
  EXPECT_EQ(fs_.LockFile("/d/LOCK.old").status().code(), Code::kBusy);
  EXPECT_TRUE(fs_.LockFile("/d/LOCK").ok());  // a new file
}

TEST_F(MemFsTest, FileSizeIsBounded) {
  MemFileSystem small(MemFileSystem::Options{.max_file_bytes = 100});
  auto f = small.NewWritableFile("/f", WriteMode::kTruncate);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append(std::string(100, 'x')).ok());
  Status st = (*f)->Append("y");
  EXPECT_EQ(st.code(), Code::kTooBig);
  EXPECT_NE(st.message().find("/f"), std::string::npos);
  EXPECT_EQ((*f)->Truncate(101).code(), Code::kTooBig);
  EXPECT_EQ((*f)->Size(), 100u);
  EXPECT_TRUE((*f)->Truncate(50).ok());
}

TEST_F(MemFsTest, PendingNamespaceChangesAreBoundedByCommittingTheOldestHalf) {
  const size_t n = kMaxPendingNamespaceOps + 1;
  for (size_t i = 0; i < n; ++i)
    ASSERT_TRUE(fs_.NewWritableFile("/d/f" + std::to_string(i), WriteMode::kTruncate).ok());
  EXPECT_LE(fs_.PendingNamespaceOps(), kMaxPendingNamespaceOps);
  EXPECT_GT(fs_.PendingNamespaceOps(), 0u);
  fs_.PowerCut();
  EXPECT_TRUE(Exists("/d/f0"));
  EXPECT_TRUE(Exists("/d/f" + std::to_string(n / 2 - 1)));
  EXPECT_FALSE(Exists("/d/f" + std::to_string(n - 1)));
}

TEST_F(MemFsTest, PowerCutWhileWritersRunLosesOnlyUnsyncedRecords) {
  constexpr int kThreads = 4;
  constexpr size_t kRecord = 16;
  // Opened before the threads start, so that every one of them dies with the power.
  std::vector<std::unique_ptr<WritableFile>> files;
  for (int t = 0; t < kThreads; ++t) {
    auto f = fs_.NewWritableFile("/d/w" + std::to_string(t), WriteMode::kTruncate);
    ASSERT_TRUE(f.ok());
    files.push_back(std::move(f).value());
  }
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  std::atomic<int> appended{0};
  std::vector<std::thread> threads;
  std::vector<Code> last_error(kThreads, Code::kOk);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      WritableFile* f = files[t].get();
      for (;;) {
        Status st = f->Append(std::string(kRecord, static_cast<char>('a' + t)));
        if (st.ok()) st = f->Sync();
        if (!st.ok()) {
          last_error[t] = st.code();
          return;
        }
        appended.fetch_add(1);
      }
    });
  }
  while (appended.load() < 400) std::this_thread::yield();
  fs_.PowerCut();
  for (auto& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(last_error[t], Code::kIoError);
    std::string s = Read("/d/w" + std::to_string(t));
    EXPECT_EQ(s.size() % kRecord, 0u);
    EXPECT_EQ(s, std::string(s.size(), static_cast<char>('a' + t)));
  }
}

}  // namespace
}  // namespace vstorage::env
