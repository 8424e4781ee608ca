#include "rpc/auth.h"

#include "common/config.h"

namespace vstorage::rpc {

using proto::MsgType;

namespace {

template <typename T>
Status SendMsg(Socket& s, MsgType t, const T& m) {
  Frame f;
  f.type = static_cast<uint16_t>(t);
  f.body = proto::EncodeToString(m);
  return s.Send(f);
}

template <typename T>
Status RecvMsg(Socket& s, MsgType want, T* m) {
  Frame f;
  RETURN_IF_ERROR(s.Recv(&f, kHandshakeTimeoutMs));
  if (f.flags & kFlagError) {
    proto::ErrorReply er;
    RETURN_IF_ERROR(proto::DecodeFromString(f.body, &er, "error reply"));
    return Err(static_cast<Code>(er.code), er.message);
  }
  if (f.type != static_cast<uint16_t>(want))
    return Err(Code::kProtocol, "unexpected message " + std::to_string(f.type) + " in handshake");
  return proto::DecodeFromString(f.body, m, "handshake message");
}

Status SendError(Socket& s, Code c, const std::string& msg) {
  Frame f;
  f.flags = kFlagResponse | kFlagError;
  f.type = static_cast<uint16_t>(MsgType::kHandshakeResult);
  f.body = proto::EncodeToString(proto::ErrorReply{static_cast<uint16_t>(c), msg});
  (void)s.Send(f);
  return Err(c, msg);
}

std::string WrapKey(const std::string& pw_hash, const std::string& nonce_s,
                    const std::string& key) {
  std::string pad = HmacSha256(pw_hash, "wrap" + nonce_s);
  std::string out = key;
  for (size_t i = 0; i < out.size() && i < pad.size(); ++i) out[i] ^= pad[i];
  return out;
}

}  // namespace

Result<HandshakeOutcome> ServerHandshake(Socket& s, const ServerAuth& auth) {
  proto::Challenge ch;
  ch.cluster = auth.cluster;
  ch.nonce = RandomBytes(16);
  if (auth.password) {
    ch.pw_salt = auth.password->salt;
    ch.pw_iterations = static_cast<uint32_t>(auth.password->iterations);
  }
  RETURN_IF_ERROR(SendMsg(s, MsgType::kChallenge, ch));
  Frame f;
  RETURN_IF_ERROR(s.Recv(&f, kHandshakeTimeoutMs));
  HandshakeOutcome out;
  if (f.type == static_cast<uint16_t>(MsgType::kPasswordAuth)) {
    proto::PasswordAuth pa;
    RETURN_IF_ERROR(proto::DecodeFromString(f.body, &pa, "password auth"));
    if (!auth.password)
      return SendError(s, Code::kAuthFailed, "this server does not accept passwords; use an MDS");
    std::string expect = HmacSha256(auth.password->hash, "password" + ch.nonce);
    if (!SecretEquals(expect, pa.proof))
      return SendError(s, Code::kAuthFailed,
                       "wrong password for cluster '" + auth.cluster + "'");
    proto::PasswordAuthReply rep;
    rep.wrapped_key = WrapKey(auth.password->hash, ch.nonce, auth.key);
    RETURN_IF_ERROR(SendMsg(s, MsgType::kPasswordAuth, rep));
    out.password_auth = true;
    return out;
  }
  if (f.type != static_cast<uint16_t>(MsgType::kChallengeResponse))
    return SendError(s, Code::kProtocol, "expected a handshake response");
  proto::ChallengeResponse cr;
  RETURN_IF_ERROR(proto::DecodeFromString(f.body, &cr, "handshake response"));
  if (cr.cluster != auth.cluster)
    return SendError(s, Code::kAuthFailed,
                     "this server belongs to cluster '" + auth.cluster + "', not '" + cr.cluster + "'");
  std::string expect = HmacSha256(auth.key, "client" + ch.nonce + cr.nonce);
  if (cr.nonce.size() != 16 || !SecretEquals(expect, cr.mac))
    return SendError(s, Code::kAuthFailed,
                     "peer is not authenticated in cluster '" + auth.cluster +
                         "': run 'vstorage -c " + auth.cluster + " auth-node' on that host");
  proto::HandshakeResult hr;
  hr.mac = HmacSha256(auth.key, "server" + cr.nonce + ch.nonce);
  RETURN_IF_ERROR(SendMsg(s, MsgType::kHandshakeResult, hr));
  out.kind = cr.kind;
  return out;
}

Status ClientHandshake(Socket& s, const std::string& cluster, const std::string& key,
                       proto::PeerKind kind) {
  proto::Challenge ch;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kChallenge, &ch));
  if (ch.cluster != cluster)
    return Err(Code::kAuthFailed, "server belongs to cluster '" + ch.cluster + "', not '" +
                                      cluster + "': check bs.list");
  proto::ChallengeResponse cr;
  cr.cluster = cluster;
  cr.nonce = RandomBytes(16);
  cr.mac = HmacSha256(key, "client" + ch.nonce + cr.nonce);
  cr.kind = kind;
  RETURN_IF_ERROR(SendMsg(s, MsgType::kChallengeResponse, cr));
  proto::HandshakeResult hr;
  Status st = RecvMsg(s, MsgType::kHandshakeResult, &hr);
  // The server's reason is written for its own log ("run auth-node on that host"); seen
  // from here the stale key is this host's.
  if (st.code() == Code::kAuthFailed)
    return Err(Code::kAuthFailed,
               "the server refused the cluster key of this host: the key this host keeps for "
               "cluster '" + cluster + "' does not match the cluster's (the fault is on this "
               "host, not on the server); run 'vstorage -c " + cluster + " auth-node' on this "
               "host to fetch the key again");
  RETURN_IF_ERROR(st);
  if (!SecretEquals(hr.mac, HmacSha256(key, "server" + cr.nonce + ch.nonce)))
    return Err(Code::kAuthFailed, "server failed to prove the cluster key");
  return Status::Ok();
}

Result<std::string> PasswordHandshake(Socket& s, const std::string& cluster,
                                      const std::string& password) {
  proto::Challenge ch;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kChallenge, &ch));
  if (ch.cluster != cluster)
    return Err(Code::kAuthFailed, "server belongs to cluster '" + ch.cluster + "', not '" +
                                      cluster + "'");
  if (ch.pw_iterations == 0 || ch.pw_salt.empty())
    return Err(Code::kAuthFailed, "server does not accept password authentication");
  std::string hash = Pbkdf2(password, ch.pw_salt, static_cast<int>(ch.pw_iterations));
  proto::PasswordAuth pa;
  pa.proof = HmacSha256(hash, "password" + ch.nonce);
  RETURN_IF_ERROR(SendMsg(s, MsgType::kPasswordAuth, pa));
  proto::PasswordAuthReply rep;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kPasswordAuth, &rep));
  return WrapKey(hash, ch.nonce, rep.wrapped_key);
}

}  // namespace vstorage::rpc
