// The MDS log's files as they are on disk (mds/log.h), through the real loader: the input
// is a Container (fuzz_util.h) of files put into an in-memory MDS repository, then
// Journal::Recover() runs (segments, torn tails, v1 conversion, snapshot, replay).
//
// Entry kinds (kind % 6): 0 a segment, named by the first index in its header (1 without
// one); 1 hardstate; 2 snapshot; 3 a v1 "journal"; 4 a segment named by the entry's first 8
// bytes (little-endian index), the rest its content; 5 a stray "*.tmp" file in log/.
// Checked after a recovery that succeeds: Read() returns every entry held with consecutive
// indices; an entry appended then is there, with its data, after reopening, and the state
// recovered then is the old one with that command applied.
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

std::string SegPath(uint64_t first) {
  char b[64];
  std::snprintf(b, sizeof b, "/repo/log/%020llu.seg", static_cast<unsigned long long>(first));
  return b;
}

void Put(env::FileSystem& fs, const std::string& path, std::string_view data) {
  // Plain writes: a missing sync is not what this harness is about.
  auto f = fs.NewWritableFile(path, env::WriteMode::kTruncate);
  VSFUZZ_CHECK(f.ok(), "create %s", path.c_str());
  VSFUZZ_CHECK((*f)->Append(data).ok() && (*f)->Sync().ok(), "write %s", path.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  env::MemFileSystem fs;
  VSFUZZ_CHECK(fs.CreateDirs("/repo/log").ok(), "mkdir");
  int tmp = 0;
  for (const vsfuzz::Entry& e : vsfuzz::SplitEntries({reinterpret_cast<const char*>(data), size}, 16)) {
    switch (e.kind % 6) {
      case 0: {
        uint64_t first = 1;
        if (e.bytes.size() >= 24) std::memcpy(&first, e.bytes.data() + 16, 8);
        Put(fs, SegPath(first), e.bytes);
        break;
      }
      case 1: Put(fs, "/repo/hardstate", e.bytes); break;
      case 2: Put(fs, "/repo/snapshot", e.bytes); break;
      case 3: Put(fs, "/repo/journal", e.bytes); break;
      case 4: {
        uint64_t first = 0;
        std::memcpy(&first, e.bytes.data(), std::min<size_t>(8, e.bytes.size()));
        Put(fs, SegPath(first), e.bytes.substr(std::min<size_t>(8, e.bytes.size())));
        break;
      }
      case 5: Put(fs, "/repo/log/" + std::to_string(tmp++) + ".tmp", e.bytes); break;
    }
  }

  uint64_t last = 0, term = 0;
  std::string before;
  {
    auto j = Journal::Open(&fs, "/repo");
    VSFUZZ_CHECK(j.ok(), "Journal::Open");
    auto st = (*j)->Recover();
    if (!st.ok()) return 0;
    mds::Log& log = (*j)->log();
    last = log.last_index();
    uint64_t first = log.first_index();
    VSFUZZ_CHECK(first >= 1 && first <= last + 1, "entries %llu..%llu", static_cast<unsigned long long>(first),
                 static_cast<unsigned long long>(last));
    if (last >= first) {
      uint64_t next = first;
      while (next <= last) {
        auto r = log.Read(next, last);
        VSFUZZ_CHECK(r.ok() && !r->empty(), "Read(%llu) of an entry held: %s", static_cast<unsigned long long>(next),
                     r.ok() ? "none" : r.status().ToString().c_str());
        for (const LogEntry& le : *r) VSFUZZ_CHECK(le.index == next++, "entries out of order");
      }
      auto t = log.TermAt(last);
      VSFUZZ_CHECK(t.ok(), "TermAt(last)");
      term = *t;
    } else {
      term = log.snapshot().term;
    }
    before = st->Encode();
    // One more entry, as the master would append it.
    Command c = vsfuzz::MakeCommand(CommandType::kAddEvent, AddEventCmd{"MDS", "INF", "appended"},
                                    vsfuzz::kBaseTimeMs);
    std::string rec = proto::EncodeToString(c);
    Status ap = (*j)->Append({rec}, std::max<uint64_t>(term, 1));
    VSFUZZ_CHECK(ap.ok(), "append after a recovery: %s", ap.ToString().c_str());
    (void)st->Apply(c);
    before = st->Encode();
  }
  auto j = Journal::Open(&fs, "/repo");
  VSFUZZ_CHECK(j.ok(), "Journal::Open");
  auto st = (*j)->Recover();
  VSFUZZ_CHECK(st.ok(), "a log that recovered, plus one append, does not recover: %s",
               st.status().ToString().c_str());
  VSFUZZ_CHECK((*j)->last_index() == last + 1, "last index %llu after appending at %llu",
               static_cast<unsigned long long>((*j)->last_index()), static_cast<unsigned long long>(last + 1));
  VSFUZZ_CHECK(st->Encode() == before, "the state after the append differs from the state before plus the command");
  return 0;
}
