#include "consensus/raft.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <set>

namespace vstorage::consensus {
namespace {

constexpr int kElection = 10;

// A synchronous in-memory cluster: each node's storage is a Storage value (what a restart
// would read); durability is reported right away unless the node is in manual mode.
class Cluster {
 public:
  struct Node {
    std::unique_ptr<SeededRandom> rnd;
    std::unique_ptr<Raft> r;
    Storage st;
    Options opt;
    std::vector<Entry> applied;
    bool manual = false;
    std::vector<std::function<void()>> reports;  // manual mode: durability not yet reported
    int snapshots_installed = 0;
  };

  explicit Cluster(std::vector<uint64_t> ids, std::function<void(Options&)> tweak = nullptr) {
    Config c;
    for (uint64_t id : ids) c.voters.push_back(MdsId(id));
    for (uint64_t id : ids) {
      Storage st;
      st.initial = c;
      Add(id, std::move(st), tweak);
    }
  }

  void Add(uint64_t id, Storage st, std::function<void(Options&)> tweak = nullptr) {
    Node& n = nodes[id];
    n.rnd = std::make_unique<SeededRandom>(id * 7919);
    n.opt.id = MdsId(id);
    n.opt.election_ticks = kElection;
    n.opt.random = n.rnd.get();
    if (tweak) tweak(n.opt);
    n.st = st;
    n.r = std::make_unique<Raft>(n.opt, std::move(st));
    Drain(id);
  }

  Raft& R(uint64_t id) { return *nodes.at(id).r; }

  void Drain(uint64_t id) {
    Node& n = nodes.at(id);
    while (n.r->HasReady()) {
      Ready rd = n.r->TakeReady();
      if (rd.snapshot) {
        n.st.snapshot = *rd.snapshot;
        n.st.entries.clear();
        n.st.applied = rd.snapshot->meta.index;
        n.applied.clear();
        ++n.snapshots_installed;
      }
      if (rd.hard_state) n.st.hard_state = *rd.hard_state;
      if (rd.truncate_from) {
        while (!n.st.entries.empty() && n.st.entries.back().index >= *rd.truncate_from) n.st.entries.pop_back();
      }
      for (auto& e : rd.entries) n.st.entries.push_back(e);
      std::vector<std::function<void()>> rep;
      Raft* r = n.r.get();
      if (rd.snapshot) rep.push_back([r, i = rd.snapshot->meta.index] { r->OnSnapshotInstalled(i); });
      if (rd.hard_state) rep.push_back([r, v = rd.hard_state_version] { r->OnHardStateDurable(v); });
      if (!rd.entries.empty()) {
        rep.push_back([r, i = rd.entries.back().index, t = rd.entries.back().term] { r->OnEntriesDurable(i, t); });
      }
      for (auto& e : rd.committed) n.applied.push_back(e);
      for (auto& m : rd.messages) {
        if (m.type == MsgType::kAppend && !m.entries.empty()) ++sent_appends[m.to.v];
        wire.push_back(m);
      }
      if (n.manual) {
        for (auto& f : rep) n.reports.push_back(f);
      } else {
        for (auto& f : rep) f();
      }
    }
  }

  void Report(uint64_t id) {
    Node& n = nodes.at(id);
    auto reps = std::move(n.reports);
    n.reports.clear();
    for (auto& f : reps) f();
    Drain(id);
  }

  bool Cut(uint64_t a, uint64_t b) const { return cut.count({a, b}) > 0; }
  void Isolate(uint64_t id) {
    for (auto& [o, n] : nodes) {
      if (o == id) continue;
      cut.insert({id, o});
      cut.insert({o, id});
    }
  }
  void Heal() { cut.clear(); }

