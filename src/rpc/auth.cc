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
Status ExpectMsg(const Frame& f, MsgType want, T* m) {
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
Status RecvMsg(Socket& s, MsgType want, T* m) {
  Frame f;
  RETURN_IF_ERROR(s.Recv(&f, kHandshakeTimeoutMs));
  return ExpectMsg(f, want, m);
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

constexpr const char* kSealLabel = "cluster key";

// What both SRP proofs are bound to: this cluster, this challenge's nonce and the salt and
// iterations it named (a man in the middle changing any of them makes the proofs fail).
std::string SrpContext(const std::string& cluster, const std::string& nonce_s, const std::string& salt,
                       uint32_t iterations) {
  std::string c = "vstorage auth-node";
  c += '\0';
  c += cluster;
  c += '\0';
  c += nonce_s;  // 16 bytes
  for (int i = 0; i < 4; ++i) c += static_cast<char>(iterations >> (8 * i));
  c += salt;  // last: its length needs no marker
  return c;
}

}  // namespace

ServerHandshaker::ServerHandshaker(const ServerAuth& auth, bool plaintext_refused)
    : auth_(auth), nonce_(RandomBytes(16)), plaintext_refused_(plaintext_refused) {
  proto::Challenge ch;
  ch.cluster = auth.cluster;
  ch.nonce = nonce_;
  if (auth.password) {
    ch.pw_salt = auth.password->salt;
    ch.pw_iterations = static_cast<uint32_t>(auth.password->iterations);
  }
  challenge_ = MakeFrame(MsgType::kChallenge, ch);
}

ServerHandshaker::Step ServerHandshaker::OnFrame(const Frame& f) {
  HandshakeOutcome out;
  if (srp_) return OnSrpProof(f);
  if (f.type == static_cast<uint16_t>(MsgType::kPasswordAuth))
    return Refuse(Code::kAuthFailed,
                  "this auth-node sent the old password proof, which let anyone posing as an MDS test "
                  "passwords offline; the MDS accepts only SRP now: update vstorage on the host running "
                  "auth-node");
  if (f.type == static_cast<uint16_t>(MsgType::kSrpStart)) {
    proto::SrpStart st;
    if (Status d = proto::DecodeFromString(f.body, &st, "SRP start"); !d.ok()) return Step{std::nullopt, d};
    if (!auth_.password) return Refuse(Code::kAuthFailed, "this server does not accept passwords; use an MDS");
    if (st.a_pub.size() != srp::kSrpGroupBytes)
      return Refuse(Code::kProtocol, "SRP value of " + std::to_string(st.a_pub.size()) + " bytes");
    auto server = srp::Server::Create(auth_.password->verifier);
    if (!server.ok()) return Refuse(Code::kInternal, "the MDS's password verifier is unusable: " + server.status().message());
    srp_.emplace(std::move(server).value());
    a_pub_ = st.a_pub;
    return Step{MakeFrame(MsgType::kSrpStart, proto::SrpChallenge{srp_->B()}), out, true};
  }
  if (f.type != static_cast<uint16_t>(MsgType::kChallengeResponse))
    return Refuse(Code::kProtocol, "expected a handshake response");
  if (plaintext_refused_)
    return Refuse(Code::kPermission,
                  "this cluster encrypts its connections (gen.encryption=1) and the peer spoke plaintext: "
                  "update vstorage on that host, or turn encryption off with `vstorage set-config "
                  "gen.encryption=0` if the network is trusted");
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

ServerHandshaker::Step ServerHandshaker::OnSrpProof(const Frame& f) {
  if (f.type != static_cast<uint16_t>(MsgType::kSrpProof)) return Refuse(Code::kProtocol, "expected the SRP proof");
  proto::SrpProof p;
  if (Status d = proto::DecodeFromString(f.body, &p, "SRP proof"); !d.ok()) return Step{std::nullopt, d};
  auto m2 = srp_->Verify(a_pub_, p.m1,
                         SrpContext(auth_.cluster, nonce_, auth_.password->salt,
                                    static_cast<uint32_t>(auth_.password->iterations)));
  if (!m2.ok()) {
    if (m2.status().code() == Code::kAuthFailed)
      return Refuse(Code::kAuthFailed, "wrong password for cluster '" + auth_.cluster + "'");
    return Refuse(m2.status().code(), m2.status().message());
  }
  proto::SrpProofReply rep{*m2, srp::Seal(srp_->session_key(), kSealLabel, auth_.key, auth_.cluster)};
  HandshakeOutcome out;
  out.password_auth = true;
  return Step{MakeFrame(MsgType::kSrpProof, rep), out};
}

Frame HelloFrame() { return MakeFrame(MsgType::kHello, proto::Empty{}); }

Result<Frame> ClientHandshaker::OnChallenge(const Frame& f) {
  proto::Challenge ch;
  RETURN_IF_ERROR(ExpectMsg(f, MsgType::kChallenge, &ch));
  if (ch.cluster != cluster_)
    return Err(Code::kAuthFailed, "server belongs to cluster '" + ch.cluster + "', not '" + cluster_ +
                                      "': check bs.list");
  server_nonce_ = ch.nonce;
  nonce_ = RandomBytes(16);
  proto::ChallengeResponse cr;
  cr.cluster = cluster_;
  cr.nonce = nonce_;
  cr.mac = HmacSha256(key_, "client" + ch.nonce + cr.nonce);
  cr.kind = kind_;
  return MakeFrame(MsgType::kChallengeResponse, cr);
}

Status ClientHandshaker::OnResult(const Frame& f) const {
  proto::HandshakeResult hr;
  Status st = ExpectMsg(f, MsgType::kHandshakeResult, &hr);
  // The server's reason is written for its own log ("run auth-node on that host"); seen
  // from here the stale key is this host's.
  if (st.code() == Code::kAuthFailed)
    return Err(Code::kAuthFailed,
               "the server refused the cluster key of this host: the key this host keeps for "
               "cluster '" + cluster_ + "' does not match the cluster's (the fault is on this "
               "host, not on the server); run 'vstorage -c " + cluster_ + " auth-node' on this "
               "host to fetch the key again");
  RETURN_IF_ERROR(st);
  if (!SecretEquals(hr.mac, HmacSha256(key_, "server" + nonce_ + server_nonce_)))
    return Err(Code::kAuthFailed, "server failed to prove the cluster key");
  return Status::Ok();
}

Status ClientHandshake(Socket& s, const std::string& cluster, const std::string& key,
                       proto::PeerKind kind) {
  ClientHandshaker hs(cluster, key, kind);
  RETURN_IF_ERROR(s.Send(HelloFrame()));
  Frame f;
  RETURN_IF_ERROR(s.Recv(&f, kHandshakeTimeoutMs));
  ASSIGN_OR_RETURN(Frame resp, hs.OnChallenge(f));
  RETURN_IF_ERROR(s.Send(resp));
  RETURN_IF_ERROR(s.Recv(&f, kHandshakeTimeoutMs));
  return hs.OnResult(f);
}

Result<std::string> PasswordHandshake(Socket& s, const std::string& cluster,
                                      const std::string& password) {
  RETURN_IF_ERROR(s.Send(HelloFrame()));  // plaintext: SRP needs no protection of the channel
  proto::Challenge ch;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kChallenge, &ch));
  if (ch.cluster != cluster)
    return Err(Code::kAuthFailed, "server belongs to cluster '" + ch.cluster + "', not '" +
                                      cluster + "'");
  if (ch.pw_iterations == 0 || ch.pw_salt.empty())
    return Err(Code::kAuthFailed, "server does not accept password authentication");
  if (ch.pw_iterations < static_cast<uint32_t>(kMinPasswordIterations) ||
      ch.pw_iterations > static_cast<uint32_t>(kMaxPasswordIterations))
    return Err(Code::kProtocol, "the server asked for " + std::to_string(ch.pw_iterations) +
                                    " password hash iterations (" + std::to_string(kMinPasswordIterations) + " to " +
                                    std::to_string(kMaxPasswordIterations) + " allowed): it is not an MDS of cluster '" +
                                    cluster + "'");
  srp::Client c(Pbkdf2(password, ch.pw_salt, static_cast<int>(ch.pw_iterations)));
  RETURN_IF_ERROR(SendMsg(s, MsgType::kSrpStart, proto::SrpStart{c.A()}));
  proto::SrpChallenge sc;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kSrpStart, &sc));
  auto m1 = c.Respond(sc.b_pub, SrpContext(cluster, ch.nonce, ch.pw_salt, ch.pw_iterations));
  if (!m1.ok()) return m1.status().Annotate("the server is not a proper MDS of cluster '" + cluster + "'");
  RETURN_IF_ERROR(SendMsg(s, MsgType::kSrpProof, proto::SrpProof{*m1}));
  proto::SrpProofReply rep;
  RETURN_IF_ERROR(RecvMsg(s, MsgType::kSrpProof, &rep));  // a wrong password: the server's error
  if (!c.VerifyServer(rep.m2).ok())
    return Err(Code::kAuthFailed, "the server accepted the password without proving that it holds the "
                                  "cluster's password verifier: it is not the MDS of cluster '" + cluster +
                                  "' (check bs.list); nothing was taken from it");
  auto key = srp::Open(c.session_key(), kSealLabel, rep.sealed_key, cluster);
  if (!key.ok()) return Err(Code::kAuthFailed, "the cluster key from the MDS failed its integrity check: " +
                                                   key.status().message());
  return key;
}

}  // namespace vstorage::rpc
