// Client side of the RPC layer as its callers use it: handles (Conn) on the shared,
// multiplexed channels of rpc/channel.h, one channel per address (ConnPool).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/channel.h"
#include "rpc/socket.h"

namespace vstorage::rpc {

inline constexpr int kConnectTimeoutMs = 3000;
inline constexpr int kDefaultCallTimeoutMs = 30000;

// A caller's handle on the shared channel to one address (rpc/channel.h): many Conns to
// one peer share one multiplexed connection. A Conn has at most one split call (Send, then
// Receive) outstanding. Not thread-safe itself; hand one to one thread at a time.
class Conn {
 public:
  // A connection of its own, on the process's default I/O loop.
  static Result<std::unique_ptr<Conn>> Dial(const std::string& addr, const Credentials& cred,
                                            int timeout_ms = kConnectTimeoutMs);
  explicit Conn(std::shared_ptr<Channel> ch);
  ~Conn();  // a call sent and never received is abandoned
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
  bool broken() const { return broken_ || !ch_->healthy(); }
  const std::string& addr() const { return ch_->addr(); }
  const std::shared_ptr<Channel>& channel() const { return ch_; }

 private:
  Status Check(Status st);
  std::shared_ptr<Channel> ch_;
  std::unique_ptr<Channel::Ticket> outstanding_;
  Frame outstanding_reply_;
  uint64_t outstanding_id_ = 0;
  bool broken_ = false;
};

// Thread-safe: one shared channel per address, dialled on first use and again after it
// broke; Acquire hands out a handle on it. A channel the peer closed meanwhile (a server
// restarted) is never handed out: its first send would fail and the peer would be blamed
// for an outage that is long over.
class ConnPool {
 public:
  explicit ConnPool(Credentials cred, IoLoop* loop = nullptr)
      : cred_(std::move(cred)), loop_(loop ? loop : &IoLoop::Default()) {}
  Result<std::unique_ptr<Conn>> Acquire(const std::string& addr);
  // Gives a handle back (a broken one takes its channel with it).
  void Release(std::unique_ptr<Conn> c);
  // Drops the channel to addr (after a failure there); calls on it still finish.
  void Forget(const std::string& addr);
  // The channel to addr if one is up, else nullptr; never dials or blocks (for async
  // callers, which leave dialling to a thread that may block).
  std::shared_ptr<Channel> Existing(const std::string& addr);
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
  IoLoop* loop_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Channel>> channels_;
};

}  // namespace vstorage::rpc
