// Tests of the compact tables behind MdsState: the snapshot fixture of format 4 (written by
// the std::map-based state before the tables), the per-CS chunk index against a brute-force
// scan, and (disabled, run by hand) the memory and load-time measurements of
// docs/design/mds.md "State tables and memory":
//   build/bin/mds_test --gtest_also_run_disabled_tests --gtest_filter='StateMemory.*BytesPerFile'
// (one measurement per process: RSS deltas are only meaningful in a fresh process).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "common/limits.h"
#include "mds/state.h"

namespace vstorage::mds {
namespace {

template <typename T>
Command Cmd(CommandType t, const T& body, int64_t time_ms = 1000) {
  return Command{t, time_ms, proto::EncodeToString(body)};
}

const std::string kFixture4 = std::string(VSTORAGE_SOURCE_DIR) + "/src/mds/testdata/state_v4.img";
const std::string kFixture = std::string(VSTORAGE_SOURCE_DIR) + "/src/mds/testdata/state_v5.img";

// A small state touching every part of the image: directories, files with chunks of 1, 3
// and 7 replicas, a symlink, a device node, a hard link, extended attributes, an orphan, a
// dropped and a releasing CS, configuration and events.
void BuildFixtureState(MdsState* s, bool format5 = true) {
  int64_t t = 1700000000000;
  auto apply = [&](CommandType type, const auto& body) {
    auto r = s->Apply(Cmd(type, body, t++));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ApplyResult{};
  };
  std::vector<CsId> cs;
  for (int i = 0; i < 8; ++i) cs.push_back(apply(CommandType::kCreateCs, CreateCsCmd{"host" + std::to_string(i % 4), 0}).cs);
  apply(CommandType::kUpdateCs, UpdateCsCmd{cs[0], "127.0.0.1:7000", 1});
  InodeId dir = apply(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "dir", proto::NodeType::kDir, 0755}).attr.ino;
  InodeId sub = apply(CommandType::kCreateNode, CreateNodeCmd{dir, "sub", proto::NodeType::kDir, 02775, "", true, 5, 6}).attr.ino;
  apply(CommandType::kSetXattr, SetXattrCmd{dir, "replicas", "3:2"});
  InodeId f1 = apply(CommandType::kCreateNode, CreateNodeCmd{dir, "file-one", proto::NodeType::kFile, 0644, "", true, 1000, 1000}).attr.ino;
  InodeId f2 = apply(CommandType::kCreateNode, CreateNodeCmd{sub, "a-file-with-a-rather-long-name", proto::NodeType::kFile, 0600}).attr.ino;
  apply(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "ln", proto::NodeType::kSymlink, 0777, "dir/file-one"});
  apply(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "null", proto::NodeType::kCharDev, 0666, "", true, 0, 0, 0x103});
  apply(CommandType::kLink, LinkCmd{f1, kRootInode, "hard"});
  apply(CommandType::kSetXattr, SetXattrCmd{f1, "user.k", "v"});
  apply(CommandType::kSetXattr, SetXattrCmd{f1, "trusted.t", std::string("\0\1\2", 3)});
  apply(CommandType::kAllocChunk, AllocChunkCmd{f1, 0, 1, {cs[0], cs[1], cs[2]}});
  apply(CommandType::kAllocChunk, AllocChunkCmd{f1, 5, 3, {cs[3]}});
  ChunkId wide = apply(CommandType::kAllocChunk, AllocChunkCmd{f2, 0, 1, {cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[6]}}).chunk;
  apply(CommandType::kUpdateChunk, UpdateChunkCmd{wide, 2, {cs[6], cs[5], cs[4], cs[3], cs[2], cs[1], cs[7]}});
  apply(CommandType::kSetAttr, SetAttrCmd{f1, proto::kSetSize, 6ull << 28});
  apply(CommandType::kSetAttr, SetAttrCmd{f2, proto::kGrowSize, 12345});
  InodeId orphan = apply(CommandType::kCreateNode, CreateNodeCmd{dir, "open-then-unlinked", proto::NodeType::kFile, 0644}).attr.ino;
  apply(CommandType::kAllocChunk, AllocChunkCmd{orphan, 0, 1, {cs[1], cs[2], cs[3]}});
  apply(CommandType::kUnlink, UnlinkCmd{dir, "open-then-unlinked", false, true});
  InodeId gone = apply(CommandType::kCreateNode, CreateNodeCmd{dir, "gone", proto::NodeType::kFile, 0644}).attr.ino;
  apply(CommandType::kAllocChunk, AllocChunkCmd{gone, 0, 1, {cs[1]}});
  apply(CommandType::kUnlink, UnlinkCmd{dir, "gone"});
  apply(CommandType::kRename, RenameCmd{dir, "sub", kRootInode, "sub2"});
  apply(CommandType::kSetCsReleasing, SetCsReleasingCmd{cs[4], true});
  apply(CommandType::kDropCs, DropCsCmd{cs[7]});
  apply(CommandType::kSetConfig, SetConfigCmd{"mds.recovery.parallel", "8"});
  apply(CommandType::kAddEvent, AddEventCmd{"MDS", "INF", "fixture made"});
  if (!format5) return;
  // Format 5: tiers, failure domains and locations.
  apply(CommandType::kSetXattr, SetXattrCmd{dir, "tier", "2"});
  apply(CommandType::kSetXattr, SetXattrCmd{dir, "failure-domain", "rack"});
  apply(CommandType::kCreateNode, CreateNodeCmd{dir, "tiered", proto::NodeType::kFile, 0644});
  apply(CommandType::kSetCsLocation, SetCsLocationCmd{cs[1], "room1.row2.rack3"});
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Writes the fixture (run by hand, only with the code that defines the format).
TEST(StateFixture, DISABLED_WriteFormat5Fixture) {
  MdsState s;
  BuildFixtureState(&s);
  std::ofstream(kFixture, std::ios::binary) << s.Encode();
}

