#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/config.h"
#include "rpc/client.h"
#include "rpc/server.h"

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
    d.hash = Pbkdf2(pw, d.salt, d.iterations);
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
  // frame, or nothing). Callers must be able to tell that from a dead peer.
  long page = ::sysconf(_SC_PAGESIZE);
  char* p = static_cast<char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(::mprotect(p + page, page, PROT_NONE), 0);
  auto c = Conn::Dial(addr_, Credentials{"c1", key_});
  ASSERT_TRUE(c.ok());
  uint64_t id = 0;
  Status st = (*c)->Send(MsgType::kLookup, proto::EncodeToString(proto::LookupReq{InodeId{1}, "x"}), p + page - 100,
                         1 << 20, &id);
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
