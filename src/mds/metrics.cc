#include "mds/metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>

#include "common/log.h"

namespace vstorage::mds {

namespace {

// A label value as the exposition format wants it: \, " and newline escaped.
std::string Esc(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class Writer {
 public:
  // Declares a metric family once (HELP and TYPE), then its samples.
  void Family(const std::string& name, const std::string& type, const std::string& help) {
    os_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(const std::string& name, const std::map<std::string, std::string>& labels, double v) {
    os_ << name;
    if (!labels.empty()) {
      os_ << "{";
      bool first = true;
      for (const auto& [k, val] : labels) {
        os_ << (first ? "" : ",") << k << "=\"" << Esc(val) << "\"";
        first = false;
      }
      os_ << "}";
    }
    os_ << " " << v << "\n";
  }
  std::string str() const { return os_.str(); }

 private:
  std::ostringstream os_;
};

}  // namespace

std::string RenderMetrics(const proto::ClusterStatReply& st) {
  Writer w;
  const std::map<std::string, std::string> cl{{"cluster", st.cluster}};
  w.Family("vstorage_cluster_status", "gauge", "1 for the cluster's status (healthy, degraded, failure, unknown)");
  for (const char* s : {"healthy", "degraded", "failure", "unknown"})
    w.Sample("vstorage_cluster_status", {{"cluster", st.cluster}, {"status", s}}, st.status == s ? 1 : 0);
  w.Family("vstorage_space_total_bytes", "gauge", "raw space of every active CS");
  w.Sample("vstorage_space_total_bytes", cl, static_cast<double>(st.total_bytes));
  w.Family("vstorage_space_free_bytes", "gauge", "free raw space of every active CS");
  w.Sample("vstorage_space_free_bytes", cl, static_cast<double>(st.free_bytes));
  w.Family("vstorage_space_allocatable_bytes", "gauge", "space new data can still take, replicas counted (guide 5.3.1.1)");
  w.Sample("vstorage_space_allocatable_bytes", cl, static_cast<double>(st.allocatable_bytes));
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> tiers;  // tier -> total, free of active CS
  for (const auto& c : st.cs)
    if (c.status == "active") {
      tiers[c.tier].first += c.total_bytes;
      tiers[c.tier].second += c.free_bytes;
    }
  w.Family("vstorage_tier_space_total_bytes", "gauge", "raw space of the active CS of a tier");
  for (const auto& [t, s] : tiers)
    w.Sample("vstorage_tier_space_total_bytes", {{"cluster", st.cluster}, {"tier", std::to_string(t)}}, static_cast<double>(s.first));
  w.Family("vstorage_tier_space_free_bytes", "gauge", "free raw space of the active CS of a tier");
  for (const auto& [t, s] : tiers)
    w.Sample("vstorage_tier_space_free_bytes", {{"cluster", st.cluster}, {"tier", std::to_string(t)}}, static_cast<double>(s.second));
  w.Family("vstorage_files", "gauge", "files in the cluster");
  w.Sample("vstorage_files", cl, static_cast<double>(st.files));
  w.Family("vstorage_chunks", "gauge", "chunks in the cluster");
  w.Sample("vstorage_chunks", cl, static_cast<double>(st.chunks));
  const auto& cs = st.chunk_states;
  w.Family("vstorage_chunks_by_state", "gauge", "chunks per state (guide 5.3.2)");
  for (const auto& [name, n] : std::initializer_list<std::pair<const char*, uint64_t>>{
           {"healthy", cs.healthy}, {"degraded", cs.degraded}, {"urgent", cs.urgent}, {"blocked", cs.blocked},
           {"pending", cs.pending}, {"offline", cs.offline}, {"replicating", cs.replicating},
           {"overcommitted", cs.overcommitted}, {"deleting", cs.deleting}, {"void", cs.void_}, {"standby", cs.standby}})
    w.Sample("vstorage_chunks_by_state", {{"cluster", st.cluster}, {"state", name}}, static_cast<double>(n));
  w.Family("vstorage_recovery_chunks", "gauge", "chunks below their replica count, recovery still to do or doing");
  w.Sample("vstorage_recovery_chunks", cl,
           static_cast<double>(cs.degraded + cs.urgent + cs.blocked + cs.replicating));

  w.Family("vstorage_cs_status", "gauge", "1 for a CS's status (active, inactive, offline, dropped, releasing)");
  for (const auto& c : st.cs)
    w.Sample("vstorage_cs_status", {{"cs", c.id.str()}, {"host", c.host_id}, {"status", c.status}}, 1);
  auto per_cs = [&](const std::string& name, const std::string& help, auto get) {
    w.Family(name, "gauge", help);
    for (const auto& c : st.cs) w.Sample(name, {{"cs", c.id.str()}, {"tier", std::to_string(c.tier)}}, get(c));
  };
  per_cs("vstorage_cs_space_total_bytes", "raw space of a CS", [](const auto& c) { return static_cast<double>(c.total_bytes); });
  per_cs("vstorage_cs_space_free_bytes", "free raw space of a CS", [](const auto& c) { return static_cast<double>(c.free_bytes); });
  per_cs("vstorage_cs_replicas", "chunk replicas on a CS", [](const auto& c) { return static_cast<double>(c.replicas); });
  per_cs("vstorage_cs_iowait_percent", "IOWAIT of a CS, last 20 s", [](const auto& c) { return static_cast<double>(c.iowait_pct); });
  per_cs("vstorage_cs_qdepth", "QDEPTH of a CS, last 20 s", [](const auto& c) { return c.qdepth_x10 / 10.0; });
  per_cs("vstorage_cs_latency_avg_ms", "IOLAT average of a CS, last 20 s", [](const auto& c) { return static_cast<double>(c.lat_avg_ms); });
  per_cs("vstorage_cs_latency_max_ms", "IOLAT maximum of a CS, last 20 s", [](const auto& c) { return static_cast<double>(c.lat_max_ms); });
  w.Family("vstorage_cs_flag", "gauge", "1 for each FLAGS letter a CS shows (guide 8.1.8)");
  for (const auto& c : st.cs)
    for (char f : c.flags) w.Sample("vstorage_cs_flag", {{"cs", c.id.str()}, {"flag", std::string(1, f)}}, 1);

  auto per_client = [&](const std::string& name, const std::string& help, auto get) {
    w.Family(name, "gauge", help);
    for (const auto& c : st.clients) w.Sample(name, {{"client", c.id.str()}, {"host", c.host}}, get(c));
  };
  per_client("vstorage_client_read_bytes_per_second", "a client's READ rate", [](const auto& c) { return static_cast<double>(c.read_bps); });
  per_client("vstorage_client_write_bytes_per_second", "a client's WRITE rate", [](const auto& c) { return static_cast<double>(c.write_bps); });
  per_client("vstorage_client_read_ops_per_second", "a client's RD_OPS rate", [](const auto& c) { return static_cast<double>(c.read_ops); });
  per_client("vstorage_client_write_ops_per_second", "a client's WR_OPS rate", [](const auto& c) { return static_cast<double>(c.write_ops); });
  per_client("vstorage_client_fsyncs_per_second", "a client's FSYNCS rate", [](const auto& c) { return static_cast<double>(c.fsyncs); });

  w.Family("vstorage_mds_master", "gauge", "1 for the master MDS");
  for (const auto& m : st.mds) w.Sample("vstorage_mds_master", {{"mds", m.id.str()}}, m.master ? 1 : 0);
  w.Family("vstorage_mds_commits_total", "counter", "journal commits since the MDS started");
  for (const auto& m : st.mds) w.Sample("vstorage_mds_commits_total", {{"mds", m.id.str()}}, static_cast<double>(m.commits));
  w.Family("vstorage_mds_commits_per_second", "gauge", "COMMITS: journal commit rate, last 20 s");
  for (const auto& m : st.mds) w.Sample("vstorage_mds_commits_per_second", {{"mds", m.id.str()}}, m.commits_per_s);
  return w.str();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const HostPort& addr, std::function<std::string()> render) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  std::string port = std::to_string(addr.port);
  if (int rc = ::getaddrinfo(addr.host.empty() ? nullptr : addr.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Err(Code::kInvalidArgument, "metrics address " + addr.str() + ": " + ::gai_strerror(rc));
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    int e = errno;
    ::freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    return Err(Code::kBusy, "cannot serve metrics at " + addr.str() + ": " + std::strerror(e) +
                                " (set another address with metrics=HOST:PORT in mds.conf, or metrics=off)");
  }
  ::freeaddrinfo(res);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  std::unique_ptr<MetricsServer> s(new MetricsServer);
  s->listen_fd_ = fd;
  s->port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  s->render_ = std::move(render);
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void MetricsServer::Loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;  // wakes to see stop_
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    Serve(c);
    ::close(c);
  }
}

void MetricsServer::Serve(int fd) {
  timeval tv{kMetricsIoTimeoutMs / 1000, (kMetricsIoTimeoutMs % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string head;
  char buf[1024];
  // The whole request head within the timeout, not each piece: a peer trickling a byte at a
  // time cannot hold the only thread.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kMetricsIoTimeoutMs);
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxMetricsRequestBytes) {
    if (std::chrono::steady_clock::now() > deadline) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;  // gone, or silent past the timeout
    head.append(buf, static_cast<size_t>(n));
  }
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
  if (head.find("\r\n\r\n") == std::string::npos) {
    status = "431 Request Header Fields Too Large";
    body = "request head over " + std::to_string(kMaxMetricsRequestBytes) + " bytes\n";
  } else if (head.rfind("GET /metrics ", 0) == 0 || head.rfind("GET /metrics?", 0) == 0) {
    body = render_();
  } else {
    status = "404 Not Found";
    body = "vstorage MDS: the metrics are at /metrics\n";
  }
  std::string out = "HTTP/1.1 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace vstorage::mds
