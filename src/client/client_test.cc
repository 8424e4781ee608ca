// libvstorage tested directly: pure helpers, and the data path against a real MDS and three
// real chunk servers running in this process on loopback.
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/auth.h"
#include "common/config.h"
#include "cs/service.h"
#include "mds/service.h"
#include "rpc/client.h"
#include "vstorage/client.h"

namespace vstorage {
namespace {

TEST(SplitRange, CutsAtChunkBoundariesAndMaxPiece) {
  auto p = SplitRange(900, 2500, 1000, 1 << 20);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].index, 0u);
  EXPECT_EQ(p[0].chunk_off, 900u);
  EXPECT_EQ(p[0].len, 100u);
  EXPECT_EQ(p[1].index, 1u);
  EXPECT_EQ(p[1].buf_off, 100u);
  EXPECT_EQ(p[1].len, 1000u);
  EXPECT_EQ(p[3].index, 3u);
  EXPECT_EQ(p[3].len, 400u);
  auto q = SplitRange(0, 5 << 20, 256 << 20, 1 << 20);
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[4].chunk_off, 4u << 20);
  EXPECT_TRUE(SplitRange(7, 0, 1000, 10).empty());
}

TEST(SplitPath, NormalisesAndRefusesDotDot) {
  EXPECT_EQ(*SplitPath("/a//b/./c/"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(SplitPath("/")->empty());
  EXPECT_FALSE(SplitPath("/a/../b").ok());
}

int FreePortPair() {
  for (int i = 0; i < 100; ++i) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &l);
    int p = ntohs(a.sin_port);
    ::close(s);
    if (p < 60000) return p;
  }
  return 25000;
}

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

class LiveCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/vs_client_XXXXXX";
    dir_ = mkdtemp(t);
    setenv("VSTORAGE_CONF_DIR", (dir_ + "/conf").c_str(), 1);
    std::string key = RandomBytes(32);
    std::string mds = dir_ + "/mds";
    ASSERT_TRUE(MakeDirs(mds).ok());
    ASSERT_TRUE(WriteFileAtomic(mds + "/cluster.key", HexEncode(key) + "\n").ok());
    ASSERT_TRUE(WriteFileAtomic(mds + "/auth_digest.key", MakePasswordDigest("pw").Serialize() + "\n").ok());
    ASSERT_TRUE(WriteClusterKey("c", key).ok());
    key_ = key;
    int port = 0;
    // A free port may be taken by another test process before the MDS binds it: try again.
    for (int attempt = 0; attempt < 5 && !mds_; ++attempt) {
      port = FreePortPair();
      ASSERT_TRUE(WriteKeyValueFile(mds + "/mds.conf", {{"cluster", "c"}, {"id", "1"}, {"addr", "127.0.0.1:" + std::to_string(port)}}).ok());
      std::filesystem::remove(ClusterDir("c") + "/bs.list");
      ASSERT_TRUE(AddToBsList("c", HostPort{"127.0.0.1", port}).ok());
      auto m = mds::MdsService::Start(mds);
      if (!m.ok() && m.status().code() == Code::kBusy && attempt < 4) continue;
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      mds_ = std::move(m).value();
    }
    std::string mds_addr = "127.0.0.1:" + std::to_string(port + 1);
    for (int i = 0; i < 3; ++i) {
      auto conn = rpc::Conn::Dial(mds_addr, rpc::Credentials{"c", key, proto::PeerKind::kAdmin});
      ASSERT_TRUE(conn.ok()) << conn.status().ToString();
      proto::CsCreateReply rep;
      ASSERT_TRUE((*conn)->Call(proto::MsgType::kCsCreate, proto::CsCreateReq{"host" + std::to_string(i), 0}, &rep).ok());
      cs::CsConfig cfg;
      cfg.repo = dir_ + "/cs" + std::to_string(i);
      cfg.cluster = "c";
      cfg.id = rep.cs;
      cfg.host_id = "host" + std::to_string(i);
      ASSERT_TRUE(MakeDirs(cfg.repo).ok());
      ASSERT_TRUE(cs::SaveCsConfig(cfg).ok());
      auto s = cs::CsService::Start(cfg.repo);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      cs_.push_back(std::move(s).value());
    }
    auto c = Client::Connect(ClientOptions{"c", 20000, 20000, "test"});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
    // Wait for the CS to register (they do so right after start).
    for (int i = 0; i < 100; ++i) {
      proto::ClusterStatReply st;
      ASSERT_TRUE(client_->MdsCall(proto::MsgType::kClusterStat, proto::Empty{}, &st).ok());
      int active = 0;
      for (auto& x : st.cs) active += x.status == "active";
      if (active == 3) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(client_->SetXattr(kRootInode, "replicas", "3").ok());
    ASSERT_TRUE(client_->SetXattr(kRootInode, "chunk-size", "1M").ok());
  }
  void TearDown() override {
    client_.reset();
    cs_.clear();
    mds_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string ReadAll(InodeId ino, size_t len) {
    auto f = client_->Open(ino, false);
    EXPECT_TRUE(f.ok());
    std::string out(len + 10, 'Z');
    auto n = (*f)->Read(0, out.size(), out.data());
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    out.resize(n.ok() ? *n : 0);
    return out;
  }
  std::string dir_, key_;
  std::unique_ptr<mds::MdsService> mds_;
  std::vector<std::unique_ptr<cs::CsService>> cs_;
  std::unique_ptr<Client> client_;
};