// The image written by the std::map-based state (format 4) decodes into the state the same
// commands build today (every inode at tier 0, failure domain host, every CS at the default
// location), and so re-encodes as that state's format 5 image.
TEST(StateFixture, Format4ImageStillDecodes) {
  std::string image = ReadAll(kFixture4);
  ASSERT_FALSE(image.empty()) << kFixture4;
  MdsState built;
  BuildFixtureState(&built, false);
  MdsState decoded;
  ASSERT_TRUE(decoded.Decode(image).ok());
  EXPECT_TRUE(decoded == built);
  EXPECT_EQ(decoded.Encode(), built.Encode());
  auto dir = decoded.Lookup(kRootInode, "dir");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(decoded.GetXattrs(dir->ino)->at("tier"), "0");
  EXPECT_EQ(decoded.GetXattrs(dir->ino)->at("failure-domain"), "host");
  for (const auto& cs : decoded.AllCs()) EXPECT_EQ(cs.location, "");
}

// Format 5 byte for byte: tiers, domains and locations survive a snapshot.
TEST(StateFixture, Format5ImageDecodesAndReencodesByteForByte) {
  std::string image = ReadAll(kFixture);
  ASSERT_FALSE(image.empty()) << kFixture;
  MdsState built;
  BuildFixtureState(&built);
  EXPECT_EQ(built.Encode(), image);
  MdsState decoded;
  ASSERT_TRUE(decoded.Decode(image).ok());
  EXPECT_EQ(decoded.Encode(), image);
  EXPECT_TRUE(decoded == built);
  // Spot checks through the query API, so a symmetric Encode/Decode bug cannot hide.
  auto dir = decoded.Lookup(kRootInode, "dir");
  ASSERT_TRUE(dir.ok());
  auto ls = decoded.Readdir(dir->ino);
  ASSERT_TRUE(ls.ok());
  ASSERT_EQ(ls->size(), 2u);
  EXPECT_EQ((*ls)[0].name, "file-one");
  EXPECT_EQ((*ls)[1].name, "tiered");
  auto f1 = decoded.Lookup(kRootInode, "hard");
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(f1->nlink, 2u);
  EXPECT_EQ(decoded.FileChunks(f1->ino).size(), 2u);
  EXPECT_EQ(decoded.GetXattrs(f1->ino)->at("user.k"), "v");
  EXPECT_EQ(decoded.GetXattrs(f1->ino)->at("replicas"), "3:2");
  EXPECT_EQ(*decoded.Readlink(decoded.Lookup(kRootInode, "ln")->ino), "dir/file-one");
  EXPECT_EQ(decoded.Lookup(kRootInode, "null")->rdev, 0x103u);
  EXPECT_EQ(decoded.Orphans().size(), 1u);
  auto sub = decoded.Lookup(kRootInode, "sub2");
  ASSERT_TRUE(sub.ok());
  auto f2 = decoded.Lookup(sub->ino, "a-file-with-a-rather-long-name");
  ASSERT_TRUE(f2.ok());
  auto wide = decoded.GetChunk(f2->ino, 0);
  ASSERT_TRUE(wide.has_value());
  EXPECT_EQ(wide->version, 2u);
  EXPECT_EQ(wide->replicas.size(), 6u);  // CS 8 was dropped
  EXPECT_EQ(decoded.PathOf(f2->ino), "/sub2/a-file-with-a-rather-long-name");
  EXPECT_EQ(decoded.Counts().chunks, built.Counts().chunks);
  auto tiered = decoded.Lookup(dir->ino, "tiered");
  ASSERT_TRUE(tiered.ok());
  auto pl = decoded.PlacementOf(tiered->ino);  // inherited from dir
  ASSERT_TRUE(pl.ok());
  EXPECT_EQ(pl->tier, 2u);
  EXPECT_EQ(pl->domain, FailureDomain::kRack);
  EXPECT_EQ(pl->norm, 3u);
  size_t located = 0;
  for (const auto& cs : decoded.AllCs()) located += cs.location == "room1.row2.rack3" ? 1 : 0;
  EXPECT_EQ(located, 1u);
}

