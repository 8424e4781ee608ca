#include "mds/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/config.h"

namespace vstorage::mds {
namespace {

std::string Hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// Byte-exact formats (CONVENTIONS item 10): a change here is a format change and needs a
// new version plus a conversion, not an edit of these strings.
TEST(LogFormat, GoldenRecord) {
  // crc32c (Castagnoli) over index, term and data, computed independently of Crc32c().
  EXPECT_EQ(Hex(EncodeLogRecord({7, 3, "abc"})),
            "564a524e"          // "VJRN"
            "03000000"          // data length
            "84e0567e"          // crc32c
            "0700000000000000"  // index
            "0300000000000000"  // term
            "616263");          // data
  EXPECT_NE(EncodeLogRecord({7, 4, "abc"}).substr(8, 4), EncodeLogRecord({7, 3, "abc"}).substr(8, 4));
}

TEST(LogFormat, GoldenSegmentHeaderHardStateAndSnapshot) {
  EXPECT_EQ(Hex(EncodeSegmentHeader(42)), "56534c4f47534731" "01000000" "00000000" "2a00000000000000");
  EXPECT_EQ(Hex(EncodeHardState({5, 1025})),
            "5653484152443031" "01000000" "0500000000000000" "0104000000000000" "be19b896");
  std::string s = EncodeSnapshotFile({9, 2}, "img");
  EXPECT_EQ(Hex(s.substr(0, 36)), "5653534e41503032"  // "VSSNAP02"
                                  "02000000" "0900000000000000" "0200000000000000" "0300000000000000");
  EXPECT_EQ(s.substr(40), "img");
  EXPECT_EQ(s.size(), 43u);
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vs_log_XXXXXX";
    dir = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::unique_ptr<Log> OpenLog() {
    auto l = Log::Open(dir);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  }
  static std::vector<LogEntry> Entries(uint64_t from, uint64_t n, uint64_t term) {
    std::vector<LogEntry> v;
    for (uint64_t i = 0; i < n; ++i) v.push_back({from + i, term, "entry-" + std::to_string(from + i)});
    return v;
  }
  std::string dir;
};

TEST_F(LogTest, AppendReadTermAtAndReopen) {
  {
    auto log = OpenLog();
    EXPECT_EQ(log->first_index(), 1u);
    EXPECT_EQ(log->last_index(), 0u);
    EXPECT_EQ(log->TermAt(0).value(), 0u);  // before everything: term 0
    ASSERT_TRUE(log->Append(Entries(1, 5, 1)).ok());
    ASSERT_TRUE(log->Append(Entries(6, 3, 2)).ok());
    EXPECT_EQ(log->last_index(), 8u);
    EXPECT_EQ(log->TermAt(5).value(), 1u);
    EXPECT_EQ(log->TermAt(6).value(), 2u);
    EXPECT_EQ(log->TermAt(9).status().code(), Code::kNotFound);
    auto r = log->Read(4, 7);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (std::vector<LogEntry>{{4, 1, "entry-4"}, {5, 1, "entry-5"}, {6, 2, "entry-6"}, {7, 2, "entry-7"}}));
    auto capped = log->Read(1, 100, 1);  // at least one, then what fits
    ASSERT_TRUE(capped.ok());
    EXPECT_EQ(capped->size(), 1u);
  }
  auto log = OpenLog();
  EXPECT_EQ(log->last_index(), 8u);
  EXPECT_EQ(log->TermAt(8).value(), 2u);
  EXPECT_EQ(log->Read(8, 8).value()[0].data, "entry-8");
}

TEST_F(LogTest, TruncateSuffixRemovesAConflictingTailDurably) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Entries(1, 10, 1)).ok());
    ASSERT_TRUE(log->TruncateSuffix(6).ok());
    EXPECT_EQ(log->last_index(), 5u);
    ASSERT_TRUE(log->Append(Entries(6, 2, 3)).ok());  // a new leader's entries
  }
  auto log = OpenLog();
  EXPECT_EQ(log->last_index(), 7u);
  EXPECT_EQ(log->TermAt(5).value(), 1u);
  EXPECT_EQ(log->TermAt(6).value(), 3u);
  EXPECT_EQ(log->Read(7, 7).value()[0], (LogEntry{7, 3, "entry-7"}));
}

