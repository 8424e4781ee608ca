#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/srp.h"
#include "rpc/channel.h"
#include "rpc/client.h"
#include "rpc/server.h"
#include "rpc/tls.h"

namespace vstorage::rpc {
namespace {

using proto::MsgType;

class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = RandomBytes(32);
    ASSERT_TRUE(server_.Listen(HostPort{"127.0.0.1", 0}).ok());
    ServerAuth auth{"c1", key_, MakePasswordDigestForTest("secret")};
    server_.Start(auth, [](ServerConn& c, Frame& req) {
      if (req.type == static_cast<uint16_t>(MsgType::kLookup)) {
        proto::LookupReq r;
        if (!proto::DecodeFromString(req.body, &r, "lookup").ok()) return;
        proto::AttrReply rep;
        rep.attr.ino = InodeId{r.parent.v + 1};
        rep.attr.size = req.payload.size();
        (void)c.Reply(req, rep, req.payload.data(), req.payload.size());
      } else {
        (void)c.ReplyError(req, Err(Code::kNotFound, "no such thing"));
      }
    });
    addr_ = "127.0.0.1:" + std::to_string(server_.port());
  }
  static PasswordDigest MakePasswordDigestForTest(const std::string& pw) {
    PasswordDigest d;
    d.salt = "0123456789abcdef";
    d.iterations = 1000;
    d.verifier = srp::ComputeVerifier(Pbkdf2(pw, d.salt, d.iterations));
    return d;
  }
  std::string key_;
  Server server_;
  std::string addr_;
};

TEST_F(RpcTest, CallWithPayloadRoundTrip) {
  auto c = Conn::Dial(addr_, Credentials{"c1", key_});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string data(1 << 20, 'z');
  Frame rep;
  proto::LookupReq req{InodeId{41}, "x"};
  ASSERT_TRUE((*c)->CallRaw(MsgType::kLookup, proto::EncodeToString(req), data.data(), data.size(),
                            &rep).ok());
  proto::AttrReply ar;
  ASSERT_TRUE(proto::DecodeFromString(rep.body, &ar, "x").ok());
  EXPECT_EQ(ar.attr.ino, InodeId{42});
  EXPECT_EQ(ar.attr.size, data.size());
  EXPECT_EQ(rep.payload, data);
}

TEST_F(RpcTest, ErrorReplyBecomesStatus) {
  auto c = Conn::Dial(addr_, Credentials{"c1", key_});
  ASSERT_TRUE(c.ok());
  proto::InodeReq req{InodeId{1}};
  proto::AttrReply rep;
  Status st = (*c)->Call(MsgType::kGetAttr, req, &rep);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "no such thing");
  EXPECT_FALSE((*c)->broken());
}

TEST_F(RpcTest, WrongKeyRefusedWithAdvice) {
  auto c = Conn::Dial(addr_, Credentials{"c1", RandomBytes(32)});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kAuthFailed);
  EXPECT_NE(c.status().message().find("auth-node"), std::string::npos);
  // The advice is for the host that dialled: it has the wrong key.
  EXPECT_NE(c.status().message().find("the fault is on this host"), std::string::npos)
      << c.status().message();
  EXPECT_NE(c.status().message().find("on this host to fetch the key again"), std::string::npos);
  EXPECT_EQ(c.status().message().find("on that host"), std::string::npos);
}

TEST_F(RpcTest, WrongClusterRefused) {
  auto c = Conn::Dial(addr_, Credentials{"other", key_});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kAuthFailed);
}

TEST_F(RpcTest, PasswordHandshakeReturnsKeyOnlyForRightPassword) {
  auto s = Socket::Connect(HostPort{"127.0.0.1", server_.port()}, 1000);
  ASSERT_TRUE(s.ok());
  auto k = PasswordHandshake(*s, "c1", "secret");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(*k, key_);
  auto s2 = Socket::Connect(HostPort{"127.0.0.1", server_.port()}, 1000);
  ASSERT_TRUE(s2.ok());
  auto k2 = PasswordHandshake(*s2, "c1", "wrong");
  ASSERT_FALSE(k2.ok());
  EXPECT_EQ(k2.status().code(), Code::kAuthFailed);
  EXPECT_NE(k2.status().message().find("wrong password"), std::string::npos);
}

template <typename T>
Frame HsFrame(MsgType t, const T& m) {
  Frame f;
  f.type = static_cast<uint16_t>(t);
  f.body = proto::EncodeToString(m);
  return f;
}

// The old auth-node proof (HMAC under the password hash, which a fake MDS could test
// guesses against offline) is refused, with the fix in the message.
TEST_F(RpcTest, TheOldPasswordProofIsRefused) {
  auto s = Socket::Connect(HostPort{"127.0.0.1", server_.port()}, 1000);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->Send(HelloFrame()).ok());
  Frame f;
  ASSERT_TRUE(s->Recv(&f, 1000).ok());
  ASSERT_TRUE(s->Send(HsFrame(MsgType::kPasswordAuth, proto::PasswordAuth{std::string(32, 'p')})).ok());
  ASSERT_TRUE(s->Recv(&f, 1000).ok());
  ASSERT_TRUE(f.flags & kFlagError);
  proto::ErrorReply er;
  ASSERT_TRUE(proto::DecodeFromString(f.body, &er, "refusal").ok());
  EXPECT_EQ(er.code, static_cast<uint16_t>(Code::kAuthFailed));
  EXPECT_NE(er.message.find("update vstorage"), std::string::npos) << er.message;
}

