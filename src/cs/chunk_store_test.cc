#include "cs/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/crc32c.h"

namespace vstorage::cs {
namespace {

constexpr uint64_t kChunk = 1 << 20;

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/vs_cs_XXXXXX";
    dir = mkdtemp(t);
    Reopen();
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  void Reopen(DiskIoMode mode = DiskIoMode::kAuto) {
    store.reset();
    auto s = ChunkStore::Open(dir, true, mode);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(s).value();
  }
  std::string ReadAll(ChunkId id, uint64_t version, uint64_t off, uint32_t len) {
    std::string out(len, 'Z');
    Status st = store->Read(id, version, off, len, out.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::string dir;
  std::unique_ptr<ChunkStore> store;
};

TEST_F(ChunkStoreTest, UnalignedWritesReadBackAndHolesAreZero) {
  ChunkId id{7};
  std::string model(kChunk, '\0');
  struct W { uint64_t off; size_t len; } writes[] = {{100, 5000}, {4096, 4096}, {12000, 1}, {20000, 70000}, {0, 3}, {kChunk - 10, 10}};
  uint32_t seed = 1;
  for (auto w : writes) {
    std::string d = Random(w.len, seed++);
    ASSERT_TRUE(store->Write(id, 1, kChunk, w.off, d.data(), d.size()).ok());
    model.replace(w.off, w.len, d);
  }
  EXPECT_EQ(ReadAll(id, 1, 0, kChunk), model);
  EXPECT_EQ(ReadAll(id, 1, 5, 9000), model.substr(5, 9000));
  EXPECT_EQ(ReadAll(id, 1, 500000, 100), std::string(100, '\0'));  // a hole
  ASSERT_TRUE(store->Sync(id).ok());
  Reopen();
  EXPECT_EQ(ReadAll(id, 1, 0, kChunk), model);
  auto l = store->List();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].id, id);
  EXPECT_EQ(l[0].version, 1u);
}

TEST_F(ChunkStoreTest, StaleVersionsAreRefusedAndSetVersionPersists) {
  ChunkId id{1};
  std::string d = Random(8192, 3);
  ASSERT_TRUE(store->Write(id, 5, kChunk, 0, d.data(), d.size()).ok());
  EXPECT_EQ(store->Write(id, 4, kChunk, 0, d.data(), 10).code(), Code::kStaleVersion);
  EXPECT_EQ(store->Write(id, 6, kChunk, 0, d.data(), 10).code(), Code::kStaleVersion);
  std::string out(10, 0);
  EXPECT_EQ(store->Read(id, 4, 0, 10, out.data()).code(), Code::kStaleVersion);
  EXPECT_EQ(store->SetVersion(id, 3, 9).code(), Code::kStaleVersion);
  ASSERT_TRUE(store->SetVersion(id, 5, 6).ok());
  Reopen();
  EXPECT_EQ(store->Read(id, 5, 0, 10, out.data()).code(), Code::kStaleVersion);
  EXPECT_EQ(ReadAll(id, 6, 0, 8192), d);
  EXPECT_EQ(store->Read(ChunkId{99}, 1, 0, 10, out.data()).code(), Code::kNotFound);
}

TEST_F(ChunkStoreTest, FlippedByteOnDiskIsCorruptNotData) {
  ChunkId id{2};
  std::string d = Random(3 * 4096, 4);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  store.reset();
  // Flip one byte of the second block in the file itself.
  std::string path;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) path = e.path();
  auto size = std::filesystem::file_size(path);
  int fd = ::open(path.c_str(), O_RDWR);
  off_t where = static_cast<off_t>(size - 2 * 4096 + 17);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, where), 1);
  c ^= 1;
  ASSERT_EQ(::pwrite(fd, &c, 1, where), 1);
  ::close(fd);
  Reopen();
  std::string out(100, 0);
  Status st = store->Read(id, 1, 4096, 100, out.data());
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("offset 4096"), std::string::npos) << st.ToString();
  EXPECT_EQ(store->csum_errors(), 1u);
  EXPECT_EQ(ReadAll(id, 1, 0, 4096), d.substr(0, 4096));
  EXPECT_EQ(ReadAll(id, 1, 8192, 4096), d.substr(8192, 4096));
  // Rewriting the block repairs it.
  ASSERT_TRUE(store->Write(id, 1, kChunk, 4096, d.data() + 4096, 4096).ok());
  EXPECT_EQ(ReadAll(id, 1, 0, 3 * 4096), d);
}

TEST_F(ChunkStoreTest, ScrubFindsAFlipInTheChecksumTableOrHeaderWhileRunning) {
  ChunkId id{3};
  std::string d = Random(3 * 4096, 5);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  EXPECT_TRUE(store->VerifyMeta(id, 1).ok());
  EXPECT_EQ(store->VerifyMeta(id, 2).code(), Code::kStaleVersion);
  std::string path;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) path = e.path();
  auto flip = [&](off_t where) {
    int fd = ::open(path.c_str(), O_RDWR);
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, where), 1);
    c ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &c, 1, where), 1);
    ::close(fd);
  };
  // The CRC entry of block 1 (the table starts at 4096): the data still reads correctly
  // from the table in memory, but scrubbing sees that the disk disagrees.
  flip(4096 + 4 + 2);
  EXPECT_EQ(ReadAll(id, 1, 4096, 4096), d.substr(4096, 4096));
  Status st = store->VerifyMeta(id, 1);
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("checksum table of chunk"), std::string::npos) << st.ToString();
  flip(4096 + 4 + 2);
  EXPECT_TRUE(store->VerifyMeta(id, 1).ok());
  flip(20);  // the version field of the header
  st = store->VerifyMeta(id, 1);
  EXPECT_EQ(st.code(), Code::kCorrupt);
  EXPECT_NE(st.message().find("damaged header"), std::string::npos) << st.ToString();
  EXPECT_EQ(store->csum_errors(), 2u);
}

