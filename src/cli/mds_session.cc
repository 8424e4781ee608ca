#include "cli/mds_session.h"

namespace vstorage::cli {

Result<std::unique_ptr<MdsSession>> MdsSession::Open(const std::string& cluster) {
  std::unique_ptr<MdsSession> s(new MdsSession());
  s->cluster_ = cluster;
  ASSIGN_OR_RETURN(s->bs_list_, ReadBsList(cluster));
  ASSIGN_OR_RETURN(s->key_, ReadClusterKey(cluster));
  RETURN_IF_ERROR(s->ConnectFrom(0));
  return s;
}

Status MdsSession::ConnectFrom(size_t from) {
  conn_.reset();
  rpc::Credentials cred{cluster_, key_, proto::PeerKind::kAdmin};
  std::string tried;
  Status last;
  for (size_t k = 0; k < bs_list_.size(); ++k) {
    size_t i = (from + k) % bs_list_.size();
    std::string addr = MdsServiceAddr(bs_list_[i]).str();
    tried += (tried.empty() ? "" : ", ") + addr;
    auto c = rpc::Conn::Dial(addr, cred);
    if (c.ok()) {
      conn_ = std::move(c).value();
      index_ = i;
      return Status::Ok();
    }
    last = c.status();
    // A refused key is the same at every MDS; its message already says to run auth-node.
    if (last.code() == Code::kAuthFailed) return last;
  }
  return Err(Code::kUnavailable, "cannot reach any MDS of cluster '" + cluster_ + "' (tried " +
                                     tried + "): " + last.message() +
                                     " \u2014 is vstorage-mdsd running?");
}

}  // namespace vstorage::cli
