#include "common/srp.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "common/config.h"

namespace vstorage::srp {
namespace {

using detail::Group;

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn ToBn(const std::string& s) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                      static_cast<int>(s.size()), nullptr));
}

std::string FromBn(const BIGNUM* b, size_t len) {
  std::string out(len, '\0');
  EXPECT_EQ(BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(len)),
            static_cast<int>(len));
  return out;
}

// Hex as the RFC prints it, in groups separated by spaces.
std::string Unhex(std::string text) {
  std::erase(text, ' ');
  auto r = HexDecode(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : std::string();
}

const Group& G() { return detail::DefaultGroup(); }

std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
  return s;
}

// The two ends of one honest handshake.
struct Handshake {
  std::string x = RandomBytes(32);
  Client client{x};
  Server server = Server::Create(ComputeVerifier(x)).value();
};

TEST(SrpGroup, IsTheRfc5054SafePrimeOf384Bytes) {
  ASSERT_EQ(G().N.size(), kSrpGroupBytes);
  Bn N = ToBn(G().N);
  EXPECT_EQ(BN_num_bits(N.get()), 3072);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  EXPECT_EQ(BN_check_prime(N.get(), ctx.get(), nullptr), 1);
  Bn q(BN_dup(N.get()));
  ASSERT_TRUE(BN_sub_word(q.get(), 1) && BN_rshift1(q.get(), q.get()));
  EXPECT_EQ(BN_check_prime(q.get(), ctx.get(), nullptr), 1) << "(N-1)/2 is not prime";
  // RFC 5054's 3072-bit group is RFC 3526's; OpenSSL carries that one independently.
  Bn rfc3526(BN_get_rfc3526_prime_3072(nullptr));
  EXPECT_EQ(BN_cmp(N.get(), rfc3526.get()), 0);
  EXPECT_EQ(G().g, 5u);
  Bn nm1(BN_dup(N.get()));
  ASSERT_TRUE(BN_sub_word(nm1.get(), 1));
  Bn g(BN_new());
  ASSERT_TRUE(BN_set_word(g.get(), G().g));
  EXPECT_GT(BN_cmp(g.get(), BN_value_one()), 0);
  EXPECT_LT(BN_cmp(g.get(), nm1.get()), 0);
  EXPECT_EQ(G().md, EVP_sha256());
}

TEST(SrpExchange, TheRightPasswordAgreesOnAKey) {
  Handshake h;
  ASSERT_EQ(h.client.A().size(), kSrpGroupBytes);
  ASSERT_EQ(h.server.B().size(), kSrpGroupBytes);
  auto m1 = h.client.Respond(h.server.B(), "cluster1|nonces");
  ASSERT_TRUE(m1.ok()) << m1.status().ToString();
  EXPECT_EQ(m1->size(), kSrpProofBytes);
  auto m2 = h.server.Verify(h.client.A(), *m1, "cluster1|nonces");
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  EXPECT_TRUE(h.client.VerifyServer(*m2).ok());
  EXPECT_EQ(h.client.session_key().size(), kSrpProofBytes);
  EXPECT_EQ(h.client.session_key(), h.server.session_key());
  // A second handshake with the same password has fresh a, b and a fresh key.
  Handshake h2;
  EXPECT_NE(h2.client.A(), h.client.A());
}

TEST(SrpExchange, AWrongPasswordFailsLikeAnyBadProof) {
  std::string x = RandomBytes(32);
  std::string v = ComputeVerifier(x);
  Client wrong(RandomBytes(32));
  Server s1 = Server::Create(v).value();
  auto m1 = wrong.Respond(s1.B(), "ctx");
  ASSERT_TRUE(m1.ok());  // the client cannot tell: only the server can
  auto r1 = s1.Verify(wrong.A(), *m1, "ctx");
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kAuthFailed);
  EXPECT_TRUE(s1.session_key().empty());
  // Garbage of the right size fails identically: the error does not tell why.
  Client other(x);
  Server s2 = Server::Create(v).value();
  auto r2 = s2.Verify(other.A(), RandomBytes(kSrpProofBytes), "ctx");
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), r1.status().code());
  EXPECT_EQ(r2.status().message(), r1.status().message());
  // One attempt per server object.
  EXPECT_EQ(s1.Verify(wrong.A(), *m1, "ctx").status().code(), Code::kProtocol);
}