TEST_F(ChunkStoreTest, PartialWriteOverAFlippedBlockIsRefusedNotBlessed) {
  ChunkId id{4};
  std::string d = Random(2 * 4096, 6);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  std::string path;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) path = e.path();
  auto size = std::filesystem::file_size(path);
  int fd = ::open(path.c_str(), O_RDWR);
  off_t where = static_cast<off_t>(size - 4096 + 3000);  // block 1, outside the write below
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, where), 1);
  c ^= 4;
  ASSERT_EQ(::pwrite(fd, &c, 1, where), 1);
  ::close(fd);
  Status st = store->Write(id, 1, kChunk, 4096 + 10, "xyz", 3);
  EXPECT_EQ(st.code(), Code::kCorrupt) << st.ToString();
  // Still reported as corrupt on read (not silently rewritten with a fresh checksum).
  std::string out(4096, 0);
  EXPECT_EQ(store->Read(id, 1, 4096, 4096, out.data()).code(), Code::kCorrupt);
  // A write covering the whole block replaces it.
  ASSERT_TRUE(store->Write(id, 1, kChunk, 4096, d.data() + 4096, 4096).ok());
  EXPECT_EQ(ReadAll(id, 1, 0, 2 * 4096), d);
}

TEST_F(ChunkStoreTest, BoundsDeleteAndSpace) {
  ChunkId id{3};
  std::string d(100, 'x');
  EXPECT_EQ(store->Write(id, 1, kChunk, kChunk - 50, d.data(), d.size()).code(), Code::kInvalidArgument);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  auto sp = store->GetSpace();
  ASSERT_TRUE(sp.ok());
  EXPECT_GT(sp->total_bytes, 0u);
  EXPECT_EQ(sp->used_bytes, 100u);
  ASSERT_TRUE(store->Delete(id).ok());
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_TRUE(store->List().empty());
  Reopen();
  EXPECT_TRUE(store->List().empty());
}

TEST_F(ChunkStoreTest, LateDeleteOfAnOldVersionKeepsAReplicaCopiedBackSince) {
  // The MDS dropped this CS's replica at version 3 and queued its deletion; meanwhile the
  // chunk was copied back here at version 4. The late delete must not remove the copy.
  ChunkId id{8};
  std::string d = Random(3 * 4096, 8);
  ASSERT_TRUE(store->Write(id, 4, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Delete(id, 3).ok());
  ASSERT_EQ(store->List().size(), 1u);
  EXPECT_EQ(ReadAll(id, 4, 0, 3 * 4096), d);
  ASSERT_TRUE(store->Delete(id, 4).ok());
  EXPECT_TRUE(store->List().empty());
  // A copy in progress whose file was deleted under it fails instead of restarting with holes.
  EXPECT_EQ(store->Write(id, 4, kChunk, 8192, d.data(), 4096, /*create=*/false).code(), Code::kNotFound);
  EXPECT_TRUE(store->List().empty());
  // Delete, then create again at once: the new file is the one that stays.
  ASSERT_TRUE(store->Write(id, 5, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Delete(id).ok());
  ASSERT_TRUE(store->Write(id, 6, kChunk, 0, d.data(), 4096).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  Reopen();
  ASSERT_EQ(store->List().size(), 1u);
  EXPECT_EQ(store->List()[0].version, 6u);
}

TEST_F(ChunkStoreTest, WithChecksummingDisabledNothingIsComputedOrVerified) {
  // make-cs -S (guide 7.6.4): the bytes as written, no CRC table, a flip goes unnoticed.
  store.reset();
  auto s = ChunkStore::Open(dir, /*checksums=*/false);
  ASSERT_TRUE(s.ok());
  store = std::move(s).value();
  EXPECT_FALSE(store->checksums());
  ChunkId id{9};
  std::string d = Random(3 * 4096 + 100, 9);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 50, d.data(), d.size()).ok());
  EXPECT_TRUE(ReadAll(id, 1, 50, static_cast<uint32_t>(d.size())) == d);
  ASSERT_TRUE(store->Sync(id).ok());
  std::string path;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) path = e.path();
  int fd = ::open(path.c_str(), O_RDWR);
  std::vector<uint32_t> table(kChunk / 4096, 1);
  ASSERT_EQ(::pread(fd, table.data(), table.size() * 4, 4096), static_cast<ssize_t>(table.size() * 4));
  EXPECT_EQ(std::count(table.begin(), table.end(), 0u), static_cast<long>(table.size()));
  auto data_off = std::filesystem::file_size(path) - (50 + d.size());  // the file ends at the last byte
  off_t where = static_cast<off_t>(data_off + 60);
  char c = static_cast<char>(d[10] ^ 1);
  ASSERT_EQ(::pwrite(fd, &c, 1, where), 1);
  ::close(fd);
  std::string flipped = d;
  flipped[10] = c;
  EXPECT_TRUE(ReadAll(id, 1, 50, static_cast<uint32_t>(d.size())) == flipped);
  EXPECT_EQ(store->csum_errors(), 0u);
  EXPECT_TRUE(store->VerifyMeta(id, 1).ok());
}