TEST_F(LogTest, HardStateIsDurable) {
  {
    auto log = OpenLog();
    EXPECT_EQ(log->hard_state(), (HardState{0, 0}));
    ASSERT_TRUE(log->SaveHardState({4, 2}).ok());
  }
  EXPECT_EQ(OpenLog()->hard_state(), (HardState{4, 2}));
  // A damaged hard state is refused, not taken for term 0 (that could vote twice).
  std::string p = dir + "/hardstate";
  int fd = ::open(p.c_str(), O_RDWR);
  char c = 9;
  ASSERT_EQ(::pwrite(fd, &c, 1, 12), 1);
  ::close(fd);
  auto l = Log::Open(dir);
  EXPECT_EQ(l.status().code(), Code::kCorrupt);
}

TEST_F(LogTest, SnapshotCompactsButKeepsEntriesALaggingFollowerNeeds) {
  // Small segments are made by rolling: write enough entries to fill several of them.
  auto log = OpenLog();
  std::string big(4096, 'x');
  // ~120 MiB would be slow; segments roll at kLogSegmentBytes, so use fewer, bigger entries
  // to reach several segments quickly.
  uint64_t per = kLogSegmentBytes / big.size() / 4;  // 4 appends per segment
  uint64_t idx = 1;
  for (int seg = 0; seg < 12; ++seg) {
    std::vector<LogEntry> v;
    for (uint64_t i = 0; i < per; ++i) v.push_back({idx++, 1, big});
    ASSERT_TRUE(log->Append(v).ok());
  }
  uint64_t last = log->last_index();
  ASSERT_GT(last, kLogKeepBehindSnapshot * 2);
  ASSERT_TRUE(log->SaveSnapshot({last, 1}, "image").ok());
  EXPECT_EQ(log->snapshot().index, last);
  // Entries before the snapshot are compacted in whole segments, never within the last
  // kLogKeepBehindSnapshot.
  EXPECT_GT(log->first_index(), 1u) << "nothing compacted";
  EXPECT_LE(log->first_index(), last - kLogKeepBehindSnapshot + 1);
  EXPECT_TRUE(log->Read(last - kLogKeepBehindSnapshot + 1, last).ok());
  EXPECT_EQ(log->Read(1, 1).status().code(), Code::kNotFound);
  EXPECT_EQ(log->ReadSnapshotImage().value(), "image");
  EXPECT_EQ(log->entries_since_snapshot(), 0u);
  uint64_t first = log->first_index();
  log.reset();
  auto again = OpenLog();
  EXPECT_EQ(again->first_index(), first);
  EXPECT_EQ(again->last_index(), last);
  EXPECT_EQ(again->TermAt(last).value(), 1u);
  ASSERT_TRUE(again->Append({{last + 1, 2, "after"}}).ok());
}

TEST_F(LogTest, ATornTailIsCutAndAGapIsRefused) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Entries(1, 3, 1)).ok());
  }
  std::string seg = dir + "/log/00000000000000000001.seg";
  auto size = std::filesystem::file_size(seg);
  ASSERT_EQ(::truncate(seg.c_str(), static_cast<off_t>(size - 3)), 0);  // the 3rd record torn
  {
    auto log = OpenLog();
    EXPECT_EQ(log->last_index(), 2u);
    ASSERT_TRUE(log->Append(Entries(3, 1, 1)).ok());
  }
  // A record with a wrong index inside a segment: corruption, with the way out named.
  std::string body = ReadFile(seg).value();
  body += EncodeLogRecord({9, 1, "gap"});
  ASSERT_TRUE(WriteFileAtomic(seg, body).ok());
  auto l = Log::Open(dir);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), Code::kCorrupt);
  EXPECT_NE(l.status().message().find("backup"), std::string::npos) << l.status().ToString();
}

}  // namespace
}  // namespace vstorage::mds
