// vstorage-mds-bench: the MDS without FUSE (issue 10, benchmark).
//
//   vstorage-mds-bench [--dir DIR] [--clients 16] [--seconds 5]
//                      [--snapshot-files 1000000] [--latency-seconds 30]
//
// Starts an MdsService in this process on a fresh repository under DIR (default: a new
// directory in /dev/shm, removed at exit), so that its counters (MdsService::Stats: commands,
// journal syncs, snapshot_running) can be read directly; they are not exported over RPC.
// The clients are real libvstorage sessions (vstorage::Client) talking to it over loopback
// TCP, one session per thread. No chunk server is needed: only empty files are created.
//
// Phase 1 (throughput): --clients threads create empty files (disjoint names, one directory)
//   as fast as they can for --seconds; prints creates/s and journal fdatasyncs per 1,000
//   commands (group commit makes this far below 1,000).
// Phase 2 (latency around snapshots): fills the namespace up to --snapshot-files files, then
//   waits for a running snapshot to end, and --clients threads create for --latency-seconds
//   while a poller samples Stats().snapshot_running every millisecond. A create counts as
//   "during a snapshot" when a snapshot was running when it started or when it ended (or
//   one ran entirely inside it); prints count, p50, p99 and max latency of both classes.
#include <malloc.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/auth.h"
#include "common/config.h"
#include "common/log.h"
#include "mds/service.h"
#include "vstorage/client.h"

namespace vstorage {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxSnapshotWaitS = 300;  // before the latency window: a snapshot still running

int FreePortPair() {
  for (int i = 0; i < 100; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &l);
    int p = ntohs(a.sin_port);
    ::close(s);
    if (p < 60000) return p;
  }
  return 25000;
}

struct Options {
  std::string dir;
  int clients = 16;
  double seconds = 5;
  uint64_t snapshot_files = 1000000;
  double latency_seconds = 30;
  bool verbose = false;
};

[[noreturn]] void Die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "mds_bench: %s: %s\n", what.c_str(), st.ToString().c_str());
  std::exit(1);
}

std::unique_ptr<mds::MdsService> StartMds(const std::string& dir) {
  setenv("VSTORAGE_CONF_DIR", (dir + "/conf").c_str(), 1);
  std::string key = RandomBytes(32);
  std::string repo = dir + "/mds";
  if (auto st = MakeDirs(repo); !st.ok()) Die("mkdir " + repo, st);
  if (auto st = WriteFileAtomic(repo + "/cluster.key", HexEncode(key) + "\n"); !st.ok()) Die("cluster.key", st);
  if (auto st = WriteFileAtomic(repo + "/auth_digest.key", MakePasswordDigest("pw").Serialize() + "\n"); !st.ok())
    Die("auth_digest.key", st);
  if (auto st = WriteClusterKey("mdsbench", key); !st.ok()) Die("cluster key", st);
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = FreePortPair();
    auto st = WriteKeyValueFile(repo + "/mds.conf",
                                {{"cluster", "mdsbench"}, {"id", "1"}, {"addr", "127.0.0.1:" + std::to_string(port)}});
    if (!st.ok()) Die("mds.conf", st);
    std::filesystem::remove(ClusterDir("mdsbench") + "/bs.list");
    if (auto s2 = AddToBsList("mdsbench", HostPort{"127.0.0.1", port}); !s2.ok()) Die("bs.list", s2);
    auto m = mds::MdsService::Start(repo);
    if (m.ok()) return std::move(m).value();
    if (m.status().code() != Code::kBusy || attempt == 4) Die("MdsService::Start", m.status());
  }
  return nullptr;
}

std::vector<std::unique_ptr<Client>> Connect(int n) {
  std::vector<std::unique_ptr<Client>> v;
  for (int i = 0; i < n; ++i) {
    auto c = Client::Connect(ClientOptions{"mdsbench", 20000, 20000, "bench" + std::to_string(i)});
    if (!c.ok()) Die("Client::Connect", c.status());
    v.push_back(std::move(c).value());
  }
  return v;
}

