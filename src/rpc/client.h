// Client side of the RPC layer: an authenticated connection making one call at a time, and
// a pool of such connections per address so concurrent callers do not serialise.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/socket.h"

namespace vstorage::rpc {

inline constexpr int kConnectTimeoutMs = 3000;
inline constexpr int kDefaultCallTimeoutMs = 30000;
inline constexpr size_t kMaxIdleConnsPerAddr = 16;

struct Credentials {
  std::string cluster;
  std::string key;
  proto::PeerKind kind = proto::PeerKind::kClient;
};

class Conn {
 public:
  static Result<std::unique_ptr<Conn>> Dial(const std::string& addr, const Credentials& cred,
                                            int timeout_ms = kConnectTimeoutMs);
  // Sends a request and waits for its reply. An error reply becomes its Status. A transport
  // error marks the connection broken (broken() == true).
  Status CallRaw(proto::MsgType type, const std::string& body, const char* payload,
                 size_t payload_len, Frame* reply, int timeout_ms = kDefaultCallTimeoutMs,
                 char* payload_out = nullptr, size_t payload_cap = 0, size_t* payload_len_out = nullptr);

  // Split form of CallRaw for callers that overlap their own work with the peer's:
  // Send, do something, then Receive the reply of that request.
  Status Send(proto::MsgType type, const std::string& body, const char* payload,
              size_t payload_len, uint64_t* req_id);
  Status Receive(uint64_t req_id, Frame* reply, int timeout_ms = kDefaultCallTimeoutMs,
                 char* payload_out = nullptr, size_t payload_cap = 0,
                 size_t* payload_len_out = nullptr);

  template <typename Req, typename Rep>
  Status Call(proto::MsgType type, const Req& req, Rep* rep, int timeout_ms = kDefaultCallTimeoutMs,
              const char* payload = nullptr, size_t payload_len = 0) {
    Frame f;
    RETURN_IF_ERROR(CallRaw(type, proto::EncodeToString(req), payload, payload_len, &f, timeout_ms));
    return proto::DecodeFromString(f.body, rep, "reply");
  }
  bool broken() const { return broken_; }
  // An idle connection the peer has closed meanwhile (see Socket::IdleButStale).
  bool stale() const { return sock_.IdleButStale(); }
  const std::string& addr() const { return addr_; }

 private:
  Conn(Socket s, std::string addr) : sock_(std::move(s)), addr_(std::move(addr)) {}
  Status Broken(const Status& st);
  Socket sock_;
  std::string addr_;
  uint64_t next_id_ = 1;
  bool broken_ = false;
};

// Thread-safe pool; Acquire dials when no idle connection exists. An idle connection the
// peer closed meanwhile (a server restarted) is dropped, never handed out: its first send
// would fail and the peer would be blamed for an outage that is long over.
class ConnPool {
 public:
  explicit ConnPool(Credentials cred) : cred_(std::move(cred)) {}
  Result<std::unique_ptr<Conn>> Acquire(const std::string& addr);
  // Returns a connection for reuse unless it is broken.
  void Release(std::unique_ptr<Conn> c);
  // Drops every idle connection to addr (after a failure there).
  void Forget(const std::string& addr);
  const Credentials& credentials() const { return cred_; }

  // Acquire + Call + Release.
  template <typename Req, typename Rep>
  Status Call(const std::string& addr, proto::MsgType type, const Req& req, Rep* rep,
              int timeout_ms = kDefaultCallTimeoutMs) {
    ASSIGN_OR_RETURN(auto c, Acquire(addr));
    Status st = c->Call(type, req, rep, timeout_ms);
    Release(std::move(c));
    return st;
  }

 private:
  Credentials cred_;
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Conn>>> idle_;
};

}  // namespace vstorage::rpc
