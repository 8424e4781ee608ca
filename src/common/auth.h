// Password digests and keyed MACs for cluster authentication (docs/design/auth.md).
#pragma once
#include <string>

#include "common/status.h"

namespace vstorage {

inline constexpr int kPasswordIterations = 200000;
// Iteration counts a digest (or an MDS's challenge) may name: fewer is too weak, more would
// let a fake MDS keep auth-node busy for hours.
inline constexpr int kMinPasswordIterations = 1000;
inline constexpr int kMaxPasswordIterations = 10000000;
inline constexpr size_t kClusterKeyBytes = 32;

// What the MDS stores of the cluster password (docs/design/auth.md): an SRP-6a verifier
// v = g^x, x = PBKDF2-HMAC-SHA256(password, salt, iterations) (common/srp.h). v lets the MDS
// check a password proof but not make one: a copy of the file is not a key to the cluster
// (it still allows guessing passwords offline, at PBKDF2's cost per guess).
struct PasswordDigest {
  std::string salt;  // raw bytes
  int iterations = kPasswordIterations;
  std::string verifier;  // PAD(g^x), srp::kSrpGroupBytes raw bytes
  // Parse found the older "pbkdf2-sha256$ITER$SALT$HASH" form (x itself: password-equivalent)
  // and computed the verifier from it; the owner should store Serialize() in its place.
  bool upgraded = false;
  // "srp6a-3072-sha256$ITER$SALTHEX$VERIFIERHEX"
  std::string Serialize() const;
  static Result<PasswordDigest> Parse(const std::string& text);
};

PasswordDigest MakePasswordDigest(const std::string& password);
// The SRP exponent x of a password under a digest's salt and iterations.
std::string Pbkdf2(const std::string& password, const std::string& salt, int iterations);
std::string HmacSha256(const std::string& key, const std::string& data);
// Constant-time equality for secrets.
bool SecretEquals(const std::string& a, const std::string& b);

}  // namespace vstorage
