// The RPC framing (rpc/frame.h) and the server's side of the handshake (rpc/auth.h).
//
// The input is what a peer sends on a connection. Its first 32 bytes go through
// DecodeFrameHeader (a header that decodes re-encodes to the same bytes, its reserved word
// aside); then the whole input is fed through a socket pair to Socket::Recv, the blocking
// reader of clients and tools, frame after frame, and each frame to
// ServerHandshaker::OnFrame, as a server does with the frames of a handshake (with a
// password verifier, as on an MDS: SrpStart then SrpProof go to one handshaker; a step that
// ends it starts a new one for the next frame). Error frames are decoded as ErrorReply, as
// Channel does.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "common/limits.h"
#include "common/srp.h"
#include "fuzz_util.h"
#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/frame.h"
#include "rpc/socket.h"

namespace {

using namespace vstorage;
using namespace vstorage::rpc;

const ServerAuth* g_auth = nullptr;

void HeaderCase(const uint8_t* data, size_t size) {
  if (size < kFrameHeaderBytes) return;
  auto h = DecodeFrameHeader(reinterpret_cast<const char*>(data));
  if (!h.ok()) return;
  VSFUZZ_CHECK(h->body_len <= kMaxMessageBytes && h->payload_len <= kMaxPayloadBytes, "limits not enforced");
  Frame f;
  f.type = h->type;
  f.req_id = h->req_id;
  f.flags = h->flags;
  char out[kFrameHeaderBytes];
  EncodeFrameHeader(f, h->body_len, h->payload_len, out);
  VSFUZZ_CHECK(std::memcmp(out, data, kFrameHeaderBytes - 4) == 0, "a decoded header re-encodes differently");
  auto again = DecodeFrameHeader(out);
  VSFUZZ_CHECK(again.ok() && again->type == h->type && again->req_id == h->req_id && again->flags == h->flags &&
                   again->body_len == h->body_len && again->payload_len == h->payload_len,
               "a re-encoded header decodes differently");
}

void StreamCase(const uint8_t* data, size_t size) {
  int sv[2];
  VSFUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  int buf = 1 << 20;
  (void)::setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::send(sv[1], data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the rest does not fit: the stream just ends earlier
    off += static_cast<size_t>(n);
  }
  ::close(sv[1]);  // end of stream after the input
  Socket s(sv[0]);
  std::optional<ServerHandshaker> hs;
  hs.emplace(*g_auth);
  char payload[4096];
  for (int i = 0; i < 16; ++i) {
    Frame f;
    size_t got = 0;
    // Every other frame with a caller's buffer for the payload, as chunk reads do.
    Status st = (i & 1) ? s.Recv(&f, 1000, payload, sizeof payload, &got) : s.Recv(&f, 1000);
    if (!st.ok()) break;
    VSFUZZ_CHECK(f.body.size() <= kMaxMessageBytes && f.payload.size() <= kMaxPayloadBytes, "frame over the limits");
    if (f.flags & kFlagError) {
      proto::ErrorReply er;
      vsfuzz::AllocGuard g(f.body.size());
      (void)proto::DecodeFromString(f.body, &er, "error reply");
    }
    ServerHandshaker::Step step = [&] {
      vsfuzz::AllocGuard g(f.body.size());
      return hs->OnFrame(f);
    }();
    VSFUZZ_CHECK(!step.more || step.outcome.ok(), "a failed handshake step asks for more");
    if (step.reply) {
      // What the server sends back must itself be a frame a client can read.
      char out[kFrameHeaderBytes];
      EncodeFrameHeader(*step.reply, step.reply->body.size(), step.reply->payload.size(), out);
      VSFUZZ_CHECK(DecodeFrameHeader(out).ok(), "the handshake reply frame does not decode");
      if (step.reply->flags & kFlagError) {
        proto::ErrorReply er;
        VSFUZZ_CHECK(proto::DecodeFromString(step.reply->body, &er, "refusal").ok(), "the refusal does not decode");
      }
    }
    VSFUZZ_CHECK(!step.outcome.ok() || step.reply, "a handshake accepted without a reply");
    if (!step.more) hs.emplace(*g_auth);  // closed or serving: the next frame starts again
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  auto* auth = new ServerAuth;
  auth->cluster = "fuzz";
  auth->key = std::string(kClusterKeyBytes, 'k');
  PasswordDigest d;
  d.salt = "0123456789abcdef";
  d.iterations = 1000;
  d.verifier = srp::ComputeVerifier(std::string(32, 'h'));
  auth->password = d;
  g_auth = auth;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  HeaderCase(data, size);
  StreamCase(data, size);
  return 0;
}
