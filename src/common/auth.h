// Password digests and keyed MACs for cluster authentication (docs/design/auth.md).
#pragma once
#include <string>

#include "common/status.h"

namespace vstorage {

inline constexpr int kPasswordIterations = 200000;
inline constexpr size_t kClusterKeyBytes = 32;

struct PasswordDigest {
  std::string salt;  // raw bytes
  int iterations = kPasswordIterations;
  std::string hash;  // PBKDF2-HMAC-SHA256(password, salt, iterations), 32 raw bytes
  // "pbkdf2-sha256$ITER$SALTHEX$HASHHEX"
  std::string Serialize() const;
  static Result<PasswordDigest> Parse(const std::string& text);
};

PasswordDigest MakePasswordDigest(const std::string& password);
std::string Pbkdf2(const std::string& password, const std::string& salt, int iterations);
std::string HmacSha256(const std::string& key, const std::string& data);
// Constant-time equality for secrets.
bool SecretEquals(const std::string& a, const std::string& b);

}  // namespace vstorage