  void Deliver(size_t max = 1000000) {
    while (!wire.empty() && max--) {
      Message m = wire.front();
      wire.pop_front();
      if (!nodes.count(m.to.v) || Cut(m.from.v, m.to.v) || down.count(m.to.v)) continue;
      if (filter && !filter(m)) continue;
      ++delivered[m.type];
      R(m.to.v).Step(m);
      Drain(m.to.v);
    }
  }

  void Tick(int n = 1) {
    for (int k = 0; k < n; ++k) {
      for (auto& [id, node] : nodes) {
        if (down.count(id)) continue;
        node.r->Tick();
        Drain(id);
      }
      Deliver();
    }
  }

  std::vector<uint64_t> Leaders() {
    std::vector<uint64_t> l;
    for (auto& [id, n] : nodes) {
      if (!down.count(id) && n.r->role() == Role::kLeader) l.push_back(id);
    }
    return l;
  }

  uint64_t ElectOne(int max_ticks = 50 * kElection) {
    for (int t = 0; t < max_ticks; ++t) {
      Tick();
      auto l = Leaders();
      if (l.size() == 1) return l[0];
    }
    return 0;
  }

  Proposal MustPropose(uint64_t id, std::string data) {
    auto p = R(id).Propose(std::move(data));
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    Drain(id);
    return p.ok() ? *p : Proposal{};
  }

  std::map<uint64_t, Node> nodes;
  std::deque<Message> wire;
  std::set<std::pair<uint64_t, uint64_t>> cut;
  std::set<uint64_t> down;
  std::map<MsgType, int> delivered;
  std::map<uint64_t, int> sent_appends;  // non-empty appends, by destination
  std::function<bool(const Message&)> filter;
};

bool HasData(const std::vector<Entry>& v, const std::string& d) {
  for (auto& e : v) {
    if (e.data == d) return true;
  }
  return false;
}

TEST(ConfigChange, GoldenEncoding) {
  std::string s = EncodeConfigChange({ConfigOp::kRemoveVoter, MdsId(0x0102)});
  const unsigned char want[] = {0x43, 0x43, 0x53, 0x56, 0, 0, 0, 0, 1, 2, 0x02, 0x01, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(s, std::string(reinterpret_cast<const char*>(want), sizeof want));
  auto c = DecodeConfigChange(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->op, ConfigOp::kRemoveVoter);
  EXPECT_EQ(c->node, MdsId(0x0102));
  EXPECT_FALSE(DecodeConfigChange(s.substr(1)).ok());
}

TEST(Raft, ElectsOneLeaderAndReplicates) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  c.Tick(3);
  for (auto& [id, n] : c.nodes) {
    EXPECT_EQ(n.r->leader(), MdsId(l)) << id;
    EXPECT_EQ(n.r->term(), c.R(l).term());
  }
  Proposal p = c.MustPropose(l, "x");
  c.Deliver();
  c.Tick(2);
  for (auto& [id, n] : c.nodes) {
    EXPECT_TRUE(HasData(n.applied, "x")) << id;
    EXPECT_EQ(n.r->commit(), p.index);
  }
}

TEST(Raft, OneVoterCommitsOnItsOwnDurabilityOnly) {
  Cluster c({1});
  c.nodes[1].manual = true;
  c.Tick(2 * kElection);
  // Its self vote is not durable yet: no leader.
  EXPECT_NE(c.R(1).role(), Role::kLeader);
  c.Report(1);
  ASSERT_EQ(c.R(1).role(), Role::kLeader);
  c.Report(1);  // the no-op
  Proposal p = c.MustPropose(1, "a");
  EXPECT_LT(c.R(1).commit(), p.index);
  EXPECT_FALSE(HasData(c.nodes[1].applied, "a"));
  c.Report(1);
  EXPECT_EQ(c.R(1).commit(), p.index);
  EXPECT_TRUE(HasData(c.nodes[1].applied, "a"));
}

TEST(Raft, VoteIsSentOnlyOnceDurable) {
  Cluster c({1, 2, 3});
  c.nodes[2].manual = true;
  c.nodes[3].manual = true;
  c.R(1).Step([] {
    Message m;
    m.type = MsgType::kTimeoutNow;
    m.from = MdsId(2);
    m.to = MdsId(1);
    return m;
  }());
  c.Drain(1);
  c.Deliver();
  EXPECT_EQ(c.R(2).term(), Term(1));
  EXPECT_EQ(c.R(1).role(), Role::kCandidate);  // the grants are held back
  c.Report(2);
  c.Deliver();
  EXPECT_EQ(c.R(1).role(), Role::kLeader);
}

TEST(Raft, PreVoteDoesNotDisruptStableLeader) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  Term t = c.R(l).term();
  uint64_t other = l == 3 ? 2 : 3;
  c.Isolate(other);
  c.Tick(10 * kElection);
  EXPECT_EQ(c.R(other).term(), t);  // pre-votes failed: the term never moved
  EXPECT_NE(c.R(other).role(), Role::kCandidate);
  c.Heal();
  c.Tick(3 * kElection);
  EXPECT_EQ(c.R(l).role(), Role::kLeader);
  EXPECT_EQ(c.R(l).term(), t);
  EXPECT_EQ(c.R(other).leader(), MdsId(l));
}

TEST(Raft, VoteRequestsIgnoredInLease) {
  Cluster c({1, 2, 3}, [](Options& o) { o.pre_vote = false; });
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  Term t = c.R(l).term();
  uint64_t other = l == 3 ? 2 : 3;
  c.Isolate(other);
  c.Tick(10 * kElection);
  EXPECT_GT(c.R(other).term(), t);  // without pre-vote it campaigns on and on
  c.Heal();
  c.Tick(1);
  // The others hear from the leader and ignore its vote requests; the leader learns the
  // higher term from its answer, steps down, and a new election settles.
  uint64_t l2 = c.ElectOne();
  EXPECT_NE(l2, 0u);
}

TEST(Raft, CheckQuorumStepsDown) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  c.Isolate(l);
  c.Tick(2 * kElection + 1);
  EXPECT_NE(c.R(l).role(), Role::kLeader);
  // The other two elect a leader of a higher term.
  auto ls = c.Leaders();
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_NE(ls[0], l);
}