// ---- A random command trace: the same commands give the same results and state as the
// std::map-based state gave (testdata/state_trace_v4.txt was written by that code) ----

uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string AttrText(const proto::Attr& a) {
  std::ostringstream o;
  o << a.ino.v << "/" << int(a.type) << "/" << a.mode << "/" << a.size << "/" << a.mtime_ns << "/" << a.ctime_ns
    << "/" << a.nlink << "/" << a.chunk_size << "/" << a.uid << "/" << a.gid << "/" << a.atime_ns << "/" << a.rdev;
  return o.str();
}

// Runs a seeded random mix of every command kind that touches the namespace or chunks and
// writes one line per command (its result) and, every 50 commands, query results.
std::string RandomTrace(uint32_t seed, size_t steps, MdsState* s) {
  std::mt19937_64 rng(seed);
  auto rnd = [&](uint64_t n) { return n ? rng() % n : 0; };
  std::ostringstream out;
  int64_t t = 1700000000000;
  std::vector<CsId> cs;
  std::vector<InodeId> dirs{kRootInode};
  std::vector<InodeId> open_files;
  auto apply = [&](CommandType type, const auto& body) {
    auto r = s->Apply(Cmd(type, body, t));
    t += 1 + rnd(3);
    out << int(type) << " ";
    if (!r.ok()) {
      out << "err " << int(r.status().code()) << " " << r.status().message() << "\n";
      return ApplyResult{};
    }
    out << "ok " << AttrText(r->attr) << " c" << r->chunk.v << " s" << r->cs.v;
    for (const auto& f : r->freed) {
      out << " f" << f.id.v << ":" << f.max_version;
      for (CsId x : f.replicas) out << "," << x.v;
    }
    out << "\n";
    return *r;
  };
  auto pick_cs = [&](size_t n, bool allow_dup) {
    std::vector<CsId> r;
    for (size_t i = 0; i < n && !cs.empty(); ++i) {
      CsId c = cs[rnd(cs.size())];
      if (!allow_dup && std::find(r.begin(), r.end(), c) != r.end()) continue;
      r.push_back(c);
    }
    if (r.empty() && !cs.empty()) r.push_back(cs[0]);
    return r;
  };
  auto names_in = [&](InodeId dir) {
    auto ls = s->Readdir(dir);
    return ls.ok() ? *ls : std::vector<proto::DirEntry>{};
  };
  auto pick_entry = [&](InodeId* dir, proto::DirEntry* e) {
    *dir = dirs[rnd(dirs.size())];
    auto ls = names_in(*dir);
    if (ls.empty()) return false;
    *e = ls[rnd(ls.size())];
    return true;
  };
  auto all_chunks = [&] {
    std::vector<ChunkInfo> v;
    s->ForEachChunk([&](const ChunkInfo& c) { v.push_back(c); });
    return v;
  };
  auto name = [&] { return "n" + std::to_string(rnd(40)); };
  for (int i = 0; i < 6; ++i) cs.push_back(apply(CommandType::kCreateCs, CreateCsCmd{"h" + std::to_string(i % 3), 0}).cs);
  for (size_t step = 0; step < steps; ++step) {
    uint64_t k = rnd(100);
    InodeId dir;
    proto::DirEntry e;
    if (k < 20) {
      proto::NodeType type = rnd(6) == 0 ? proto::NodeType::kDir : proto::NodeType::kFile;
      auto r = apply(CommandType::kCreateNode, CreateNodeCmd{dirs[rnd(dirs.size())], name(), type, 0644, "", rnd(4) != 0});
      if (r.attr.ino.v && type == proto::NodeType::kDir) dirs.push_back(r.attr.ino);
    } else if (k < 40) {
      if (!pick_entry(&dir, &e)) continue;
      apply(CommandType::kAllocChunk, AllocChunkCmd{e.ino, rnd(8), 1 + rnd(3), pick_cs(1 + rnd(rnd(8) == 0 ? 8 : 3), rnd(20) == 0)});
    } else if (k < 52) {
      auto chunks = all_chunks();
      if (chunks.empty()) continue;
      const ChunkInfo& c = chunks[rnd(chunks.size())];
      UpdateChunkCmd u{c.id, c.version + rnd(2), pick_cs(1 + rnd(4), false)};
      if (rnd(2)) {
        u.cas = true;
        u.expect_version = c.version + (rnd(5) == 0);
        u.expect_replicas = rnd(6) == 0 ? std::vector<CsId>{} : c.replicas;
      }
      apply(CommandType::kUpdateChunk, u);
    } else if (k < 55) {
      apply(CommandType::kRemoveCsReplicas, RemoveCsReplicasCmd{cs[rnd(cs.size())]});
    } else if (k < 56) {
      size_t i = rnd(cs.size());
      apply(CommandType::kDropCs, DropCsCmd{cs[i]});
      cs.erase(cs.begin() + i);
      cs.push_back(apply(CommandType::kCreateCs, CreateCsCmd{"h" + std::to_string(rnd(4)), 0}).cs);
    } else if (k < 64) {
      if (!pick_entry(&dir, &e)) continue;
      uint64_t size = rnd(3) == 0 ? 0 : rnd(9) * (uint64_t{kDefaultChunkSizeBytes} / 2);
      apply(CommandType::kSetAttr, SetAttrCmd{e.ino, rnd(3) ? uint32_t{proto::kSetSize} : uint32_t{proto::kGrowSize}, size});
    } else if (k < 72) {
      if (!pick_entry(&dir, &e)) continue;
      bool keep = rnd(3) == 0;
      auto r = apply(CommandType::kUnlink, UnlinkCmd{dir, e.name, e.type == proto::NodeType::kDir, keep});
      if (keep) open_files.push_back(e.ino);
    } else if (k < 75) {
      if (open_files.empty()) continue;
      size_t i = rnd(open_files.size());
      apply(CommandType::kFreeOrphan, FreeOrphanCmd{open_files[i]});
      open_files.erase(open_files.begin() + i);
    } else if (k < 85) {
      if (!pick_entry(&dir, &e)) continue;
      apply(CommandType::kRename, RenameCmd{dir, e.name, dirs[rnd(dirs.size())], name(), rnd(3) == 0});
    } else if (k < 90) {
      if (!pick_entry(&dir, &e)) continue;
      apply(CommandType::kLink, LinkCmd{e.ino, dirs[rnd(dirs.size())], name()});
    } else if (k < 95) {
      if (!pick_entry(&dir, &e)) continue;
      if (rnd(2)) apply(CommandType::kSetXattr, SetXattrCmd{e.ino, "user.a" + std::to_string(rnd(3)), "v" + std::to_string(rnd(100)), 0, rnd(4) == 0});
      else apply(CommandType::kSetXattr, SetXattrCmd{e.ino, "replicas", std::to_string(1 + rnd(3))});
    } else {
      if (!pick_entry(&dir, &e)) continue;
      apply(CommandType::kCreateNode, CreateNodeCmd{dir, name(), proto::NodeType::kSymlink, 0777, "target" + std::to_string(rnd(9))});
    }
    if (step % 50 == 49) {
      for (InodeId d : dirs) {
        if (step % 500 != 499) break;
        out << "ls " << d.v << " " << s->PathOf(d) << ":";
        for (const auto& x : names_in(d)) {
          out << " " << x.name << "=" << x.ino.v << "/" << int(x.type);
          auto a = s->Lookup(d, x.name);
          out << (a.ok() ? "" : "!") << s->PathOf(x.ino).size();
        }
        out << "\n";
      }
      auto c = s->Counts();
      out << "counts " << c.files << " " << c.inodes << " " << c.chunks << " " << c.chunk_replicas << " " << c.file_bytes
          << " orphans " << s->Orphans().size() << " image " << Fnv(s->Encode()) << "\n";
    }
  }
  return out.str();
}

