#include "common/srp.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <initializer_list>
#include <memory>
#include <string_view>

#include "common/auth.h"
#include "common/config.h"

namespace vstorage::srp {
namespace {

// RFC 5054 Appendix A, 3072-bit group (the same prime as RFC 3526 group 15).
constexpr const char* kN3072Hex =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
    "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
    "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
    "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";

constexpr size_t kSecretExponentBytes = 32;  // a, b: 256 bits, as RFC 5054 asks at least
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kMaxSealBytes = 1 << 30;  // EVP lengths are int

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }  // clears: many of ours are secrets
};
struct CtxDeleter {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
struct CipherDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;
using Ctx = std::unique_ptr<BN_CTX, CtxDeleter>;

Bn NewBn() {
  Bn b(BN_new());
  VS_CHECK(b != nullptr);
  return b;
}

Bn FromBytes(std::string_view s) {
  Bn b(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()),
                 nullptr));
  VS_CHECK(b != nullptr);
  return b;
}

// Marks a BIGNUM secret so that OpenSSL takes its constant-time paths with it.
Bn Secret(Bn b) {
  BN_set_flags(b.get(), BN_FLG_CONSTTIME);
  return b;
}

Bn FromUint(unsigned v) {
  Bn b = NewBn();
  VS_CHECK(BN_set_word(b.get(), v) == 1);
  return b;
}

Ctx NewCtx() {
  Ctx c(BN_CTX_new());
  VS_CHECK(c != nullptr);
  return c;
}

std::string ToPad(const detail::Group& G, const BIGNUM* b) {
  std::string out(G.N.size(), '\0');
  VS_CHECK(BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()),
                        static_cast<int>(out.size())) == static_cast<int>(out.size()));
  return out;
}