// Every client creates files "<prefix><thread>_<n>" in dir until stop (or until each made
// `limit` files, if limit > 0). lat_us, if given, receives every create's latency per thread
// and whether it overlapped a snapshot.
struct Sample {
  uint32_t us;
  bool during;
};
struct SnapshotWatch {
  std::atomic<bool> running{false};
  std::atomic<uint64_t> starts{0};  // snapshots seen starting
  double running_s = 0;             // time seen running (poller thread only)
};

uint64_t CreateLoop(std::vector<std::unique_ptr<Client>>& cl, InodeId dir, const std::string& prefix, double seconds,
                    uint64_t limit_each, SnapshotWatch* watch, std::vector<std::vector<Sample>>* samples) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  if (samples != nullptr) samples->assign(cl.size(), {});
  std::vector<std::thread> th;
  for (size_t t = 0; t < cl.size(); ++t) {
    th.emplace_back([&, t] {
      uint64_t n = 0;
      std::string base = prefix + std::to_string(t) + "_";
      while (!stop.load(std::memory_order_relaxed) && (limit_each == 0 || n < limit_each)) {
        bool before = false;
        uint64_t starts = 0;
        if (watch != nullptr) {
          before = watch->running.load();
          starts = watch->starts.load();
        }
        auto t0 = Clock::now();
        auto r = cl[t]->Create(dir, base + std::to_string(n), 0644, true);
        auto t1 = Clock::now();
        if (!r.ok()) {
          std::fprintf(stderr, "mds_bench: create failed: %s\n", r.status().ToString().c_str());
          failed = true;
          stop = true;
          break;
        }
        ++n;
        if (samples != nullptr) {
          bool during = before || watch->running.load() || watch->starts.load() != starts;
          (*samples)[t].push_back(
              {static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()), during});
        }
      }
      total += n;
    });
  }
  if (limit_each == 0) {
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !stop) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    stop = true;
  }
  for (auto& x : th) x.join();
  if (failed) std::exit(1);
  return total;
}

