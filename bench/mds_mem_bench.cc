// vstorage-mds-mem-bench: what the MDS state machine costs in memory, and how long its
// snapshot image takes to encode and to load (issue 10, item 8).
//
//   vstorage-mds-mem-bench [--files 1000000] [--chunks 1000000] [--chunks-per-file 1000]
//
// Applies commands straight to one mds::MdsState (no service, no journal, no network):
//   1. --files empty files in one directory (kCreateNode);
//   2. 3 CS records, then --chunks chunks of 3 replicas each (kAllocChunk), in files of
//      --chunks-per-file chunks (those few files are created first and measured apart, so
//      the per-chunk figure is the chunk's own cost);
// reading the resident set size (/proc/self/statm) after malloc_trim before and after each
// phase. Then times MdsState::Encode (the snapshot image) and MdsState::Decode of that image
// into a fresh state (the snapshot load at MDS start, without the file read).
// Single-threaded; prints one line per figure.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mds/commands.h"
#include "mds/state.h"

namespace vstorage::mds {
namespace {

uint64_t RssBytes() {
  malloc_trim(0);  // freed command buffers would otherwise count
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename T>
ApplyResult MustApply(MdsState& s, CommandType type, const T& body) {
  Command c;
  c.type = type;
  c.time_ms = 1700000000000;
  c.time_ns = c.time_ms * 1000000;
  c.body = proto::EncodeToString(body);
  auto r = s.Apply(c);
  if (!r.ok()) {
    std::fprintf(stderr, "apply failed: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

InodeId CreateFile(MdsState& s, InodeId parent, const std::string& name) {
  CreateNodeCmd c;
  c.parent = parent;
  c.name = name;
  return MustApply(s, CommandType::kCreateNode, c).attr.ino;
}

uint64_t ArgValue(int argc, char** argv, const char* flag, uint64_t def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  return def;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--files") && std::strcmp(argv[i], "--chunks") &&
        std::strcmp(argv[i], "--chunks-per-file")) {
      std::fprintf(stderr, "usage: %s [--files N] [--chunks N] [--chunks-per-file N]\n", argv[0]);
      return 2;
    }
    ++i;
  }
  const uint64_t files = ArgValue(argc, argv, "--files", 1000000);
  const uint64_t chunks = ArgValue(argc, argv, "--chunks", 1000000);
  const uint64_t per_file = std::max<uint64_t>(1, ArgValue(argc, argv, "--chunks-per-file", 1000));

  auto* s = new MdsState();  // leaked on purpose at exit: freeing 10M chunks takes seconds
  const uint64_t rss0 = RssBytes();

  auto t0 = std::chrono::steady_clock::now();
  char name[32];
  for (uint64_t i = 0; i < files; ++i) {
    std::snprintf(name, sizeof name, "f%09llu", static_cast<unsigned long long>(i));
    CreateFile(*s, kRootInode, name);
  }
  const double files_s = SecondsSince(t0);
  const uint64_t rss1 = RssBytes();

  CsId cs[3];
  for (int i = 0; i < 3; ++i) {
    CreateCsCmd c;
    c.host_id = "host" + std::to_string(i);
    cs[i] = MustApply(*s, CommandType::kCreateCs, c).cs;
  }
  CreateNodeCmd dir;
  dir.parent = kRootInode;
  dir.name = "chunks";
  dir.type = proto::NodeType::kDir;
  dir.mode = 0755;
  const InodeId chunk_dir = MustApply(*s, CommandType::kCreateNode, dir).attr.ino;
  const uint64_t nfiles = (chunks + per_file - 1) / per_file;
  std::vector<InodeId> holders;
  holders.reserve(nfiles);
  for (uint64_t i = 0; i < nfiles; ++i) {
    std::snprintf(name, sizeof name, "c%09llu", static_cast<unsigned long long>(i));
    holders.push_back(CreateFile(*s, chunk_dir, name));
  }
  const uint64_t rss2 = RssBytes();

  t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < chunks; ++i) {
    AllocChunkCmd c;
    c.ino = holders[i / per_file];
    c.index = i % per_file;
    c.replicas = {cs[i % 3], cs[(i + 1) % 3], cs[(i + 2) % 3]};
    MustApply(*s, CommandType::kAllocChunk, c);
  }
  const double chunks_s = SecondsSince(t0);
  const uint64_t rss3 = RssBytes();

  auto counts = s->Counts();
  std::printf("state: %llu files, %llu chunks (%llu replicas)\n", static_cast<unsigned long long>(counts.files),
              static_cast<unsigned long long>(counts.chunks), static_cast<unsigned long long>(counts.chunk_replicas));
  if (files > 0)
    std::printf("RSS per empty file: %.0f B  (%llu files in one directory, applied at %.0f/s)\n",
                static_cast<double>(rss1 - rss0) / static_cast<double>(files), static_cast<unsigned long long>(files),
                static_cast<double>(files) / files_s);
  if (chunks > 0)
    std::printf("RSS per 3-replica chunk: %.0f B  (%llu chunks, %llu per file, applied at %.0f/s)\n",
                static_cast<double>(rss3 - rss2) / static_cast<double>(chunks), static_cast<unsigned long long>(chunks),
                static_cast<unsigned long long>(per_file), static_cast<double>(chunks) / chunks_s);
  std::printf("RSS total: %.1f MiB\n", static_cast<double>(rss3) / 1048576.0);

  t0 = std::chrono::steady_clock::now();
  std::string image = s->Encode();
  const double enc_s = SecondsSince(t0);
  std::printf("snapshot Encode: %.2f s, image %.1f MiB\n", enc_s, static_cast<double>(image.size()) / 1048576.0);

  auto* loaded = new MdsState();
  t0 = std::chrono::steady_clock::now();
  Status st = loaded->Decode(image);
  const double dec_s = SecondsSince(t0);
  if (!st.ok()) {
    std::fprintf(stderr, "decode failed: %s\n", st.ToString().c_str());
    return 1;
  }
  auto lc = loaded->Counts();
  if (lc.files != counts.files || lc.chunks != counts.chunks) {
    std::fprintf(stderr, "decoded state differs: %llu files, %llu chunks\n",
                 static_cast<unsigned long long>(lc.files), static_cast<unsigned long long>(lc.chunks));
    return 1;
  }
  std::printf("snapshot Decode (load): %.2f s  (target for 10M chunks: < 30 s)\n", dec_s);
  std::fflush(stdout);
  _exit(0);  // skip destructors of the two states (seconds for 10M chunks)
}

}  // namespace
}  // namespace vstorage::mds

int main(int argc, char** argv) { return vstorage::mds::Main(argc, argv); }