Storage WithLog(std::vector<uint64_t> terms, uint64_t hs_term, Config cfg) {
  Storage st;
  st.initial = cfg;
  st.hard_state.term = Term(hs_term);
  for (size_t k = 0; k < terms.size(); ++k) {
    Entry e;
    e.index = LogIndex(k + 1);
    e.term = Term(terms[k]);
    e.data = "t" + std::to_string(terms[k]) + "i" + std::to_string(k + 1);
    st.entries.push_back(e);
  }
  return st;
}

TEST(Raft, ConflictingSuffixIsReplacedWithFewProbes) {
  Config cfg{{MdsId(1), MdsId(2), MdsId(3)}};
  Cluster c({});
  c.Add(1, WithLog({1, 1, 3, 3, 3}, 3, cfg));
  c.Add(2, WithLog({1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 3, cfg));
  c.Add(3, WithLog({1, 1}, 3, cfg));
  c.R(1).Step([] {
    Message m;
    m.type = MsgType::kTimeoutNow;
    m.from = MdsId(2);
    m.to = MdsId(1);
    m.term = Term(3);
    return m;
  }());
  c.Drain(1);
  c.Deliver();
  ASSERT_EQ(c.R(1).role(), Role::kLeader);
  c.Tick(3);
  for (uint64_t id : {2, 3}) {
    ASSERT_EQ(c.R(id).last_index(), c.R(1).last_index()) << id;
    for (uint64_t i = 1; i <= c.R(1).last_index().v; ++i) {
      EXPECT_EQ(*c.R(id).EntryAt(LogIndex(i)), *c.R(1).EntryAt(LogIndex(i))) << id << " " << i;
    }
    EXPECT_EQ(c.R(id).commit(), c.R(1).last_index());
  }
  // Node 2's ten term-2 entries go in one hinted step, not one probe per entry.
  EXPECT_LE(c.delivered[MsgType::kAppendResp], 12);
  EXPECT_EQ(c.nodes[2].st.entries.size(), c.R(1).last_index().v);  // its storage was cut too
}

TEST(Raft, OldTermEntriesAreNotCommittedByCounting) {
  for (bool broken : {false, true}) {
    Config cfg{{MdsId(1), MdsId(2), MdsId(3)}};
    Cluster c({});
    auto tweak = [broken](Options& o) { o.test_commit_old_terms = broken; };
    c.Add(1, WithLog({1, 2}, 3, cfg), tweak);
    c.Add(2, WithLog({1}, 3, cfg), tweak);
    c.Add(3, WithLog({1}, 3, cfg), tweak);
    c.filter = [](const Message& m) { return m.type != MsgType::kAppend; };  // no replication
    c.R(1).Step([] {
      Message m;
      m.type = MsgType::kTimeoutNow;
      m.from = MdsId(2);
      m.to = MdsId(1);
      m.term = Term(3);
      return m;
    }());
    c.Drain(1);
    c.Deliver();
    ASSERT_EQ(c.R(1).role(), Role::kLeader);
    ASSERT_EQ(c.R(1).term(), Term(4));
    ASSERT_EQ(c.R(1).last_index(), LogIndex(3));  // the term-4 no-op
    // Node 2 acknowledges index 2 (the term-2 entry), not the no-op: a quorum holds 2.
    Message ack;
    ack.type = MsgType::kAppendResp;
    ack.from = MdsId(2);
    ack.to = MdsId(1);
    ack.term = Term(4);
    ack.index = LogIndex(2);
    c.R(1).Step(ack);
    c.Drain(1);
    EXPECT_EQ(c.R(1).commit(), broken ? LogIndex(2) : LogIndex(0)) << broken;
    ack.index = LogIndex(3);
    c.R(1).Step(ack);
    c.Drain(1);
    EXPECT_EQ(c.R(1).commit(), LogIndex(3));
  }
}

TEST(Raft, LaggingFollowerGetsSnapshotInChunks) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  uint64_t lag = l == 3 ? 2 : 3;
  c.Isolate(lag);
  for (int k = 0; k < 30; ++k) c.MustPropose(l, "e" + std::to_string(k));
  c.Deliver();
  c.Tick(2);
  Raft& L = c.R(l);
  ASSERT_EQ(L.applied(), L.last_index());
  auto meta = L.SnapshotMetaAt(L.applied());
  ASSERT_TRUE(meta.ok());
  std::string image(3 * kMaxSnapshotChunkBytes + 17, 'z');
  ASSERT_TRUE(L.SetSnapshot(Snapshot{*meta, std::make_shared<const std::string>(image)}).ok());
  ASSERT_TRUE(L.Compact(meta->index).ok());
  EXPECT_EQ(L.first_index().v, meta->index.v + 1);
  c.MustPropose(l, "after");
  c.Heal();
  c.Tick(3 * kElection);
  Raft& F = c.R(lag);
  EXPECT_EQ(c.nodes[lag].snapshots_installed, 1);
  EXPECT_EQ(*c.nodes[lag].st.snapshot.image, image);
  EXPECT_EQ(c.nodes[lag].st.snapshot.meta, *meta);
  EXPECT_GE(c.delivered[MsgType::kSnapshot], 4);
  EXPECT_EQ(F.last_index(), L.last_index());
  EXPECT_EQ(F.commit(), L.commit());
  EXPECT_TRUE(HasData(c.nodes[lag].applied, "after"));
  EXPECT_FALSE(HasData(c.nodes[lag].applied, "e0"));  // came with the image
}