TEST_F(ChunkStoreTest, TornChunkFileIsRemovedAtOpen) {
  store.reset();
  std::string junk = dir + "/chunks/00000000000000aa";
  int fd = ::open(junk.c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_EQ(::write(fd, "VSCH", 4), 4);
  ::close(fd);
  Reopen();
  EXPECT_TRUE(store->List().empty());
  EXPECT_FALSE(std::filesystem::exists(junk));
}

TEST_F(ChunkStoreTest, ConcurrentWritersToDifferentChunks) {
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 16; ++i) {
        std::string d = Random(65536, t * 100 + i);
        ASSERT_TRUE(store->Write(ChunkId{100u + t}, 1, kChunk, i * 65536, d.data(), d.size()).ok());
      }
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(ReadAll(ChunkId{100u + t}, 1, i * 65536, 65536), Random(65536, t * 100 + i));
}

TEST_F(ChunkStoreTest, DamagedHeaderIsQuarantinedAndRefusedUntilDeleted) {
  ChunkId id{0x2a};
  std::string d = Random(3 * 4096, 11);
  ASSERT_TRUE(store->Write(id, 4, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  // A stray, cut-short file named like a chunk: removed, not kept.
  std::string stray = dir + "/chunks/00000000000000ff";
  { int fd = ::open(stray.c_str(), O_CREAT | O_WRONLY, 0600); ASSERT_EQ(::write(fd, "VSCHUNK", 7), 7); ::close(fd); }
  store.reset();
  std::string path = dir + "/chunks/000000000000002a";
  {
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    char x = 0x5a;
    ASSERT_EQ(::pwrite(fd, &x, 1, 17), 1);  // inside the version field: the header CRC fails
    ::close(fd);
  }
  Reopen();
  EXPECT_TRUE(store->List().empty());
  EXPECT_EQ(store->Lost(), std::vector<ChunkId>{id});
  EXPECT_GE(store->csum_errors(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_TRUE(std::filesystem::exists(dir + "/quarantine/000000000000002a"));
  // Neither served nor recreated with holes by a late write.
  std::string out(4096, '\0');
  EXPECT_EQ(store->Read(id, 4, 0, 4096, out.data()).code(), Code::kCorrupt);
  EXPECT_EQ(store->Write(id, 4, kChunk, 8192, d.data(), 4096).code(), Code::kCorrupt);
  EXPECT_TRUE(store->List().empty());
  // Still refused after a restart, until the MDS deletes the replica it no longer counts.
  Reopen();
  EXPECT_EQ(store->Lost(), std::vector<ChunkId>{id});
  ASSERT_TRUE(store->Delete(id, 4).ok());
  EXPECT_TRUE(store->Lost().empty());
  ASSERT_TRUE(store->Write(id, 6, kChunk, 0, d.data(), d.size()).ok());  // a copy from elsewhere
  EXPECT_EQ(ReadAll(id, 6, 0, static_cast<uint32_t>(d.size())), d);
  EXPECT_TRUE(std::filesystem::exists(dir + "/quarantine/000000000000002a.dropped"));  // kept for inspection
  Reopen();
  EXPECT_TRUE(store->Lost().empty());
  EXPECT_EQ(ReadAll(id, 6, 0, static_cast<uint32_t>(d.size())), d);
}

// End-to-end checksums: writes that carry the client's segment checksums store block
// checksums built from them (combined with the bytes around a partial write), reads give
// back the checksum of each segment read, and both agree with plain CRC32C of the bytes.
TEST_F(ChunkStoreTest, EndToEndChecksumsGoInWithWritesAndComeOutWithReads) {
  ChunkId id{0x61};
  std::string model(kChunk, '\0');
  struct W { uint64_t off; size_t len; } writes[] = {{100, 5000}, {4096, 4096}, {12000, 1}, {20000, 70000}, {0, 3}, {kChunk - 10, 10}};
  uint32_t seed = 40;
  for (const W& w : writes) {
    std::string d = Random(w.len, seed++);
    auto crcs = SegmentCrcs(w.off, d.data(), d.size());
    ASSERT_TRUE(store->Write(id, 1, kChunk, w.off, d.data(), d.size(), true, crcs.data()).ok());
    model.replace(w.off, w.len, d);
  }
  struct R { uint64_t off; uint32_t len; } reads[] = {{0, kChunk}, {100, 5000}, {4095, 2}, {12000, 1}, {30000, 12345}, {kChunk - 4096, 4096}};
  for (int pass = 0; pass < 2; ++pass) {  // from memory, then from the table on disk
    for (const R& r : reads) {
      std::string out(r.len, '\0');
      std::vector<uint32_t> got(SegmentCount(r.off, r.len));
      ASSERT_TRUE(store->Read(id, 1, r.off, r.len, out.data(), got.data()).ok()) << r.off;
      EXPECT_EQ(out, model.substr(r.off, r.len));
      EXPECT_EQ(got, SegmentCrcs(r.off, out.data(), out.size())) << "read at " << r.off << "+" << r.len;
    }
    Reopen();
  }
}

// A byte that changes after the CS checked the client's checksums (memory, a bug) must not
// become data: the stored checksum is the client's, so the read fails instead of serving it.
TEST_F(ChunkStoreTest, BytesThatChangedAfterTheChecksumCheckReadAsCorrupt) {
  ChunkId id{0x62};
  std::string d = Random(8192 + 100, 50);
  auto crcs = SegmentCrcs(4000, d.data(), d.size());
  d[5000] ^= 0x04;  // flipped after the check, before the disk
  ASSERT_TRUE(store->Write(id, 1, kChunk, 4000, d.data(), d.size(), true, crcs.data()).ok());
  std::string out(4096, '\0');
  EXPECT_TRUE(store->Read(id, 1, 0, 4096, out.data()).ok());  // the block before the flip
  Status st = store->Read(id, 1, 8192, 4096, out.data());  // 4000+5000 lies in block 2
  EXPECT_EQ(st.code(), Code::kCorrupt) << st.ToString();
  EXPECT_EQ(store->csum_errors(), 1u);
}

// A failed fdatasync is final: Linux marks the pages clean after reporting the error, so a
// retry would "succeed" without writing them. Every later Sync() of the chunk fails and the
// replica must be rebuilt; other chunks are not affected, and a new replica syncs again.
TEST_F(ChunkStoreTest, AFailedFdatasyncFailsEveryLaterSyncOfTheChunk) {
  ChunkId a{0x71}, b{0x72};
  std::string d = Random(8192, 60);
  ASSERT_TRUE(store->Write(a, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Write(b, 1, kChunk, 0, d.data(), d.size()).ok());
  std::atomic<int> fail{1};
  store->SetSyncResultHookForTest([&](ChunkId id) {
    return id == a && fail-- > 0 ? Err(Code::kIoError, "injected EIO") : Status::Ok();
  });
  EXPECT_EQ(store->Sync(a).code(), Code::kIoError);
  EXPECT_EQ(store->io_errors(), 1u);
  Status again = store->Sync(a);  // the disk would say yes now: it must not be believed
  EXPECT_EQ(again.code(), Code::kIoError);
  EXPECT_NE(again.message().find("must be rebuilt"), std::string::npos) << again.ToString();
  ASSERT_TRUE(store->Write(a, 1, kChunk, 8192, d.data(), 4096).ok());
  EXPECT_EQ(store->Sync(a).code(), Code::kIoError);
  EXPECT_TRUE(store->Sync(b).ok());
  ASSERT_TRUE(store->Delete(a).ok());  // the MDS drops the replica; a new one starts clean
  ASSERT_TRUE(store->Write(a, 2, kChunk, 0, d.data(), d.size()).ok());
  EXPECT_TRUE(store->Sync(a).ok());
}

// Found by fuzz/chunk_fuzz: a header whose CRC checks out but whose chunk size no writer can
// make (here 1 TiB: a 1 GiB CRC table) was trusted, and the first read allocated the table.
// It is damage like a failed CRC: quarantined and refused.
TEST_F(ChunkStoreTest, HeaderWithAnImpossibleChunkSizeIsQuarantinedNotAllocated) {
  ChunkId id{0x2b};
  std::string d = Random(4096, 12);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  store.reset();
  std::string path = dir + "/chunks/000000000000002b";
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char h[40];
    ASSERT_EQ(::pread(fd, h, sizeof h, 0), 40);
    uint64_t huge = 1ull << 40;
    std::memcpy(h + 24, &huge, 8);
    uint32_t crc = Crc32c(h, 32);  // a consistent header: only the size is wrong
    std::memcpy(h + 32, &crc, 4);
    ASSERT_EQ(::pwrite(fd, h, sizeof h, 0), 40);
    ::close(fd);
  }
  Reopen();
  EXPECT_TRUE(store->List().empty());
  EXPECT_EQ(store->Lost(), std::vector<ChunkId>{id});
  std::string out(4096, '\0');
  EXPECT_EQ(store->Read(id, 1, 0, 4096, out.data()).code(), Code::kCorrupt);
  EXPECT_TRUE(std::filesystem::exists(dir + "/quarantine/000000000000002b"));
}

// Blocks of the chunk file that hold space on disk (st_blocks, 512-byte units).
uint64_t AllocatedBytes(const std::string& chunks_dir) {
  uint64_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(chunks_dir)) {
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

TEST_F(ChunkStoreTest, ZeroedRangesReadAsZerosKeepTheirNeighboursAndChecksums) {
  for (bool checksums : {true, false}) {
    SCOPED_TRACE(checksums ? "checksums" : "no checksums");
    store.reset();
    std::filesystem::remove_all(dir + "/chunks");
    auto s = ChunkStore::Open(dir, checksums);
    ASSERT_TRUE(s.ok());
    store = std::move(s).value();
    ChunkId id{11};
    std::string model = Random(kChunk, 11);
    ASSERT_TRUE(store->Write(id, 1, kChunk, 0, model.data(), model.size()).ok());
    // Unaligned on both sides, inside one block, aligned, a single byte, the whole tail.
    struct Z { uint64_t off, len; } zs[] = {{100, 200}, {5000, 30000}, {65536, 131072}, {300001, 1}, {4095, 2}};
    for (auto z : zs) {
      ASSERT_TRUE(store->Zero(id, 1, kChunk, z.off, z.len).ok()) << z.off;
      std::fill(model.begin() + static_cast<long>(z.off), model.begin() + static_cast<long>(z.off + z.len), '\0');
      ASSERT_TRUE(ReadAll(id, 1, 0, kChunk) == model) << "after zeroing at " << z.off;
    }
    // Beyond the data: nothing to do; outside the chunk or with an old version: refused.
    EXPECT_EQ(store->Zero(id, 1, kChunk, kChunk - 10, 20).code(), Code::kInvalidArgument);
    EXPECT_EQ(store->Zero(id, 0, kChunk, 0, 10).code(), Code::kStaleVersion);
    // Reopened: the table on disk agrees with the data, block for block.
    Reopen();
    if (!checksums) {
      store.reset();
      auto s2 = ChunkStore::Open(dir, false);
      ASSERT_TRUE(s2.ok());
      store = std::move(s2).value();
    }
    EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == model);
    EXPECT_TRUE(store->VerifyMeta(id, 1).ok());
    EXPECT_EQ(store->csum_errors(), 0u);
    // A partial write into a zeroed block merges with zeros, not with the old bytes.
    std::string d = Random(10, 12);
    ASSERT_TRUE(store->Write(id, 1, kChunk, 70000, d.data(), d.size()).ok());
    model.replace(70000, d.size(), d);
    EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == model);
  }
}

TEST_F(ChunkStoreTest, ZeroingGivesTheSpaceBackAndCutsTheFileAtTheEnd) {
  ChunkId id{12};
  std::string d = Random(kChunk, 13);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  uint64_t before = AllocatedBytes(dir + "/chunks");
  // A hole in the middle: the file keeps its length, the disk space goes.
  ASSERT_TRUE(store->Zero(id, 1, kChunk, 4096, 512 << 10).ok());
  uint64_t holed = AllocatedBytes(dir + "/chunks");
  EXPECT_LE(holed + (512 << 10), before + 4096) << before << " -> " << holed;
  EXPECT_EQ(store->Stat(id)->size_bytes, kChunk);
  // To the end (a truncate): the replica ends where the data ends.
  ASSERT_TRUE(store->Zero(id, 1, kChunk, 1000, kChunk - 1000).ok());
  EXPECT_EQ(store->Stat(id)->size_bytes, 4096u);  // the first block, its tail zeroed
  auto sp = store->GetSpace();
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->used_bytes, 4096u);
  std::string want = d.substr(0, 1000) + std::string(kChunk - 1000, '\0');
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == want);
  // A chunk this CS does not have yet: created, empty.
  ASSERT_TRUE(store->Zero(ChunkId{13}, 4, kChunk, 0, kChunk).ok());
  EXPECT_EQ(store->Stat(ChunkId{13})->version, 4u);
  EXPECT_EQ(store->Stat(ChunkId{13})->size_bytes, 0u);
  Reopen();
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == want);
  EXPECT_TRUE(store->VerifyMeta(id, 1).ok());
}