// auth-node against something posing as the MDS, which knows the salt (public) but not the
// verifier: with a B it cannot back it gets A and one proof (one online guess, nothing to
// test offline against without b and v), cannot forge the server's proof, and the client
// takes no key from it; a degenerate B (which would fix the session secret) gets no proof.
TEST(PasswordHandshakeTest, AnImpostorMdsCannotProveItselfAndIsGivenNoProofForADegenerateB) {
  for (bool degenerate : {false, true}) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    bool got_proof = false;
    std::thread impostor([fd = sv[1], degenerate, &got_proof] {
      Socket s(fd);
      Frame f;
      if (!s.Recv(&f, 5000).ok() || f.type != static_cast<uint16_t>(MsgType::kHello)) return;
      proto::Challenge ch{"c1", std::string(16, 'n'), "0123456789abcdef", 1000};
      if (!s.Send(HsFrame(MsgType::kChallenge, ch)).ok()) return;
      if (!s.Recv(&f, 5000).ok() || f.type != static_cast<uint16_t>(MsgType::kSrpStart)) return;
      std::string b = degenerate ? std::string(srp::kSrpGroupBytes, '\0') : srp::ComputeVerifier("a guess");
      if (!s.Send(HsFrame(MsgType::kSrpStart, proto::SrpChallenge{b})).ok()) return;
      if (!s.Recv(&f, 5000).ok() || f.type != static_cast<uint16_t>(MsgType::kSrpProof)) return;
      proto::SrpProof p;
      got_proof = proto::DecodeFromString(f.body, &p, "proof").ok() && p.m1.size() == srp::kSrpProofBytes;
      (void)s.Send(HsFrame(MsgType::kSrpProof, proto::SrpProofReply{std::string(32, 'x'), std::string(60, 'y')}));
    });
    Status st;
    {
      Socket c(sv[0]);
      auto k = PasswordHandshake(c, "c1", "secret");
      st = k.status();
    }  // closed: the impostor's wait for a proof ends
    impostor.join();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::kAuthFailed);
    EXPECT_EQ(got_proof, !degenerate);
    EXPECT_NE(st.message().find(degenerate ? "not a proper MDS" : "it is not the MDS"), std::string::npos)
        << st.ToString();
  }
}

// The older digest form (x itself, password-equivalent) still works: it becomes a verifier.
TEST(PasswordDigestTest, TheOldFormIsReadAsAVerifierAndSerializedAsOne) {
  std::string salt = "0123456789abcdef";
  std::string hash = Pbkdf2("secret", salt, 1000);
  auto d = PasswordDigest::Parse("pbkdf2-sha256$1000$" + HexEncode(salt) + "$" + HexEncode(hash) + "\n");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->upgraded);
  EXPECT_EQ(d->verifier, srp::ComputeVerifier(hash));
  std::string text = d->Serialize();
  EXPECT_EQ(text.rfind("srp6a-3072-sha256$1000$", 0), 0u);
  EXPECT_EQ(text.find(HexEncode(hash)), std::string::npos);
  auto again = PasswordDigest::Parse(text);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->upgraded);
  EXPECT_EQ(again->verifier, d->verifier);
  EXPECT_FALSE(PasswordDigest::Parse("srp6a-3072-sha256$1000$" + HexEncode(salt) + "$00").ok());
  EXPECT_FALSE(PasswordDigest::Parse("srp6a-3072-sha256$1000$" + HexEncode(salt) + "$" +
                                     HexEncode(std::string(srp::kSrpGroupBytes, '\xff'))).ok());  // >= N
  EXPECT_FALSE(PasswordDigest::Parse("srp6a-3072-sha256$999999999$" + HexEncode(salt) + "$" + HexEncode(d->verifier)).ok());
}

// A TCP relay between a client and the server that records what it carries and may flip
// one bit of the server's bytes, or send one of the server's TLS records twice (an attacker
// on the storage network).
class Relay {
 public:
  Relay(int server_port, long flip_at = -1, int replay_record = -1)
      : server_port_(server_port), flip_at_(flip_at), replay_record_(replay_record) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_, 4), 0);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    ::shutdown(listen_, SHUT_RDWR);
    stop_ = true;
    thread_.join();
    ::close(listen_);
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string carried() {
    std::lock_guard<std::mutex> l(mu_);
    return bytes_;
  }

 private:
  void Run() {
    int c = ::accept(listen_, nullptr, nullptr);
    if (c < 0) return;
    auto up = Socket::Connect(HostPort{"127.0.0.1", server_port_}, 1000);
    if (!up.ok()) return ::close(c), void();
    int u = up->fd();
    long from_server = 0;
    char buf[65536];
    while (!stop_) {
      pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      if (::poll(p, 2, 100) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          closed = true;
          break;
        }
        if (i == 1 && flip_at_ >= from_server && flip_at_ < from_server + n) buf[flip_at_ - from_server] ^= 0x10;
        if (i == 1) from_server += n;
        {
          std::lock_guard<std::mutex> l(mu_);
          bytes_.append(buf, static_cast<size_t>(n));
        }
        std::string out(buf, static_cast<size_t>(n));
        if (i == 1 && replay_record_ >= 0) {
          // Whole TLS records only (5-byte header: type, version, length), one of them twice.
          pending_.append(out);
          out.clear();
          while (pending_.size() >= 5) {
            size_t len = 5 + (static_cast<unsigned char>(pending_[3]) << 8 | static_cast<unsigned char>(pending_[4]));
            if (pending_.size() < len) break;
            std::string record = pending_.substr(0, len);
            pending_.erase(0, len);
            out += record;
            if (records_++ == replay_record_) out += record;
          }
        }
        if (!out.empty() && ::send(i == 0 ? u : c, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()))
          closed = true;
      }
      if (closed) break;
    }
    ::close(c);
  }
  int server_port_;
  long flip_at_;
  int replay_record_;
  std::string pending_;  // server bytes short of a whole record
  int records_ = 0;
  int listen_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string bytes_;
};

