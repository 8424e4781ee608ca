// vstorage-conn-load: opens N authenticated connections to one server, makes one request on
// each, holds them all, and reports the server's memory and threads before and after
// (issue 11 item 6: a server holds many idle connections at a bounded cost each).
//
//   vstorage-conn-load -c CLUSTER --addr HOST:PORT --pid PID --conns N --kind cs|mds
// Prints one JSON line: {"conns":N,"ok":K,"rss_before_kib":..,"rss_after_kib":..,
// "threads_before":..,"threads_after":..}. The cluster key comes from this host's
// configuration (VSTORAGE_CONF_DIR), as for any client; each connection is a Channel of its
// own (rpc/channel.h), so it is encrypted as every client's is (rpc/tls.h).
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "proto/messages.h"
#include "rpc/channel.h"
#include "rpc/frame.h"

using namespace vstorage;

static long ProcField(int pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0) return std::atol(line.c_str() + n + 1);
  return -1;
}

int main(int argc, char** argv) {
  std::string cluster, addr, kind = "cs";
  int pid = 0, conns = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "-c") cluster = v;
    else if (a == "--addr") addr = v;
    else if (a == "--pid") pid = std::atoi(v.c_str());
    else if (a == "--conns") conns = std::atoi(v.c_str());
    else if (a == "--kind") kind = v;
  }
  if (cluster.empty() || addr.empty() || pid <= 0 || conns <= 0 || (kind != "cs" && kind != "mds")) {
    std::fprintf(stderr, "usage: vstorage-conn-load -c CLUSTER --addr HOST:PORT --pid PID --conns N --kind cs|mds\n");
    return 2;
  }
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
  auto key = ReadClusterKey(cluster);
  auto hp = ParseHostPort(addr, 0);
  if (!key.ok() || !hp.ok()) {
    std::fprintf(stderr, "vstorage-conn-load: %s\n", (!key.ok() ? key.status() : hp.status()).ToString().c_str());
    return 1;
  }
  long rss0 = ProcField(pid, "VmRSS:"), thr0 = ProcField(pid, "Threads:");
  rpc::IoLoop loop(1);  // outlives the channels
  std::vector<std::shared_ptr<rpc::Channel>> socks;
  socks.reserve(conns);
  int ok = 0;
  for (int i = 0; i < conns; ++i) {
    auto ch = rpc::Channel::Dial(loop, addr, rpc::Credentials{cluster, *key, proto::PeerKind::kClient}, 3000, 1);
    if (!ch.ok()) {
      std::fprintf(stderr, "connection %d: %s\n", i, ch.status().ToString().c_str());
      break;
    }
    // One request each, so every connection is past its handshake and has been served.
    proto::MsgType type = kind == "cs" ? proto::MsgType::kCsStat : proto::MsgType::kGetAttr;
    std::string body = kind == "cs" ? proto::EncodeToString(proto::CsStatReq{ChunkId{~0ull}})
                                    : proto::EncodeToString(proto::InodeReq{InodeId{1}});
    rpc::Frame rep;
    Status st = (*ch)->Call(type, body, nullptr, 0, &rep, 10000);
    // The CS knows no such chunk: an error reply is still an answer.
    if (st.ok() || st.code() == Code::kNotFound) ++ok;
    socks.push_back(std::move(*ch));
  }
  long rss1 = ProcField(pid, "VmRSS:"), thr1 = ProcField(pid, "Threads:");
  std::printf("{\"conns\":%zu,\"ok\":%d,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"threads_before\":%ld,"
              "\"threads_after\":%ld}\n",
              socks.size(), ok, rss0, rss1, thr0, thr1);
  return 0;
}
