#include "mds/metrics.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

namespace vstorage::mds {
namespace {

proto::ClusterStatReply Sample() {
  proto::ClusterStatReply st;
  st.cluster = "stor1";
  st.status = "degraded";
  st.total_bytes = 300;
  st.free_bytes = 120;
  st.allocatable_bytes = 40;
  st.chunk_states.healthy = 7;
  st.chunk_states.urgent = 2;
  st.chunk_states.replicating = 1;
  proto::CsInfo a;
  a.id = CsId{1025};
  a.status = "active";
  a.host_id = "h\"1";  // escaped in the label
  a.tier = 1;
  a.total_bytes = 100;
  a.free_bytes = 60;
  a.qdepth_x10 = 25;
  a.flags = "JC";
  proto::CsInfo b = a;
  b.id = CsId{1026};
  b.status = "offline";
  b.tier = 0;
  b.flags = "";
  st.cs = {a, b};
  proto::ClientInfo c;
  c.id = ClientId{2049};
  c.host = "node1";
  c.write_bps = 1 << 20;
  st.clients = {c};
  proto::MdsInfo m;
  m.id = MdsId{1};
  m.master = true;
  m.commits = 12345;
  st.mds = {m};
  return st;
}

TEST(Metrics, RenderTheClusterAsPrometheusText) {
  std::string t = RenderMetrics(Sample());
  EXPECT_NE(t.find("vstorage_cluster_status{cluster=\"stor1\",status=\"degraded\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("vstorage_cluster_status{cluster=\"stor1\",status=\"healthy\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("vstorage_space_allocatable_bytes{cluster=\"stor1\"} 40\n"), std::string::npos);
  // Per tier, active CS only.
  EXPECT_NE(t.find("vstorage_tier_space_total_bytes{cluster=\"stor1\",tier=\"1\"} 100\n"), std::string::npos);
  EXPECT_EQ(t.find("vstorage_tier_space_total_bytes{cluster=\"stor1\",tier=\"0\"}"), std::string::npos);
  EXPECT_NE(t.find("vstorage_chunks_by_state{cluster=\"stor1\",state=\"urgent\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("vstorage_recovery_chunks{cluster=\"stor1\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("vstorage_cs_status{cs=\"1025\",host=\"h\\\"1\",status=\"active\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("vstorage_cs_qdepth{cs=\"1025\",tier=\"1\"} 2.5\n"), std::string::npos);
  EXPECT_NE(t.find("vstorage_cs_flag{cs=\"1025\",flag=\"J\"} 1\n"), std::string::npos);
  EXPECT_EQ(t.find("vstorage_cs_flag{cs=\"1026\""), std::string::npos);
  EXPECT_NE(t.find("vstorage_client_write_bytes_per_second{client=\"2049\",host=\"node1\"} 1.04858e+06\n"),
            std::string::npos);
  EXPECT_NE(t.find("# TYPE vstorage_mds_commits_total counter\nvstorage_mds_commits_total{mds=\"1\"} 12345\n"),
            std::string::npos);
  // Every line is a comment or "name{labels} value": nothing a scraper would refuse.
  size_t families = 0;
  for (size_t at = 0; at < t.size();) {
    size_t nl = t.find('\n', at);
    ASSERT_NE(nl, std::string::npos) << "the text must end with a newline";
    std::string line = t.substr(at, nl - at);
    at = nl + 1;
    if (line.rfind("# TYPE ", 0) == 0) ++families;
    if (line[0] == '#') continue;
    EXPECT_EQ(line.rfind("vstorage_", 0), 0u) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos) << line;
  }
  EXPECT_GE(families, 20u);
}

std::string Http(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(Metrics, TheServerAnswersMetricsOnlyAndDropsASilentPeer) {
  int renders = 0;
  auto s = MetricsServer::Start(HostPort{"127.0.0.1", 0}, [&] {
    ++renders;
    return std::string("vstorage_x 1\n");
  });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  int port = (*s)->port();
  std::string ok = Http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(ok.find("\r\n\r\nvstorage_x 1\n"), std::string::npos);
  EXPECT_EQ(Http(port, "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Http(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(10000, 'a')).rfind("HTTP/1.1 431", 0), 0u);
  // A peer that says nothing is dropped after kMetricsIoTimeoutMs; the next one is served.
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(Http(port, "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  ::close(silent);
  EXPECT_EQ(renders, 2);
  // A peer trickling its request a byte at a time is dropped by the head's deadline too.
  int slow = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(slow, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{0, 300000};
  ::setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto t0 = std::chrono::steady_clock::now();
  bool dropped = false;
  while (!dropped && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
    (void)::send(slow, "G", 1, MSG_NOSIGNAL);
    char c;
    dropped = ::recv(slow, &c, 1, 0) == 0;  // EOF: the server closed it (else a 300 ms timeout)
  }
  ::close(slow);
  EXPECT_TRUE(dropped);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(kMetricsIoTimeoutMs / 1000 + 2));
  EXPECT_EQ(Http(port, "GET /metrics HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200", 0), 0u);
  (*s)->Stop();
}

}  // namespace
}  // namespace vstorage::mds