// TLS 1.3 (rpc/tls.h): nothing of a request or a reply crosses the network readable; with
// gen.encryption=0 the same bytes do (so the check above can see plaintext when it is there).
TEST_F(RpcTest, TrafficIsEncryptedUnlessEncryptionIsOff) {
  const std::string secret = "file-data-that-must-not-be-seen-" + std::string(4000, 'Q');
  for (bool on : {true, false}) {
    SetEncryption(on);
    Relay relay(server_.port());
    {
      auto c = Conn::Dial(relay.addr(), Credentials{"c1", key_});
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      Frame rep;
      ASSERT_TRUE((*c)->CallRaw(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "name-x"}),
                                secret.data(), secret.size(), &rep).ok());
      EXPECT_EQ(rep.payload, secret);  // echoed back
    }
    std::string seen = relay.carried();
    EXPECT_GT(seen.size(), 2 * secret.size());
    EXPECT_EQ(seen.find("file-data-that-must-not-be-seen") == std::string::npos, on)
        << (on ? "plaintext on an encrypted connection" : "the relay saw no plaintext");
    EXPECT_EQ(seen.find("QQQQQQQQQQQQQQQQ") == std::string::npos, on);
    EXPECT_EQ(seen.find("name-x") == std::string::npos, on);
  }
  SetEncryption(true);
}

TEST(TlsCoalesce, SmallBuffersGoTogetherInOrderLargeOnesAsTheyAre) {
  std::string a(32, 'a'), b(100, 'b'), big(20000, 'B'), c(50, 'c'), d(4096, 'd');
  std::vector<asio::const_buffer> in{asio::buffer(a), asio::buffer(b), asio::buffer(big), asio::buffer(c),
                                     asio::buffer(d)};
  std::string scratch;
  auto out = CoalesceForTls(in, &scratch);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].size(), 132u);
  EXPECT_EQ(out[1].data(), big.data());  // not copied
  EXPECT_EQ(out[2].size(), 4146u);
  std::string joined;
  for (const auto& x : out) joined.append(static_cast<const char*>(x.data()), x.size());
  EXPECT_EQ(joined, a + b + big + c + d);
}

// A 200 KB echo through a relay that attacks the server's bytes: the call must fail as a
// dead connection would, and no altered reply may reach the caller.
void ExpectTheAttackEndsTheConnection(Relay& relay, const std::string& key, const char* what) {
  const std::string data(200000, 'D');
  auto c = Conn::Dial(relay.addr(), Credentials{"c1", key});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Frame rep;
  Status st = (*c)->CallRaw(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "t"}), data.data(),
                            data.size(), &rep, 5000);
  ASSERT_FALSE(st.ok()) << what << " was accepted";
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_TRUE((*c)->broken());
}

// A bit flipped on the way (after the handshake) fails TLS's record check: the connection
// ends, the call fails, and no altered reply is ever handed to the caller.
TEST_F(RpcTest, ATamperedRecordEndsTheConnection) {
  // Past the server's handshake bytes (a few hundred), inside the echoed payload.
  Relay relay(server_.port(), 100000);
  ExpectTheAttackEndsTheConnection(relay, key_, "an altered reply");
}

// A record sent again (a replay) fails TLS's record check too (its sequence number is past):
// the connection ends and the call fails.
TEST_F(RpcTest, AReplayedRecordEndsTheConnection) {
  // The server's records: ServerHello, the encrypted handshake, the frame handshake, then
  // the reply of about 13 records of 16 KiB: record 12 lies inside the reply.
  Relay relay(server_.port(), -1, 12);
  ExpectTheAttackEndsTheConnection(relay, key_, "a replayed record");
}