TEST(SrpExchange, TheClientRefusesDegenerateOrMalformedB) {
  std::string zero(kSrpGroupBytes, '\0');
  for (const std::string& B : {zero, G().N}) {
    Client c(RandomBytes(32));
    auto r = c.Respond(B, "ctx");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kAuthFailed);
    EXPECT_EQ(r.status().message(), "the server sent an invalid SRP value");
    EXPECT_EQ(c.VerifyServer(RandomBytes(kSrpProofBytes)).code(), Code::kProtocol);
    Server s = Server::Create(ComputeVerifier(RandomBytes(32))).value();
    EXPECT_EQ(c.Respond(s.B(), "ctx").status().code(), Code::kProtocol);  // no retry
  }
  // 2N (and every larger multiple) does not fit in 384 bytes: refused by size.
  Bn two_n(BN_new());
  ASSERT_TRUE(BN_lshift1(two_n.get(), ToBn(G().N).get()));
  std::string b2n = FromBn(two_n.get(), kSrpGroupBytes + 1);
  for (const std::string& B : {b2n, std::string(), std::string(kSrpGroupBytes - 1, '\x01'),
                               std::string(kSrpGroupBytes + 1, '\x01')}) {
    Client c(RandomBytes(32));
    EXPECT_EQ(c.Respond(B, "ctx").status().code(), Code::kProtocol) << B.size();
  }
  // N + 1 is 1 mod N, but not a canonical encoding: refused too.
  Bn n1(BN_dup(ToBn(G().N).get()));
  ASSERT_TRUE(BN_add_word(n1.get(), 1));
  std::string np1 = FromBn(n1.get(), kSrpGroupBytes);
  Client c(RandomBytes(32));
  EXPECT_EQ(c.Respond(np1, "ctx").status().code(), Code::kAuthFailed);
}

TEST(SrpExchange, TheServerRefusesDegenerateOrMalformedA) {
  std::string x = RandomBytes(32);
  std::string zero(kSrpGroupBytes, '\0');
  for (const std::string& A : {zero, G().N}) {
    Server s = Server::Create(ComputeVerifier(x)).value();
    auto r = s.Verify(A, RandomBytes(kSrpProofBytes), "ctx");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kAuthFailed);
    EXPECT_TRUE(s.session_key().empty());
  }
  Client c(x);
  for (const std::string& A : {std::string(), std::string(kSrpGroupBytes - 1, '\x01'),
                               std::string(kSrpGroupBytes + 1, '\x01')}) {
    Server s = Server::Create(ComputeVerifier(x)).value();
    EXPECT_EQ(s.Verify(A, RandomBytes(kSrpProofBytes), "ctx").status().code(), Code::kProtocol);
  }
  for (size_t len : {0, 31, 33}) {
    Server s = Server::Create(ComputeVerifier(x)).value();
    EXPECT_EQ(s.Verify(c.A(), std::string(len, 'm'), "ctx").status().code(), Code::kProtocol);
  }
  // A stored verifier that cannot be one is refused up front.
  EXPECT_EQ(Server::Create("short").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Server::Create(zero).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Server::Create(G().N).status().code(), Code::kInvalidArgument);
}

TEST(SrpExchange, AnImpostorServerGetsNothingUseful) {
  // A server without v can only pick some B; the M1 it gets depends on the password, and it
  // cannot produce an M2 the client accepts.
  Bn N = ToBn(G().N);
  Bn r(BN_new());
  ASSERT_TRUE(BN_rand_range(r.get(), N.get()));
  std::string B = FromBn(r.get(), kSrpGroupBytes);
  Client c1(RandomBytes(32)), c2(RandomBytes(32));
  auto m1 = c1.Respond(B, "ctx"), m2 = c2.Respond(B, "ctx");
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_NE(*m1, *m2);
  EXPECT_EQ(c1.VerifyServer(RandomBytes(kSrpProofBytes)).code(), Code::kAuthFailed);
  // A server holding another password's verifier refuses the client, so it sends no M2.
  Client c3(RandomBytes(32));
  Server s = Server::Create(ComputeVerifier(RandomBytes(32))).value();
  auto m3 = c3.Respond(s.B(), "ctx");
  ASSERT_TRUE(m3.ok());
  EXPECT_EQ(s.Verify(c3.A(), *m3, "ctx").status().code(), Code::kAuthFailed);
}

TEST(SrpExchange, ATamperedServerProofIsRefused) {
  Handshake h;
  auto m1 = h.client.Respond(h.server.B(), "ctx");
  ASSERT_TRUE(m1.ok());
  auto m2 = h.server.Verify(h.client.A(), *m1, "ctx");
  ASSERT_TRUE(m2.ok());
  for (size_t bit = 0; bit < m2->size() * 8; bit += 7)
    EXPECT_EQ(h.client.VerifyServer(FlipBit(*m2, bit)).code(), Code::kAuthFailed) << bit;
  EXPECT_EQ(h.client.VerifyServer(m2->substr(1)).code(), Code::kProtocol);
  EXPECT_EQ(h.client.VerifyServer(*m1).code(), Code::kAuthFailed);  // reflection
  EXPECT_TRUE(h.client.VerifyServer(*m2).ok());
}

