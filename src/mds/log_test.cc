#include "mds/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/config.h"
#include "env/env.h"

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

TEST_F(LogTest, FilesAreReadableByTheOwnerOnly) {
  // The log holds every file name and attribute: other local users must not read it.
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append(Entries(1, 1, 1)).ok());
    ASSERT_TRUE(log->SaveHardState({1, 1}).ok());
    ASSERT_TRUE(log->SaveSnapshot({1, 1}, "img").ok());
  }
  for (const char* f : {"/log/00000000000000000001.seg", "/hardstate", "/snapshot"}) {
    auto perms = std::filesystem::status(dir + f).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write) << f;
  }
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


// Found by fuzz/log_fuzz: an empty segment (its header only) named after another index than
// the one the log goes on at was kept as the tail; the next append went into it, was
// acknowledged, and the log then refused to open. Behind the snapshot it is dropped; past
// it, entries are missing and Open refuses at once.
TEST_F(LogTest, AnEmptySegmentNotWhereTheLogGoesOnIsDroppedOrRefused) {
  std::filesystem::create_directories(dir + "/log");
  std::string stale = dir + "/log/00000000000000000003.seg";
  ASSERT_TRUE(WriteFileAtomic(stale, EncodeSegmentHeader(3)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", EncodeSnapshotFile({5, 1}, "image")).ok());
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->last_index(), 5u);
    ASSERT_TRUE(log->Append(Entries(6, 2, 1)).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(stale));
  {
    auto log = OpenLog();
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->last_index(), 7u);
    EXPECT_EQ(log->Read(6, 7).value(), Entries(6, 2, 1));
  }
  std::filesystem::remove_all(dir + "/log");
  std::filesystem::create_directories(dir + "/log");
  ASSERT_TRUE(WriteFileAtomic(dir + "/log/00000000000000000009.seg", EncodeSegmentHeader(9)).ok());
  auto l = Log::Open(dir);  // entries 6..8 are gone
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), Code::kCorrupt);
  EXPECT_NE(l.status().message().find("starts at index 9"), std::string::npos) << l.status().ToString();
}