// While encryption is on, a peer that speaks plaintext gets nothing but auth-node.
TEST_F(RpcTest, APlaintextPeerIsRefusedWhileEncryptionIsOn) {
  auto s = Socket::Connect(HostPort{"127.0.0.1", server_.port()}, 1000);
  ASSERT_TRUE(s.ok());
  Status st = ClientHandshake(*s, "c1", key_, proto::PeerKind::kClient);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kPermission) << st.ToString();
  EXPECT_NE(st.message().find("gen.encryption"), std::string::npos) << st.ToString();
  // With gen.encryption=0 the same plaintext peer is served.
  SetEncryption(false);
  struct Restore {
    ~Restore() { SetEncryption(true); }
  } restore;
  auto s2 = Socket::Connect(HostPort{"127.0.0.1", server_.port()}, 1000);
  ASSERT_TRUE(s2.ok());
  st = ClientHandshake(*s2, "c1", key_, proto::PeerKind::kClient);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(RpcTest, PoolReusesConnections) {
  ConnPool pool(Credentials{"c1", key_});
  for (int i = 0; i < 5; ++i) {
    proto::AttrReply rep;
    ASSERT_TRUE(pool.Call(addr_, MsgType::kLookup, proto::LookupReq{InodeId{1}, "a"}, &rep).ok());
    EXPECT_EQ(rep.attr.ino, InodeId{2});
  }
}

TEST_F(RpcTest, ABadBufferOfOursIsAnInternalErrorNotThePeersFault) {
  // A payload whose tail is unmapped: writev fails with EFAULT (after sending part of the
  // frame, or nothing). Callers must be able to tell that from a dead peer. Plaintext only:
  // TLS reads the bytes to encrypt them, and a bad buffer faults in the caller (rpc/tls.h).
  SetEncryption(false);
  struct Restore {
    ~Restore() { SetEncryption(true); }
  } restore;
  long page = ::sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(::mprotect(p + page, page, PROT_NONE), 0);
  auto c = Conn::Dial(addr_, Credentials{"c1", key_});
  ASSERT_TRUE(c.ok());
  uint64_t id = 0;
  // Send only queues the frame: the failed write is the answer Receive gets.
  ASSERT_TRUE((*c)->Send(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), p + page - 100,
                         1 << 20, &id)
                  .ok());
  Frame rep;
  Status st = (*c)->Receive(id, &rep, 5000);
  EXPECT_EQ(st.code(), Code::kInternal) << st.ToString();
  EXPECT_NE(st.message().find("not a fault of the peer"), std::string::npos) << st.ToString();
  EXPECT_TRUE((*c)->broken());
  ::munmap(p, 2 * page);
}

TEST_F(RpcTest, PoolNeverHandsOutAConnectionTheServerClosedMeanwhile) {
  ConnPool pool(Credentials{"c1", key_});
  proto::AttrReply rep;
  ASSERT_TRUE(pool.Call(addr_, MsgType::kLookup, proto::LookupReq{InodeId{1}, "a"}, &rep).ok());
  // The server restarts on the same port (a CS killed and started again): the pooled
  // connection is now closed at the other end.
  int port = server_.port();
  server_.Stop();
  Server again;
  ASSERT_TRUE(again.Listen(HostPort{"127.0.0.1", port}).ok());
  again.Start(ServerAuth{"c1", key_, MakePasswordDigestForTest("secret")}, [](ServerConn& c, Frame& req) {
    proto::AttrReply r;
    r.attr.ino = InodeId{99};
    (void)c.Reply(req, r);
  });
  // The first call after the restart goes through, on a new connection.
  Status st = pool.Call(addr_, MsgType::kLookup, proto::LookupReq{InodeId{1}, "a"}, &rep);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(rep.attr.ino, InodeId{99});
  again.Stop();
}

TEST(Frame, GoldenHeaderAndBadMagic) {
  Frame f;
  f.type = 0x0102;
  f.req_id = 3;
  f.flags = kFlagResponse;
  char h[kFrameHeaderBytes];
  EncodeFrameHeader(f, 5, 6, h);
  EXPECT_EQ(std::string(h, 32), std::string("VSTG\x01\x00\x02\x01\x03\0\0\0\0\0\0\0"
                                            "\x01\0\0\0\x05\0\0\0\x06\0\0\0\0\0\0\0",
                                            32));
  auto d = DecodeFrameHeader(h);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload_len, 6u);
  h[0] = 'X';
  EXPECT_EQ(DecodeFrameHeader(h).status().code(), Code::kProtocol);
}

}  // namespace
}  // namespace vstorage::rpc

namespace vstorage::rpc {
namespace {

using proto::MsgType;

// A latch the handlers of a test wait on, so a test controls which request finishes first.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool open = false;
  std::set<uint64_t> released;
  void Enter() {
    std::lock_guard<std::mutex> l(mu);
    ++entered;
    cv.notify_all();
  }
  bool WaitEntered(int n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(10), [&] { return entered >= n; });
  }
  void WaitOpen(uint64_t id) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return open || released.count(id); });
  }
  void Release(uint64_t id) {
    std::lock_guard<std::mutex> l(mu);
    released.insert(id);
    cv.notify_all();
  }
  void OpenAll() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
};