TEST_F(LiveCluster, WriteFsyncReadAcrossChunksWithThreeReplicas) {
  auto a = client_->Create(kRootInode, "f", 0644, true);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  std::string data = Random(5 * (1 << 20) + 777, 1);
  {
    auto f = client_->Open(a->ino, true);
    ASSERT_TRUE(f.ok());
    // Unaligned pieces, out of order.
    ASSERT_TRUE((*f)->Write(3000000, data.data() + 3000000, data.size() - 3000000).ok());
    ASSERT_TRUE((*f)->Write(0, data.data(), 3000000).ok());
    ASSERT_TRUE((*f)->Fsync().ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  EXPECT_EQ(client_->GetAttr(a->ino)->size, data.size());
  EXPECT_EQ(ReadAll(a->ino, data.size()), data);
  proto::FileInfoReply fi;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok());
  ASSERT_EQ(fi.chunks.size(), 6u);
  for (auto& c : fi.chunks) {
    std::set<CsId> distinct(c.replicas.begin(), c.replicas.end());
    EXPECT_EQ(distinct.size(), 3u);
  }
}

TEST_F(LiveCluster, SecondWriterGetsBusyAndTruncateZeroesTheTail) {
  auto a = client_->Create(kRootInode, "g", 0644, true);
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  auto other = Client::Connect(ClientOptions{"c", 20000, 20000, "other"});
  ASSERT_TRUE(other.ok());
  auto f2 = (*other)->Open(a->ino, true);
  EXPECT_EQ(f2.status().code(), Code::kBusy);
  EXPECT_NE(f2.status().message().find("test"), std::string::npos) << f2.status().ToString();
  std::string d(3000, 'x');
  ASSERT_TRUE((*f)->Write(0, d.data(), d.size()).ok());
  ASSERT_TRUE((*f)->Truncate(1000).ok());
  ASSERT_TRUE((*f)->Truncate(3000).ok());
  ASSERT_TRUE((*f)->Close().ok());
  std::string want = std::string(1000, 'x') + std::string(2000, '\0');
  EXPECT_EQ(ReadAll(a->ino, 3000), want);
  // Closed: now the other client may write.
  auto f3 = (*other)->Open(a->ino, true);
  EXPECT_TRUE(f3.ok()) << f3.status().ToString();
}

// Every chunk of the file still has its 3 replicas: nothing was reported failed.
void ExpectThreeReplicasEach(Client* c, InodeId ino) {
  proto::FileInfoReply fi;
  ASSERT_TRUE(c->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{ino}, &fi).ok());
  for (auto& ch : fi.chunks) EXPECT_EQ(ch.replicas.size(), 3u) << "chunk " << ch.index;
}

// The 1 MiB zero buffer used to be handed to every piece of the cut-off tail: pieces after
// the first sent the client's heap (or failed with EFAULT, blamed on the CS). Tails longer
// than 1 MiB need chunks larger than 1 MiB, so several chunk sizes are tried.
TEST_F(LiveCluster, ShrinkThenRegrowReadsZerosForEveryChunkSizeAndCut) {
  const uint64_t M = 1 << 20;
  struct Case { uint64_t big, small; } cases[] = {
      {3 * M, M}, {2 * M, 1}, {5 * M, M + 4097}, {5 * M, 3 * M - 1}, {M + 10, M - 10}, {4 * M + 5, 4 * M}, {3 * M, 0}};
  int n = 0;
  for (const char* chunk : {"1M", "4M", "256M"}) {
    std::string dname = std::string("d") + chunk;
    auto d = client_->Mkdir(kRootInode, dname, 0755);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(client_->SetXattr(d->ino, "chunk-size", chunk).ok());
    for (auto cs : cases) {
      for (bool via_open_file : {true, false}) {
        SCOPED_TRACE(std::string(chunk) + " " + std::to_string(cs.big) + " -> " + std::to_string(cs.small) +
                     (via_open_file ? " (open file)" : " (path)"));
        auto a = client_->Create(d->ino, "f" + std::to_string(n++), 0644, true);
        ASSERT_TRUE(a.ok());
        std::string model(cs.big, static_cast<char>(0xAA));
        auto f = client_->Open(a->ino, true);
        ASSERT_TRUE(f.ok());
        ASSERT_TRUE((*f)->Write(0, model.data(), model.size()).ok());
        if (via_open_file) {
          // The size is not reported to the MDS yet: the cut must not depend on it.
          ASSERT_TRUE((*f)->Truncate(cs.small).ok());
          ASSERT_TRUE((*f)->Truncate(cs.big).ok());
          ASSERT_TRUE((*f)->Close().ok());
        } else {
          ASSERT_TRUE((*f)->Close().ok());
          ASSERT_TRUE(client_->SetAttr(a->ino, proto::kSetSize, cs.small, 0, 0).ok());
          ASSERT_TRUE(client_->SetAttr(a->ino, proto::kSetSize, cs.big, 0, 0).ok());
        }
        std::fill(model.begin() + static_cast<long>(cs.small), model.end(), '\0');
        std::string got = ReadAll(a->ino, cs.big);
        ASSERT_EQ(got.size(), model.size());
        size_t bad = 0, first = std::string::npos;
        for (size_t i = 0; i < got.size(); ++i)
          if (got[i] != model[i]) {
            ++bad;
            if (first == std::string::npos) first = i;
          }
        EXPECT_EQ(bad, 0u) << "first wrong byte at " << first;
        ExpectThreeReplicasEach(client_.get(), a->ino);
      }
    }
  }
}

