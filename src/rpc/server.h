// Thread-per-connection RPC server (docs/design/rpc.md explains the choice). Each accepted
// connection is authenticated (rpc/auth.h), then its requests are handled one at a time, in
// order, on that connection's thread. Handlers reply through ServerConn.
#pragma once
#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/socket.h"

namespace vstorage::rpc {

inline constexpr int kMaxServerConnections = 1024;

class ServerConn {
 public:
  ServerConn(Socket& s, proto::PeerKind kind) : sock_(s), kind_(kind) {}
  proto::PeerKind kind() const { return kind_; }
  std::string peer() const { return sock_.PeerAddress(); }

  template <typename T>
  Status Reply(const Frame& req, const T& msg, const char* payload = nullptr,
               size_t payload_len = 0) {
    Frame f;
    f.type = req.type;
    f.req_id = req.req_id;
    f.flags = kFlagResponse;
    f.body = proto::EncodeToString(msg);
    return sock_.Send(f, payload, payload_len);
  }
  Status ReplyError(const Frame& req, const Status& st);
  // A reply whose body is already encoded (made under a lock, sent after it is released).
  Status ReplyEncoded(const Frame& req, std::string body) {
    Frame f;
    f.type = req.type;
    f.req_id = req.req_id;
    f.flags = kFlagResponse;
    f.body = std::move(body);
    return sock_.Send(f, nullptr, 0);
  }
  Socket& socket() { return sock_; }

 private:
  Socket& sock_;
  proto::PeerKind kind_;
};

class Server {
 public:
  // Called for every request; must reply (or the peer times out). Runs on the connection's thread.
  using Handler = std::function<void(ServerConn&, Frame&)>;
  // Called once per connection after a successful auth-node password handshake.
  using AuthNodeHook = std::function<void(const std::string& peer)>;

  Server() = default;
  ~Server();
  // Binds and listens; port 0 picks a free port (see port()).
  Status Listen(const HostPort& addr);
  void Start(ServerAuth auth, Handler handler, AuthNodeHook hook = nullptr);
  void Stop();
  int port() const { return port_; }

 private:
  void AcceptLoop();
  void Serve(std::shared_ptr<Socket> s);

  int listen_fd_ = -1;
  int port_ = 0;
  ServerAuth auth_;
  Handler handler_;
  AuthNodeHook hook_;
  std::atomic<bool> stop_{false};
  std::atomic<int> conns_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::weak_ptr<Socket>> live_;
};

}  // namespace vstorage::rpc