TEST_F(ChunkStoreTest, ReserveTakesTheSpaceButNotTheSizeOrTheBytes) {
  ChunkId id{14};
  std::string d = Random(1000, 14);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  uint64_t before = AllocatedBytes(dir + "/chunks");
  ASSERT_TRUE(store->Reserve(id, 1, kChunk, 0, kChunk).ok());
  EXPECT_GE(AllocatedBytes(dir + "/chunks"), before + kChunk - 8192);
  EXPECT_EQ(store->Stat(id)->size_bytes, 1000u);
  std::string want = d + std::string(kChunk - 1000, '\0');
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == want);
  EXPECT_EQ(store->Reserve(id, 2, kChunk, 0, 10).code(), Code::kStaleVersion);
  EXPECT_EQ(store->Reserve(id, 1, kChunk, kChunk, 1).code(), Code::kInvalidArgument);
  Reopen();
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == want);
}


// The file as the format says, read with nothing of the store: every written block's table
// entry is the CRC32C of its bytes, every other entry is 0.
void ExpectFileMatchesFormat(const std::string& path, const std::string& model) {
  std::ifstream f(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const uint64_t blocks = kChunk / 4096, data_off = 4096 + (blocks * 4 + 4095) / 4096 * 4096;
  ASSERT_GE(file.size(), data_off);
  std::string data = file.substr(data_off);
  data.resize(kChunk, '\0');
  EXPECT_TRUE(data == model);
  for (uint64_t b = 0; b < blocks; ++b) {
    uint32_t entry;
    std::memcpy(&entry, file.data() + 4096 + b * 4, 4);
    const std::string block = model.substr(b * 4096, 4096);
    bool written = data_off + b * 4096 < file.size() && block != std::string(4096, '\0');
    if (written) {
      EXPECT_EQ(entry, Crc32c(block.data(), 4096)) << "block " << b;
    } else {
      EXPECT_TRUE(entry == 0 || entry == Crc32c(block.data(), 4096)) << "block " << b;
    }
  }
}

class ChunkStoreIoModeTest : public ChunkStoreTest, public ::testing::WithParamInterface<DiskIoMode> {};

TEST_P(ChunkStoreIoModeTest, DataAndChecksumsReachTheFileThroughEitherPath) {
  Reopen(GetParam());
  if (GetParam() == DiskIoMode::kPwrite) {
    EXPECT_FALSE(store->uring());
  }
  if (GetParam() == DiskIoMode::kUring && !store->uring())
    std::fprintf(stderr, "note: io_uring is not available here; the kUring case ran the fallback\n");
  if (GetParam() == DiskIoMode::kAuto) {  // io_uring for writes exactly where they complete inline
    EXPECT_EQ(store->uring(), DiskIo(DiskIoMode::kUring).uring() && DiskIo::BufferedNowaitWrites(dir + "/chunks"));
  }
  ChunkId id{0x51};
  std::string model(kChunk, '\0');
  struct W { uint64_t off; size_t len; } writes[] = {{0, 4096}, {100, 5000}, {12000, 1}, {20000, 70000},
                                                     {kChunk - 10, 10}, {300000, 200000}, {4096, 3 * 4096}};
  uint32_t seed = 40;
  for (auto w : writes) {
    std::string d = Random(w.len, seed++);
    uint64_t before = store->io_submissions();
    ASSERT_TRUE(store->Write(id, 1, kChunk, w.off, d.data(), d.size()).ok());
    // Bytes and table entries: one submission per write request (none on the fallback).
    EXPECT_EQ(store->io_submissions() - before, store->uring() ? 1u : 0u);
    model.replace(w.off, w.len, d);
  }
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == model);
  EXPECT_TRUE(store->VerifyMeta(id, 1).ok());  // the table on disk is the one in memory
  ASSERT_TRUE(store->Sync(id).ok());
  ExpectFileMatchesFormat(dir + "/chunks/0000000000000051", model);
  Reopen(GetParam() == DiskIoMode::kAuto ? DiskIoMode::kPwrite : DiskIoMode::kAuto);  // read by the other path
  EXPECT_TRUE(ReadAll(id, 1, 0, kChunk) == model);
  EXPECT_EQ(store->csum_errors(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Paths, ChunkStoreIoModeTest,
                         ::testing::Values(DiskIoMode::kAuto, DiskIoMode::kPwrite, DiskIoMode::kUring),
                         [](const auto& info) {
                           return info.param == DiskIoMode::kAuto ? "Auto" : info.param == DiskIoMode::kPwrite ? "Pwrite" : "IoUring";
                         });

TEST_F(ChunkStoreTest, ReadersOfOneChunkDoNotWaitForEachOther) {
  ChunkId id{0x61};
  std::string d = Random(8 * 4096, 61);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  Reopen();  // the table is loaded lazily by the first reader
  // The first reader stops inside Read() holding the chunk's lock (shared) until a second
  // read of the same chunk has finished: if any part of a read took the lock exclusively,
  // the second would wait for the first and the first would time out.
  std::mutex m;
  std::condition_variable cv;
  bool first_in = false, second_done = false, first_timed_out = false;
  std::atomic<int> entered{0};
  store->SetReadHookForTest([&] {
    if (entered.fetch_add(1) != 0) return;
    std::unique_lock<std::mutex> l(m);
    first_in = true;
    cv.notify_all();
    first_timed_out = !cv.wait_for(l, std::chrono::seconds(10), [&] { return second_done; });
  });
  std::string a(4096, 0);
  std::thread first([&] { EXPECT_TRUE(store->Read(id, 1, 0, 4096, a.data()).ok()); });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return first_in; });
  }
  EXPECT_TRUE(ReadAll(id, 1, 4096, 3 * 4096) == d.substr(4096, 3 * 4096));
  {
    std::lock_guard<std::mutex> l(m);
    second_done = true;
    cv.notify_all();
  }
  first.join();
  EXPECT_FALSE(first_timed_out);
  EXPECT_TRUE(a == d.substr(0, 4096));
}

