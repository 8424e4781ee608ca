#include <gtest/gtest.h>

#include "proto/messages.h"

namespace vstorage::proto {
namespace {

TEST(Proto, ChunkMapRoundTrip) {
  ChunkMap m;
  m.index = 3;
  m.id = ChunkId{77};
  m.version = 5;
  m.chunk_size = 1 << 20;
  m.replicas = {{CsId{1025}, "127.0.0.1:3000"}, {CsId{1026}, "127.0.0.1:3001"}};
  ChunkMap out;
  ASSERT_TRUE(DecodeFromString(EncodeToString(m), &out, "ChunkMap").ok());
  EXPECT_EQ(out.id, ChunkId{77});
  EXPECT_EQ(out.version, 5u);
  ASSERT_EQ(out.replicas.size(), 2u);
  EXPECT_EQ(out.replicas[1].addr, "127.0.0.1:3001");
}

TEST(Proto, GoldenCsReadReq) {
  CsReadReq r;
  r.chunk = ChunkId{1};
  r.version = 2;
  r.offset = 3;
  r.length = 4;
  r.want_crcs = true;
  std::string bytes = EncodeToString(r);
  EXPECT_EQ(bytes, std::string("\x01\0\0\0\0\0\0\0"
                               "\x02\0\0\0\0\0\0\0"
                               "\x03\0\0\0\0\0\0\0"
                               "\x04\0\0\0"
                               "\x01",  // want_crcs, appended for end-to-end checksums
                               29));
}

TEST(Proto, TruncatedMessagesRejected) {
  ClusterStatReply s;
  s.cluster = "stor1";
  s.cs.push_back(CsInfo{});
  s.events.push_back(EventInfo{1, "MDS", "INF", "hello"});
  std::string bytes = EncodeToString(s);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    ClusterStatReply out;
    EXPECT_FALSE(DecodeFromString(std::string_view(bytes).substr(0, cut), &out, "x").ok()) << cut;
  }
  ClusterStatReply out;
  EXPECT_TRUE(DecodeFromString(bytes, &out, "x").ok());
  EXPECT_EQ(out.events[0].message, "hello");
}

}  // namespace
}  // namespace vstorage::proto