TEST(Raft, SnapshotResumesAfterALostChunk) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  uint64_t f = l == 1 ? 2 : 1;
  c.Isolate(f);
  for (int k = 0; k < 5; ++k) c.MustPropose(l, "e" + std::to_string(k));
  c.Deliver();
  Raft& L = c.R(l);
  ASSERT_EQ(L.applied(), L.last_index());
  auto meta = L.SnapshotMetaAt(L.applied());
  ASSERT_TRUE(meta.ok());
  std::string image(2 * kMaxSnapshotChunkBytes + 5, 'q');
  ASSERT_TRUE(L.SetSnapshot(Snapshot{*meta, std::make_shared<const std::string>(image)}).ok());
  ASSERT_TRUE(L.Compact(meta->index).ok());
  c.Heal();
  bool dropped = false;
  c.filter = [&](const Message& m) {
    if (m.type == MsgType::kSnapshot && m.snap_offset == kMaxSnapshotChunkBytes && !dropped) {
      dropped = true;
      return false;
    }
    return true;
  };
  c.Tick(4 * kElection);
  EXPECT_TRUE(dropped);
  EXPECT_EQ(c.nodes[f].snapshots_installed, 1);
  EXPECT_EQ(*c.nodes[f].st.snapshot.image, image);
  EXPECT_EQ(c.R(f).last_index(), L.last_index());
  EXPECT_EQ(c.R(f).commit(), L.last_index());
}