TEST(SrpExchange, TheProofIsBoundToTheContext) {
  Handshake h;
  auto m1 = h.client.Respond(h.server.B(), "cluster-a|n1|n2");
  ASSERT_TRUE(m1.ok());
  auto r = h.server.Verify(h.client.A(), *m1, "cluster-b|n1|n2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kAuthFailed);
}

TEST(SrpSeal, RoundTripsAndRefusesAnyAlteration) {
  std::string key = RandomBytes(32);
  std::string sealed = Seal(key, "cluster key", "hello", "aad");
  ASSERT_EQ(sealed.size(), 12u + 5 + 16);
  EXPECT_NE(Seal(key, "cluster key", "hello", "aad"), sealed);  // fresh nonce
  auto r = Open(key, "cluster key", sealed, "aad");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "hello");
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit)  // nonce, ciphertext and tag
    EXPECT_EQ(Open(key, "cluster key", FlipBit(sealed, bit), "aad").status().code(),
              Code::kAuthFailed)
        << bit;
  for (size_t bit = 0; bit < 3 * 8; ++bit)
    EXPECT_EQ(Open(key, "cluster key", sealed, FlipBit("aad", bit)).status().code(),
              Code::kAuthFailed);
  EXPECT_EQ(Open(key, "cluster kez", sealed, "aad").status().code(), Code::kAuthFailed);
  EXPECT_EQ(Open(key, "", sealed, "aad").status().code(), Code::kAuthFailed);
  EXPECT_EQ(Open(RandomBytes(32), "cluster key", sealed, "aad").status().code(),
            Code::kAuthFailed);
  EXPECT_EQ(Open(key, "cluster key", sealed, "").status().code(), Code::kAuthFailed);
  EXPECT_EQ(Open(key, "cluster key", sealed.substr(0, sealed.size() - 1), "aad").status().code(),
            Code::kAuthFailed);
  EXPECT_EQ(Open(key, "cluster key", sealed.substr(0, 27), "aad").status().code(),
            Code::kProtocol);
  // Empty plaintext and a large one.
  auto e = Open(key, "l", Seal(key, "l", "", ""), "");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, "");
  std::string big = RandomBytes(100000);
  auto b = Open(key, "l", Seal(key, "l", big, "x"), "x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, big);
}

