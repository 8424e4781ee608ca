#include "rpc/client.h"

namespace vstorage::rpc {

Result<std::unique_ptr<Conn>> Conn::Dial(const std::string& addr, const Credentials& cred,
                                         int timeout_ms) {
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(addr, 0));
  ASSIGN_OR_RETURN(Socket s, Socket::Connect(hp, timeout_ms));
  Status st = ClientHandshake(s, cred.cluster, cred.key, cred.kind);
  if (!st.ok()) return st.Annotate(addr);
  return std::unique_ptr<Conn>(new Conn(std::move(s), addr));
}

Status Conn::Broken(const Status& st) {
  broken_ = true;
  sock_.Close();
  if (st.code() == Code::kTimeout) return st.Annotate(addr_);
  if (st.code() == Code::kInternal) return st.Annotate("to " + addr_);  // our own fault: keep it apart
  return Err(Code::kUnavailable, addr_ + ": " + st.message());
}

Status Conn::Send(proto::MsgType type, const std::string& body, const char* payload,
                  size_t payload_len, uint64_t* req_id) {
  if (broken_) return Err(Code::kUnavailable, "connection to " + addr_ + " is broken");
  Frame f;
  f.type = static_cast<uint16_t>(type);
  f.req_id = next_id_++;
  f.body = body;
  Status st = sock_.Send(f, payload, payload_len);
  if (!st.ok()) return Broken(st);
  *req_id = f.req_id;
  return Status::Ok();
}

Status Conn::Receive(uint64_t req_id, Frame* reply, int timeout_ms, char* payload_out,
                     size_t payload_cap, size_t* payload_len_out) {
  if (broken_) return Err(Code::kUnavailable, "connection to " + addr_ + " is broken");
  Status st = sock_.Recv(reply, timeout_ms, payload_out, payload_cap, payload_len_out);
  if (st.ok() && reply->req_id != req_id) st = Err(Code::kProtocol, "reply for another request");
  if (!st.ok()) return Broken(st);
  if (reply->flags & kFlagError) {
    proto::ErrorReply er;
    RETURN_IF_ERROR(proto::DecodeFromString(reply->body, &er, "error reply"));
    return Err(static_cast<Code>(er.code), er.message);
  }
  return Status::Ok();
}

Status Conn::CallRaw(proto::MsgType type, const std::string& body, const char* payload,
                     size_t payload_len, Frame* reply, int timeout_ms, char* payload_out,
                     size_t payload_cap, size_t* payload_len_out) {
  uint64_t id;
  RETURN_IF_ERROR(Send(type, body, payload, payload_len, &id));
  return Receive(id, reply, timeout_ms, payload_out, payload_cap, payload_len_out);
}

Result<std::unique_ptr<Conn>> ConnPool::Acquire(const std::string& addr) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = idle_.find(addr);
    while (it != idle_.end() && !it->second.empty()) {
      auto c = std::move(it->second.back());
      it->second.pop_back();
      if (!c->stale()) return c;
    }
  }
  return Conn::Dial(addr, cred_);
}

void ConnPool::Release(std::unique_ptr<Conn> c) {
  if (!c || c->broken()) return;
  std::lock_guard<std::mutex> l(mu_);
  auto& v = idle_[c->addr()];
  if (v.size() < kMaxIdleConnsPerAddr) v.push_back(std::move(c));
}

void ConnPool::Forget(const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  idle_.erase(addr);
}

}  // namespace vstorage::rpc