void PrintLatency(const char* label, std::vector<uint32_t>& v) {
  if (v.empty()) {
    std::printf("  %-17s      0 creates\n", label);
    return;
  }
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]; };
  std::printf("  %-17s %8zu creates  p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms\n", label, v.size(), at(0.5) / 1000.0,
              at(0.99) / 1000.0, v.back() / 1000.0);
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") o.dir = next();
    else if (a == "--clients") o.clients = std::max(1, std::atoi(next().c_str()));
    else if (a == "--seconds") o.seconds = std::atof(next().c_str());
    else if (a == "--snapshot-files") o.snapshot_files = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--latency-seconds") o.latency_seconds = std::atof(next().c_str());
    else if (a == "--verbose") o.verbose = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--clients 16] [--seconds 5] [--snapshot-files 1000000] "
                   "[--latency-seconds 30] [--verbose]\n",
                   argv[0]);
      return 2;
    }
  }
  bool own_dir = o.dir.empty();
  if (own_dir) {
    char t[] = "/dev/shm/vs_mdsbench_XXXXXX";
    if (mkdtemp(t) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    o.dir = t;
  } else {
    std::filesystem::create_directories(o.dir);
  }
  SetLogLevel(o.verbose ? LogLevel::kInfo : LogLevel::kWarn);  // the MDS logs every snapshot
  auto mds = StartMds(o.dir);
  auto cl = Connect(o.clients);
  auto d = cl[0]->Mkdir(kRootInode, "bench", 0755);
  if (!d.ok()) Die("mkdir /bench", d.status());
  const InodeId dir = d->ino;

  std::printf("in-process MdsService (repo on %s), %d libvstorage sessions over loopback TCP, no FUSE\n",
              o.dir.c_str(), o.clients);
  // Phase 1.
  mds::MdsStats s0 = mds->Stats();
  auto t0 = Clock::now();
  uint64_t n = CreateLoop(cl, dir, "t", o.seconds, 0, nullptr, nullptr);
  double el = std::chrono::duration<double>(Clock::now() - t0).count();
  mds::MdsStats s1 = mds->Stats();
  uint64_t cmds = s1.commands - s0.commands, syncs = s1.syncs - s0.syncs;
  std::printf("creates/s (%d clients, %.1f s): %.0f\n", o.clients, el, static_cast<double>(n) / el);
  std::printf("fsyncs per 1000 commands: %.1f  (%llu journal syncs for %llu commands, from MdsService::Stats)\n",
              cmds ? 1000.0 * static_cast<double>(syncs) / static_cast<double>(cmds) : 0.0,
              static_cast<unsigned long long>(syncs), static_cast<unsigned long long>(cmds));
  std::fflush(stdout);

  // Phase 2.
  if (o.snapshot_files > 0) {
    uint64_t have = n;
    if (o.snapshot_files > have) {
      uint64_t each = (o.snapshot_files - have + cl.size() - 1) / cl.size();
      auto f0 = Clock::now();
      have += CreateLoop(cl, dir, "fill", 0, each, nullptr, nullptr);
      double fs = std::chrono::duration<double>(Clock::now() - f0).count();
      std::printf("filled the namespace to %llu files in %.0f s\n", static_cast<unsigned long long>(have), fs);
      std::fflush(stdout);
    }
    // Start the window outside a snapshot (the fill leaves one running, on a big state for
    // tens of seconds), so that both classes get samples.
    auto w0 = Clock::now();
    while (mds->Stats().snapshot_running && Clock::now() - w0 < std::chrono::seconds(kMaxSnapshotWaitS))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("waited %.1f s for the running snapshot to end\n",
                std::chrono::duration<double>(Clock::now() - w0).count());
    SnapshotWatch watch;
    std::atomic<bool> stop_poll{false};
    std::thread poller([&] {
      bool was = false;
      auto since = Clock::now();
      while (!stop_poll) {
        bool now = mds->Stats().snapshot_running;
        if (now && !was) {
          ++watch.starts;
          since = Clock::now();
        }
        if (!now && was) watch.running_s += std::chrono::duration<double>(Clock::now() - since).count();
        watch.running = now;
        was = now;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (was) watch.running_s += std::chrono::duration<double>(Clock::now() - since).count();
    });
    mds::MdsStats p0 = mds->Stats();
    std::vector<std::vector<Sample>> samples;
    uint64_t m = CreateLoop(cl, dir, "lat", o.latency_seconds, 0, &watch, &samples);
    stop_poll = true;
    poller.join();
    mds::MdsStats p1 = mds->Stats();
    std::vector<uint32_t> in, out;
    for (auto& v : samples)
      for (auto& s : v) (s.during ? in : out).push_back(s.us);
    std::printf("create latency with %llu+ files, %.0f s, %d clients, %llu creates, %llu snapshots written "
                "(one every %llu journal records):\n",
                static_cast<unsigned long long>(have), o.latency_seconds, o.clients,
                static_cast<unsigned long long>(m), static_cast<unsigned long long>(p1.snapshots - p0.snapshots),
                static_cast<unsigned long long>(mds::kSnapshotEveryRecords));
    std::printf("  snapshots seen running: %llu, %.1f s in all\n", static_cast<unsigned long long>(watch.starts.load()),
                watch.running_s);
    PrintLatency("during snapshot", in);
    PrintLatency("outside snapshot", out);
    std::fflush(stdout);
  }

  cl.clear();
  mds->Stop();
  mds.reset();
  if (own_dir) std::filesystem::remove_all(o.dir);
  return 0;
}

}  // namespace
}  // namespace vstorage

int main(int argc, char** argv) { return vstorage::Main(argc, argv); }