std::string Hash(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> c(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  VS_CHECK(c != nullptr);
  VS_CHECK(EVP_DigestInit_ex(c.get(), md, nullptr) == 1);
  for (std::string_view p : parts) VS_CHECK(EVP_DigestUpdate(c.get(), p.data(), p.size()) == 1);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VS_CHECK(EVP_DigestFinal_ex(c.get(), out, &len) == 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

// r = base^exp mod N in constant time (N is odd, as the Montgomery ladder needs).
Bn ModExpSecret(const BIGNUM* base, const BIGNUM* exp, const BIGNUM* N, BN_CTX* ctx) {
  Bn r = Secret(NewBn());
  VS_CHECK(BN_mod_exp_mont_consttime(r.get(), base, exp, N, ctx, nullptr) == 1);
  return r;
}

// A value from the peer: exactly |N| bytes (kProtocol) and 0 < value < N (kAuthFailed). Refusing
// value mod N == 0 stops a peer forcing S to a value it knows; refusing value >= N as well
// keeps one encoding per group element.
Result<Bn> PeerValue(const detail::Group& G, const BIGNUM* N, const std::string& value,
                     const char* who) {
  if (value.size() != G.N.size())
    return Err(Code::kProtocol, std::string(who) + " sent an SRP value of " +
                                    std::to_string(value.size()) + " bytes, expected " +
                                    std::to_string(G.N.size()));
  Bn b = FromBytes(value);
  if (BN_is_zero(b.get()) || BN_cmp(b.get(), N) >= 0)
    return Err(Code::kAuthFailed, std::string(who) + " sent an invalid SRP value");
  return b;
}

bool IsZero(const std::string& s) {
  unsigned char acc = 0;
  for (char c : s) acc |= static_cast<unsigned char>(c);
  return acc == 0;
}

std::string ClientProof(const std::string& A, const std::string& B, const std::string& K,
                        const std::string& context) {
  // Everything before `context` has a fixed length, so the concatenation is unambiguous.
  return Hash(EVP_sha256(), {"vstorage srp client", A, B, K, context});
}

std::string ServerProof(const std::string& A, const std::string& M1, const std::string& K) {
  return Hash(EVP_sha256(), {"vstorage srp server", A, M1, K});
}

std::string SealKey(const std::string& session_key, const std::string& label) {
  VS_CHECK(!session_key.empty());  // sealing before the handshake is a programmer error
  return HmacSha256(session_key, "vstorage srp seal" + label);
}

void Cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

}  // namespace

namespace detail {

const Group& DefaultGroup() {
  static const Group* g = [] {
    BIGNUM* n = nullptr;
    VS_CHECK(BN_hex2bn(&n, kN3072Hex) != 0);
    Bn N(n);
    std::string bytes(static_cast<size_t>(BN_num_bytes(N.get())), '\0');
    BN_bn2bin(N.get(), reinterpret_cast<unsigned char*>(bytes.data()));
    VS_CHECK(bytes.size() == kSrpGroupBytes);
    return new Group{std::move(bytes), 5, EVP_sha256()};
  }();
  return *g;
}

std::string H(const Group& G, const std::string& data) { return Hash(G.md, {data}); }

std::string Pad(const Group& G, const std::string& value) {
  VS_CHECK(value.size() <= G.N.size());
  return std::string(G.N.size() - value.size(), '\0') + value;
}

std::string Multiplier(const Group& G) {
  Bn g = FromUint(G.g);
  return Hash(G.md, {G.N, ToPad(G, g.get())});
}

std::string Verifier(const Group& G, const std::string& x) {
  VS_CHECK(!x.empty());
  Ctx ctx = NewCtx();
  Bn N = FromBytes(G.N), g = FromUint(G.g), xb = Secret(FromBytes(x));
  return ToPad(G, ModExpSecret(g.get(), xb.get(), N.get(), ctx.get()).get());
}

std::string PublicA(const Group& G, const std::string& a) {
  VS_CHECK(!a.empty());
  Ctx ctx = NewCtx();
  Bn N = FromBytes(G.N), g = FromUint(G.g), ab = Secret(FromBytes(a));
  return ToPad(G, ModExpSecret(g.get(), ab.get(), N.get(), ctx.get()).get());
}

std::string PublicB(const Group& G, const std::string& v, const std::string& b) {
  VS_CHECK(v.size() == G.N.size() && !b.empty());
  Ctx ctx = NewCtx();
  Bn N = FromBytes(G.N), g = FromUint(G.g), bb = Secret(FromBytes(b)), vb = FromBytes(v);
  Bn k = FromBytes(Multiplier(G));
  Bn gb = ModExpSecret(g.get(), bb.get(), N.get(), ctx.get());
  Bn kv = NewBn(), B = NewBn();
  VS_CHECK(BN_mod_mul(kv.get(), k.get(), vb.get(), N.get(), ctx.get()) == 1);
  VS_CHECK(BN_mod_add(B.get(), kv.get(), gb.get(), N.get(), ctx.get()) == 1);
  return ToPad(G, B.get());
}

std::string Scrambler(const Group& G, const std::string& A, const std::string& B) {
  VS_CHECK(A.size() == G.N.size() && B.size() == G.N.size());
  return Hash(G.md, {A, B});
}

Result<std::string> ClientSecret(const Group& G, const std::string& x, const std::string& a,
                                 const std::string& A, const std::string& B) {
  VS_CHECK(!x.empty() && !a.empty() && A.size() == G.N.size());
  Bn N = FromBytes(G.N);
  ASSIGN_OR_RETURN(Bn Bb, PeerValue(G, N.get(), B, "the server"));
  std::string u = Scrambler(G, A, B);
  // u == 0 would drop x from the exponent: S would no longer depend on the password.
  if (IsZero(u)) return Err(Code::kAuthFailed, "the server sent an invalid SRP value");
  Ctx ctx = NewCtx();
  Bn g = FromUint(G.g), k = FromBytes(Multiplier(G)), ub = FromBytes(u);
  Bn xb = Secret(FromBytes(x)), ab = Secret(FromBytes(a));
  Bn gx = ModExpSecret(g.get(), xb.get(), N.get(), ctx.get());
  Bn kgx = Secret(NewBn()), base = Secret(NewBn()), e = Secret(NewBn());
  VS_CHECK(BN_mod_mul(kgx.get(), k.get(), gx.get(), N.get(), ctx.get()) == 1);
  VS_CHECK(BN_mod_sub(base.get(), Bb.get(), kgx.get(), N.get(), ctx.get()) == 1);
  // e = a + u*x exactly: it is short (a few hundred bits), so reducing it mod N-1 gains nothing.
  VS_CHECK(BN_mul(e.get(), ub.get(), xb.get(), ctx.get()) == 1);
  VS_CHECK(BN_add(e.get(), e.get(), ab.get()) == 1);
  return ToPad(G, ModExpSecret(base.get(), e.get(), N.get(), ctx.get()).get());
}

Result<std::string> ServerSecret(const Group& G, const std::string& v, const std::string& b,
                                 const std::string& A, const std::string& B) {
  VS_CHECK(v.size() == G.N.size() && !b.empty() && B.size() == G.N.size());
  Bn N = FromBytes(G.N);
  ASSIGN_OR_RETURN(Bn Ab, PeerValue(G, N.get(), A, "the client"));
  std::string u = Scrambler(G, A, B);
  if (IsZero(u)) return Err(Code::kAuthFailed, "the client sent an invalid SRP value");
  Ctx ctx = NewCtx();
  Bn vb = Secret(FromBytes(v)), ub = FromBytes(u), bb = Secret(FromBytes(b));
  Bn vu = ModExpSecret(vb.get(), ub.get(), N.get(), ctx.get());
  Bn base = Secret(NewBn());
  VS_CHECK(BN_mod_mul(base.get(), Ab.get(), vu.get(), N.get(), ctx.get()) == 1);
  return ToPad(G, ModExpSecret(base.get(), bb.get(), N.get(), ctx.get()).get());
}

}  // namespace detail

std::string ComputeVerifier(const std::string& x) {
  return detail::Verifier(detail::DefaultGroup(), x);
}

Client::Client(std::string x) : x_(std::move(x)), a_(RandomBytes(kSecretExponentBytes)) {
  VS_CHECK(!x_.empty());
  A_ = detail::PublicA(detail::DefaultGroup(), a_);
}

Client::~Client() {
  Cleanse(x_);
  Cleanse(a_);
  Cleanse(K_);
}

Result<std::string> Client::Respond(const std::string& B, const std::string& context) {
  // One B per a, even after a refused B: a handshake that went wrong is not retried.
  if (responded_) return Err(Code::kProtocol, "SRP client already responded");
  responded_ = true;
  const detail::Group& G = detail::DefaultGroup();
  ASSIGN_OR_RETURN(std::string S, detail::ClientSecret(G, x_, a_, A_, B));
  K_ = detail::H(G, S);
  Cleanse(S);
  M1_ = ClientProof(A_, B, K_, context);
  return M1_;
}

Status Client::VerifyServer(const std::string& M2) const {
  // M1_ is set only by a successful Respond; with an empty K anyone could forge M2.
  if (M1_.empty()) return Err(Code::kProtocol, "SRP server proof checked before Respond");
  if (M2.size() != kSrpProofBytes)
    return Err(Code::kProtocol, "SRP server proof of " + std::to_string(M2.size()) + " bytes");
  if (!SecretEquals(M2, ServerProof(A_, M1_, K_)))
    return Err(Code::kAuthFailed, "the server failed to prove it knows the SRP verifier");
  return Status::Ok();
}

Status CheckVerifier(const std::string& v) {
  const detail::Group& G = detail::DefaultGroup();
  if (v.size() != G.N.size())
    return Err(Code::kInvalidArgument, "SRP verifier of " + std::to_string(v.size()) +
                                           " bytes, expected " + std::to_string(G.N.size()));
  Bn vb = FromBytes(v), N = FromBytes(G.N);
  if (BN_is_zero(vb.get()) || BN_cmp(vb.get(), N.get()) >= 0)
    return Err(Code::kInvalidArgument, "SRP verifier out of range");
  return Status::Ok();
}

Result<Server> Server::Create(std::string v) {
  const detail::Group& G = detail::DefaultGroup();
  RETURN_IF_ERROR(CheckVerifier(v));
  Server s;
  s.v_ = std::move(v);
  s.b_ = RandomBytes(kSecretExponentBytes);
  s.B_ = detail::PublicB(G, s.v_, s.b_);
  return s;
}

Server::~Server() {
  Cleanse(v_);
  Cleanse(b_);
  Cleanse(K_);
}

Result<std::string> Server::Verify(const std::string& A, const std::string& M1,
                                   const std::string& context) {
  // One attempt per B: a second call would let a client try two passwords per handshake.
  if (verified_) return Err(Code::kProtocol, "SRP server already verified a proof");
  verified_ = true;
  const detail::Group& G = detail::DefaultGroup();
  if (M1.size() != kSrpProofBytes)
    return Err(Code::kProtocol, "SRP client proof of " + std::to_string(M1.size()) + " bytes");
  ASSIGN_OR_RETURN(std::string S, detail::ServerSecret(G, v_, b_, A, B_));
  std::string K = detail::H(G, S);
  Cleanse(S);
  if (!SecretEquals(M1, ClientProof(A, B_, K, context))) {
    Cleanse(K);
    return Err(Code::kAuthFailed, "SRP client proof does not match");
  }
  K_ = std::move(K);
  return ServerProof(A, M1, K_);
}

std::string Seal(const std::string& session_key, const std::string& label,
                 const std::string& plaintext, const std::string& aad) {
  VS_CHECK(plaintext.size() <= kMaxSealBytes && aad.size() <= kMaxSealBytes);
  std::string key = SealKey(session_key, label);
  std::string out = RandomBytes(kNonceBytes);
  out.resize(kNonceBytes + plaintext.size() + kTagBytes);
  auto* u8 = reinterpret_cast<unsigned char*>(out.data());
  std::unique_ptr<EVP_CIPHER_CTX, CipherDeleter> c(EVP_CIPHER_CTX_new());
  VS_CHECK(c != nullptr);
  VS_CHECK(EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr,
                              reinterpret_cast<const unsigned char*>(key.data()), u8) == 1);
  Cleanse(key);
  int len = 0;
  VS_CHECK(EVP_EncryptUpdate(c.get(), nullptr, &len,
                             reinterpret_cast<const unsigned char*>(aad.data()),
                             static_cast<int>(aad.size())) == 1);
  VS_CHECK(EVP_EncryptUpdate(c.get(), u8 + kNonceBytes, &len,
                             reinterpret_cast<const unsigned char*>(plaintext.data()),
                             static_cast<int>(plaintext.size())) == 1);
  VS_CHECK(static_cast<size_t>(len) == plaintext.size());
  VS_CHECK(EVP_EncryptFinal_ex(c.get(), u8 + kNonceBytes + len, &len) == 1 && len == 0);
  VS_CHECK(EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                               u8 + kNonceBytes + plaintext.size()) == 1);
  return out;
}