// RFC 5054 Appendix B, over the 1024-bit group of Appendix A with SHA-1.
TEST(SrpRfc5054, AppendixBVectors) {
  Group g1024{Unhex("EEAF0AB9 ADB38DD6 9C33F80A FA8FC5E8 60726187 75FF3C0B 9EA2314C"
                    "9C256576 D674DF74 96EA81D3 383B4813 D692C6E0 E0D5D8E2 50B98BE4"
                    "8E495C1D 6089DAD1 5DC7D7B4 6154D6B6 CE8EF4AD 69B15D49 82559B29"
                    "7BCF1885 C529F566 660E57EC 68EDBC3C 05726CC0 2FD4CBF4 976EAA9A"
                    "FD5138FE 8376435B 9FC61D2F C0EB06E3"),
              2, EVP_sha1()};
  ASSERT_EQ(g1024.N.size(), 128u);
  std::string I = "alice", P = "password123";
  std::string s = Unhex("BEB25379 D1A8581E B5A72767 3A2441EE");
  std::string x = detail::H(g1024, s + detail::H(g1024, I + ":" + P));
  EXPECT_EQ(x, Unhex("94B7555A ABE9127C C58CCF49 93DB6CF8 4D16C124"));
  EXPECT_EQ(detail::Multiplier(g1024), Unhex("7556AA04 5AEF2CDD 07ABAF0F 665C3E81 8913186F"));
  std::string v = detail::Verifier(g1024, x);
  EXPECT_EQ(v, Unhex("7E273DE8 696FFC4F 4E337D05 B4B375BE B0DDE156 9E8FA00A 9886D812"
                     "9BADA1F1 822223CA 1A605B53 0E379BA4 729FDC59 F105B478 7E5186F5"
                     "C671085A 1447B52A 48CF1970 B4FB6F84 00BBF4CE BFBB1681 52E08AB5"
                     "EA53D15C 1AFF87B2 B9DA6E04 E058AD51 CC72BFC9 033B564E 26480D78"
                     "E955A5E2 9E7AB245 DB2BE315 E2099AFB"));
  std::string a = Unhex("60975527 035CF2AD 1989806F 0407210B C81EDC04 E2762A56 AFD529DD"
                        "DA2D4393");
  std::string b = Unhex("E487CB59 D31AC550 471E81F0 0F6928E0 1DDA08E9 74A004F4 9E61F5D1"
                        "05284D20");
  std::string A = detail::PublicA(g1024, a);
  EXPECT_EQ(A, Unhex("61D5E490 F6F1B795 47B0704C 436F523D D0E560F0 C64115BB 72557EC4"
                     "4352E890 3211C046 92272D8B 2D1A5358 A2CF1B6E 0BFCF99F 921530EC"
                     "8E393561 79EAE45E 42BA92AE ACED8251 71E1E8B9 AF6D9C03 E1327F44"
                     "BE087EF0 6530E69F 66615261 EEF54073 CA11CF58 58F0EDFD FE15EFEA"
                     "B349EF5D 76988A36 72FAC47B 0769447B"));
  std::string B = detail::PublicB(g1024, v, b);
  EXPECT_EQ(B, Unhex("BD0C6151 2C692C0C B6D041FA 01BB152D 4916A1E7 7AF46AE1 05393011"
                     "BAF38964 DC46A067 0DD125B9 5A981652 236F99D9 B681CBF8 7837EC99"
                     "6C6DA044 53728610 D0C6DDB5 8B318885 D7D82C7F 8DEB75CE 7BD4FBAA"
                     "37089E6F 9C6059F3 88838E7A 00030B33 1EB76840 910440B1 B27AAEAE"
                     "EB4012B7 D7665238 A8E3FB00 4B117B58"));
  EXPECT_EQ(detail::Scrambler(g1024, A, B),
            Unhex("CE38B959 3487DA98 554ED47D 70A7AE5F 462EF019"));
  std::string S = Unhex("B0DC82BA BCF30674 AE450C02 87745E79 90A3381F 63B387AA F271A10D"
                        "233861E3 59B48220 F7C4693C 9AE12B0A 6F67809F 0876E2D0 13800D6C"
                        "41BB59B6 D5979B5C 00A172B4 A2A5903A 0BDCAF8A 709585EB 2AFAFA8F"
                        "3499B200 210DCC1F 10EB3394 3CD67FC8 8A2F39A4 BE5BEC4E C0A3212D"
                        "C346D7E4 74B29EDE 8A469FFE CA686E5A");
  auto cs = detail::ClientSecret(g1024, x, a, A, B);
  auto ss = detail::ServerSecret(g1024, v, b, A, B);
  ASSERT_TRUE(cs.ok() && ss.ok());
  EXPECT_EQ(*cs, S);
  EXPECT_EQ(*ss, S);
}

// S against a formula computed another way: both sides reach g^(b*(a+u*x)), here with plain
// (not constant-time) BN arithmetic.
TEST(SrpMath, PremasterSecretMatchesAnIndependentFormula) {
  std::string x = RandomBytes(32), a = RandomBytes(32), b = RandomBytes(32);
  std::string v = detail::Verifier(G(), x);
  EXPECT_EQ(v, ComputeVerifier(x));
  std::string A = detail::PublicA(G(), a), B = detail::PublicB(G(), v, b);
  auto cs = detail::ClientSecret(G(), x, a, A, B);
  auto ss = detail::ServerSecret(G(), v, b, A, B);
  ASSERT_TRUE(cs.ok() && ss.ok());
  EXPECT_EQ(*cs, *ss);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  Bn N = ToBn(G().N), g(BN_new()), e(BN_new()), S(BN_new());
  ASSERT_TRUE(BN_set_word(g.get(), G().g));
  Bn u = ToBn(detail::Scrambler(G(), A, B));
  ASSERT_TRUE(BN_mul(e.get(), u.get(), ToBn(x).get(), ctx.get()));
  ASSERT_TRUE(BN_add(e.get(), e.get(), ToBn(a).get()));
  ASSERT_TRUE(BN_mul(e.get(), e.get(), ToBn(b).get(), ctx.get()));
  ASSERT_TRUE(BN_mod_exp(S.get(), g.get(), e.get(), N.get(), ctx.get()));
  EXPECT_EQ(*cs, FromBn(S.get(), kSrpGroupBytes));
  // And k is H(PAD(N) | PAD(g)) over the 384-byte PAD.
  EXPECT_EQ(detail::Multiplier(G()),
            detail::H(G(), G().N + detail::Pad(G(), std::string(1, '\x05'))));
}

}  // namespace
}  // namespace vstorage::srp
