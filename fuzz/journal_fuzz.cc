// Replay of fuzzed journals through the real loader (mds/journal.h, mds/log.h) on an
// in-memory file system. The input is a list of commands; the harness frames them as the
// MDS would (valid records, checksums, segments), so the fuzzer works on what the commands
// say rather than on CRCs (log_fuzz mutates the raw files).
//
// Input: [u8 flags] then records [u8 CommandType][u8 record flags][u16 body length][body].
//   flags bit 0: the base cluster (fuzz_mds.h) is a snapshot at index K, else its commands
//                are the entries 1..K;  bit 1: a new segment every 3 entries;
//   bit 2: after recovery, a background snapshot (BuildSnapshot) and a second recovery.
//   record flags bit 0: the body is a whole encoded Command (may not decode: Recover must
//                then fail), else Command{type, time, body};  bit 1: the term goes up.
// Checked: Recover() returns exactly the state of applying the same commands in memory, and
// (bit 2) the same again from its own snapshot; the recovered state's image round-trips.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "env/mem_file_system.h"
#include "fuzz_mds.h"
#include "mds/journal.h"
#include "mds/log.h"

namespace {

using namespace vstorage;
using namespace vstorage::mds;

const MdsState* g_base = nullptr;
const std::vector<Command>* g_base_cmds = nullptr;

void WriteFile(env::FileSystem& fs, const std::string& path, const std::string& data) {
  Status st = fs.WriteFileAtomic(path, data);
  VSFUZZ_CHECK(st.ok(), "write %s: %s", path.c_str(), st.ToString().c_str());
}

std::string SegPath(uint64_t first) {
  char b[64];
  std::snprintf(b, sizeof b, "/repo/log/%020llu.seg", static_cast<unsigned long long>(first));
  return b;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  g_base = new MdsState(vsfuzz::BaseState());
  g_base_cmds = new std::vector<Command>(vsfuzz::BaseCommands());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The entries and what applying them in memory gives.
  std::vector<LogEntry> entries;
  MdsState expect;
  uint64_t term = 1, index = 0;
  SnapshotMeta snap;
  if (flags & 1) {
    expect = *g_base;
    index = g_base_cmds->size();
    snap = {index, term};
  } else {
    for (const Command& c : *g_base_cmds) {
      entries.push_back({++index, term, proto::EncodeToString(c)});
      (void)expect.Apply(c);
    }
  }
  bool decodable = true;
  int64_t t = vsfuzz::kBaseTimeMs + 1000;
  size_t off = 0;
  while (entries.size() < 64 && off + 4 <= in.size()) {
    uint8_t type = static_cast<uint8_t>(in[off]), rflags = static_cast<uint8_t>(in[off + 1]);
    uint16_t len;
    std::memcpy(&len, in.data() + off + 2, 2);
    off += 4;
    len = static_cast<uint16_t>(std::min<size_t>(len, in.size() - off));
    std::string_view body = in.substr(off, len);
    off += len;
    if (rflags & 2) ++term;
    std::string record;
    if (rflags & 1) {
      record = std::string(body);
    } else {
      Command c;
      c.type = static_cast<CommandType>(type);
      c.time_ms = ++t;
      c.time_ns = t * 1000000;
      c.body = std::string(body);
      record = proto::EncodeToString(c);
    }
    entries.push_back({++index, term, record});
    Command c;
    if (!proto::DecodeStoredRecord(record, &c, "journal record").ok()) decodable = false;
    else if (decodable) (void)expect.Apply(c);
  }

  env::MemFileSystem fs;
  VSFUZZ_CHECK(fs.CreateDirs("/repo/log").ok(), "mkdir");
  if (flags & 1) WriteFile(fs, "/repo/snapshot", EncodeSnapshotFile(snap, g_base->Encode()));
  {
    uint64_t first = snap.index + 1;
    std::string seg = EncodeSegmentHeader(first);
    size_t in_seg = 0;
    for (const LogEntry& e : entries) {
      if ((flags & 2) && in_seg == 3) {
        WriteFile(fs, SegPath(first), seg);
        first = e.index;
        seg = EncodeSegmentHeader(first);
        in_seg = 0;
      }
      seg += EncodeLogRecord(e);
      ++in_seg;
    }
    WriteFile(fs, SegPath(first), seg);
  }

  auto journal = Journal::Open(&fs, "/repo");
  VSFUZZ_CHECK(journal.ok(), "Journal::Open");
  auto got = (*journal)->Recover();
  if (!decodable) {
    VSFUZZ_CHECK(!got.ok(), "a journal with an undecodable record was recovered");
    return 0;
  }
  VSFUZZ_CHECK(got.ok(), "a journal of valid records does not recover: %s", got.status().ToString().c_str());
  VSFUZZ_CHECK(got->Encode() == expect.Encode(), "Recover() differs from applying the same commands in memory");
  VSFUZZ_CHECK((*journal)->last_index() == index, "last index %llu, want %llu",
               static_cast<unsigned long long>((*journal)->last_index()), static_cast<unsigned long long>(index));
  vsfuzz::CheckSnapshotRoundTrip(*got, "recovered state");

  if (flags & 4) {
    Status st = BuildSnapshot((*journal)->log());
    VSFUZZ_CHECK(st.ok(), "BuildSnapshot: %s", st.ToString().c_str());
    journal->reset();
    auto again = Journal::Open(&fs, "/repo");
    VSFUZZ_CHECK(again.ok(), "Journal::Open");
    auto got2 = (*again)->Recover();
    VSFUZZ_CHECK(got2.ok(), "recovery from its own snapshot fails: %s", got2.status().ToString().c_str());
    VSFUZZ_CHECK(got2->Encode() == expect.Encode(), "state from snapshot + log differs from the replay");
  }
  return 0;
}