TEST_F(ChunkStoreTest, ManyReadersAndAWriterOfOneChunkStayConsistent) {
  ChunkId id{0x62};
  // Each 4 KiB block holds one byte value repeated; the writer rewrites whole blocks, so a
  // reader sees either value of a block, never a mix, and never a checksum error.
  std::string d(16 * 4096, 'a');
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  Reopen();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      std::string out(4096, 0);
      for (uint64_t i = 0; !stop; ++i) {
        uint64_t b = (i + t) % 16;
        if (!store->Read(id, 1, b * 4096, 4096, out.data()).ok() || out != std::string(4096, out[0])) ++bad;
      }
    });
  for (int i = 0; i < 200; ++i) {
    std::string blk(4096, static_cast<char>('b' + i % 20));
    ASSERT_TRUE(store->Write(id, 1, kChunk, (i % 16) * 4096, blk.data(), blk.size()).ok());
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store->csum_errors(), 0u);
}

TEST_F(ChunkStoreTest, ASyncLetsWritesAndReadsOfItsChunkGoOnAndDoesNotCoverThem) {
  ChunkId id{0x71};
  std::string d1 = Random(4096, 71), d2 = Random(4096, 72);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d1.data(), d1.size()).ok());
  std::mutex m;
  std::condition_variable cv;
  bool in_round = false, wrote = false, timed_out = false;
  std::atomic<int> rounds{0};
  store->SetSyncRoundHookForTest([&] {
    if (rounds.fetch_add(1) != 0) return;
    std::unique_lock<std::mutex> l(m);
    in_round = true;
    cv.notify_all();
    timed_out = !cv.wait_for(l, std::chrono::seconds(10), [&] { return wrote; });
  });
  std::thread syncer([&] { EXPECT_TRUE(store->Sync(id).ok()); });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return in_round; });
  }
  // The round has begun and holds no lock of the chunk: this write and read go through.
  ASSERT_TRUE(store->Write(id, 1, kChunk, 4096, d2.data(), d2.size()).ok());
  EXPECT_TRUE(ReadAll(id, 1, 0, 4096) == d1);
  {
    std::lock_guard<std::mutex> l(m);
    wrote = true;
    cv.notify_all();
  }
  syncer.join();
  EXPECT_FALSE(timed_out);
  // The round saw the generation of before the second write: that write still needs a sync.
  auto before = store->sync_stats();
  ASSERT_TRUE(store->Sync(id).ok());
  auto after = store->sync_stats();
  EXPECT_EQ(after.fdatasyncs, before.fdatasyncs + 1);
  EXPECT_EQ(after.skipped, before.skipped);
}

