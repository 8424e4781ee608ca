// A CS repository made of fuzzed files, opened by the real ChunkStore (chunk file header
// and CRC table, quarantine, write-intent log), then used: every chunk found is stat'ed,
// verified, read (aligned and not), written, zeroed, repaired and deleted.
//
// Input: [u8 mode] then a Container (fuzz_util.h). mode bit 0: checksums off (make-cs -S).
// Entry kinds (kind & 3), with flag bits:
//   0 chunk file. The file is named after the id in its header (bytes 8..16).
//     0x10: the header's magic and CRC are set right, so the fuzzer owns id, version and
//           chunk_size;  0x20: compact form: 40-byte header | u16 table bytes | table |
//           data, placed at 0, 4096 and the data offset of its chunk_size;  0x40: a stray
//           name instead ("junk<n>").
//   1 REPO/intents. 0x10: built from records (u64 id, u32 op) with a valid header and CRCs;
//     0x20: under this machine's boot id (only the process died), else another one.
//   2 a file in REPO/quarantine named after the id in its first 8 bytes.
// Checked: no allocation past the AllocGuard while opening or reading (a chunk_size from the
// header must be checked before it sizes the CRC table); bytes written read back; a range
// zeroed reads as zeros.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/crc32c.h"
#include "common/limits.h"
#include "cs/chunk_store.h"
#include "cs/intent_log.h"
#include "fuzz_util.h"

namespace {

using namespace vstorage;

constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kBlock = kCsumBlockBytes;
// The largest table of a valid chunk (1 GiB / 4 KiB * 4) and the read buffers, with room.
constexpr size_t kMaxOpenAllocBytes = 8u << 20;

const vsfuzz::TempDir* g_repo = nullptr;
std::string* g_boot_id = nullptr;

void WriteAt(const std::string& path, std::string_view data, uint64_t off) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  VSFUZZ_CHECK(fd >= 0, "open %s", path.c_str());
  if (!data.empty()) VSFUZZ_CHECK(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) ==
                                      static_cast<ssize_t>(data.size()), "pwrite %s", path.c_str());
  ::close(fd);
}

std::string HexName(uint64_t id) {
  char b[32];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(id));
  return b;
}

void FixHeader(std::string* h) {
  if (h->size() < 40) h->resize(40, '\0');
  std::memcpy(h->data(), "VSCHUNK1", 8);
  uint32_t crc = Crc32c(h->data(), 32);
  std::memcpy(h->data() + 32, &crc, 4);
}

void PutChunkFile(const std::string& dir, const vsfuzz::Entry& e, int n) {
  std::string_view b = e.bytes;
  std::string header(b.substr(0, std::min<size_t>(b.size(), (e.kind & 0x20) ? 40 : kHeaderBytes)));
  if (e.kind & 0x10) FixHeader(&header);
  uint64_t id = 0;
  if (header.size() >= 16) std::memcpy(&id, header.data() + 8, 8);
  std::string path = dir + "/" + ((e.kind & 0x40) ? "junk" + std::to_string(n) : HexName(id));
  if (!(e.kind & 0x20)) {
    std::string file(b);
    if (e.kind & 0x10) file.replace(0, std::min<size_t>(file.size(), 40), header);
    WriteAt(path, file, 0);
    return;
  }
  WriteAt(path, header, 0);
  header.resize(40, '\0');
  b.remove_prefix(std::min<size_t>(b.size(), 40));
  uint16_t table_len = 0;
  std::memcpy(&table_len, b.data(), std::min<size_t>(2, b.size()));
  b.remove_prefix(std::min<size_t>(b.size(), 2));
  std::string_view table = b.substr(0, std::min<size_t>(table_len, b.size()));
  b.remove_prefix(table.size());
  WriteAt(path, table, kHeaderBytes);
  uint64_t chunk_size = 0;
  std::memcpy(&chunk_size, header.data() + 24, 8);
  // The layout of cs/chunk_store.h: the table rounded up to whole blocks after the header.
  uint64_t table_bytes = (chunk_size / kBlock) * 4;
  uint64_t data_off = kHeaderBytes + ((table_bytes + kBlock - 1) / kBlock) * kBlock;
  if (data_off <= (64ull << 20) && data_off >= kHeaderBytes) WriteAt(path, b, data_off);
}

void PutIntents(const std::string& repo, const vsfuzz::Entry& e) {
  if (!(e.kind & 0x10)) {
    WriteAt(repo + "/intents", e.bytes, 0);
    return;
  }
  std::string f = cs::IntentLog::EncodeHeader((e.kind & 0x20) ? *g_boot_id : "another-boot");
  for (size_t off = 0; off + 12 <= e.bytes.size(); off += 12) {
    uint64_t id;
    uint32_t op;
    std::memcpy(&id, e.bytes.data() + off, 8);
    std::memcpy(&op, e.bytes.data() + off + 8, 4);
    f += cs::IntentLog::EncodeRecord(ChunkId{id}, op);
  }
  WriteAt(repo + "/intents", f, 0);
}