// Written by the std::map-based state in format 4 and rewritten for format 5: the two files
// differed in the image hashes only (every other line is the map-based state's).
const std::string kTraceFixture = std::string(VSTORAGE_SOURCE_DIR) + "/src/mds/testdata/state_trace_v5.txt";

TEST(StateFixture, DISABLED_WriteTraceFixture) {
  MdsState s;
  std::ofstream(kTraceFixture, std::ios::binary) << RandomTrace(7, 3000, &s);
}

TEST(StateFixture, RandomTraceMatchesTheMapBasedState) {
  std::string expected = ReadAll(kTraceFixture);
  ASSERT_FALSE(expected.empty()) << kTraceFixture;
  MdsState s;
  std::string got = RandomTrace(7, 3000, &s);
  if (got == expected) return;
  std::istringstream a(got), b(expected);
  std::string la, lb;
  for (int line = 1; std::getline(b, lb); ++line) {
    std::getline(a, la);
    ASSERT_EQ(la, lb) << "first difference at line " << line;
  }
  FAIL() << "the trace is longer than the fixture";
}

// ---- The per-CS chunk index against a brute-force scan ----

void ExpectIndexMatchesScan(const MdsState& s, const std::string& where) {
  std::map<CsId, std::set<uint64_t>> scan;
  s.ForEachChunk([&](const ChunkInfo& c) {
    for (CsId x : c.replicas) scan[x].insert(c.id.v);
  });
  std::set<CsId> all_cs;
  for (const auto& r : s.AllCs()) all_cs.insert(r.id);
  for (const auto& [x, ids] : scan) all_cs.insert(x);
  for (CsId x : all_cs) {
    std::vector<uint64_t> got;
    s.ForEachChunkOnCs(x, [&](const ChunkInfo& c) {
      got.push_back(c.id.v);
      EXPECT_NE(std::find(c.replicas.begin(), c.replicas.end(), x), c.replicas.end()) << where;
    });
    std::sort(got.begin(), got.end());
    std::vector<uint64_t> want(scan[x].begin(), scan[x].end());
    ASSERT_EQ(got, want) << where << ": CS#" << x.v;
    ASSERT_EQ(s.ChunkCountOnCs(x), want.size()) << where << ": CS#" << x.v;
  }
}

