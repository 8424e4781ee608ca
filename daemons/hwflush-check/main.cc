// vstorage-hwflush-check: does a storage device keep what it said it flushed when the power
// goes (guide 7.1)? A client/server tool:
//
//   vstorage-hwflush-check -l [-p PORT]                      the server, on another machine
//   vstorage-hwflush-check -s HOST[:PORT] -d DIR [-t N] [-b BYTES] [-n BLOCKS] [-c COUNT] [-i ID]
//
// Client: N threads (default 1, at most 200), each with its own file DIR/hwflush.<id>.<t>
// and counter. A thread writes a block holding its counter (and a checksum) to the next of
// the file's BLOCKS slots, fdatasyncs it, and only then sends the counter to the server. So
// the server always holds a counter the device claimed durable. Started again (after the
// power came back), the client first reads every slot, takes the highest intact counter as
// the counter on disk, asks the server for the counter it holds, and prints
//   id<T>:<counter_on_disk> -> <counter_on_server>
// per thread. Lower on disk than on the server: the device lost data it had flushed (a
// volatile write cache that lies): the client says so and exits 1 after the check (the
// server prints an error too). Equal or higher: the device kept its word. The test then goes
// on from the counter on disk. -c COUNT: write COUNT blocks per thread, then exit (0: run
// until killed, the default).
//
// Server: keeps the latest counter of every (client id, thread) in memory; answers checks.
//
// Wire protocol (text lines over TCP, at most kMaxLine bytes):
//   "U <client> <thread> <counter>"  an update, no answer
//   "Q <client> <thread> <counter>"  a check; answer "<counter_on_server>"
//
// Thread-safety: the server's counters are under one mutex (no I/O under it); each client
// thread has its own file, socket and counter.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/crc32c.h"

namespace {

constexpr int kDefaultPort = 2570;
constexpr int kMaxThreads = 200;       // the guide's maximum
constexpr size_t kMaxLine = 256;       // one protocol line
constexpr int kMaxConnections = 1024;  // server: connections served at once
constexpr char kMagic[8] = {'V', 'S', 'H', 'W', 'F', 'L', '0', '1'};
constexpr size_t kHeader = 28;  // magic 8 | thread u32 | counter u64 | block size u32 | crc u32

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "vstorage-hwflush-check: %s\n", msg.c_str());
  std::exit(2);
}

void Usage() {
  std::fprintf(stderr,
               "usage: vstorage-hwflush-check -l [-p PORT]\n"
               "       vstorage-hwflush-check -s HOST[:PORT] -d DIR [-t THREADS] [-b BLOCK_BYTES] [-n BLOCKS]\n"
               "                              [-c COUNT] [-i CLIENT_ID]\n"
               "  -l          run the server (default port %d)\n"
               "  -s          the server's address (run the client)\n"
               "  -d          directory on the device to test (created if missing)\n"
               "  -t          writer threads, each with its own file and counter (1..%d, default 1)\n"
               "  -b          bytes per block (512..1048576, a multiple of 512; default 4096)\n"
               "  -n          blocks per file, written in turn (default 1024)\n"
               "  -c          blocks each thread writes before exiting (default 0: until killed)\n"
               "  -i          client id the server keeps the counters under (default: the host name)\n",
               kDefaultPort, kMaxThreads);
  std::exit(2);
}

bool ReadLine(int fd, std::string* line) {
  line->clear();
  char c;
  while (true) {
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n <= 0) return false;
    if (c == '\n') return true;
    if (line->size() >= kMaxLine) return false;  // a peer that is not one of us
    line->push_back(c);
  }
}

