// The admin connection to a cluster's MDS: reads bs.list and the cluster key of this host,
// dials each MDS (service port = base + 1) in order and keeps the first that answers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "proto/messages.h"
#include "rpc/client.h"

namespace vstorage::cli {

class MdsSession {
 public:
  // Errors: the ReadBsList / ReadClusterKey messages (they say what to run); kAuthFailed
  // when an MDS refuses this host's key; kUnavailable naming every address tried.
  static Result<std::unique_ptr<MdsSession>> Open(const std::string& cluster);

  // One request. A kNotMaster reply makes the session move on to the next MDS of bs.list
  // and resend (the request was not executed); other errors are returned as they are.
  // Each attempt waits at most timeout_ms for its reply.
  template <typename Req, typename Rep>
  Status Call(proto::MsgType type, const Req& req, Rep* rep,
              int timeout_ms = rpc::kDefaultCallTimeoutMs) {
    Status st;
    for (size_t attempt = 0; attempt < bs_list_.size(); ++attempt) {
      st = conn_->Call(type, req, rep, timeout_ms);
      if (st.code() != Code::kNotMaster) return st;
      Status next = ConnectFrom(index_ + 1);
      if (!next.ok()) return st.Annotate("MDS " + mds_addr().str() + " is not the master");
    }
    return st;
  }

  // Base address ("HOST:PORT" as in bs.list) of the MDS in use, and its position there.
  const HostPort& mds_addr() const { return bs_list_[index_]; }
  size_t mds_index() const { return index_; }
  const std::string& cluster() const { return cluster_; }

 private:
  MdsSession() = default;
  // Dials bs_list_[from..] then bs_list_[0..from) until one answers.
  Status ConnectFrom(size_t from);

  std::string cluster_;
  std::string key_;
  std::vector<HostPort> bs_list_;
  size_t index_ = 0;
  std::unique_ptr<rpc::Conn> conn_;
};

}  // namespace vstorage::cli