TEST(Raft, ConvergesUnderDuplicatedAndReorderedMessages) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  SeededRandom rnd(42);
  for (int round = 0; round < 50; ++round) {
    c.MustPropose(l, "r" + std::to_string(round));
    // Shuffle and duplicate what is on the wire, then deliver it.
    std::vector<Message> w(c.wire.begin(), c.wire.end());
    c.wire.clear();
    std::vector<Message> out;
    for (auto& m : w) {
      out.push_back(m);
      if (rnd.Uniform(3) == 0) out.push_back(m);
    }
    for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rnd.Uniform(i)]);
    for (auto& m : out) c.wire.push_back(m);
    c.Deliver(out.size());
    if (round % 5 == 0) c.Tick();
  }
  c.Tick(3 * kElection);
  ASSERT_EQ(c.Leaders().size(), 1u);
  uint64_t l2 = c.Leaders()[0];
  for (auto& [id, n] : c.nodes) {
    EXPECT_EQ(n.r->commit(), c.R(l2).last_index()) << id;
    for (int round = 0; round < 50; ++round) EXPECT_TRUE(HasData(n.applied, "r" + std::to_string(round))) << id;
  }
}

TEST(Raft, MembershipAddThenRemove) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  c.Tick(2);
  c.Add(4, Storage{});  // a new node knows no configuration and never campaigns
  auto add = c.R(l).ProposeConfigChange({ConfigOp::kAddVoter, MdsId(4)});
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  EXPECT_EQ(c.R(l).config().voters.size(), 4u);  // in effect once appended
  EXPECT_EQ(c.R(l).ProposeConfigChange({ConfigOp::kAddVoter, MdsId(5)}).status().code(), Code::kBusy);
  c.Drain(l);
  c.Tick(3);
  for (auto& [id, n] : c.nodes) EXPECT_TRUE(n.r->config().Contains(MdsId(4))) << id;
  EXPECT_EQ(c.R(4).commit(), c.R(l).commit());
  uint64_t victim = l == 1 ? 2 : 1;
  EXPECT_EQ(c.R(l).ProposeConfigChange({ConfigOp::kRemoveVoter, MdsId(l)}).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(c.R(l).ProposeConfigChange({ConfigOp::kRemoveVoter, MdsId(victim)}).ok());
  c.Drain(l);
  c.Tick(3);
  EXPECT_FALSE(c.R(l).config().Contains(MdsId(victim)));
  c.down.insert(victim);
  // Three voters are left; two of them make a quorum even with the removed node gone.
  uint64_t third = 0;
  for (uint64_t id : {1, 2, 3, 4}) {
    if (id != l && id != victim && !third) third = id;
  }
  c.Isolate(third);
  c.Heal();
  c.MustPropose(l, "after-remove");
  c.Deliver();
  c.Tick(2);
  EXPECT_TRUE(HasData(c.nodes[l].applied, "after-remove"));
  // The removed node does not campaign.
  c.down.erase(victim);
  c.Isolate(victim);
  c.Tick(5 * kElection);
  EXPECT_NE(c.R(victim).role(), Role::kCandidate);
  EXPECT_NE(c.R(victim).role(), Role::kPreCandidate);
}