// End-to-end checksums (issue 13 item 4): one bit of every 5th write a CS receives and of
// every 4th read it sends is flipped (CsService::SetFlipFaults). Every write is refused and
// sent again, every bad read retried: the data reads back byte for byte, no CS is blamed
// (3 replicas each, all active), and every replica holds the same bytes.
TEST_F(LiveCluster, BitsFlippedOnTheWayAreRetriedAndNeverStored) {
  for (auto& cs : cs_) cs->SetFlipFaults(5, 4);
  auto a = client_->Create(kRootInode, "flips", 0644, true);
  ASSERT_TRUE(a.ok());
  std::string data = Random(3 * (1 << 20) + 5000, 9);
  {
    auto f = client_->Open(a->ino, true);
    ASSERT_TRUE(f.ok());
    for (uint64_t off = 0; off < data.size();) {  // unaligned pieces of several sizes
      size_t n = std::min<size_t>(data.size() - off, 4096 * (1 + off % 7) + 333);
      ASSERT_TRUE((*f)->Write(off, data.data() + off, n).ok()) << off;
      off += n;
    }
    ASSERT_TRUE((*f)->Fsync().ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  for (int pass = 0; pass < 3; ++pass) EXPECT_EQ(ReadAll(a->ino, data.size()), data) << "pass " << pass;
  uint64_t refused = 0;
  for (auto& cs : cs_) refused += cs->bad_checksums();
  EXPECT_GT(refused, 10u) << "the faults were not injected";
  ExpectThreeReplicasEach(client_.get(), a->ino);
  proto::ClusterStatReply cst;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kClusterStat, proto::Empty{}, &cst).ok());
  std::map<CsId, std::string> addr;
  for (auto& x : cst.cs) {
    EXPECT_EQ(x.status, "active") << "CS#" << x.id.str();
    addr[x.id] = x.addr;
  }
  // Each replica read directly, with the faults off: the same bytes everywhere.
  for (auto& cs : cs_) cs->SetFlipFaults(0, 0);
  proto::FileInfoReply fi;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok());
  for (auto& ch : fi.chunks) {
    uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(1 << 20, data.size() - ch.index * (1 << 20)));
    for (CsId id : ch.replicas) {
      auto conn = rpc::Conn::Dial(addr[id], rpc::Credentials{"c", key_, proto::PeerKind::kClient});
      ASSERT_TRUE(conn.ok()) << conn.status().ToString();
      std::string got(len, '\0');
      rpc::Frame fr;
      size_t n = 0;
      Status st = (*conn)->CallRaw(proto::MsgType::kCsRead,
                                   proto::EncodeToString(proto::CsReadReq{ch.id, ch.version, 0, len, true}), nullptr,
                                   0, &fr, 10000, got.data(), len, &n);
      ASSERT_TRUE(st.ok()) << "CS#" << id.str() << ": " << st.ToString();
      EXPECT_TRUE(got == data.substr(ch.index * (1 << 20), len)) << "chunk " << ch.index << " on CS#" << id.str();
    }
  }
}

