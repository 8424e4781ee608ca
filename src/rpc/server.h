// Event-driven RPC server (docs/design/rpc.md). A fixed number of I/O threads (standalone
// Asio, C++20 coroutines) accept connections, authenticate them (rpc/auth.h) and read their
// frames; each request is handed to a bounded worker pool, so the requests of one connection
// run concurrently and their replies go out in whatever order they finish, matched by
// request id. A connection costs no thread while idle.
//
// Limits (all named below): connections per server; requests in flight per connection — at
// the limit the server stops reading that connection until a reply is out (backpressure);
// before authentication, a frame cap of a few KiB, a handshake deadline and a cap on pending
// handshakes per source address and in all, so a silent or slow peer holds neither memory
// nor slots.
//
// Thread-safety: Listen/Start/Stop from one thread. A handler runs on a worker thread and
// may block; it must reply exactly once (or the peer times out), from any thread. Requests
// the server's InlineFilter picks run on the I/O thread instead, and must not block there
// (no waiting for disk, peers or long-held locks; only small replies): that saves the
// hand-off to a worker and back, two thread switches per request.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/frame.h"

namespace vstorage::rpc {

inline constexpr int kMaxServerConnections = 2048;
inline constexpr int kServerIoThreads = 1;  // see kDefaultIoThreads (rpc/channel.h)
inline constexpr size_t kMaxServerWorkers = 128;
inline constexpr int kMaxInflightPerConn = 64;
inline constexpr int kMaxPendingHandshakes = 256;
inline constexpr int kMaxPendingHandshakesPerSource = 16;
// A reply the peer does not take within this long closes the connection: a peer that
// stopped reading must not pin a worker.
inline constexpr int kReplyWriteTimeoutMs = 30000;

struct ServerLimits {
  int max_connections = kMaxServerConnections;
  size_t max_workers = kMaxServerWorkers;
  int max_inflight_per_conn = kMaxInflightPerConn;
  int handshake_timeout_ms = kHandshakeTimeoutMs;
  int max_pending_handshakes = kMaxPendingHandshakes;
  int max_pending_handshakes_per_source = kMaxPendingHandshakesPerSource;
};

namespace detail {
class Connection;
struct ServerCore;
}  // namespace detail

// One request's way back to its peer. Copyable; valid after the handler returned (a long
// poll may reply later from another thread). A reply with no payload or a small one
// (kMaxCopiedReplyPayloadBytes, copied) is queued and the call returns Ok at once; whether
// it reached the peer is not reported. A larger payload is written from the caller's buffer
// before Reply returns (it only has to live until then), kUnavailable once the connection is
// gone; such a reply must not be made on an I/O thread of the server. PostEncoded is
// ReplyEncoded without a result (for replies made under a lock or by a timer).
class ServerConn {
 public:
  ServerConn(std::shared_ptr<detail::Connection> c, proto::PeerKind kind);
  proto::PeerKind kind() const { return kind_; }
  std::string peer() const;

  // A reply with no payload or one of at most kMaxCopiedReplyPayloadBytes (copied) is
  // queued for the connection's writer and the call returns at once (Ok: whether it
  // reached the peer is not known then); a larger payload is written from the caller's
  // buffer, and the call returns when it was (or failed).
  static constexpr size_t kMaxCopiedReplyPayloadBytes = 64 << 10;
  template <typename T>
  Status Reply(const Frame& req, const T& msg, const char* payload = nullptr, size_t payload_len = 0) {
    return Send(req, kFlagResponse, proto::EncodeToString(msg), payload, payload_len);
  }
  Status ReplyError(const Frame& req, const Status& st);
  // A reply whose body is already encoded (made under a lock, sent after it is released).
  Status ReplyEncoded(const Frame& req, std::string body) {
    return Send(req, kFlagResponse, std::move(body), nullptr, 0);
  }
  void PostEncoded(const Frame& req, std::string body);

 private:
  Status Send(const Frame& req, uint32_t flags, std::string body, const char* payload, size_t payload_len);
  std::shared_ptr<detail::Connection> conn_;
  proto::PeerKind kind_;
};

class Server {
 public:
  using Handler = std::function<void(ServerConn&, Frame&)>;
  // Called once per connection after a successful auth-node password handshake.
  using AuthNodeHook = std::function<void(const std::string& peer)>;
  // True for a request the handler serves without blocking (called on the I/O thread, for
  // every request of an authenticated connection; it must be cheap).
  using InlineFilter = std::function<bool(const Frame&)>;

  Server();
  explicit Server(ServerLimits limits);
  ~Server();  // Stop()
  // Binds and listens; port 0 picks a free port (see port()).
  Status Listen(const HostPort& addr);
  void Start(ServerAuth auth, Handler handler, AuthNodeHook hook = nullptr, InlineFilter run_inline = nullptr);
  // True on one of this process's server I/O threads (where a handler must not block).
  static bool OnIoThread();
  // Closes the listener and every connection, then waits for running handlers.
  void Stop();
  int port() const { return port_; }

  struct Stats {
    int connections = 0;          // authenticated and pending
    int pending_handshakes = 0;
    uint64_t refused_handshakes = 0;  // over a pending-handshake cap
    uint64_t failed_handshakes = 0;   // bad key, too large, too slow, garbage
    uint64_t paused_reads = 0;        // a connection at its in-flight limit stopped being read
    size_t worker_threads = 0;
    size_t pooled_payloads = 0;  // request payload buffers kept for reuse
  };
  Stats stats() const;

 private:
  std::shared_ptr<detail::ServerCore> core_;
  int port_ = 0;
  bool started_ = false;
};

}  // namespace vstorage::rpc