TEST(Raft, LeadershipTransfer) {
  Cluster c({1, 2, 3});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  c.MustPropose(l, "x");
  c.Deliver();
  uint64_t to = l == 1 ? 2 : 1;
  Term t = c.R(l).term();
  ASSERT_TRUE(c.R(l).TransferLeadership(MdsId(to)).ok());
  EXPECT_EQ(c.R(l).Propose("refused").status().code(), Code::kBusy);
  c.Drain(l);
  c.Deliver();
  EXPECT_EQ(c.R(to).role(), Role::kLeader);
  EXPECT_GT(c.R(to).term(), t);
  EXPECT_EQ(c.R(l).role(), Role::kFollower);
  EXPECT_EQ(c.R(l).TransferLeadership(MdsId(to)).code(), Code::kNotMaster);
}

TEST(Raft, RestartKeepsDurableStateAndReappliesCommitted) {
  Cluster c({1});
  uint64_t l = c.ElectOne();
  ASSERT_EQ(l, 1u);
  c.MustPropose(1, "a");
  c.MustPropose(1, "b");
  Storage st = c.nodes[1].st;
  st.applied = LogIndex(0);
  Term t = c.R(1).term();
  c.nodes.erase(1);
  c.Add(1, st);
  ASSERT_EQ(c.ElectOne(), 1u);
  EXPECT_GT(c.R(1).term(), t);
  EXPECT_TRUE(HasData(c.nodes[1].applied, "a"));
  EXPECT_TRUE(HasData(c.nodes[1].applied, "b"));
}

TEST(Raft, ProposalLimits) {
  Cluster c({1});
  ASSERT_EQ(c.ElectOne(), 1u);
  EXPECT_EQ(c.R(1).Propose(std::string(kMaxEntryBytes + 1, 'x')).status().code(), Code::kTooBig);
  c.nodes[1].manual = true;
  uint64_t ok = 0;
  for (uint64_t k = 0; k < kMaxUncommittedEntries + 10; ++k) ok += c.R(1).Propose("p").ok();
  EXPECT_EQ(ok, kMaxUncommittedEntries);
  c.Drain(1);
}

TEST(Raft, PipelineIsBounded) {
  Cluster c({1, 2});
  uint64_t l = c.ElectOne();
  ASSERT_NE(l, 0u);
  c.Tick(2);
  uint64_t f = l == 1 ? 2 : 1;
  c.Isolate(f);  // every append to the follower is lost, none acknowledged
  int before = c.sent_appends[f];
  for (size_t k = 0; k < 3 * kMaxInflightAppends; ++k) {
    c.MustPropose(l, "p");
    c.Deliver();
  }
  EXPECT_EQ(c.sent_appends[f] - before, static_cast<int>(kMaxInflightAppends));
  // Unanswered for kReplicateStallHeartbeats heartbeats: back to probing, one at a time,
  // with the backlog batched into one message.
  c.Heal();
  c.Tick(kReplicateStallHeartbeats + 2);
  EXPECT_EQ(c.R(f).last_index(), c.R(l).last_index());
  EXPECT_EQ(c.R(f).commit(), c.R(l).commit());
}

}  // namespace
}  // namespace vstorage::consensus