Result<std::string> Open(const std::string& session_key, const std::string& label,
                         const std::string& sealed, const std::string& aad) {
  if (sealed.size() < kNonceBytes + kTagBytes)
    return Err(Code::kProtocol, "sealed message of " + std::to_string(sealed.size()) + " bytes");
  if (sealed.size() > kMaxSealBytes || aad.size() > kMaxSealBytes)
    return Err(Code::kProtocol, "sealed message too large");
  std::string key = SealKey(session_key, label);
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t ct_len = sealed.size() - kNonceBytes - kTagBytes;
  std::string tag = sealed.substr(kNonceBytes + ct_len);  // set_tag wants a writable buffer
  std::string plain(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  std::unique_ptr<EVP_CIPHER_CTX, CipherDeleter> c(EVP_CIPHER_CTX_new());
  VS_CHECK(c != nullptr);
  VS_CHECK(EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr,
                              reinterpret_cast<const unsigned char*>(key.data()), in) == 1);
  Cleanse(key);
  int len = 0;
  VS_CHECK(EVP_DecryptUpdate(c.get(), nullptr, &len,
                             reinterpret_cast<const unsigned char*>(aad.data()),
                             static_cast<int>(aad.size())) == 1);
  VS_CHECK(EVP_DecryptUpdate(c.get(), out, &len, in + kNonceBytes, static_cast<int>(ct_len)) ==
           1);
  VS_CHECK(EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1);
  if (EVP_DecryptFinal_ex(c.get(), out + len, &len) != 1) {
    Cleanse(plain);  // never hand out plaintext that failed authentication
    return Err(Code::kAuthFailed, "sealed message failed authentication");
  }
  return plain;
}

}  // namespace vstorage::srp
