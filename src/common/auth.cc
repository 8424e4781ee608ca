#include "common/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/config.h"
#include "common/srp.h"

namespace vstorage {

std::string Pbkdf2(const std::string& password, const std::string& salt, int iterations) {
  std::string out(32, '\0');
  VS_CHECK(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                             reinterpret_cast<const unsigned char*>(salt.data()),
                             static_cast<int>(salt.size()), iterations, EVP_sha256(), 32,
                             reinterpret_cast<unsigned char*>(out.data())) == 1);
  return out;
}

std::string HmacSha256(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VS_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), md,
                &len) != nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

bool SecretEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

PasswordDigest MakePasswordDigest(const std::string& password) {
  PasswordDigest d;
  d.salt = RandomBytes(16);
  d.verifier = srp::ComputeVerifier(Pbkdf2(password, d.salt, d.iterations));
  return d;
}

std::string PasswordDigest::Serialize() const {
  return "srp6a-3072-sha256$" + std::to_string(iterations) + "$" + HexEncode(salt) + "$" +
         HexEncode(verifier);
}

Result<PasswordDigest> PasswordDigest::Parse(const std::string& text_in) {
  std::string text = text_in;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    auto p = text.find('$', start);
    parts.push_back(text.substr(start, p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  const bool srp = parts.size() == 4 && parts[0] == "srp6a-3072-sha256";
  const bool old = parts.size() == 4 && parts[0] == "pbkdf2-sha256";
  if (!srp && !old) return Err(Code::kCorrupt, "unrecognised password digest format");
  PasswordDigest d;
  d.iterations = std::atoi(parts[1].c_str());
  if (d.iterations < kMinPasswordIterations || d.iterations > kMaxPasswordIterations)
    return Err(Code::kCorrupt, "password digest iteration count out of range");
  ASSIGN_OR_RETURN(d.salt, HexDecode(parts[2]));
  ASSIGN_OR_RETURN(std::string value, HexDecode(parts[3]));
  if (d.salt.empty()) return Err(Code::kCorrupt, "password digest has no salt");
  if (old) {
    if (value.size() != 32) return Err(Code::kCorrupt, "password digest has wrong length");
    d.verifier = srp::ComputeVerifier(value);
    OPENSSL_cleanse(value.data(), value.size());
    d.upgraded = true;
    return d;
  }
  if (value.size() != srp::kSrpGroupBytes) return Err(Code::kCorrupt, "password verifier has wrong length");
  if (!srp::CheckVerifier(value).ok()) return Err(Code::kCorrupt, "password verifier out of range");
  d.verifier = std::move(value);
  return d;
}

}  // namespace vstorage