TEST_F(ChunkStoreTest, ASyncWithNothingNewToSyncMakesNoDiskCall) {
  ChunkId id{0x81};
  std::string d = Random(10000, 81);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  auto s0 = store->sync_stats();
  ASSERT_TRUE(store->Sync(id).ok());
  auto s1 = store->sync_stats();
  EXPECT_EQ(s1.fdatasyncs, s0.fdatasyncs + 1);
  EXPECT_EQ(s1.dir_fsyncs, s0.dir_fsyncs + 1);  // a new chunk: its entry too
  ASSERT_TRUE(store->Sync(id).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  auto s2 = store->sync_stats();
  EXPECT_EQ(s2.fdatasyncs, s1.fdatasyncs);
  EXPECT_EQ(s2.dir_fsyncs, s1.dir_fsyncs);
  EXPECT_EQ(s2.rounds, s1.rounds);
  EXPECT_EQ(s2.skipped, s1.skipped + 2);
  EXPECT_EQ(s2.calls, s1.calls + 2);
  // A write since: one fdatasync, no directory fsync (the entry is durable already).
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), 10).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  auto s3 = store->sync_stats();
  EXPECT_EQ(s3.fdatasyncs, s2.fdatasyncs + 1);
  EXPECT_EQ(s3.dir_fsyncs, s2.dir_fsyncs);
  // After a restart the first sync cannot know what the last process left unsynced.
  Reopen();
  auto r0 = store->sync_stats();
  ASSERT_TRUE(store->Sync(id).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  auto r1 = store->sync_stats();
  EXPECT_EQ(r1.fdatasyncs, r0.fdatasyncs + 1);
  EXPECT_EQ(r1.dir_fsyncs, r0.dir_fsyncs);  // Open made the entries durable
  EXPECT_EQ(r1.skipped, r0.skipped + 1);
  EXPECT_EQ(store->Sync(ChunkId{0x82}).code(), Code::kNotFound);
}

