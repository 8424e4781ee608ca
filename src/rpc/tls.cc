#include "rpc/tls.h"

#include <openssl/ssl.h>

#include <cstring>
#include <map>
#include <mutex>

#include "common/auth.h"
#include "common/log.h"
#include "common/status.h"

namespace vstorage::rpc {

namespace {

std::atomic<bool> g_encryption{true};

// What a context's PSK callbacks need; lives as long as the context (forever).
struct Psk {
  std::string identity;  // "vstorage/<cluster>"
  std::string key;       // 32 bytes
};

int g_psk_index = -1;  // SSL_CTX ex_data slot for Psk

const Psk* PskOf(SSL* ssl) { return static_cast<const Psk*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), g_psk_index)); }

// A fresh session holding the PSK (OpenSSL takes ownership of what the callbacks return).
SSL_SESSION* PskSession(SSL* ssl, const Psk& psk) {
  static const unsigned char kAes128GcmSha256[] = {0x13, 0x01};
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (!cipher) return nullptr;
  SSL_SESSION* s = SSL_SESSION_new();
  if (!s) return nullptr;
  if (SSL_SESSION_set1_master_key(s, reinterpret_cast<const unsigned char*>(psk.key.data()), psk.key.size()) != 1 ||
      SSL_SESSION_set_cipher(s, cipher) != 1 || SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

int UseSession(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* idlen, SSL_SESSION** sess) {
  const Psk* psk = PskOf(ssl);
  *sess = nullptr;
  if (!psk) return 0;
  SSL_SESSION* s = PskSession(ssl, *psk);
  if (!s) return 0;
  if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {  // a retry with another hash
    SSL_SESSION_free(s);
    return 1;  // no PSK for it: the handshake fails (there is no other way in)
  }
  *id = reinterpret_cast<const unsigned char*>(psk->identity.data());
  *idlen = psk->identity.size();
  *sess = s;
  return 1;
}

int FindSession(SSL* ssl, const unsigned char* id, size_t idlen, SSL_SESSION** sess) {
  const Psk* psk = PskOf(ssl);
  *sess = nullptr;
  if (!psk) return 0;
  // Another cluster's peer (or no peer of ours): no PSK, and without one the handshake fails.
  if (idlen != psk->identity.size() || std::memcmp(id, psk->identity.data(), idlen) != 0) return 1;
  *sess = PskSession(ssl, *psk);
  return *sess ? 1 : 0;
}

asio::ssl::context* MakeContext(const std::string& cluster, const std::string& key, bool server) {
  auto* ctx = new asio::ssl::context(server ? asio::ssl::context::tls_server : asio::ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  VS_CHECK(SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) == 1);
  VS_CHECK(SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) == 1);
  VS_CHECK(SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256") == 1);
  // One handshake per connection and connections live long: no tickets, no resumption.
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  VS_CHECK(SSL_CTX_set_num_tickets(c, 0) == 1);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  // An idle connection keeps no record buffers (a CS holds a thousand of them).
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);  // the PSK authenticates both ends
  auto* psk = new Psk{"vstorage/" + cluster, HmacSha256(key, "vstorage tls13 psk")};
  VS_CHECK(SSL_CTX_set_ex_data(c, g_psk_index, psk) == 1);
  if (server) SSL_CTX_set_psk_find_session_callback(c, FindSession);
  else SSL_CTX_set_psk_use_session_callback(c, UseSession);
  return ctx;
}

}  // namespace

std::vector<asio::const_buffer> CoalesceForTls(const std::vector<asio::const_buffer>& in, std::string* scratch) {
  size_t small = 0;
  for (const auto& b : in)
    if (b.size() < kTlsCoalesceBytes) small += b.size();
  scratch->clear();
  scratch->reserve(small);  // no reallocation below: the pointers into it stay valid
  std::vector<asio::const_buffer> out;
  size_t run_start = 0;
  for (const auto& b : in) {
    if (b.size() < kTlsCoalesceBytes) {
      scratch->append(static_cast<const char*>(b.data()), b.size());
      continue;
    }
    if (scratch->size() > run_start) out.emplace_back(scratch->data() + run_start, scratch->size() - run_start);
    run_start = scratch->size();
    out.push_back(b);
  }
  if (scratch->size() > run_start) out.emplace_back(scratch->data() + run_start, scratch->size() - run_start);
  return out;
}

void SetEncryption(bool on) {
  if (g_encryption.exchange(on) != on)
    LOG_INFO("connections made from now on are %s (gen.encryption=%d)", on ? "encrypted (TLS 1.3)" : "plaintext",
             on ? 1 : 0);
}

bool EncryptionOn() { return g_encryption.load(); }

asio::ssl::context& TlsContext(const std::string& cluster, const std::string& key, bool server) {
  static std::mutex mu;
  static auto* contexts = new std::map<std::tuple<std::string, std::string, bool>, asio::ssl::context*>;
  std::lock_guard<std::mutex> l(mu);
  if (g_psk_index < 0) {
    g_psk_index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    VS_CHECK(g_psk_index >= 0);
  }
  auto& slot = (*contexts)[{cluster, key, server}];
  if (!slot) slot = MakeContext(cluster, key, server);
  return *slot;
}

}  // namespace vstorage::rpc