// Raw blocking sockets speak plaintext frames to the server here (gen.encryption=0), so the
// tests can write exactly the bytes they mean; TLS is tested by the Channel tests.
class EventServerTest : public ::testing::Test {
 protected:
  void SetUp() override { SetEncryption(false); }
  void StartServer(ServerLimits limits) {
    key_ = RandomBytes(32);
    server_ = std::make_unique<Server>(limits);
    ASSERT_TRUE(server_->Listen(HostPort{"127.0.0.1", 0}).ok());
    server_->Start(ServerAuth{"c1", key_, std::nullopt}, [this](ServerConn& c, Frame& req) {
      gate_.Enter();
      gate_.WaitOpen(req.req_id);
      proto::AttrReply rep;
      rep.attr.ino = InodeId{req.req_id};
      (void)c.Reply(req, rep, req.payload.data(), req.payload.size());
    });
  }
  void TearDown() override {
    gate_.OpenAll();
    if (server_) server_->Stop();
    SetEncryption(true);
  }
  Socket Authenticated() {
    auto s = Socket::Connect(HostPort{"127.0.0.1", server_->port()}, 1000);
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(ClientHandshake(*s, "c1", key_, proto::PeerKind::kClient).ok());
    return std::move(*s);
  }
  static Status SendReq(Socket& s, uint64_t id, const std::string& payload = "") {
    Frame f;
    f.type = static_cast<uint16_t>(MsgType::kLookup);
    f.req_id = id;
    f.body = proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"});
    return s.Send(f, payload.data(), payload.size());
  }
  template <typename Pred>
  static bool WaitFor(Pred p) {
    for (int i = 0; i < 2000; ++i) {
      if (p()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return p();
  }
  std::string key_;
  std::unique_ptr<Server> server_;
  Gate gate_;
};

TEST_F(EventServerTest, RequestsOfOneConnectionRunConcurrentlyAndReplyOutOfOrder) {
  StartServer(ServerLimits{});
  Socket s = Authenticated();
  ASSERT_TRUE(SendReq(s, 1, "first").ok());
  ASSERT_TRUE(SendReq(s, 2, "second").ok());
  // Both handlers are running at once: request 1 does not hold up request 2.
  ASSERT_TRUE(gate_.WaitEntered(2));
  gate_.Release(2);
  Frame rep;
  ASSERT_TRUE(s.Recv(&rep, 5000).ok());
  EXPECT_EQ(rep.req_id, 2u);
  EXPECT_EQ(rep.payload, "second");
  gate_.Release(1);
  ASSERT_TRUE(s.Recv(&rep, 5000).ok());
  EXPECT_EQ(rep.req_id, 1u);
  EXPECT_EQ(rep.payload, "first");
}

TEST_F(EventServerTest, AConnectionAtItsInflightLimitIsNotReadUntilAReplyIsOut) {
  ServerLimits lim;
  lim.max_inflight_per_conn = 2;
  StartServer(lim);
  Socket s = Authenticated();
  for (uint64_t id = 1; id <= 5; ++id) ASSERT_TRUE(SendReq(s, id).ok());
  ASSERT_TRUE(gate_.WaitEntered(2));
  ASSERT_TRUE(WaitFor([&] { return server_->stats().paused_reads >= 1; }));
  {
    std::lock_guard<std::mutex> l(gate_.mu);
    EXPECT_EQ(gate_.entered, 2);  // the reader stopped: requests 3..5 were not taken yet
  }
  gate_.OpenAll();
  std::set<uint64_t> got;
  Frame rep;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(s.Recv(&rep, 5000).ok());
    got.insert(rep.req_id);
  }
  EXPECT_EQ(got, (std::set<uint64_t>{1, 2, 3, 4, 5}));
}

// Small replies are queued and the handler goes on (ServerConn::Send does not wait for the
// write); those queued replies count against the connection's in-flight limit, so a peer
// that sends requests and never reads the replies stops being read from instead of making
// the server queue a reply per request (here 1000 x 64 KiB, far beyond the socket buffers).
TEST_F(EventServerTest, APeerThatReadsNoRepliesIsNotReadFromEither) {
  ServerLimits lim;
  lim.max_inflight_per_conn = 4;
  StartServer(lim);
  gate_.OpenAll();
  Socket s = Authenticated();
  constexpr int kRequests = 1000;
  const std::string payload(ServerConn::kMaxCopiedReplyPayloadBytes, 'p');  // echoed: an owned reply
  std::thread sender([&] {
    for (int id = 1; id <= kRequests; ++id)
      if (!SendReq(s, id, payload).ok()) return;
  });
  ASSERT_TRUE(WaitFor([&] { return server_->stats().paused_reads >= 1; }));
  auto entered = [&] {
    std::lock_guard<std::mutex> l(gate_.mu);
    return gate_.entered;
  };
  // Once the socket buffers are full the server takes no more requests: the count settles
  // (looked at over 300 ms windows) well below what was sent.
  int settled = -1;
  for (int i = 0; i < 40 && settled < 0; ++i) {
    int before = entered();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (entered() == before) settled = before;
  }
  ASSERT_GE(settled, 0) << "the server kept taking requests";
  EXPECT_LT(settled, kRequests) << "the server queued a reply for every request of a peer that reads none";
  std::set<uint64_t> got;
  Frame rep;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(s.Recv(&rep, 10000).ok()) << "reply " << i;
    ASSERT_EQ(rep.payload.size(), payload.size());
    got.insert(rep.req_id);
  }
  sender.join();
  EXPECT_EQ(got.size(), size_t{kRequests});
}