void Exercise(cs::ChunkStore& s) {
  (void)s.Lost();
  for (ChunkId id : s.Suspect()) (void)s.RepairSuspect(id);
  int n = 0;
  for (const proto::ChunkReplicaState& r : s.List()) {
    if (++n > 4) break;
    auto stat = s.Stat(r.id);
    VSFUZZ_CHECK(stat.ok(), "a listed chunk cannot be stat'ed: %s", stat.status().ToString().c_str());
    (void)s.VerifyMeta(r.id, r.version);
    std::vector<char> buf(3 * kBlock);
    {
      vsfuzz::AllocGuard g(vsfuzz::AllocGuard::Absolute{kMaxOpenAllocBytes});
      (void)s.Read(r.id, r.version, 0, static_cast<uint32_t>(2 * kBlock), buf.data());
      (void)s.Read(r.id, r.version, 100, static_cast<uint32_t>(kBlock + 7), buf.data());
    }
    (void)s.Read(r.id, r.version + 1, 0, 10, buf.data());  // stale version
    // The chunk size a writer must give is the replica's own; Stat does not tell it, so
    // try the sizes a CS is made with.
    for (uint64_t chunk_size : {uint64_t{1} << 20, kDefaultChunkSizeBytes, uint64_t{64} << 10}) {
      std::string data(300, '\0');
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 1);
      const uint64_t off = 4000;  // straddles the first two blocks
      Status w = s.Write(r.id, r.version, chunk_size, off, data.data(), data.size(), false);
      if (!w.ok()) continue;
      std::vector<char> back(data.size());
      Status rd = s.Read(r.id, r.version, off, static_cast<uint32_t>(back.size()), back.data());
      VSFUZZ_CHECK(rd.ok(), "read after a write: %s", rd.ToString().c_str());
      VSFUZZ_CHECK(std::memcmp(back.data(), data.data(), data.size()) == 0, "a write does not read back");
      Status z = s.Zero(r.id, r.version, chunk_size, off, 100);
      if (z.ok()) {
        rd = s.Read(r.id, r.version, off, 100, back.data());
        VSFUZZ_CHECK(rd.ok(), "read after zeroing: %s", rd.ToString().c_str());
        for (int i = 0; i < 100; ++i) VSFUZZ_CHECK(back[i] == 0, "a zeroed range holds data");
      }
      (void)s.Sync(r.id);
      Status vm = s.VerifyMeta(r.id, r.version);
      VSFUZZ_CHECK(vm.ok() || vm.code() == Code::kCorrupt, "VerifyMeta: %s", vm.ToString().c_str());
      break;
    }
    (void)s.SetVersion(r.id, r.version, r.version + 1);
    (void)s.Delete(r.id);
  }
  s.SweepIntents();
  (void)s.GetSpace();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  g_repo = new vsfuzz::TempDir("vstorage-chunk-fuzz-");
  g_boot_id = new std::string(cs::IntentLog::ReadBootId());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  g_repo->Clear();
  const std::string repo = g_repo->path();
  const std::string chunks = repo + "/chunks";
  VSFUZZ_CHECK(::mkdir(chunks.c_str(), 0755) == 0, "mkdir %s", chunks.c_str());
  int n = 0;
  for (const vsfuzz::Entry& e :
       vsfuzz::SplitEntries({reinterpret_cast<const char*>(data) + 1, size - 1}, 8)) {
    switch (e.kind & 3) {
      case 0: PutChunkFile(chunks, e, n++); break;
      case 1: PutIntents(repo, e); break;
      case 2: {
        ::mkdir((repo + "/quarantine").c_str(), 0755);
        uint64_t id = 0;
        std::memcpy(&id, e.bytes.data(), std::min<size_t>(8, e.bytes.size()));
        WriteAt(repo + "/quarantine/" + HexName(id), e.bytes, 0);
        break;
      }
      default: break;
    }
  }
  Result<std::unique_ptr<cs::ChunkStore>> s = Err(Code::kInternal, "not opened");
  {
    vsfuzz::AllocGuard g(vsfuzz::AllocGuard::Absolute{kMaxOpenAllocBytes});
    s = cs::ChunkStore::Open(repo, !(data[0] & 1), cs::DiskIoMode::kPwrite);
  }
  if (!s.ok()) return 0;
  Exercise(**s);
  return 0;
}