TEST_F(LiveCluster, FallocateModesKeepTheModelAndTheSize) {
  const uint64_t M = 1 << 20;
  auto d = client_->Mkdir(kRootInode, "fa", 0755);
  ASSERT_TRUE(client_->SetXattr(d->ino, "chunk-size", "4M").ok());
  auto a = client_->Create(d->ino, "img", 0644, true);
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  // Mode 0: 9 MiB (three chunks) reserved, the size follows; KEEP_SIZE: size stays.
  ASSERT_TRUE((*f)->Allocate(0, 9 * M, false).ok());
  EXPECT_EQ((*f)->size(), 9 * M);
  ASSERT_TRUE((*f)->Allocate(9 * M, 3 * M, true).ok());
  EXPECT_EQ((*f)->size(), 9 * M);
  proto::FileInfoReply fi;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok());
  EXPECT_EQ(fi.chunks.size(), 3u);  // the chunks exist, with their replicas
  std::string model = Random(9 * M, 21);
  ASSERT_TRUE((*f)->Write(0, model.data(), model.size()).ok());
  // Punch across a chunk boundary, unaligned; zero a range inside one chunk; punch past the end.
  ASSERT_TRUE((*f)->PunchHole(4 * M - 12345, 2 * M + 7).ok());
  std::fill(model.begin() + 4 * M - 12345, model.begin() + 6 * M - 12345 + 7, '\0');
  ASSERT_TRUE((*f)->ZeroRange(100, 5000, true).ok());
  std::fill(model.begin() + 100, model.begin() + 5100, '\0');
  ASSERT_TRUE((*f)->PunchHole(8 * M, 10 * M).ok());
  std::fill(model.begin() + 8 * M, model.end(), '\0');
  EXPECT_EQ((*f)->size(), 9 * M);
  // ZERO_RANGE without KEEP_SIZE grows the file; the new part reads as zeros.
  ASSERT_TRUE((*f)->ZeroRange(9 * M - 10, 20, false).ok());
  model.resize(9 * M + 10, '\0');
  EXPECT_EQ((*f)->size(), model.size());
  ASSERT_TRUE((*f)->Fsync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(client_->GetAttr(a->ino)->size, model.size());
  EXPECT_TRUE(ReadAll(a->ino, model.size()) == model);
  ExpectThreeReplicasEach(client_.get(), a->ino);
  // gen.do_punch_hole=0 (guide 3.5.7): punch hole is refused, nothing changes.
  proto::Empty e;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kSetConfig, proto::ConfigReq{"gen.do_punch_hole", "0"}, &e).ok());
  auto other = Client::Connect(ClientOptions{"c", 20000, 20000, "other"});  // no cached config
  ASSERT_TRUE(other.ok());
  auto g = (*other)->Open(a->ino, true);
  ASSERT_TRUE(g.ok());
  Status st = (*g)->PunchHole(0, M);
  EXPECT_EQ(st.code(), Code::kNotSupported) << st.ToString();
  EXPECT_NE(st.message().find("gen.do_punch_hole"), std::string::npos);
  ASSERT_TRUE((*g)->Close().ok());
  EXPECT_TRUE(ReadAll(a->ino, model.size()) == model);
}

// Found by vstorage-fsx: each handle kept its own size, so a read or punch hole through one
// handle ignored what another had just written, and closing the handles in the "wrong"
// order shrank the file.
TEST_F(LiveCluster, HandlesOfOneInodeShareTheSizeAndLateReportsNeverShrink) {
  auto a = client_->Create(kRootInode, "two", 0644, true);
  auto f1 = client_->Open(a->ino, true);
  auto f2 = client_->Open(a->ino, true);
  ASSERT_TRUE(f1.ok() && f2.ok());
  std::string small(1000, 's'), big = Random(3 << 20, 31);
  ASSERT_TRUE((*f1)->Write(0, small.data(), small.size()).ok());
  ASSERT_TRUE((*f2)->Write(0, big.data(), big.size()).ok());
  EXPECT_EQ((*f1)->size(), big.size());
  std::string out(big.size(), 'Z');
  auto n = (*f1)->Read(0, out.size(), out.data());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, big.size());
  EXPECT_TRUE(out == big);
  ASSERT_TRUE((*f1)->PunchHole(2 << 20, 4096).ok());
  std::fill(big.begin() + (2 << 20), big.begin() + (2 << 20) + 4096, '\0');
  ASSERT_TRUE((*f2)->Close().ok());
  ASSERT_TRUE((*f1)->Close().ok());
  EXPECT_EQ(client_->GetAttr(a->ino)->size, big.size());
  EXPECT_TRUE(ReadAll(a->ino, big.size()) == big);
}