TEST_F(EventServerTest, AnOversizedFrameBeforeAuthenticationClosesTheConnectionAtOnce) {
  StartServer(ServerLimits{});
  auto s = Socket::Connect(HostPort{"127.0.0.1", server_->port()}, 1000);
  ASSERT_TRUE(s.ok());
  // The client speaks first (rpc/tls.h). A header announcing 1 MiB that never comes: the server must not wait for (or buffer) it.
  Frame big;
  big.type = static_cast<uint16_t>(MsgType::kChallengeResponse);
  char h[kFrameHeaderBytes];
  EncodeFrameHeader(big, 1 << 20, 0, h);
  ASSERT_EQ(::send(s->fd(), h, sizeof h, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof h));
  Frame f;
  EXPECT_FALSE(s->Recv(&f, 5000).ok());
  EXPECT_TRUE(WaitFor([&] { return server_->stats().failed_handshakes == 1; }));
}

TEST_F(EventServerTest, ASilentPeerIsDroppedAtTheHandshakeDeadline) {
  ServerLimits lim;
  lim.handshake_timeout_ms = 300;
  StartServer(lim);
  auto s = Socket::Connect(HostPort{"127.0.0.1", server_->port()}, 1000);
  ASSERT_TRUE(s.ok());
  auto t0 = std::chrono::steady_clock::now();
  Frame f;
  Status st = s->Recv(&f, 10000);  // we say nothing (not even Hello); the server hangs up
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.code(), Code::kTimeout) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(WaitFor([&] { return server_->stats().pending_handshakes == 0; }));
}

TEST_F(EventServerTest, PendingHandshakesPerSourceAreCapped) {
  ServerLimits lim;
  lim.max_pending_handshakes_per_source = 3;
  StartServer(lim);
  std::vector<Socket> silent;
  for (int i = 0; i < 3; ++i) {
    auto s = Socket::Connect(HostPort{"127.0.0.1", server_->port()}, 1000);
    ASSERT_TRUE(s.ok());
    silent.push_back(std::move(*s));
  }
  ASSERT_TRUE(WaitFor([&] { return server_->stats().pending_handshakes == 3; }));
  auto extra = Socket::Connect(HostPort{"127.0.0.1", server_->port()}, 1000);
  ASSERT_TRUE(extra.ok());
  Frame f;
  EXPECT_FALSE(extra->Recv(&f, 5000).ok());  // closed without a challenge
  EXPECT_EQ(server_->stats().refused_handshakes, 1u);
  silent.clear();  // they go away: the source may connect again
  ASSERT_TRUE(WaitFor([&] { return server_->stats().pending_handshakes == 0; }));
  Socket ok = Authenticated();
  gate_.OpenAll();
  ASSERT_TRUE(SendReq(ok, 7).ok());
  ASSERT_TRUE(ok.Recv(&f, 5000).ok());
  EXPECT_EQ(f.req_id, 7u);
}

static int ThreadsOfThisProcess() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

TEST_F(EventServerTest, IdleConnectionsCostNoThreads) {
  StartServer(ServerLimits{});
  gate_.OpenAll();
  int before = ThreadsOfThisProcess();
  std::vector<Socket> conns;
  for (int i = 0; i < 300; ++i) conns.push_back(Authenticated());
  ASSERT_TRUE(WaitFor([&] { return server_->stats().connections == 300; }));
  EXPECT_LE(ThreadsOfThisProcess(), before + 2);
  // And every one of them still works.
  for (size_t i = 0; i < conns.size(); i += 50) {
    ASSERT_TRUE(SendReq(conns[i], i + 1).ok());
    Frame f;
    ASSERT_TRUE(conns[i].Recv(&f, 5000).ok());
    EXPECT_EQ(f.req_id, i + 1);
  }
}

TEST_F(EventServerTest, OneChannelCarriesConcurrentCallsAndMatchesOutOfOrderReplies) {
  StartServer(ServerLimits{});
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  constexpr int kCallers = 8;
  std::vector<std::thread> ts;
  std::vector<Status> sts(kCallers);
  std::vector<std::string> got(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    ts.emplace_back([&, i] {
      std::string payload(1000 + i, static_cast<char>('a' + i));
      Frame rep;
      std::string buf(4096, '\0');
      size_t n = 0;
      sts[i] = (*ch)->Call(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), payload.data(),
                           payload.size(), &rep, 10000, buf.data(), buf.size(), &n);
      got[i] = buf.substr(0, n);
    });
  }
  // All of them are in the server at once, over the one connection.
  ASSERT_TRUE(gate_.WaitEntered(kCallers));
  EXPECT_EQ(server_->stats().connections, 1);
  // Answer them newest first.
  for (uint64_t id = kCallers; id >= 1; --id) gate_.Release(id);
  for (auto& t : ts) t.join();
  for (int i = 0; i < kCallers; ++i) {
    ASSERT_TRUE(sts[i].ok()) << sts[i].ToString();
    EXPECT_EQ(got[i], std::string(1000 + i, static_cast<char>('a' + i)));  // its own reply, into its buffer
  }
  EXPECT_TRUE((*ch)->healthy());
}

TEST_F(EventServerTest, AChannelCallBeyondItsWindowWaitsForASlot) {
  StartServer(ServerLimits{});
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000, 2);
  ASSERT_TRUE(ch.ok());
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] {
      proto::AttrReply rep;
      if ((*ch)->Call(MsgType::kLookup, proto::LookupReq{InodeId{1}, "x"}, &rep, 10000).ok()) ++ok;
    });
  }
  ASSERT_TRUE(gate_.WaitEntered(2));
  // The third waits in the client: only two requests are ever in flight.
  gate_.Release(1);
  gate_.Release(2);
  ASSERT_TRUE(gate_.WaitEntered(3));
  {
    std::lock_guard<std::mutex> l(gate_.mu);
    EXPECT_EQ(gate_.entered, 3);
  }
  gate_.Release(3);
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 3);
}