bool SendAll(int fd, const std::string& s) {
  for (size_t at = 0; at < s.size();) {
    ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

// ---- server ----
struct Server {
  std::mutex mu;
  std::map<std::pair<std::string, uint32_t>, uint64_t> counters;
  std::atomic<int> conns{0};
};

void Serve(Server* s, int fd, std::string peer) {
  std::string line;
  while (ReadLine(fd, &line)) {
    char op = 0, client[kMaxLine + 1];
    unsigned thread = 0;
    unsigned long long counter = 0;
    if (std::sscanf(line.c_str(), "%c %256s %u %llu", &op, client, &thread, &counter) != 4 || (op != 'U' && op != 'Q')) {
      std::fprintf(stderr, "%s: bad line '%s': not a vstorage-hwflush-check client; disconnecting\n", peer.c_str(),
                   line.c_str());
      break;
    }
    auto key = std::make_pair(std::string(client), static_cast<uint32_t>(thread));
    uint64_t held;
    {
      std::lock_guard<std::mutex> l(s->mu);
      uint64_t& c = s->counters[key];
      held = c;
      if (op == 'U' && counter > c) c = counter;
      if (op == 'Q') c = counter;  // the test goes on from what is on disk
    }
    if (op == 'Q') {
      std::printf("%s id%u:%llu -> %llu%s\n", client, thread, counter, static_cast<unsigned long long>(held),
                  counter < held ? "  ERROR: the device lost data it had flushed" : "");
      std::fflush(stdout);
      if (!SendAll(fd, std::to_string(held) + "\n")) break;
    }
  }
  ::close(fd);
  --s->conns;
}

int RunServer(int port) {
  int ls = ::socket(AF_INET6, SOCK_STREAM, 0);
  bool v6 = ls >= 0;
  if (!v6) ls = ::socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) Die(std::string("socket: ") + std::strerror(errno));
  int one = 1, zero = 0;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    ::setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(port));
    rc = ::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || ::listen(ls, 64) != 0)
    Die("cannot listen on port " + std::to_string(port) + ": " + std::strerror(errno) + " (another server running? use -p)");
  std::printf("listening on port %d\n", port);
  std::fflush(stdout);
  Server s;
  while (true) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept(ls, reinterpret_cast<sockaddr*>(&peer), &len);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      Die(std::string("accept: ") + std::strerror(errno));
    }
    if (s.conns >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    char host[NI_MAXHOST] = "?";
    ::getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
    ++s.conns;
    std::thread(Serve, &s, fd, std::string(host)).detach();
  }
}

// ---- client ----
struct ClientOpts {
  vstorage::HostPort server;
  std::string dir, id;
  int threads = 1;
  uint32_t block = 4096;
  uint64_t blocks = 1024;
  uint64_t count = 0;
};

int Dial(const vstorage::HostPort& hp) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = ::getaddrinfo(hp.host.c_str(), std::to_string(hp.port).c_str(), &hints, &res); rc != 0)
    Die("cannot resolve " + hp.host + ": " + gai_strerror(rc));
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0)
    Die("cannot connect to the server at " + hp.host + ":" + std::to_string(hp.port) + ": " + std::strerror(errno) +
        " (is 'vstorage-hwflush-check -l' running there?)");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void FillBlock(char* b, uint32_t size, uint32_t thread, uint64_t counter) {
  for (uint32_t i = kHeader; i < size; ++i) b[i] = static_cast<char>((counter * 131 + i * 7 + thread) & 0xff);
  std::memcpy(b, kMagic, 8);
  std::memcpy(b + 8, &thread, 4);
  std::memcpy(b + 12, &counter, 8);
  std::memcpy(b + 20, &size, 4);
  std::memset(b + 24, 0, 4);
  uint32_t crc = vstorage::Crc32c(b, size);
  std::memcpy(b + 24, &crc, 4);
}

// The counter of an intact block written by this thread, or 0.
uint64_t BlockCounter(char* b, uint32_t size, uint32_t thread) {
  uint32_t t, s, crc;
  uint64_t counter;
  std::memcpy(&t, b + 8, 4);
  std::memcpy(&counter, b + 12, 8);
  std::memcpy(&s, b + 20, 4);
  std::memcpy(&crc, b + 24, 4);
  if (std::memcmp(b, kMagic, 8) != 0 || t != thread || s != size) return 0;
  std::memset(b + 24, 0, 4);
  return vstorage::Crc32c(b, size) == crc ? counter : 0;
}

struct ThreadResult {
  uint64_t on_disk = 0, on_server = 0;
  std::string error;
};

void RunThread(const ClientOpts& o, uint32_t t, ThreadResult* r) {
  std::string path = o.dir + "/hwflush." + o.id + "." + std::to_string(t);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    r->error = path + ": " + std::strerror(errno);
    return;
  }
  // The file's name must survive the cut too, or every block in it goes with it.
  if (int d = ::open(o.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d < 0 || ::fsync(d) != 0) {
    r->error = o.dir + ": cannot sync the directory: " + std::strerror(errno);
    if (d >= 0) ::close(d);
    ::close(fd);
    return;
  } else {
    ::close(d);
  }
  std::vector<char> b(o.block);
  // The counter on disk: the highest intact block of the file.
  for (uint64_t slot = 0; slot < o.blocks; ++slot) {
    ssize_t n = ::pread(fd, b.data(), o.block, static_cast<off_t>(slot * o.block));
    if (n != static_cast<ssize_t>(o.block)) break;
    r->on_disk = std::max(r->on_disk, BlockCounter(b.data(), o.block, t));
  }
  int s = Dial(o.server);
  std::string reply;
  if (!SendAll(s, "Q " + o.id + " " + std::to_string(t) + " " + std::to_string(r->on_disk) + "\n") ||
      !ReadLine(s, &reply)) {
    r->error = "the server closed the connection";
    ::close(s);
    ::close(fd);
    return;
  }
  r->on_server = std::strtoull(reply.c_str(), nullptr, 10);
  std::printf("id%u:%llu -> %llu\n", t, static_cast<unsigned long long>(r->on_disk),
              static_cast<unsigned long long>(r->on_server));
  std::fflush(stdout);
  for (uint64_t i = 0, c = r->on_disk + 1; o.count == 0 || i < o.count; ++i, ++c) {
    FillBlock(b.data(), o.block, t, c);
    off_t at = static_cast<off_t>((c % o.blocks) * o.block);
    if (::pwrite(fd, b.data(), o.block, at) != static_cast<ssize_t>(o.block) || ::fdatasync(fd) != 0) {
      r->error = path + ": " + std::strerror(errno);
      break;
    }
    // Only now: the device said the block is durable.
    if (!SendAll(s, "U " + o.id + " " + std::to_string(t) + " " + std::to_string(c) + "\n")) {
      r->error = "the server closed the connection";
      break;
    }
  }
  ::close(s);
  ::close(fd);
}