TEST(StateSlices, WalksInSlicesSeeWhatOneWalkSees) {
  MdsState s;
  (void)RandomTrace(11, 3000, &s);  // files, directories, chunks, unlinks (dead records)
  StateCounts whole = s.Counts();
  std::vector<uint64_t> all;
  s.ForEachChunk([&](const ChunkInfo& c) { all.push_back(c.id.v); });
  ASSERT_GT(whole.files, 10u);
  ASSERT_GT(all.size(), 10u);
  for (size_t slice : {size_t{1}, size_t{3}, size_t{64}, size_t{1} << 20}) {
    StateCounts c;
    size_t slices = 0;
    for (uint64_t from = 1; from; ++slices) from = s.CountFilesFrom(from, slice, &c);
    EXPECT_EQ(c.files, whole.files) << slice;
    EXPECT_EQ(c.file_bytes, whole.file_bytes) << slice;
    EXPECT_EQ(c.inodes, whole.inodes);
    EXPECT_EQ(c.chunks, whole.chunks);
    if (slice == 1) {
      EXPECT_EQ(slices, whole.inodes);
    }
    std::vector<uint64_t> seen;
    uint64_t replicas = 0;
    for (uint64_t from = 1; from;)
      from = s.ForEachChunkFrom(from, slice, [&](const ChunkInfo& ch) {
        seen.push_back(ch.id.v);
        replicas += ch.replicas.size();
      });
    EXPECT_EQ(seen, all) << slice;
    EXPECT_EQ(replicas, whole.chunk_replicas) << slice;
  }
}

