// Connection authentication (docs/design/auth.md). Every connection starts with a
// challenge-response on the cluster key K, mutual:
//   server -> Challenge{cluster, nonce_s, [pw_salt, pw_iterations on the MDS]}
//   client -> ChallengeResponse{cluster, nonce_c, HMAC(K, "client"|nonce_s|nonce_c), kind}
//          or PasswordAuth{HMAC(PBKDF2(pw), "password"|nonce_s)}   (auth-node, MDS only)
//   server -> HandshakeResult{HMAC(K, "server"|nonce_c|nonce_s)}
//          or PasswordAuthReply{K xor HMAC(PBKDF2(pw), "wrap"|nonce_s)}
// A peer without K can neither join nor read; the password never crosses the wire.
#pragma once
#include <optional>
#include <string>

#include "common/auth.h"
#include "proto/messages.h"
#include "rpc/socket.h"

namespace vstorage::rpc {

inline constexpr int kHandshakeTimeoutMs = 10000;

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
// same code: send Challenge(), feed the peer's one frame to OnFrame(), send the frame it
// returns (if any), then the connection is authenticated or must be closed.
class ServerHandshaker {
 public:
  explicit ServerHandshaker(const ServerAuth& auth);
  const Frame& challenge() const { return challenge_; }
  struct Step {
    std::optional<Frame> reply;       // to send before acting on `outcome`
    Result<HandshakeOutcome> outcome;  // an error: close after sending `reply`
  };
  Step OnFrame(const Frame& f) const;

 private:
  const ServerAuth& auth_;
  std::string nonce_;
  Frame challenge_;
};

Status ClientHandshake(Socket& s, const std::string& cluster, const std::string& key,
                       proto::PeerKind kind);
// auth-node: proves the password to an MDS and returns the cluster key.
Result<std::string> PasswordHandshake(Socket& s, const std::string& cluster,
                                      const std::string& password);

}  // namespace vstorage::rpc