TEST_F(EventServerTest, ACallWithoutAnswerTimesOutAndBreaksTheChannel) {
  StartServer(ServerLimits{});
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000);
  ASSERT_TRUE(ch.ok());
  std::string buf(4096, '\0');
  Frame rep;
  size_t n = 0;
  Status st = (*ch)->Call(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), "abc", 3, &rep,
                          200, buf.data(), buf.size(), &n);
  EXPECT_EQ(st.code(), Code::kTimeout) << st.ToString();
  EXPECT_FALSE((*ch)->healthy());
  gate_.OpenAll();  // the late reply finds the connection gone, not our buffer
  proto::AttrReply ar;
  EXPECT_EQ((*ch)->Call(MsgType::kLookup, proto::LookupReq{InodeId{1}, "x"}, &ar, 1000).code(), Code::kUnavailable);
}

TEST_F(EventServerTest, StartReturnsBeforeTheWriteAndFinishOrAbandonWaitForIt) {
  StartServer(ServerLimits{});  // the gate holds every reply back
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000);
  ASSERT_TRUE(ch.ok());
  std::string payload(256 << 10, 'p');  // must live until Finish/Abandon; the body is copied
  Frame rep;
  auto t = (*ch)->Start(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), payload.data(),
                        payload.size(), &rep, 5000);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // No reply comes: Abandon returns once the frame is off the queue, without one.
  auto t0 = std::chrono::steady_clock::now();
  (*ch)->Abandon(std::move(t).value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  // A second one, answered: Finish sees the reply (and the write) through.
  Frame rep2;
  auto t2 = (*ch)->Start(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "y"}), payload.data(),
                         payload.size(), &rep2, 5000);
  ASSERT_TRUE(t2.ok());
  gate_.OpenAll();
  EXPECT_TRUE((*ch)->Finish(std::move(t2).value(), 5000).ok());
}

TEST_F(EventServerTest, AChannelNoticesAPeerThatWentAway) {
  StartServer(ServerLimits{});
  gate_.OpenAll();
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000);
  ASSERT_TRUE(ch.ok());
  proto::AttrReply ar;
  ASSERT_TRUE((*ch)->Call(MsgType::kLookup, proto::LookupReq{InodeId{1}, "x"}, &ar, 1000).ok());
  server_->Stop();
  ASSERT_TRUE(WaitFor([&] { return !(*ch)->healthy(); }));
  Status st = (*ch)->Call(MsgType::kLookup, proto::LookupReq{InodeId{1}, "x"}, &ar, 1000);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

// Hundreds of asynchronous calls from one thread on one channel with a window of 8: every
// one completes once, with its own reply in its own buffer, and no more than the window is
// ever in the server at once.
TEST_F(EventServerTest, AsyncCallsFromOneThreadQueueBeyondTheWindowAndEachGetsItsReply) {
  StartServer(ServerLimits{});
  IoLoop loop(2);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000, 8);
  ASSERT_TRUE(ch.ok());
  constexpr int kCalls = 300;
  std::vector<std::string> payloads(kCalls), bufs(kCalls, std::string(64, '\0'));
  std::vector<int> fired(kCalls, 0);
  std::vector<Status> sts(kCalls);
  std::vector<size_t> lens(kCalls);
  std::vector<uint64_t> inos(kCalls);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  bool on_io_thread = true;
  for (int i = 0; i < kCalls; ++i) {
    payloads[i] = "call-" + std::to_string(i);
    (*ch)->CallAsync(
        MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), payloads[i].data(),
        payloads[i].size(), 10000,
        [&, i](Status st, Frame* rep, size_t n) {
          proto::AttrReply ar;
          if (st.ok()) st = proto::DecodeFromString(rep->body, &ar, "reply");
          std::lock_guard<std::mutex> l(mu);
          on_io_thread = on_io_thread && OnIoThread();
          ++fired[i];
          sts[i] = st;
          lens[i] = n;
          inos[i] = ar.attr.ino.v;
          ++done;
          cv.notify_all();
        },
        bufs[i].data(), bufs[i].size());
  }
  EXPECT_FALSE(OnIoThread());
  // Only the window reaches the server; the rest wait in the channel.
  ASSERT_TRUE(gate_.WaitEntered(8));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<std::mutex> l(gate_.mu);
    EXPECT_EQ(gate_.entered, 8);
  }
  gate_.OpenAll();
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(20), [&] { return done == kCalls; }));
  std::set<uint64_t> ids;
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(fired[i], 1);
    ASSERT_TRUE(sts[i].ok()) << sts[i].ToString();
    EXPECT_EQ(bufs[i].substr(0, lens[i]), payloads[i]);
    ids.insert(inos[i]);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCalls));  // each reply matched to its own request
  EXPECT_TRUE(on_io_thread);
  EXPECT_TRUE((*ch)->healthy());
}

