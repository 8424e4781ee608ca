// Connection authentication (docs/design/auth.md). Every connection starts with a
// challenge-response on the cluster key K, mutual:
//   server -> Challenge{cluster, nonce_s, [pw_salt, pw_iterations on the MDS]}
//   client -> ChallengeResponse{cluster, nonce_c, HMAC(K, "client"|nonce_s|nonce_c), kind}
//   server -> HandshakeResult{HMAC(K, "server"|nonce_c|nonce_s)}
// A peer without K can neither join nor read. auth-node (MDS only) gets K by SRP-6a
// (common/srp.h) on x = PBKDF2(pw, pw_salt, pw_iterations), the MDS holding only v = g^x:
//   client -> SrpStart{A}          server -> SrpChallenge{B}
//   client -> SrpProof{M1}         server -> SrpProofReply{M2, Seal(session key, K)}
// Nothing a client sends lets an impostor MDS test passwords offline (one guess per
// connection at most), the server's M2 proves it holds v before the client takes K, and
// neither the password nor anything password-equivalent crosses the wire or is stored.
#pragma once
#include <optional>
#include <string>

#include "common/auth.h"
#include "common/srp.h"
#include "proto/messages.h"
#include "rpc/frame.h"
#include "rpc/socket.h"

namespace vstorage::rpc {

inline constexpr int kHandshakeTimeoutMs = 10000;
inline constexpr size_t kMaxHandshakeFrameBytes = 4096;  // body + payload of a frame before auth

// What a client proves itself with.
struct Credentials {
  std::string cluster;
  std::string key;
  proto::PeerKind kind = proto::PeerKind::kClient;
};

struct ServerAuth {
  std::string cluster;
  std::string key;                            // cluster key K
  std::optional<PasswordDigest> password;     // set on the MDS: enables auth-node
};

struct HandshakeOutcome {
  proto::PeerKind kind = proto::PeerKind::kClient;
  bool password_auth = false;  // auth-node done; the connection must be closed
};

// The server's side as a state machine, so a blocking socket and the event loop drive the
// same code: send challenge(), feed the peer's frames to OnFrame() one by one, sending the
// frame each returns (if any), until a step has `more` false: then the connection is
// authenticated or must be closed. One handshake per object; not thread-safe.
class ServerHandshaker {
 public:
  // plaintext_refused: the peer spoke plaintext while encryption is on (rpc/tls.h): only
  // auth-node may go on.
  explicit ServerHandshaker(const ServerAuth& auth, bool plaintext_refused = false);
  const Frame& challenge() const { return challenge_; }
  struct Step {
    std::optional<Frame> reply;        // to send before acting on `outcome`
    Result<HandshakeOutcome> outcome;  // an error: close after sending `reply`
    bool more = false;                 // the handshake goes on with the peer's next frame
  };
  Step OnFrame(const Frame& f);

 private:
  Step OnSrpProof(const Frame& f);
  const ServerAuth& auth_;
  std::string nonce_;
  Frame challenge_;
  bool plaintext_refused_;
  std::optional<srp::Server> srp_;  // after SrpStart
  std::string a_pub_;
};

// The client's side as steps, for the blocking socket and the event loop alike: the
// response to the server's Challenge frame, then the check of its HandshakeResult frame.
class ClientHandshaker {
 public:
  ClientHandshaker(std::string cluster, std::string key, proto::PeerKind kind)
      : cluster_(std::move(cluster)), key_(std::move(key)), kind_(kind) {}
  Result<Frame> OnChallenge(const Frame& f);
  Status OnResult(const Frame& f) const;

 private:
  std::string cluster_, key_;
  proto::PeerKind kind_;
  std::string server_nonce_, nonce_;
};

// A plaintext client's first frame (rpc/tls.h: the client speaks first).
Frame HelloFrame();

Status ClientHandshake(Socket& s, const std::string& cluster, const std::string& key,
                       proto::PeerKind kind);
// auth-node: proves the password to an MDS and returns the cluster key.
Result<std::string> PasswordHandshake(Socket& s, const std::string& cluster,
                                      const std::string& password);

}  // namespace vstorage::rpc
