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

template <typename T>
Frame MakeFrame(MsgType t, const T& m) {
  Frame f;
  f.type = static_cast<uint16_t>(t);
  f.body = proto::EncodeToString(m);
  return f;
}

ServerHandshaker::Step Refuse(Code c, const std::string& msg) {
  Frame f;
  f.flags = kFlagResponse | kFlagError;
  f.type = static_cast<uint16_t>(MsgType::kHandshakeResult);
  f.body = proto::EncodeToString(proto::ErrorReply{static_cast<uint16_t>(c), msg});
  return ServerHandshaker::Step{std::move(f), Err(c, msg)};
}

std::string WrapKey(const std::string& pw_hash, const std::string& nonce_s,
                    const std::string& key) {
  std::string pad = HmacSha256(pw_hash, "wrap" + nonce_s);
  std::string out = key;
  for (size_t i = 0; i < out.size() && i < pad.size(); ++i) out[i] ^= pad[i];
  return out;
}

}  // namespace

ServerHandshaker::ServerHandshaker(const ServerAuth& auth) : auth_(auth), nonce_(RandomBytes(16)) {
  proto::Challenge ch;
  ch.cluster = auth.cluster;
  ch.nonce = nonce_;
  if (auth.password) {
    ch.pw_salt = auth.password->salt;
    ch.pw_iterations = static_cast<uint32_t>(auth.password->iterations);
  }
  challenge_ = MakeFrame(MsgType::kChallenge, ch);
}

ServerHandshaker::Step ServerHandshaker::OnFrame(const Frame& f) const {
  HandshakeOutcome out;
  if (f.type == static_cast<uint16_t>(MsgType::kPasswordAuth)) {
    proto::PasswordAuth pa;
    if (Status st = proto::DecodeFromString(f.body, &pa, "password auth"); !st.ok()) return Step{std::nullopt, st};
    if (!auth_.password) return Refuse(Code::kAuthFailed, "this server does not accept passwords; use an MDS");
    std::string expect = HmacSha256(auth_.password->hash, "password" + nonce_);
    if (!SecretEquals(expect, pa.proof))
      return Refuse(Code::kAuthFailed, "wrong password for cluster '" + auth_.cluster + "'");
    proto::PasswordAuthReply rep;
    rep.wrapped_key = WrapKey(auth_.password->hash, nonce_, auth_.key);
    out.password_auth = true;
    return Step{MakeFrame(MsgType::kPasswordAuth, rep), out};
  }
  if (f.type != static_cast<uint16_t>(MsgType::kChallengeResponse))
    return Refuse(Code::kProtocol, "expected a handshake response");
  proto::ChallengeResponse cr;
  if (Status st = proto::DecodeFromString(f.body, &cr, "handshake response"); !st.ok()) return Step{std::nullopt, st};
  if (cr.cluster != auth_.cluster)
    return Refuse(Code::kAuthFailed,
                  "this server belongs to cluster '" + auth_.cluster + "', not '" + cr.cluster + "'");
  std::string expect = HmacSha256(auth_.key, "client" + nonce_ + cr.nonce);
  if (cr.nonce.size() != 16 || !SecretEquals(expect, cr.mac))
    return Refuse(Code::kAuthFailed, "peer is not authenticated in cluster '" + auth_.cluster +
                                         "': run 'vstorage -c " + auth_.cluster + " auth-node' on that host");
  proto::HandshakeResult hr;
  hr.mac = HmacSha256(auth_.key, "server" + cr.nonce + nonce_);
  out.kind = cr.kind;
  return Step{MakeFrame(MsgType::kHandshakeResult, hr), out};
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