TEST(StateIndex, ChunksByCsMatchABruteForceScanAfterRandomCommands) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    MdsState s;
    // Every command kind that changes replicas (alloc, update incl. CAS, remove-cs-replicas,
    // drop-cs, truncate, unlink, free-orphan, rename over a file), checked every 50 commands.
    std::string trace = RandomTrace(seed, 1500, &s);
    ExpectIndexMatchesScan(s, "seed " + std::to_string(seed));
    // A decoded state and a copy carry the same index.
    MdsState d;
    ASSERT_TRUE(d.Decode(s.Encode()).ok());
    ExpectIndexMatchesScan(d, "decoded, seed " + std::to_string(seed));
    MdsState copy = s;
    ExpectIndexMatchesScan(copy, "copy, seed " + std::to_string(seed));
    EXPECT_TRUE(d == s);
  }
}

TEST(StateIndex, CheckedAfterEveryCommand) {
  MdsState s;
  for (size_t i = 0; i < 300; ++i) {
    RandomTrace(100 + static_cast<uint32_t>(i), 1, &s);
    ExpectIndexMatchesScan(s, "step " + std::to_string(i));
  }
}

// ---- The tables themselves ----

TEST(StateTables, U64SetAgainstStdSet) {
  std::mt19937_64 rng(5);
  U64Set a;
  std::set<uint64_t> b;
  for (int i = 0; i < 200000; ++i) {
    uint64_t k = 1 + rng() % 3000;
    if (rng() % 3) EXPECT_EQ(a.Insert(k), b.insert(k).second);
    else EXPECT_EQ(a.Erase(k), b.erase(k) == 1);
    if (i % 1000 == 0) {
      auto sorted = a.Sorted();
      ASSERT_EQ(sorted, std::vector<uint64_t>(b.begin(), b.end()));
      for (uint64_t x = 1; x < 3000; x += 7) ASSERT_EQ(a.Contains(x), b.count(x) == 1);
    }
  }
  for (uint64_t k : std::vector<uint64_t>(b.begin(), b.end())) EXPECT_TRUE(a.Erase(k));
  EXPECT_TRUE(a.empty());
}

TEST(StateTables, DirIndexAgainstStdMap) {
  std::mt19937_64 rng(6);
  DirIndex a;
  std::map<std::string, InodeId> b;
  for (int i = 0; i < 100000; ++i) {
    std::string name = "name-" + std::to_string(rng() % 2000) + (rng() % 2 ? std::string(rng() % 40, 'x') : "");
    uint64_t op = rng() % 4;
    if (op < 2) {
      InodeId ino{1 + rng() % 100000};
      a.Set(name, ino);
      b[name] = ino;
    } else if (op == 2) {
      EXPECT_EQ(a.Erase(name), b.erase(name) == 1);
    } else {
      auto it = b.find(name);
      EXPECT_EQ(a.Find(name), it == b.end() ? InodeId{} : it->second);
    }
    if (i % 5000 == 0) {
      auto sorted = a.Sorted();
      ASSERT_EQ(sorted.size(), b.size());
      size_t j = 0;
      for (const auto& [n, ino] : b) {
        ASSERT_EQ(sorted[j].first, n);
        ASSERT_EQ(sorted[j].second, ino);
        ++j;
      }
    }
  }
  ASSERT_EQ(a.size(), b.size());
  // Name order is byte order, as std::map<std::string> had it (0x80 after 'z').
  DirIndex c;
  c.Set("\x80" "b", InodeId{1});
  c.Set("za", InodeId{2});
  c.Set("Z", InodeId{3});
  auto s = c.Sorted();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].first, "Z");
  EXPECT_EQ(s[1].first, "za");
  EXPECT_EQ(s[2].first, "\x80" "b");
}

TEST(StateTables, IdTableKeepsOrderAcrossEraseAndCompact) {
  struct Rec {
    uint64_t k = 0;
    bool dead = false;
    uint64_t key() const { return k; }
    void set_key(uint64_t x) { k = x; }
  };
  IdTable<Rec> t;
  for (uint64_t k = 1; k <= 1000; ++k) t.Insert(Rec{k * 2});
  t.Insert(Rec{7});  // out of order: inserted in place
  for (uint64_t k = 1; k <= 1000; k += 3) EXPECT_TRUE(t.Erase(k * 2));
  EXPECT_FALSE(t.Erase(2));
  t.MaybeCompact();
  std::vector<uint64_t> keys;
  t.ForEach([&](const Rec& r) { keys.push_back(r.k); });
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.size(), t.size());
  EXPECT_EQ(t.size(), 1001u - 334u);
  EXPECT_NE(t.Find(7), nullptr);
  EXPECT_EQ(t.Find(2), nullptr);
  EXPECT_NE(t.Find(4), nullptr);
}