TEST_F(EventServerTest, AsyncCallsFailOnceWhenTheChannelTimesOutOrBreaks) {
  StartServer(ServerLimits{});
  IoLoop loop(1);
  auto ch = Channel::Dial(loop, "127.0.0.1:" + std::to_string(server_->port()), Credentials{"c1", key_}, 1000, 2);
  ASSERT_TRUE(ch.ok());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> got;
  auto done = [&](Status st, Frame*, size_t) {
    std::lock_guard<std::mutex> l(mu);
    got.push_back(st);
    cv.notify_all();
  };
  std::string body = proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"});
  for (int i = 0; i < 5; ++i) (*ch)->CallAsync(MsgType::kLookup, body, nullptr, 0, 300, done);  // 2 sent, 3 queued
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return got.size() == 5; }));
  for (auto& st : got) EXPECT_TRUE(st.code() == Code::kTimeout || st.code() == Code::kUnavailable) << st.ToString();
  EXPECT_FALSE((*ch)->healthy());
  l.unlock();
  // On a broken channel a call fails at once, through its callback.
  (*ch)->CallAsync(MsgType::kLookup, body, nullptr, 0, 300, done);
  l.lock();
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(5), [&] { return got.size() == 6; }));
  EXPECT_EQ(got.back().code(), Code::kUnavailable);
  l.unlock();
  gate_.OpenAll();
}

TEST(EventServer, RequestPayloadBuffersAreReusedNotReallocated) {
  std::string key = RandomBytes(32);
  Server server;
  ASSERT_TRUE(server.Listen(HostPort{"127.0.0.1", 0}).ok());
  std::mutex mu;
  std::vector<const char*> seen;
  server.Start(ServerAuth{"c1", key, std::nullopt}, [&](ServerConn& c, Frame& req) {
    {
      std::lock_guard<std::mutex> l(mu);
      seen.push_back(req.payload.data());
    }
    (void)c.Reply(req, proto::Empty{}, req.payload.data(), req.payload.size());
  });
  auto ch = Conn::Dial("127.0.0.1:" + std::to_string(server.port()), Credentials{"c1", key});
  ASSERT_TRUE(ch.ok());
  for (int i = 0; i < 4; ++i) {
    std::string data((256 << 10) - i * 1000, static_cast<char>('a' + i));  // shrinking: each fits the last
    Frame rep;
    ASSERT_TRUE((*ch)->CallRaw(MsgType::kLookup, "", data.data(), data.size(), &rep).ok());
    EXPECT_EQ(rep.payload, data);  // the bytes are this request's, not the previous one's
    // The reply is out before the worker hands the buffer back: wait for that.
    for (int t = 0; t < 2000 && server.stats().pooled_payloads == 0; ++t)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_EQ(server.stats().pooled_payloads, 1u);
  }
  server.Stop();
  ASSERT_EQ(seen.size(), 4u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_EQ(seen[i], seen[0]) << "request " << i << " got a new buffer";
}

TEST(EventServer, RequestsTheFilterPicksRunOnTheIoThreadTheOthersOnWorkers) {
  std::string key = RandomBytes(32);
  Server server;
  ASSERT_TRUE(server.Listen(HostPort{"127.0.0.1", 0}).ok());
  std::mutex mu;
  std::map<uint16_t, std::vector<bool>> on_io;  // request type -> Server::OnIoThread() per call
  std::atomic<int> deferred{0};
  server.Start(
      ServerAuth{"c1", key, std::nullopt},
      [&](ServerConn& c, Frame& req) {
        {
          std::lock_guard<std::mutex> l(mu);
          on_io[req.type].push_back(Server::OnIoThread());
        }
        if (req.type != static_cast<uint16_t>(MsgType::kCreate)) {
          (void)c.Reply(req, proto::Empty{});
          return;
        }
        // An inline handler that answers later, from another thread (as the MDS does once
        // a command is durable).
        ++deferred;
        Frame to;
        to.type = req.type;
        to.req_id = req.req_id;
        std::thread([c, to]() mutable { c.PostEncoded(to, proto::EncodeToString(proto::Empty{})); }).detach();
      },
      nullptr,
      [](const Frame& f) { return f.type != static_cast<uint16_t>(MsgType::kLookup); });
  auto ch = Conn::Dial("127.0.0.1:" + std::to_string(server.port()), Credentials{"c1", key});
  ASSERT_TRUE(ch.ok());
  for (int i = 0; i < 3; ++i) {
    Frame rep;
    ASSERT_TRUE((*ch)->CallRaw(MsgType::kLookup, "", nullptr, 0, &rep).ok());
    ASSERT_TRUE((*ch)->CallRaw(MsgType::kGetAttr, "", nullptr, 0, &rep).ok());
    ASSERT_TRUE((*ch)->CallRaw(MsgType::kCreate, "", nullptr, 0, &rep).ok());
  }
  server.Stop();
  EXPECT_EQ(deferred.load(), 3);
  EXPECT_EQ(on_io[static_cast<uint16_t>(MsgType::kLookup)], std::vector<bool>(3, false));
  EXPECT_EQ(on_io[static_cast<uint16_t>(MsgType::kGetAttr)], std::vector<bool>(3, true));
  EXPECT_EQ(on_io[static_cast<uint16_t>(MsgType::kCreate)], std::vector<bool>(3, true));
}

}  // namespace
}  // namespace vstorage::rpc
