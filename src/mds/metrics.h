// Prometheus metrics of the cluster (issue 14 item 8; docs/design/mds.md "Metrics").
//
// The master MDS serves the text exposition format (version 0.0.4) at
// http://ADDR/metrics, ADDR from mds.conf `metrics=HOST:PORT` (default: the MDS's base port
// + 2 on its address; `metrics=off` turns it off). What it says is what `vstorage stat`
// shows: cluster status, space (in all and per tier), chunks per state, every CS (status,
// space, iowait, queue depth, latency, flags), every client's I/O rates, the MDS's commits.
//
// Thread-safety: RenderMetrics is pure. MetricsServer serves one request at a time on a
// thread of its own (a scrape is small and rare), each request head within
// kMetricsIoTimeoutMs in all; Stop()
// from any thread, once.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/status.h"
#include "proto/messages.h"

namespace vstorage::mds {

inline constexpr int kMetricsIoTimeoutMs = 2000;       // a scraper that stalls is dropped
inline constexpr size_t kMaxMetricsRequestBytes = 8192;  // an HTTP request head, at most

std::string RenderMetrics(const proto::ClusterStatReply& st);

class MetricsServer {
 public:
  // Listens on addr; every GET /metrics gets render()'s text.
  static Result<std::unique_ptr<MetricsServer>> Start(const HostPort& addr, std::function<std::string()> render);
  ~MetricsServer();
  void Stop();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  void Loop();
  void Serve(int fd);
  int listen_fd_ = -1;
  int port_ = 0;
  std::function<std::string()> render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vstorage::mds