int RunClient(const ClientOpts& o) {
  if (::mkdir(o.dir.c_str(), 0755) == 0) {  // durable before anything is written in it
    std::string parent = o.dir.substr(0, o.dir.find_last_of('/') == std::string::npos ? 0 : o.dir.find_last_of('/'));
    if (parent.empty()) parent = o.dir[0] == '/' ? "/" : ".";
    int d = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || ::fsync(d) != 0) Die(parent + ": cannot sync the directory: " + std::strerror(errno));
    ::close(d);
  } else if (errno != EEXIST) {
    Die(o.dir + ": " + std::strerror(errno));
  }
  std::vector<ThreadResult> res(static_cast<size_t>(o.threads));
  std::vector<std::thread> ts;
  for (int t = 0; t < o.threads; ++t) ts.emplace_back(RunThread, std::cref(o), static_cast<uint32_t>(t), &res[static_cast<size_t>(t)]);
  for (auto& t : ts) t.join();
  int lost = 0, errors = 0;
  for (size_t t = 0; t < res.size(); ++t) {
    if (res[t].on_disk < res[t].on_server) ++lost;
    if (!res[t].error.empty()) {
      ++errors;
      std::fprintf(stderr, "id%zu: %s\n", t, res[t].error.c_str());
    }
  }
  if (lost) {
    std::printf("FAILED: %d of %d files lost blocks the device had reported flushed; do not use this device "
                "for chunk servers, journals or caches\n", lost, o.threads);
    return 1;
  }
  if (errors) return 2;
  std::printf("ok: every block the device reported flushed is on it\n");
  return 0;
}

uint64_t Number(const char* opt, const char* v, uint64_t lo, uint64_t hi) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (errno || *end || !*v || v[0] == '-' || n < lo || n > hi)
    Die(std::string(opt) + " " + v + ": want a number from " + std::to_string(lo) + " to " + std::to_string(hi));
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  bool listen = false;
  int port = kDefaultPort;
  ClientOpts o;
  std::string server;
  char host[256] = "client";
  ::gethostname(host, sizeof host - 1);
  o.id = host;
  int opt;
  while ((opt = ::getopt(argc, argv, "lp:s:d:t:b:n:c:i:h")) != -1) {
    switch (opt) {
      case 'l': listen = true; break;
      case 'p': port = static_cast<int>(Number("-p", optarg, 1, 65535)); break;
      case 's': server = optarg; break;
      case 'd': o.dir = optarg; break;
      case 't': o.threads = static_cast<int>(Number("-t", optarg, 1, kMaxThreads)); break;
      case 'b':
        o.block = static_cast<uint32_t>(Number("-b", optarg, 512, 1 << 20));
        if (o.block % 512) Die("-b " + std::string(optarg) + ": want a multiple of 512");
        break;
      case 'n': o.blocks = Number("-n", optarg, 1, 1u << 24); break;
      case 'c': o.count = Number("-c", optarg, 0, UINT64_MAX); break;
      case 'i':
        o.id = optarg;
        if (o.id.empty() || o.id.size() > 64 || o.id.find_first_of(" /\n") != std::string::npos)
          Die("-i: want 1 to 64 characters without spaces or slashes");
        break;
      default: Usage();
    }
  }
  if (optind != argc) Usage();
  if (listen) {
    if (!server.empty() || !o.dir.empty()) Die("-l runs the server: no -s or -d with it");
    return RunServer(port);
  }
  if (server.empty() || o.dir.empty()) Usage();
  auto hp = vstorage::ParseHostPort(server, kDefaultPort);
  if (!hp.ok()) Die(hp.status().ToString());
  o.server = *hp;
  return RunClient(o);
}
