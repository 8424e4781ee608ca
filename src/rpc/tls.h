// TLS 1.3 on every connection (issue 13 item 5; docs/design/rpc.md "Encryption").
//
// The key comes from the cluster key K that auth-node already put on every host: an
// external PSK (identity "vstorage/<cluster>", key HMAC-SHA256(K, "vstorage tls13 psk")),
// with an (EC)DHE key share, so a recorded connection stays secret even if K leaks later.
// No certificates, nothing to configure. Cipher suite TLS_AES_128_GCM_SHA256 (AES-NI).
// A tampered, dropped, reordered or replayed record fails TLS's record MAC and ends the
// connection. The frame handshake of rpc/auth.h then runs inside TLS, unchanged.
//
// The client speaks first: a TLS ClientHello (first byte 0x16), or, in plaintext, a Hello
// frame (auth-node, which has no K yet and proves the password by SRP; and every peer when
// the cluster runs with `gen.encryption=0`). A server answers both; while encryption is on
// it refuses a plaintext peer everything but auth-node.
//
// Thread-safety: the switch and the contexts are thread-safe (contexts are made once per
// cluster key and kept). A Stream is used on its connection's strand only.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>

namespace vstorage::rpc {

inline constexpr unsigned char kTlsHandshakeRecord = 0x16;  // a ClientHello's first byte

// gen.encryption as this process knows it (on until told otherwise): whether connections it
// makes from now on use TLS, and whether its servers refuse plaintext peers.
void SetEncryption(bool on);
bool EncryptionOn();

// The TLS context for one cluster key, client or server side. Made on first use, never freed.
asio::ssl::context& TlsContext(const std::string& cluster, const std::string& key, bool server);

// A connection's bytes: the TCP socket, or TLS over it once UseTls() was called (before any
// byte is read or written). An AsyncReadStream and AsyncWriteStream for asio::async_read
// and async_write. Not movable: the TLS layer refers to the socket.
class Stream {
 public:
  using tcp = asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;
  using Tls = asio::ssl::stream<tcp::socket&>;
  explicit Stream(tcp::socket s) : sock_(std::move(s)) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void UseTls(asio::ssl::context& ctx) { tls_ = std::make_unique<Tls>(sock_, ctx); }
  Tls* tls() { return tls_.get(); }
  tcp::socket& socket() { return sock_; }
  executor_type get_executor() { return sock_.get_executor(); }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
    return sock_.async_read_some(b, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
    return sock_.async_write_some(b, std::forward<Token>(token));
  }

 private:
  tcp::socket sock_;
  std::unique_ptr<Tls> tls_;
};

// Over TLS every buffer of a gathered write becomes a record of its own (and a send): the
// small ones (frame headers, bodies, small payloads) are copied into *scratch so that a
// 4 KiB write goes out as one record. Buffers of kTlsCoalesceBytes and more pass as they are.
// *scratch holds at most a batch's small buffers: kMaxWritesPerBatch (64) frames of up to
// 3 buffers each under kTlsCoalesceBytes, so under 3 MiB, and is reused batch after batch.
inline constexpr size_t kTlsCoalesceBytes = 16 << 10;
std::vector<asio::const_buffer> CoalesceForTls(const std::vector<asio::const_buffer>& in, std::string* scratch);

}  // namespace vstorage::rpc
