#include "rpc/client.h"

#include <cstring>

namespace vstorage::rpc {

Result<std::unique_ptr<Conn>> Conn::Dial(const std::string& addr, const Credentials& cred, int timeout_ms) {
  ASSIGN_OR_RETURN(auto ch, Channel::Dial(IoLoop::Default(), addr, cred, timeout_ms));
  return std::make_unique<Conn>(std::move(ch));
}

Conn::Conn(std::shared_ptr<Channel> ch) : ch_(std::move(ch)) {}

Conn::~Conn() {
  if (outstanding_) ch_->Abandon(std::move(outstanding_));
}

Status Conn::Check(Status st) {
  // Transport failures (and our own bad buffers) leave the connection unusable; an error
  // the peer replied with does not.
  if (!st.ok() && !ch_->healthy()) broken_ = true;
  return st;
}

Status Conn::Send(proto::MsgType type, const std::string& body, const char* payload, size_t payload_len,
                  uint64_t* req_id) {
  if (broken()) return Err(Code::kUnavailable, "connection to " + addr() + " is broken");
  if (outstanding_) return Err(Code::kInternal, "a call on this connection handle is still outstanding");
  auto t = ch_->Start(type, body, payload, payload_len, &outstanding_reply_, kDefaultCallTimeoutMs);
  if (!t.ok()) return Check(t.status());
  outstanding_ = std::move(t).value();
  *req_id = ++outstanding_id_;
  return Status::Ok();
}

Status Conn::Receive(uint64_t req_id, Frame* reply, int timeout_ms, char* payload_out, size_t payload_cap,
                     size_t* payload_len_out) {
  if (!outstanding_ || req_id != outstanding_id_) return Err(Code::kInternal, "no such request outstanding");
  Status st = ch_->Finish(std::move(outstanding_), timeout_ms);
  *reply = std::move(outstanding_reply_);
  outstanding_reply_ = Frame{};
  if (st.ok() && payload_out && reply->payload.size() <= payload_cap) {
    std::memcpy(payload_out, reply->payload.data(), reply->payload.size());
    if (payload_len_out) *payload_len_out = reply->payload.size();
    reply->payload.clear();
  }
  return Check(st);
}

Status Conn::CallRaw(proto::MsgType type, const std::string& body, const char* payload, size_t payload_len,
                     Frame* reply, int timeout_ms, char* payload_out, size_t payload_cap, size_t* payload_len_out) {
  if (broken()) return Err(Code::kUnavailable, "connection to " + addr() + " is broken");
  return Check(ch_->Call(type, body, payload, payload_len, reply, timeout_ms, payload_out, payload_cap, payload_len_out));
}

Result<std::unique_ptr<Conn>> ConnPool::Acquire(const std::string& addr) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = channels_.find(addr);
    if (it != channels_.end()) {
      if (it->second->healthy() && !it->second->IdleButStale()) return std::make_unique<Conn>(it->second);
      channels_.erase(it);
    }
  }
  // Dialled without the lock (it may take a connect timeout); two callers racing here both
  // dial, and the channel stored last serves later callers.
  ASSIGN_OR_RETURN(auto ch, Channel::Dial(*loop_, addr, cred_, kConnectTimeoutMs));
  std::lock_guard<std::mutex> l(mu_);
  channels_[addr] = ch;
  return std::make_unique<Conn>(std::move(ch));
}

void ConnPool::Release(std::unique_ptr<Conn> c) {
  if (!c || !c->broken()) return;
  std::lock_guard<std::mutex> l(mu_);
  auto it = channels_.find(c->addr());
  if (it != channels_.end() && it->second == c->channel()) channels_.erase(it);
}

std::shared_ptr<Channel> ConnPool::Existing(const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = channels_.find(addr);
  if (it == channels_.end() || !it->second->healthy()) return nullptr;
  return it->second;
}

void ConnPool::Forget(const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  channels_.erase(addr);
}

}  // namespace vstorage::rpc