// Power cuts (MemFileSystem) and injected I/O errors (FaultFileSystem) at random points, with
// a model of what was acknowledged: every acknowledged entry, snapshot and hard state
// survives; an entry whose append failed survives whole or not at all; the log reopens.
class LogPowerCutTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(LogPowerCutTest, AcknowledgedEntriesSurviveEveryCut) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE("seed " + std::to_string(seed));
  env::SimEnv sim(seed);
  env::FileSystem* fs = sim.env().fs;
  ASSERT_TRUE(fs->CreateDir("/repo").ok());
  ASSERT_TRUE(fs->SyncDir("/").ok());
  env::SeededRandom rnd(seed * 7919 + 1);
  std::vector<LogEntry> acked;  // the model: entries first..last as acknowledged
  uint64_t model_first = 1, snap_index = 0, term = 1;
  std::vector<LogEntry> maybe;  // appended with an error: may survive a cut, whole
  HardState hard;
  std::string snap_image;
  auto open = [&]() {
    auto l = Log::Open(fs, "/repo");
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(*l) : nullptr;
  };
  auto log = open();
  ASSERT_TRUE(log);
  int cuts = 0, failures = 0;
  bool force_cut = false;  // the log refuses writes until reopened
  for (int step = 0; step < 400; ++step) {
    uint64_t last = acked.empty() ? snap_index : acked.back().index;
    uint64_t r = force_cut ? 80 : rnd.Uniform(100);
    force_cut = false;
    int fault = 0;
    if (rnd.Bernoulli(0.15)) {
      env::FaultRule rule;
      rule.path_prefix = "/repo";
      rule.ops = env::OpBit(env::Op::kAppend) | env::OpBit(env::Op::kSync) | env::OpBit(env::Op::kSyncDir) |
                 env::OpBit(env::Op::kOpenWrite) | env::OpBit(env::Op::kRename);
      rule.skip = static_cast<int64_t>(rnd.Uniform(3));
      rule.append_bytes_before_failing = rnd.Uniform(40);
      fault = sim.faults().AddFault(rule);
    }
    if (r < 60) {  // append a batch
      std::vector<LogEntry> v;
      for (uint64_t i = 0, n = 1 + rnd.Uniform(4); i < n; ++i)
        v.push_back({last + 1 + i, term, "s" + std::to_string(seed) + "-" + std::to_string(last + 1 + i) + "-" +
                                             std::string(rnd.Uniform(200), 'a' + static_cast<char>(step % 26))});
      Status st = log->Append(v);
      if (st.ok()) {
        acked.insert(acked.end(), v.begin(), v.end());
        maybe.clear();
      } else {
        ++failures;
        maybe = v;
      }
    } else if (r < 68 && last > snap_index + 1) {  // a new leader cuts a conflicting suffix
      uint64_t from = snap_index + 1 + rnd.Uniform(last - snap_index);
      Status st = log->TruncateSuffix(from);
      if (st.ok()) {
        acked.resize(from - model_first);
        maybe.clear();
        ++term;
      } else {
        // The log is now broken (only a reopen writes again) and the cut may be on disk in
        // part: the entries from `from` on may survive, as a prefix.
        ++failures;
        maybe.assign(acked.begin() + static_cast<ptrdiff_t>(from - model_first), acked.end());
        acked.resize(from - model_first);
        force_cut = true;
      }
    } else if (r < 74 && last > snap_index) {  // snapshot at the last entry
      std::string image = "image@" + std::to_string(last);
      Status st = log->SaveSnapshot({last, acked.back().term}, image);
      if (st.ok()) {
        snap_index = last;
        snap_image = image;
      } else {
        ++failures;
      }
    } else if (r < 78) {
      HardState h{term, rnd.Uniform(4)};
      if (log->SaveHardState(h).ok()) hard = h;
      else ++failures;
    } else if (r < 88) {  // power cut, then reopen and compare with the model
      if (fault) sim.faults().RemoveFault(fault), fault = 0;
      log.reset();
      sim.mem().PowerCut(&sim.random());
      ++cuts;
      log = open();
      ASSERT_TRUE(log) << "after cut " << cuts;
      EXPECT_GE(log->hard_state().term, hard.term);
      hard = log->hard_state();
      ASSERT_GE(log->snapshot().index, snap_index) << "an acknowledged snapshot was lost";
      // A snapshot whose save failed may still have landed (the rename was done).
      snap_index = log->snapshot().index;
      if (snap_index > 0) {
        auto img = log->ReadSnapshotImage();
        ASSERT_TRUE(img.ok());
        EXPECT_EQ(*img, "image@" + std::to_string(snap_index));
      }
      uint64_t acked_last = acked.empty() ? 0 : acked.back().index;
      ASSERT_GE(log->last_index(), std::max(acked_last, snap_index)) << "acknowledged entries lost";
      ASSERT_LE(log->last_index(), acked_last + maybe.size());
      if (log->last_index() >= log->first_index()) {
        auto got = log->Read(log->first_index(), log->last_index(), SIZE_MAX);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        for (const auto& e : *got) {
          if (e.index <= acked_last && e.index >= model_first) {
            ASSERT_EQ(e, acked[e.index - model_first]);
          } else if (e.index > acked_last) {
            ASSERT_EQ(e, maybe[e.index - acked_last - 1]) << "a failed append survived other than whole";
          }
        }
        // The model continues from what survived.
        std::vector<LogEntry> now = *got;
        acked = now;
        model_first = log->first_index();
      } else {
        acked.clear();
        model_first = log->first_index();
      }
      maybe.clear();
    }
    if (fault) sim.faults().RemoveFault(fault);
  }
  EXPECT_GT(cuts, 10);
  EXPECT_GT(failures, 5);
}

INSTANTIATE_TEST_SUITE_P(Seeds, LogPowerCutTest, ::testing::Range<uint64_t>(1, 21));

}  // namespace
}  // namespace vstorage::mds
