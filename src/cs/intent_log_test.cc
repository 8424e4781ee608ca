#include "cs/intent_log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace vstorage::cs {
namespace {

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

class IntentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/vs_intent_XXXXXX";
    dir = mkdtemp(t);
  }
  void TearDown() override {
    log.reset();
    std::filesystem::remove_all(dir);
  }
  std::set<ChunkId> Reopen(const std::string& boot = "boot-a") {
    log.reset();
    std::set<ChunkId> found;
    auto l = IntentLog::Open(dir, boot, &found, &rebooted);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (l.ok()) log = std::move(l).value();
    return found;
  }
  std::string dir;
  std::unique_ptr<IntentLog> log;
  bool rebooted = false;
};

// The on-disk format is pinned byte for byte: a change must bump kFormatVersion and keep
// reading the old one.
TEST_F(IntentLogTest, HeaderAndRecordBytesAreGolden) {
  // (The CRC32C values were computed independently with a bitwise Python implementation.)
  EXPECT_EQ(Hex(IntentLog::EncodeHeader("boot-a")),
            "5653494e544e543101000000626f6f742d61" + std::string(84, '0') + "6ade7e89");
  EXPECT_EQ(Hex(IntentLog::EncodeRecord(ChunkId{0x0102030405060708ull}, 1)), "080706050403020101000000dd4c7f72");
  EXPECT_EQ(Hex(IntentLog::EncodeRecord(ChunkId{0x0102030405060708ull}, 2)), "080706050403020102000000e4c55d10");
}

TEST_F(IntentLogTest, MarksSurviveAReopenAndClearsForgetThem) {
  EXPECT_TRUE(Reopen().empty());
  ASSERT_TRUE(log->Mark(ChunkId{1}).ok());
  ASSERT_TRUE(log->Mark(ChunkId{2}).ok());
  ASSERT_TRUE(log->Mark(ChunkId{3}).ok());
  EXPECT_TRUE(log->Contains(ChunkId{2}));
  log->Clear(ChunkId{2});
  EXPECT_FALSE(log->Contains(ChunkId{2}));
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(Reopen(), (std::set<ChunkId>{ChunkId{1}, ChunkId{3}}));
  // Marked again after a clear: the mark wins on replay.
  log->Clear(ChunkId{1});
  ASSERT_TRUE(log->Mark(ChunkId{1}).ok());
  EXPECT_EQ(Reopen(), (std::set<ChunkId>{ChunkId{1}, ChunkId{3}}));
  // A clear not yet written is simply lost: the chunk stays suspect (the safe side).
  log->Clear(ChunkId{3});
  EXPECT_EQ(Reopen(), (std::set<ChunkId>{ChunkId{1}, ChunkId{3}}));
}

TEST_F(IntentLogTest, AnotherBootIdSaysTheMachineRestarted) {
  EXPECT_TRUE(Reopen().empty());
  EXPECT_FALSE(rebooted);  // a new log: nothing was written before
  ASSERT_TRUE(log->Mark(ChunkId{7}).ok());
  EXPECT_EQ(Reopen("boot-a"), std::set<ChunkId>{ChunkId{7}});
  EXPECT_FALSE(rebooted);
  EXPECT_EQ(Reopen("boot-b"), std::set<ChunkId>{ChunkId{7}});
  EXPECT_TRUE(rebooted);
  EXPECT_EQ(Reopen("boot-b"), std::set<ChunkId>{ChunkId{7}});  // rewritten under the new id
  EXPECT_FALSE(rebooted);
  EXPECT_EQ(Reopen(""), std::set<ChunkId>{ChunkId{7}});  // unknown boot id: assume the worst
  EXPECT_TRUE(rebooted);
}

TEST_F(IntentLogTest, ATornOrDamagedTailIsIgnoredAndADamagedHeaderIsCorrupt) {
  Reopen();
  ASSERT_TRUE(log->Mark(ChunkId{1}).ok());
  ASSERT_TRUE(log->Mark(ChunkId{2}).ok());
  log.reset();
  std::string path = dir + "/intents";
  auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 5);  // the last record torn
  EXPECT_EQ(Reopen(), (std::set<ChunkId>{ChunkId{1}}));
  ASSERT_TRUE(log->Mark(ChunkId{2}).ok());
  log.reset();
  {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << std::string(16, 'x');  // a record whose checksum is wrong
  }
  EXPECT_EQ(Reopen(), (std::set<ChunkId>{ChunkId{1}, ChunkId{2}}));
  log.reset();
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f << 'Z';
  }
  std::set<ChunkId> found;
  auto l = IntentLog::Open(dir, "boot-a", &found, &rebooted);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), Code::kCorrupt);
}

TEST_F(IntentLogTest, ConcurrentMarksAreAllDurableAndTheLogCompacts) {
  Reopen();
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(log->Mark(ChunkId{t * 1000 + i + 1}).ok());
    });
  for (auto& t : ts) t.join();
  EXPECT_LE(log->rounds(), 1600u);
  // Clear and mark until the log has passed its compaction size several times.
  for (int round = 0; round < 40; ++round) {
    for (uint64_t i = 0; i < 200; ++i) log->Clear(ChunkId{i + 1});
    ASSERT_TRUE(log->Flush().ok());
    for (uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(log->Mark(ChunkId{i + 1}).ok());
  }
  EXPECT_LT(std::filesystem::file_size(dir + "/intents"), IntentLog::kCompactBytes + 64 * IntentLog::kRecordBytes * 200);
  std::set<ChunkId> found = Reopen();
  EXPECT_EQ(found.size(), 1600u);
  for (int t = 0; t < 8; ++t)
    for (uint64_t i = 0; i < 200; ++i) EXPECT_TRUE(found.count(ChunkId{t * 1000 + i + 1}));
}

}  // namespace
}  // namespace vstorage::cs