TEST_F(ChunkStoreTest, ConcurrentSyncsOfManyChunksShareRounds) {
  constexpr int kThreads = 16, kIters = 8;
  // A disk that takes a while per sync, as real ones do: requests gather meanwhile.
  store->SetSyncRoundHookForTest([] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
  std::atomic<int> failures{0};
  // Every chunk is created before the first sync: the first rounds then find all of them
  // needing a durable entry, and the directory fsyncs they share stay well under one each,
  // however slowly a sanitizer build runs.
  std::latch created(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kIters; ++i) {
        std::string d = Random(65536, t * 1000 + i);
        if (!store->Write(ChunkId{2000u + t}, 1, kChunk, i * 65536, d.data(), d.size()).ok()) ++failures;
        if (i == 0) created.arrive_and_wait();
        if (!store->Sync(ChunkId{2000u + t}).ok()) ++failures;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = store->sync_stats();
  std::fprintf(stderr, "16x8 write+sync: %llu calls, %llu rounds, %llu fdatasyncs, %llu dir fsyncs\n",
               static_cast<unsigned long long>(s.calls), static_cast<unsigned long long>(s.rounds),
               static_cast<unsigned long long>(s.fdatasyncs), static_cast<unsigned long long>(s.dir_fsyncs));
  EXPECT_EQ(s.calls, static_cast<uint64_t>(kThreads * kIters));
  EXPECT_LT(s.rounds, s.calls);
  EXPECT_EQ(s.rounds, store->sync_rounds());
  EXPECT_LT(s.dir_fsyncs, static_cast<uint64_t>(kThreads));  // one per chunk without sharing
  EXPECT_LE(s.fdatasyncs, s.calls);
  Reopen();
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kIters; ++i)
      EXPECT_TRUE(ReadAll(ChunkId{2000u + t}, 1, i * 65536, 65536) == Random(65536, t * 1000 + i));
}

// Power cuts (docs/design/cs.md): a chunk written since its last sync is in the write-intent
// log before its bytes can reach the disk, and is reported suspect after a restart.
// The machine's boot id as the chunk store reads it (VSTORAGE_BOOT_ID_FILE): a new one is a
// restart of the machine, after which unsynced writes may be gone.
void SetBootId(const std::string& dir, const std::string& id) {
  std::string path = dir + ".boot_id";
  std::ofstream(path) << id << "\n";
  ::setenv("VSTORAGE_BOOT_ID_FILE", path.c_str(), 1);
}

TEST_F(ChunkStoreTest, AChunkWrittenSinceItsLastSyncIsSuspectAfterAMachineRestart) {
  SetBootId(dir, "boot-1");
  Reopen();
  std::string d = Random(8192, 21);
  ASSERT_TRUE(store->Write(ChunkId{1}, 1, kChunk, 0, d.data(), d.size()).ok());  // never synced
  ASSERT_TRUE(store->Write(ChunkId{2}, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(ChunkId{2}).ok());
  EXPECT_TRUE(store->intents().Contains(ChunkId{1}));
  EXPECT_TRUE(store->intents().Contains(ChunkId{2}));
  // Synced and not written between two sweeps: cleared. Unsynced: kept however often swept.
  store->SweepIntents();
  EXPECT_TRUE(store->intents().Contains(ChunkId{2}));
  store->SweepIntents();
  EXPECT_FALSE(store->intents().Contains(ChunkId{2}));
  // Only the process dies: the page cache kept everything, nothing is suspect; but the
  // chunk stays marked until it is synced (the sweep syncs it once it is idle).
  Reopen();
  EXPECT_TRUE(store->Suspect().empty());
  EXPECT_TRUE(store->intents().Contains(ChunkId{1}));
  store->SweepIntents();
  store->SweepIntents();  // idle: synced
  EXPECT_TRUE(store->intents().Contains(ChunkId{1}));
  store->SweepIntents();  // and cleared
  EXPECT_FALSE(store->intents().Contains(ChunkId{1}));
  ASSERT_TRUE(store->Write(ChunkId{1}, 1, kChunk, 0, d.data(), d.size()).ok());  // written again
  store->SweepIntents();
  EXPECT_TRUE(store->intents().Contains(ChunkId{1}));
  SetBootId(dir, "boot-2");
  Reopen();
  EXPECT_EQ(store->Suspect(), std::vector<ChunkId>{ChunkId{1}});
  EXPECT_EQ(ReadAll(ChunkId{1}, 1, 0, 8192), d);
  // Kept until the MDS has been told, however clean the chunk is by then.
  ASSERT_TRUE(store->Sync(ChunkId{1}).ok());
  for (int i = 0; i < 3; ++i) store->SweepIntents();
  EXPECT_TRUE(store->intents().Contains(ChunkId{1}));
  store->SuspectsReported({ChunkId{1}});
  EXPECT_TRUE(store->Suspect().empty());
  for (int i = 0; i < 2; ++i) store->SweepIntents();
  EXPECT_FALSE(store->intents().Contains(ChunkId{1}));
  Reopen();
  EXPECT_TRUE(store->Suspect().empty());
  // A write after the clear marks the chunk again before it returns.
  ASSERT_TRUE(store->Write(ChunkId{2}, 1, kChunk, 4096, d.data(), 4096).ok());
  SetBootId(dir, "boot-3");
  Reopen();
  EXPECT_EQ(store->Suspect(), std::vector<ChunkId>{ChunkId{2}});
  ::unsetenv("VSTORAGE_BOOT_ID_FILE");
  std::filesystem::remove(dir + ".boot_id");
}

// Bytes on disk whose checksum entry never made it (or the reverse): the block reads as
// kCorrupt until the MDS keeps this replica as the chunk's content; then it takes the bytes.
TEST_F(ChunkStoreTest, RepairSuspectMakesATornBlockReadableAndKeepsIntactBlocks) {
  SetBootId(dir, "boot-1");
  Reopen();
  ChunkId id{5};
  std::string d = Random(3 * 4096, 22);
  ASSERT_TRUE(store->Write(id, 1, kChunk, 0, d.data(), d.size()).ok());
  ASSERT_TRUE(store->Sync(id).ok());
  store.reset();
  // The second block's new bytes reached the disk, its checksum did not.
  std::string path;
  for (auto& e : std::filesystem::directory_iterator(dir + "/chunks")) path = e.path();
  auto size = std::filesystem::file_size(path);
  std::string torn = Random(4096, 23);
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_EQ(::pwrite(fd, torn.data(), 4096, static_cast<off_t>(size - 2 * 4096)), 4096);
  // And a block past the end whose checksum landed but whose bytes did not.
  uint32_t stray = 0x12345678;
  ASSERT_EQ(::pwrite(fd, &stray, 4, 4096 + 10 * 4), 4);
  ::close(fd);
  SetBootId(dir, "boot-2");
  Reopen();
  ASSERT_EQ(store->Suspect(), std::vector<ChunkId>{id});
  std::string out(4096, 0);
  EXPECT_EQ(store->Read(id, 1, 4096, 4096, out.data()).code(), Code::kCorrupt);
  ASSERT_TRUE(store->RepairSuspect(id).ok());
  EXPECT_EQ(store->torn_blocks(), 2u);
  EXPECT_EQ(ReadAll(id, 1, 0, 4096), d.substr(0, 4096));
  EXPECT_EQ(ReadAll(id, 1, 4096, 4096), torn);
  EXPECT_EQ(ReadAll(id, 1, 8192, 4096), d.substr(8192));
  EXPECT_EQ(ReadAll(id, 1, 10 * 4096, 4096), std::string(4096, '\0'));
  Reopen();  // the repaired table is durable
  EXPECT_EQ(ReadAll(id, 1, 4096, 4096), torn);
  ASSERT_TRUE(store->VerifyMeta(id, 1).ok());
  ::unsetenv("VSTORAGE_BOOT_ID_FILE");
  std::filesystem::remove(dir + ".boot_id");
}

}  // namespace
}  // namespace vstorage::cs