TEST_F(LiveCluster, WritesContinueWhenAChunkServerStops) {
  auto a = client_->Create(kRootInode, "h", 0644, true);
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  std::string d1 = Random(512 << 10, 2), d2 = Random(512 << 10, 3);
  ASSERT_TRUE((*f)->Write(0, d1.data(), d1.size()).ok());
  cs_[1]->Stop();  // its socket closes: the chain breaks there
  ASSERT_TRUE((*f)->Write(d1.size(), d2.data(), d2.size()).ok());
  ASSERT_TRUE((*f)->Fsync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(ReadAll(a->ino, d1.size() + d2.size()), d1 + d2);
  proto::FileInfoReply fi;
  ASSERT_TRUE(client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok());
  ASSERT_EQ(fi.chunks.size(), 1u);
  EXPECT_EQ(fi.chunks[0].replicas.size(), 2u);
  EXPECT_GT(fi.chunks[0].version, 1u);
}

// A power cut of every server: each replica of the chunk loses the writes it had not
// synced, and the MDS makes one of them the chunk's content (a reset: the version's epoch
// moves). The client still holds those acknowledged writes and sends them again, in their
// order, before a read or the fsync: nothing is lost and the fsync succeeds (no EIO).
TEST_F(LiveCluster, WritesEveryReplicaLostInAPowerCutAreSentAgain) {
  auto a = client_->Create(kRootInode, "pc", 0644, true);
  ASSERT_TRUE(a.ok());
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  std::string d1 = Random(1 << 20, 7), d2 = Random(300000, 8), d3 = Random(5000, 9);
  ASSERT_TRUE((*f)->Write(0, d1.data(), d1.size()).ok());
  ASSERT_TRUE((*f)->Fsync().ok());
  EXPECT_EQ(client_->KeptWriteBytes(), 0);
  std::map<std::string, std::string> durable;  // chunk file -> what the power cut leaves of it
  for (int i = 0; i < 3; ++i)
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/cs" + std::to_string(i) + "/chunks"))
      durable[e.path()] = *ReadFile(e.path());
  ASSERT_EQ(durable.size(), 3u);
  ASSERT_TRUE((*f)->Write(100000, d2.data(), d2.size()).ok());  // on every replica, not synced
  ASSERT_TRUE((*f)->Write(200000, d3.data(), d3.size()).ok());  // over part of it: order matters
  EXPECT_EQ(client_->KeptWriteBytes(), static_cast<int64_t>(d2.size() + d3.size()));

  mds_->Stop();
  mds_.reset();
  for (auto& c : cs_) c->Stop();
  cs_.clear();
  for (const auto& [path, bytes] : durable) ASSERT_TRUE(WriteFileAtomic(path, bytes).ok());
  // The servers come back on a new boot: the CS find the chunk in their write-intent logs.
  std::string boot = dir_ + "/boot_id";
  ASSERT_TRUE(WriteFileAtomic(boot, "after-the-power-cut\n").ok());
  setenv("VSTORAGE_BOOT_ID_FILE", boot.c_str(), 1);
  for (int attempt = 0; attempt < 50 && !mds_; ++attempt) {
    auto m = mds::MdsService::Start(dir_ + "/mds");
    if (!m.ok() && m.status().code() == Code::kBusy) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mds_ = std::move(m).value();
  }
  ASSERT_TRUE(mds_);
  for (int i = 0; i < 3; ++i) {
    auto s = cs::CsService::Start(dir_ + "/cs" + std::to_string(i));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    cs_.push_back(std::move(s).value());
  }
  unsetenv("VSTORAGE_BOOT_ID_FILE");
  proto::FileInfoReply fi;
  for (int i = 0; i < 400; ++i) {
    fi = {};
    ASSERT_TRUE(client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok());
    if (fi.chunks.size() == 1 && proto::ChunkResetEpoch(fi.chunks[0].version) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(fi.chunks.size(), 1u);
  ASSERT_GT(proto::ChunkResetEpoch(fi.chunks[0].version), 0u) << "the chunk was not reset";

  std::string want = d1;
  want.replace(100000, d2.size(), d2);
  want.replace(200000, d3.size(), d3);
  std::string got(want.size(), '\0');
  auto n = (*f)->Read(0, got.size(), got.data());  // read your writes, before any fsync
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_TRUE(got == want) << "the read did not see the writes the reset lost";
  Status st = (*f)->Fsync();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(client_->KeptWriteBytes(), 0);
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_TRUE(ReadAll(a->ino, want.size()) == want);
}

// Kept writes belong to the writers: when the last writable handle of the inode closes they
// go, though a reader still has it open.
TEST_F(LiveCluster, KeptWritesGoWithTheLastWriter) {
  auto a = client_->Create(kRootInode, "kw", 0644, true);
  auto w1 = client_->Open(a->ino, true);
  auto w2 = client_->Open(a->ino, true);
  auto r = client_->Open(a->ino, false);
  ASSERT_TRUE(w1.ok() && w2.ok() && r.ok());
  std::string d = Random(100000, 12);
  ASSERT_TRUE((*w1)->Write(0, d.data(), d.size()).ok());
  EXPECT_EQ(client_->KeptWriteBytes(), static_cast<int64_t>(d.size()));
  ASSERT_TRUE((*w1)->Close().ok());
  EXPECT_EQ(client_->KeptWriteBytes(), static_cast<int64_t>(d.size()));  // w2 may still fsync them
  ASSERT_TRUE((*w2)->Close().ok());
  EXPECT_EQ(client_->KeptWriteBytes(), 0);
  std::string got(d.size(), '\0');
  auto n = (*r)->Read(0, got.size(), got.data());
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(got == d);
  ASSERT_TRUE((*r)->Close().ok());
}

// Acknowledged writes are kept up to kMaxReplayBytes: a write that would pass it syncs the
// file's first, so a stream that never fsyncs keeps at most that much.
TEST_F(LiveCluster, KeptWritesStayWithinTheirBudget) {
  auto a = client_->Create(kRootInode, "big", 0644, true);
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  std::string d = Random(4 << 20, 11);
  int64_t most = 0;
  for (uint64_t off = 0; off < static_cast<uint64_t>(kMaxReplayBytes) + (16 << 20); off += d.size()) {
    ASSERT_TRUE((*f)->Write(off, d.data(), d.size()).ok());
    most = std::max(most, client_->KeptWriteBytes());
  }
  EXPECT_LE(most, kMaxReplayBytes);
  EXPECT_GT(most, kMaxReplayBytes / 2);
  // The write that met the budget synced the file's first and let them go, so the last ones
  // are kept again (without that sync the budget would stay full and they would go unkept).
  EXPECT_LE(client_->KeptWriteBytes(), kMaxReplayBytes / 2);
  EXPECT_GT(client_->KeptWriteBytes(), 0);
  ASSERT_TRUE((*f)->Fsync().ok());
  EXPECT_EQ(client_->KeptWriteBytes(), 0);
  ASSERT_TRUE((*f)->Close().ok());
}

}  // namespace
}  // namespace vstorage

namespace vstorage {
namespace {

bool HasEntry(const proto::WatchChangesReply& r, InodeId dir, const std::string& name) {
  for (const auto& c : r.changes)
    if (c.kind == proto::InvalKind::kEntry && c.ino == dir && c.name == name) return true;
  return false;
}
bool HasInode(const proto::WatchChangesReply& r, InodeId ino) {
  for (const auto& c : r.changes)
    if (c.kind == proto::InvalKind::kInode && c.ino == ino) return true;
  return false;
}

TEST_F(LiveCluster, CreateOpenTakesTheWriteLeaseInOneCallAndOthersAreToldOfChanges) {
  auto other = Client::Connect(ClientOptions{"c", 20000, 20000, "other"});
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto w0 = (*other)->WatchChanges(0, 0);
  ASSERT_TRUE(w0.ok()) << w0.status().ToString();
  auto mine0 = client_->WatchChanges(0, 0);
  ASSERT_TRUE(mine0.ok());

  auto r = client_->CreateOpen(kRootInode, "co", 0640, true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first.mode, 0640u);
  EXPECT_EQ(r->first.size, 0u);
  ASSERT_TRUE(r->second->writable());
  // The lease is ours: another client cannot open it for writing meanwhile.
  auto busy = (*other)->Open(r->first.ino, true);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  ASSERT_TRUE(r->second->Write(0, "hello", 5).ok());
  ASSERT_TRUE(r->second->Close().ok());

  // The other client hears of the new name, its directory and the size; we do not.
  proto::WatchChangesReply seen;
  uint64_t after = w0->seq;
  for (int i = 0; i < 10 && !HasInode(seen, r->first.ino); ++i) {
    auto w = (*other)->WatchChanges(after, 2000);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    seen.changes.insert(seen.changes.end(), w->changes.begin(), w->changes.end());
    after = w->seq;
  }
  EXPECT_TRUE(HasEntry(seen, kRootInode, "co"));
  EXPECT_TRUE(HasInode(seen, kRootInode));
  EXPECT_TRUE(HasInode(seen, r->first.ino));
  auto mine = client_->WatchChanges(mine0->seq, 0);
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(mine->changes.empty());

  // The other's changes reach us.
  ASSERT_TRUE((*other)->Rename(kRootInode, "co", kRootInode, "co2").ok());
  auto back = client_->WatchChanges(mine->seq, 2000);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(HasEntry(*back, kRootInode, "co"));
  EXPECT_TRUE(HasEntry(*back, kRootInode, "co2"));

  // A listing with the attributes of every entry.
  auto d = client_->ReaddirPlus(kRootInode);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].name, "co2");
  EXPECT_EQ((*d)[0].attr.ino, r->first.ino);
  EXPECT_EQ((*d)[0].attr.size, 5u);
  EXPECT_EQ((*d)[0].attr.mode, 0640u);
}

}  // namespace