// ---- Measurements (disabled; run by hand, one per process) ----

size_t RssBytes() {
  std::ifstream f("/proc/self/statm");
  size_t size = 0, rss = 0;
  f >> size >> rss;
  return rss * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

size_t EnvCount(const char* name, size_t def) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : def;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Empty files, VS_FILES of them (default 1,000,000) in 100 directories.
TEST(StateMemory, DISABLED_BytesPerFile) {
  const size_t n = EnvCount("VS_FILES", 1000000);
  auto s = std::make_unique<MdsState>();
  std::vector<InodeId> dirs;
  for (int d = 0; d < 100; ++d)
    dirs.push_back(s->Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "d" + std::to_string(d), proto::NodeType::kDir, 0755}))->attr.ino);
  size_t before = RssBytes();
  char name[32];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(name, sizeof name, "file-%08zu", i);
    auto r = s->Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{dirs[i % dirs.size()], name, proto::NodeType::kFile, 0644}));
    ASSERT_TRUE(r.ok());
  }
  size_t after = RssBytes();
  std::printf("files=%zu bytes/file=%.1f\n", n, double(after - before) / double(n));
  auto t0 = std::chrono::steady_clock::now();
  std::string image = s->Encode();
  double enc = Seconds(t0);
  t0 = std::chrono::steady_clock::now();
  MdsState d;
  ASSERT_TRUE(d.Decode(image).ok());
  std::printf("image=%zu bytes encode=%.2fs decode=%.2fs\n", image.size(), enc, Seconds(t0));
}

// Creates VS_CHUNKS 3-replica chunks (default 1,000,000), 100 per file, over 12 CS.
std::unique_ptr<MdsState> StateWithChunks(size_t n, size_t* rss_delta) {
  auto s = std::make_unique<MdsState>();
  std::vector<CsId> cs;
  for (int i = 0; i < 12; ++i) cs.push_back(s->Apply(Cmd(CommandType::kCreateCs, CreateCsCmd{"h" + std::to_string(i), 0}))->cs);
  const size_t per_file = 100;
  std::vector<InodeId> files;
  for (size_t f = 0; f < (n + per_file - 1) / per_file; ++f)
    files.push_back(s->Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "f" + std::to_string(f), proto::NodeType::kFile, 0644}))->attr.ino);
  size_t before = RssBytes();
  for (size_t i = 0; i < n; ++i) {
    AllocChunkCmd c{files[i / per_file], i % per_file, 1, {cs[i % 12], cs[(i + 4) % 12], cs[(i + 8) % 12]}};
    auto r = s->Apply(Cmd(CommandType::kAllocChunk, c));
    if (!r.ok()) ADD_FAILURE() << r.status().ToString();
  }
  *rss_delta = RssBytes() - before;
  return s;
}

TEST(StateMemory, DISABLED_BytesPerChunk) {
  const size_t n = EnvCount("VS_CHUNKS", 1000000);
  size_t delta = 0;
  auto s = StateWithChunks(n, &delta);
  std::printf("chunks=%zu bytes/3-replica chunk=%.1f\n", n, double(delta) / double(n));
}

// Snapshot load time of VS_CHUNKS (default 10,000,000) 3-replica chunks.
TEST(StateMemory, DISABLED_SnapshotLoad) {
  const size_t n = EnvCount("VS_CHUNKS", 10000000);
  size_t delta = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto s = StateWithChunks(n, &delta);
  std::printf("chunks=%zu build=%.2fs bytes/chunk=%.1f\n", n, Seconds(t0), double(delta) / double(n));
  t0 = std::chrono::steady_clock::now();
  std::string image = s->Encode();
  std::printf("encode=%.2fs image=%zu bytes\n", Seconds(t0), image.size());
  s.reset();
  t0 = std::chrono::steady_clock::now();
  MdsState d;
  ASSERT_TRUE(d.Decode(image).ok());
  double dec = Seconds(t0);
  std::printf("decode(load)=%.2fs\n", dec);
  EXPECT_EQ(d.Counts().chunks, n);
}

}  // namespace
}  // namespace vstorage::mds
