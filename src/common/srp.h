// SRP-6a password-authenticated key exchange (RFC 5054 math) over the 3072-bit group of RFC 5054
// Appendix A (g = 5) with H = SHA-256, plus an AEAD to hand a secret over under the session key.
//
// The server stores only the verifier v = g^x; a client proves it knows x without sending it,
// and both sides end with the same 32-byte session key K. An eavesdropper or an impostor server
// learns nothing that allows an offline guess of the password.
//
// Byte strings are std::string holding raw bytes; A, B and v travel PAD'ed to kSrpGroupBytes.
// x is the caller's password-derived secret (already salted), a big-endian unsigned integer.
//
// Thread safety: Client and Server objects are not thread-safe and serve one handshake each;
// the free functions (ComputeVerifier, Seal, Open, detail::*) are thread-safe.
#pragma once
#include <openssl/types.h>

#include <cstddef>
#include <string>

#include "common/status.h"

namespace vstorage::srp {

inline constexpr size_t kSrpGroupBytes = 384;  // PAD length: the size of A, B, v on the wire
inline constexpr size_t kSrpProofBytes = 32;   // M1, M2 and the session key K (SHA-256)

// v = PAD(g^x mod N). x: raw big-endian bytes, not empty.
std::string ComputeVerifier(const std::string& x);
// kInvalidArgument unless v is kSrpGroupBytes long and 0 < v < N (no exponentiation).
Status CheckVerifier(const std::string& v);

// The client: Respond once to the server's B, then check the server's M2 with VerifyServer.
class Client {
 public:
  // Picks a random 256-bit a; A = g^a mod N.
  explicit Client(std::string x);
  ~Client();
  Client(Client&&) = default;
  Client& operator=(Client&&) = default;

  const std::string& A() const { return A_; }  // PAD(A)

  // From the server's PAD(B): S = (B - k*g^x)^(a + u*x), K = H(PAD(S)); returns the proof
  // M1 = H("vstorage srp client" | PAD(A) | PAD(B) | K | context). `context` binds the proof to
  // this handshake (cluster name, nonces, ...); the server must pass the same bytes.
  // kProtocol if B has the wrong size or Respond was already called; kAuthFailed if B mod N == 0
  // or u == 0 (a server trying to force a known S).
  Result<std::string> Respond(const std::string& B, const std::string& context);

  // Checks M2 = H("vstorage srp server" | PAD(A) | M1 | K) in constant time: kAuthFailed if it
  // does not match (the server does not know v), kProtocol unless Respond succeeded.
  Status VerifyServer(const std::string& M2) const;

  // K, 32 bytes, set by Respond. Trust it only once VerifyServer succeeded.
  const std::string& session_key() const { return K_; }

 private:
  std::string x_, a_, A_, K_, M1_;
  bool responded_ = false;
};

// The server: send B, then Verify the client's A and M1 once.
class Server {
 public:
  // v: the stored PAD'ed verifier; kInvalidArgument unless it is kSrpGroupBytes long and
  // 0 < v < N. Picks a random 256-bit b; B = (k*v + g^b) mod N.
  static Result<Server> Create(std::string v);
  ~Server();
  Server(Server&&) = default;
  Server& operator=(Server&&) = default;

  const std::string& B() const { return B_; }  // PAD(B)

  // From the client's PAD(A) and M1: S = (A * v^u)^b, K = H(PAD(S)); checks M1 in constant time
  // and returns M2. kProtocol for wrong sizes or a second call; kAuthFailed if A mod N == 0 or
  // M1 does not match (wrong password, other context: the two are indistinguishable).
  Result<std::string> Verify(const std::string& A, const std::string& M1,
                             const std::string& context);

  // K, 32 bytes; empty unless Verify succeeded.
  const std::string& session_key() const { return K_; }

 private:
  Server() = default;
  std::string v_, b_, B_, K_;
  bool verified_ = false;
};

// AES-256-GCM under HMAC-SHA256(session_key, "vstorage srp seal" | label) with a random 12-byte
// nonce; the output is nonce | ciphertext | 16-byte tag and `aad` is authenticated too. The
// label separates the uses of one session key. session_key must not be empty; plaintext and
// aad are at most 1 GiB.
std::string Seal(const std::string& session_key, const std::string& label,
                 const std::string& plaintext, const std::string& aad);
// kAuthFailed if the key, label, aad or any sealed byte differs; kProtocol if `sealed` is
// shorter than nonce and tag (or over 1 GiB).
Result<std::string> Open(const std::string& session_key, const std::string& label,
                         const std::string& sealed, const std::string& aad);

// The math, generic over the group and hash so the RFC 5054 Appendix B vectors (1024-bit group,
// SHA-1) can be checked. Values are big-endian byte strings; results are PAD'ed to |N|.
// Local secrets (x, a, b, v) are preconditions (VS_CHECK); peer values (A, B) are checked.
namespace detail {

struct Group {
  std::string N;  // big-endian prime; its length is the PAD length
  unsigned g;
  const EVP_MD* md;
};
const Group& DefaultGroup();  // RFC 5054 3072-bit group, g = 5, SHA-256

std::string H(const Group& G, const std::string& data);
std::string Pad(const Group& G, const std::string& value);  // VS_CHECK: value fits in |N|
std::string Multiplier(const Group& G);                     // k = H(PAD(N) | PAD(g))
std::string Verifier(const Group& G, const std::string& x);  // PAD(g^x)
std::string PublicA(const Group& G, const std::string& a);   // PAD(g^a)
std::string PublicB(const Group& G, const std::string& v, const std::string& b);  // PAD(k*v + g^b)
// u = H(PAD(A) | PAD(B)); A and B must be |N| bytes.
std::string Scrambler(const Group& G, const std::string& A, const std::string& B);
// PAD(S) = PAD((B - k*g^x)^(a + u*x)); checks B as Client::Respond does.
Result<std::string> ClientSecret(const Group& G, const std::string& x, const std::string& a,
                                 const std::string& A, const std::string& B);
// PAD(S) = PAD((A * v^u)^b); checks A as Server::Verify does.
Result<std::string> ServerSecret(const Group& G, const std::string& v, const std::string& b,
                                 const std::string& A, const std::string& B);

}  // namespace detail
}  // namespace vstorage::srp