// Issue 11 item 3: overlapping writes in flight at once (libvstorage, no FUSE to serialise
// them) must be applied in the same order on every replica. Every write fills its range with
// its own byte value, so the final bytes say which write each one came from.
TEST_F(LiveCluster, ConcurrentOverlappingWritersLeaveEveryReplicaIdentical) {
  auto a = client_->Create(kRootInode, "overlap", 0644, true);
  ASSERT_TRUE(a.ok());
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  constexpr int kWriters = 16, kWritesEach = 15;  // 240 writes: one byte value each
  constexpr uint64_t kBase = (1 << 20) - (256 << 10), kSpan = 512 << 10;  // across a chunk boundary
  struct W {
    uint64_t off, len;
  };
  std::vector<std::vector<W>> plan(kWriters);
  std::mt19937_64 g(11);
  for (auto& p : plan)
    for (int k = 0; k < kWritesEach; ++k) {
      uint64_t len = 4096 + g() % (128 << 10);
      p.push_back(W{kBase + g() % (kSpan - len), len});
    }
  std::vector<std::thread> ts;
  std::vector<Status> sts(kWriters);
  for (int w = 0; w < kWriters; ++w)
    ts.emplace_back([&, w] {
      for (int k = 0; k < kWritesEach && sts[w].ok(); ++k) {
        std::string d(plan[w][k].len, static_cast<char>(1 + w * kWritesEach + k));
        sts[w] = (*f)->Write(plan[w][k].off, d.data(), d.size());
      }
    });
  for (auto& t : ts) t.join();
  for (auto& st : sts) ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE((*f)->Fsync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  ExpectThreeReplicasEach(client_.get(), a->ino);

  // The model: each byte holds the last write of some writer that covers it (a writer's own
  // writes are sequential), or zero where nobody wrote.
  std::string got = ReadAll(a->ino, kBase + kSpan);
  ASSERT_GE(got.size(), kBase);
  for (uint64_t pos = 0; pos < got.size(); ++pos) {
    auto v = static_cast<uint8_t>(got[pos]);
    bool covered = false, ok = false;
    for (int w = 0; w < kWriters; ++w) {
      int last = -1;
      for (int k = 0; k < kWritesEach; ++k)
        if (plan[w][k].off <= pos && pos < plan[w][k].off + plan[w][k].len) last = k;
      if (last >= 0) covered = true;
      if (last >= 0 && v == 1 + w * kWritesEach + last) ok = true;
    }
    if (!covered) ok = v == 0;
    ASSERT_TRUE(ok) << "byte " << pos << " holds " << int(v) << ", which no last write there wrote";
  }

  // Every replica of every chunk is byte-identical, file for file.
  std::map<std::string, std::vector<std::string>> files;
  for (int i = 0; i < 3; ++i)
    for (auto& e : std::filesystem::directory_iterator(dir_ + "/cs" + std::to_string(i) + "/chunks")) {
      auto bytes = ReadFile(e.path().string());
      ASSERT_TRUE(bytes.ok());
      files[e.path().filename().string()].push_back(*bytes);
    }
  ASSERT_EQ(files.size(), 2u);  // the two chunks the writes touched
  for (auto& [name, copies] : files) {
    ASSERT_EQ(copies.size(), 3u) << name;
    EXPECT_TRUE(copies[0] == copies[1] && copies[1] == copies[2]) << "replicas of " << name << " differ";
  }
}

// One thread keeps hundreds of requests in flight through the async API (as an iSCSI or
// NBD server would): 1,024 writes of 4 KiB blocks in random order over four chunks, an
// fsync, 1,024 reads and 200 metadata calls, each callback once, every byte as written.
TEST_F(LiveCluster, OneThreadDrivesHundredsOfAsyncRequests) {
  auto a = client_->Create(kRootInode, "async", 0644, true);
  ASSERT_TRUE(a.ok());
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  constexpr int kBlocks = 1024;
  constexpr size_t kBlock = 4096;
  std::string data = Random(kBlocks * kBlock, 21);
  std::vector<int> order(kBlocks);
  for (int i = 0; i < kBlocks; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(5));

  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0, peak = 0, finished = 0, calls = 0;
  std::vector<Status> errs;
  auto begin = [&] {
    std::lock_guard<std::mutex> l(mu);
    peak = std::max(peak, ++outstanding);
  };
  auto end = [&](Status st) {
    std::lock_guard<std::mutex> l(mu);
    --outstanding;
    ++finished;
    if (!st.ok()) errs.push_back(st);
    cv.notify_all();
  };
  auto wait_all = [&](int n) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::seconds(60), [&] { return finished == n; });
  };
  for (int b : order) {
    begin();
    ++calls;
    (*f)->WriteAsync(uint64_t(b) * kBlock, data.data() + b * kBlock, kBlock, end);
  }
  ASSERT_TRUE(wait_all(calls));
  EXPECT_GT(peak, rpc::kMaxInflightPerChannel);  // more than one connection's window at once
  ++calls;
  (*f)->FsyncAsync(end);
  ASSERT_TRUE(wait_all(calls));
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_TRUE(errs.empty()) << errs[0].ToString();
  }
  EXPECT_EQ((*f)->size(), data.size());

  std::string back(data.size(), '\0');
  for (int b : order) {
    ++calls;
    (*f)->ReadAsync(uint64_t(b) * kBlock, kBlock, back.data() + b * kBlock, [&](Result<size_t> r) {
      end(r.ok() ? (*r == kBlock ? Status::Ok() : Err(Code::kProtocol, "short read")) : r.status());
    });
  }
  ASSERT_TRUE(wait_all(calls));
  std::vector<uint64_t> inos;
  for (int i = 0; i < 200; ++i) {
    ++calls;
    client_->MdsCallAsync<proto::InodeReq, proto::AttrReply>(proto::MsgType::kGetAttr, proto::InodeReq{a->ino},
                                                             [&](Status st, proto::AttrReply r) {
                                                               {
                                                                 std::lock_guard<std::mutex> l(mu);
                                                                 inos.push_back(r.attr.ino.v);
                                                               }
                                                               end(st);
                                                             });
  }
  ASSERT_TRUE(wait_all(calls));
  std::lock_guard<std::mutex> l(mu);
  ASSERT_TRUE(errs.empty()) << errs[0].ToString();
  EXPECT_TRUE(back == data) << "a block read back differs from what was written";
  ASSERT_EQ(inos.size(), 200u);
  for (uint64_t v : inos) EXPECT_EQ(v, a->ino.v);
  ExpectThreeReplicasEach(client_.get(), a->ino);
}

// Callbacks that start a further request never wait for admission, also on the slow-path
// workers: with kMaxAsyncOps outstanding and every worker in a callback that waited, the
// requests still queued for a worker (a new file: no chunk map yet) could never finish.
TEST_F(LiveCluster, CallbacksThatResubmitNeverWaitForAdmission) {
  auto a = client_->Create(kRootInode, "resubmit", 0644, true);
  ASSERT_TRUE(a.ok());
  auto f = client_->Open(a->ino, true);
  ASSERT_TRUE(f.ok());
  constexpr int kFirst = 2 * kMaxAsyncOps;  // the submitter itself waits for slots
  constexpr size_t kBlock = 4096;
  std::string data = Random(2 * kFirst * kBlock, 22);
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::vector<Status> errs;
  auto end = [&](Status st) {
    std::lock_guard<std::mutex> l(mu);
    ++finished;
    if (!st.ok()) errs.push_back(st);
    cv.notify_all();
  };
  File* fp = f->get();
  for (int i = 0; i < kFirst; ++i) {
    fp->WriteAsync(uint64_t(i) * kBlock, data.data() + i * kBlock, kBlock, [&, fp, i](Status st) {
      end(st);
      int j = kFirst + i;  // the second half, started from the callback
      fp->WriteAsync(uint64_t(j) * kBlock, data.data() + j * kBlock, kBlock, end);
    });
  }
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(60), [&] { return finished == 2 * kFirst; }))
        << finished << " of " << 2 * kFirst << " writes finished: a callback is stuck in admission";
    ASSERT_TRUE(errs.empty()) << errs[0].ToString();
  }
  ASSERT_TRUE(fp->Fsync().ok());
  std::string back(data.size(), '\0');
  auto n = fp->Read(0, back.size(), back.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, back.size());
  EXPECT_TRUE(back == data) << "a block read back differs from what was written";
}

// A second handle of the inode reads through the first one's chunk maps and fsyncs its
// writes: the cache and the unsynced set belong to the inode, not to one handle.
TEST_F(LiveCluster, HandlesOfOneInodeShareChunkMapsAndFsync) {
  // A client that gives up on an absent MDS after a second.
  auto c = Client::Connect(ClientOptions{"c", 1000, 20000, "test2"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto a = (*c)->Create(kRootInode, "shared", 0644, true);
  ASSERT_TRUE(a.ok());
  auto w = (*c)->Open(a->ino, true);
  ASSERT_TRUE(w.ok());
  std::string data = Random(3 << 20, 8);
  ASSERT_TRUE((*w)->Write(0, data.data(), data.size()).ok());
  auto r = (*c)->Open(a->ino, false);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Fsync().ok());  // syncs the writer's chunks and reports its size
  // The MDS goes away: a read that needed a chunk map from it would now fail.
  mds_->Stop();
  std::string back(data.size(), '\0');
  auto got = (*r)->Read(0, back.size(), back.data());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data.size());
  EXPECT_TRUE(back == data);
  // And the chunk servers go too: the writer's fsync has nothing left to do (the reader's
  // synced its chunks and reported the size), so it succeeds without either.
  cs_.clear();
  Status st = (*w)->Fsync();
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(LiveCluster, AnIdleMdsSkipsTheRecoveryScanAndAChangeBringsItBack) {
  // Nothing to heal: after one scan that found nothing, passes skip the walk over every chunk.
  auto a = client_->Create(kRootInode, "idle", 0644, true);
  ASSERT_TRUE(a.ok());
  {
    auto f = client_->Open(a->ino, true);
    ASSERT_TRUE(f.ok());
    std::string data = Random(1 << 20, 3);
    ASSERT_TRUE((*f)->Write(0, data.data(), data.size()).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
  auto until = [&](auto pred) {
    for (int i = 0; i < 300 && !pred(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return pred();
  };
  ASSERT_TRUE(until([&] { return mds_->Stats().recovery_scans_skipped > 0; }));
  // A replica-count change is a command the scan depends on: the next pass walks again.
  uint64_t scans = mds_->Stats().recovery_scans;
  ASSERT_TRUE(client_->SetXattr(a->ino, "replicas", "2").ok());
  ASSERT_TRUE(until([&] { return mds_->Stats().recovery_scans > scans; }));
  // ... and trims the extra replica.
  ASSERT_TRUE(until([&] {
    proto::FileInfoReply fi;
    return client_->MdsCall(proto::MsgType::kFileInfo, proto::InodeReq{a->ino}, &fi).ok() && fi.chunks.size() == 1 &&
           fi.chunks[0].replicas.size() == 2;
  }));
}

}  // namespace vstorage
