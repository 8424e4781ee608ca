#include "sim/raft_sim.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <unordered_map>
#include <vector>

#include "consensus/raft.h"
#include "sim/lin_check.h"

namespace vstorage::sim {
namespace {

using consensus::Entry;
using consensus::Message;
using consensus::MsgType;
using consensus::Raft;
using consensus::Ready;
using consensus::Role;
using consensus::SeededRandom;
using consensus::Snapshot;
using consensus::Storage;

// Bounds of the simulated world (CONVENTIONS item 7). Times in microseconds.
constexpr int64_t kUs = 1000;                 // per ms
constexpr int64_t kTickUs = 10 * kUs;         // nominal tick
constexpr double kMaxSkew = 0.3;              // a node's tick period is nominal * (1 +- this)
constexpr int kElectionTicks = 10;
constexpr int kHeartbeatTicks = 2;
constexpr int64_t kMinNetDelayUs = 200;
constexpr int64_t kMaxNetDelayUs = 12 * kUs;
constexpr int64_t kMaxSlowNetDelayUs = 80 * kUs;  // sometimes a message is very late
constexpr int64_t kMinDiskUs = 100;
constexpr int64_t kMaxDiskUs = 4 * kUs;
constexpr int64_t kMaxSlowDiskUs = 40 * kUs;  // a slow fsync now and then
constexpr uint64_t kSlowDiskPermille = 50;
constexpr uint64_t kDropPermille = 50;
constexpr uint64_t kDupPermille = 30;
constexpr uint64_t kSlowPermille = 20;
// A crash aimed at the window where a new (term, vote) is handed to the disk but not yet
// durable: where a vote sent too early would be forgotten (FoundationDB's BUGGIFY idea).
constexpr uint64_t kCrashAfterVotePermille = 80;
constexpr int64_t kProposeEveryUs = 4 * kUs;
constexpr int64_t kFaultEveryUs = 150 * kUs;   // mean time between fault events
constexpr int64_t kMaxDownUs = 900 * kUs;
constexpr int64_t kSnapshotEveryUs = 300 * kUs;
constexpr uint64_t kSnapshotMinEntries = 30;   // applied since the last snapshot
constexpr uint64_t kMaxKeepBehind = 8;         // entries kept before a snapshot
constexpr size_t kImagePadBytes = consensus::kMaxSnapshotChunkBytes + 1000;  // > one chunk
// The client workload.
constexpr uint32_t kSimClients = 4;
constexpr uint64_t kSimKeys = 3;                  // few keys: operations contend
constexpr int64_t kClientTimeoutUs = 150 * kUs;   // no answer: retry another node
constexpr int64_t kClientBackoffUs = 3 * kUs;     // after a redirect
constexpr int kMaxClientAttempts = 12;            // then the outcome stays unknown
constexpr int64_t kMaxClientThinkUs = 6 * kUs;    // between one answer and the next operation
constexpr size_t kMaxHistoryOps = 1u << 14;       // operations in one run's history
constexpr size_t kMaxWaitingPerNode = 256;        // requests a node will answer when applied
constexpr uint64_t kMaxCommandFieldBytes = 64;
constexpr int64_t kHealSettleMs = 1000;  // after the faults stop: every operation must complete

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}
uint64_t HashStr(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct Write {  // one Ready's storage writes
  std::optional<Snapshot> snapshot;
  std::optional<consensus::HardState> hs;
  uint64_t hs_version = 0;
  std::optional<LogIndex> truncate_from;
  std::vector<Entry> entries;
};

// ---- the replicated key-value state machine ----

struct Command {
  uint32_t client = 0;
  uint64_t seq = 0;
  OpKind kind = OpKind::kGet;
  std::string key, value, expected;
};

std::string EncodeCommand(const Command& c) {
  return "KV1|" + std::to_string(c.client) + "|" + std::to_string(c.seq) + "|" +
         std::to_string(static_cast<int>(c.kind)) + "|" + c.key + "|" + c.value + "|" + c.expected;
}
bool IsCommand(const std::string& data) { return data.compare(0, 4, "KV1|") == 0; }
std::optional<Command> DecodeCommand(const std::string& data) {
  std::vector<std::string> f;
  size_t pos = 4;
  while (f.size() < 5) {
    size_t bar = data.find('|', pos);
    if (bar == std::string::npos) return std::nullopt;
    f.push_back(data.substr(pos, bar - pos));
    pos = bar + 1;
  }
  f.push_back(data.substr(pos));
  for (const std::string& x : f) {
    if (x.size() > kMaxCommandFieldBytes) return std::nullopt;
  }
  Command c;
  c.client = static_cast<uint32_t>(std::strtoul(f[0].c_str(), nullptr, 10));
  c.seq = std::strtoull(f[1].c_str(), nullptr, 10);
  int kind = std::atoi(f[2].c_str());
  if (kind < 0 || kind > static_cast<int>(OpKind::kCas) || c.client == 0 || c.seq == 0) return std::nullopt;
  c.kind = static_cast<OpKind>(kind);
  c.key = f[3];
  c.value = f[4];
  c.expected = f[5];
  return c;
}

struct Reply {
  bool found = false;
  std::string observed;
  bool cas_ok = false;
};

// Each node's map, and per client the answer to its latest applied sequence number: a
// command retried through another node, or duplicated by the network, is applied once.
struct Kv {
  std::map<std::string, std::string> data;
  struct Last {
    uint64_t seq = 0;
    Reply reply;
  };
  std::map<uint32_t, Last> last;
};

// Applies a committed command; nullopt for a sequence number older than the client's latest
// (the client has moved on and waits for no answer). `dedup` false: the deliberate bug.
std::optional<Reply> ApplyCommand(Kv& kv, const Command& c, bool dedup) {
  Kv::Last& last = kv.last[c.client];
  if (dedup && c.seq < last.seq) return std::nullopt;
  if (dedup && c.seq == last.seq) return last.reply;
  Reply r;
  auto it = kv.data.find(c.key);
  switch (c.kind) {
    case OpKind::kPut:
      kv.data[c.key] = c.value;
      break;
    case OpKind::kGet:
      r.found = it != kv.data.end();
      if (r.found) r.observed = it->second;
      break;
    case OpKind::kCas:
      r.cas_ok = it != kv.data.end() && it->second == c.expected;
      if (r.cas_ok) it->second = c.value;
      break;
  }
  last.seq = c.seq;
  last.reply = r;
  return r;
}

void PutU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutStr(std::string& s, const std::string& v) {
  PutU64(s, v.size());
  s += v;
}
bool GetU64(const std::string& s, size_t* pos, uint64_t* v) {
  if (*pos > s.size() || s.size() - *pos < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>(s[*pos + i])) << (8 * i);
  *pos += 8;
  return true;
}
bool GetStr(const std::string& s, size_t* pos, std::string* v) {
  uint64_t n = 0;
  if (!GetU64(s, pos, &n) || n > kMaxCommandFieldBytes || s.size() - *pos < n) return false;
  *v = s.substr(*pos, n);
  *pos += n;
  return true;
}

std::string EncodeKv(const Kv& kv) {
  std::string s;
  PutU64(s, kv.data.size());
  for (const auto& [k, v] : kv.data) PutStr(s, k), PutStr(s, v);
  PutU64(s, kv.last.size());
  for (const auto& [c, l] : kv.last) {
    PutU64(s, c);
    PutU64(s, l.seq);
    PutU64(s, (l.reply.found ? 1 : 0) | (l.reply.cas_ok ? 2 : 0));
    PutStr(s, l.reply.observed);
  }
  return s;
}
bool DecodeKv(const std::string& s, size_t* pos, Kv* kv) {
  uint64_t n = 0;
  if (!GetU64(s, pos, &n) || n > kSimKeys) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetStr(s, pos, &k) || !GetStr(s, pos, &v)) return false;
    kv->data[k] = v;
  }
  if (!GetU64(s, pos, &n) || n > kSimClients) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t c = 0, flags = 0;
    Kv::Last l;
    if (!GetU64(s, pos, &c) || !GetU64(s, pos, &l.seq) || !GetU64(s, pos, &flags) ||
        !GetStr(s, pos, &l.reply.observed)) {
      return false;
    }
    l.reply.found = flags & 1;
    l.reply.cas_ok = flags & 2;
    kv->last[static_cast<uint32_t>(c)] = l;
  }
  return true;
}

struct Node {
  MdsId id;
  bool up = true;
  uint64_t inc = 0;  // incarnation: events of an earlier life are ignored
  int64_t tick_us = kTickUs;
  std::unique_ptr<SeededRandom> rnd;
  std::unique_ptr<Raft> raft;
  Storage disk;                   // what survives a crash
  std::deque<Write> pending;      // handed to the disk, not yet reported durable
  int64_t disk_free_us = 0;
  // The state machine: the index applied through and a hash chain of what was applied.
  LogIndex sm_index;
  uint64_t sm_hash = 0;
  Kv kv;
  std::set<std::pair<uint32_t, uint64_t>> waiting;  // (client, seq) to answer when applied
};

// A snapshot image: magic, applied index, hash chain, the key-value state, padding (so images
// span more than one chunk).
std::string EncodeImage(LogIndex index, uint64_t hash, const Kv& kv) {
  std::string s = "VSIMG002";
  PutU64(s, index.v);
  PutU64(s, hash);
  s += EncodeKv(kv);
  s.append(kImagePadBytes, static_cast<char>(hash & 0xff));
  return s;
}
bool DecodeImage(const std::string& s, LogIndex* index, uint64_t* hash, Kv* kv) {
  if (s.size() < 8 + kImagePadBytes || s.compare(0, 8, "VSIMG002") != 0) return false;
  size_t pos = 8;
  uint64_t a = 0, b = 0;
  if (!GetU64(s, &pos, &a) || !GetU64(s, &pos, &b)) return false;
  *kv = Kv();
  if (!DecodeKv(s, &pos, kv) || s.size() - pos != kImagePadBytes) return false;
  *index = LogIndex(a);
  *hash = b;
  return true;
}

class World {
 public:
  explicit World(const RaftSimOptions& o) : o_(o), rng_(o.seed * 0x2545f4914f6cdd1dull + 7) {
    for (int k = 1; k <= o_.nodes; ++k) config_.voters.push_back(MdsId(k));
    nodes_.resize(o_.nodes + 1);
    for (int k = 1; k <= o_.nodes; ++k) {
      Node& n = nodes_[k];
      n.id = MdsId(k);
      n.disk.initial = config_;
      Start(k);
    }
    blocked_.assign(o_.nodes + 1, std::vector<bool>(o_.nodes + 1, false));
  }

  RaftSimResult Run() {
    At(kProposeEveryUs, [this] { Propose(); });
    clients_.resize(kSimClients + 1);
    for (uint32_t c = 1; c <= kSimClients; ++c) {
      clients_[c].guess = 1 + static_cast<int>(Rand(o_.nodes));
      At(Between(kUs, 20 * kUs), [this, c] { ClientNext(c); });
    }
    At(kFaultEveryUs, [this] { Fault(); });
    for (int k = 1; k <= o_.nodes; ++k) At(k * 37 * kUs % kSnapshotEveryUs, [this, k] { MaybeSnapshot(k); });
    // Besides the random faults, the leader of the moment crashes once for sure.
    At(Between(o_.fault_ms * kUs / 4, o_.fault_ms * kUs / 2), [this] { CrashLeader(); });
    At(o_.fault_ms * kUs, [this] { Heal(); });
    int64_t end = (o_.fault_ms + o_.heal_ms) * kUs;
    while (!q_.empty() && r_.ok) {
      Ev e = q_.top();
      q_.pop();
      if (e.t > end) break;
      now_ = e.t;
      e.f();
    }
    if (r_.ok) CheckLiveness();
    if (r_.ok) CheckLinearizability();
    if (r_.ok) CheckClientLiveness();
    r_.trace_hash = trace_;
    return r_;
  }

 private:
  struct Ev {
    int64_t t;
    uint64_t seq;
    std::function<void()> f;
    bool operator<(const Ev& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  void At(int64_t t, std::function<void()> f) { q_.push(Ev{t, seq_++, std::move(f)}); }
  uint64_t Rand(uint64_t n) { return rng_.Uniform(n); }
  int64_t Between(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Rand(hi - lo + 1)); }

  void Trace(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    trace_ = Mix(Mix(Mix(Mix(trace_, static_cast<uint64_t>(now_)), a), b), c);
  }
  void Say(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!o_.verbose) return;
    std::printf("%9.3fms ", now_ / 1000.0);
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::printf("\n");
  }
  void Fail(const std::string& what) {
    if (!r_.ok) return;
    r_.ok = false;
    char buf[64];
    std::snprintf(buf, sizeof buf, "at %.3fms: ", now_ / 1000.0);
    r_.violation = buf + what;
    Say("VIOLATION %s", what.c_str());
  }

  // ---- nodes ----

  void Start(int k) {
    Node& n = nodes_[k];
    n.up = true;
    ++n.inc;
    n.pending.clear();
    n.disk_free_us = now_;
    double skew = (static_cast<double>(Rand(2001)) / 1000.0 - 1.0) * kMaxSkew;
    n.tick_us = static_cast<int64_t>(kTickUs * (1.0 + skew));
    n.rnd = std::make_unique<SeededRandom>(Mix(o_.seed, k * 1000003ull + n.inc));
    consensus::Options opt;
    opt.id = n.id;
    opt.election_ticks = kElectionTicks;
    opt.heartbeat_ticks = kHeartbeatTicks;
    opt.random = n.rnd.get();
    opt.test_skip_log_check = o_.break_vote_check;
    opt.test_commit_old_terms = o_.break_commit_rule;
    opt.test_ack_before_durable = o_.break_durability;
    Storage st = n.disk;
    st.applied = st.snapshot.meta.index;
    n.sm_index = st.snapshot.meta.index;
    n.sm_hash = 0;
    n.kv = Kv();
    n.waiting.clear();
    if (st.snapshot.meta.index.v) {
      LogIndex i;
      if (!DecodeImage(*st.snapshot.image, &i, &n.sm_hash, &n.kv) || i != st.snapshot.meta.index) {
        Fail("node " + n.id.str() + ": snapshot image does not decode");
      }
    }
    n.raft = std::make_unique<Raft>(opt, std::move(st));
    Say("node %llu starts (incarnation %llu, tick %lldus)", (unsigned long long)k, (unsigned long long)n.inc,
        (long long)n.tick_us);
    Trace(1, k, n.inc);
    uint64_t inc = n.inc;
    At(now_ + Between(1, n.tick_us), [this, k, inc] { TickNode(k, inc); });
    Drain(k);
  }

  void Crash(int k) {
    Node& n = nodes_[k];
    if (!n.up) return;
    // The disk may have made any prefix of the unreported writes durable.
    size_t survive = Rand(n.pending.size() + 1);
    for (size_t i = 0; i < survive; ++i) Persist(n, n.pending[i]);
    n.pending.clear();
    n.up = false;
    ++n.inc;
    n.raft.reset();
    ++r_.crashes;
    Say("node %d crashes (%zu unreported writes survive)", k, survive);
    Trace(2, k, survive);
  }

  void TickNode(int k, uint64_t inc) {
    Node& n = nodes_[k];
    if (!n.up || n.inc != inc) return;
    n.raft->Tick();
    Drain(k);
    At(now_ + n.tick_us, [this, k, inc] { TickNode(k, inc); });
  }

  void Persist(Node& n, const Write& w) {
    if (w.snapshot) {
      n.disk.snapshot = *w.snapshot;
      n.disk.entries.clear();
    }
    if (w.hs) n.disk.hard_state = *w.hs;
    auto& es = n.disk.entries;
    if (w.truncate_from) {
      while (!es.empty() && es.back().index >= *w.truncate_from) es.pop_back();
    }
    for (const Entry& e : w.entries) {
      LogIndex last = es.empty() ? n.disk.snapshot.meta.index : es.back().index;
      if (e.index.v != last.v + 1) {
        Fail("node " + n.id.str() + ": storage write not contiguous at " + e.index.str());
        return;
      }
      es.push_back(e);
    }
  }

  void DiskDone(int k, uint64_t inc) {
    Node& n = nodes_[k];
    if (!n.up || n.inc != inc || n.pending.empty()) return;
    Write w = std::move(n.pending.front());
    n.pending.pop_front();
    Persist(n, w);
    if (w.snapshot) n.raft->OnSnapshotInstalled(w.snapshot->meta.index);
    if (w.hs) n.raft->OnHardStateDurable(w.hs_version);
    if (!w.entries.empty()) n.raft->OnEntriesDurable(w.entries.back().index, w.entries.back().term);
    Trace(3, k, w.entries.size());
    Drain(k);
  }

  void Drain(int k) {
    Node& n = nodes_[k];
    while (r_.ok && n.up && n.raft->HasReady()) {
      Ready rd = n.raft->TakeReady();
      Raft& r = *n.raft;
      if (rd.role) OnRole(k, *rd.role);
      if (rd.snapshot) {
        LogIndex i;
        uint64_t h = 0;
        Kv kv;
        if (!DecodeImage(*rd.snapshot->image, &i, &h, &kv) || i != rd.snapshot->meta.index) {
          Fail("node " + n.id.str() + ": received image does not decode");
          return;
        }
        CheckChain(n, i, h, "installed snapshot");
        n.sm_index = i;
        n.sm_hash = h;
        n.kv = std::move(kv);
        Say("node %d installs snapshot %llu", k, (unsigned long long)i.v);
        Trace(4, k, i.v);
      }
      for (const Entry& e : rd.entries) CheckLogMatching(n, r, e);
      for (const Entry& e : rd.committed) Apply(k, e);
      for (Message& m : rd.messages) Send(std::move(m));
      if (rd.snapshot || rd.hard_state || rd.truncate_from || !rd.entries.empty()) {
        Write w;
        w.snapshot = std::move(rd.snapshot);
        w.hs = rd.hard_state;
        w.hs_version = rd.hard_state_version;
        w.truncate_from = rd.truncate_from;
        w.entries = std::move(rd.entries);
        bool vote = w.hs && w.hs->vote.v != 0;
        n.pending.push_back(std::move(w));
        int64_t d = Between(kMinDiskUs, kMaxDiskUs);
        if (Rand(1000) < kSlowDiskPermille) d = Between(kMaxDiskUs, kMaxSlowDiskUs);
        n.disk_free_us = std::max(n.disk_free_us, now_) + d;
        uint64_t inc = n.inc;
        At(n.disk_free_us, [this, k, inc] { DiskDone(k, inc); });
        if (vote && faulty_ && Rand(1000) < kCrashAfterVotePermille) {
          At(Between(now_, n.disk_free_us), [this, k, inc] {
            if (!nodes_[k].up || nodes_[k].inc != inc) return;
            Crash(k);
            At(now_ + Between(kUs, kMaxDownUs / 3), [this, k] {
              if (!nodes_[k].up) Start(k);
            });
          });
        }
      }
    }
  }

  // ---- checkers ----

  void OnRole(int k, const consensus::RoleNotice& rn) {
    Say("node %d is %s in term %llu (leader %llu)", k, consensus::RoleName(rn.role), (unsigned long long)rn.term.v,
        (unsigned long long)rn.leader.v);
    Trace(5, k, rn.term.v * 8 + static_cast<uint64_t>(rn.role));
    if (rn.role != Role::kLeader) return;
    ++r_.leaders;
    auto [it, fresh] = leader_of_term_.emplace(rn.term.v, k);
    if (!fresh && it->second != k) {
      Fail("election safety: nodes " + std::to_string(it->second) + " and " + std::to_string(k) +
           " both lead term " + rn.term.str());
      return;
    }
    // Leader completeness: everything applied anywhere is in the new leader's log.
    Raft& r = *nodes_[k].raft;
    for (uint64_t i = r.first_index().v; i < applied_.size(); ++i) {
      const Entry* e = r.EntryAt(LogIndex(i));
      if (!e || e->term.v != applied_[i].term || HashStr(e->data) != applied_[i].data) {
        Fail("leader completeness: node " + std::to_string(k) + " leads term " + rn.term.str() +
             " without committed entry " + std::to_string(i));
        return;
      }
    }
  }

  void CheckLogMatching(Node& n, Raft& r, const Entry& e) {
    auto prev = r.TermAt(LogIndex(e.index.v - 1));
    std::pair<uint64_t, uint64_t> key{e.index.v, e.term.v};
    Seen s{HashStr(e.data), prev ? prev->v : ~0ull};
    auto [it, fresh] = seen_.emplace(key, s);
    if (fresh) return;
    if (it->second.data != s.data ||
        (it->second.prev_term != s.prev_term && s.prev_term != ~0ull && it->second.prev_term != ~0ull)) {
      Fail("log matching: node " + n.id.str() + " holds a different entry " + e.index.str() + " of term " +
           e.term.str() + " (data " + std::to_string(it->second.data) + " vs " + std::to_string(s.data) +
           ", previous term " + std::to_string(it->second.prev_term) + " vs " + std::to_string(s.prev_term) + ")");
    }
  }

  void CheckChain(Node& n, LogIndex i, uint64_t h, const char* what) {
    if (i.v == 0) return;
    if (i.v >= chain_.size()) {
      Fail(std::string("state machine: node ") + n.id.str() + " " + what + " at " + i.str() +
           " beyond anything applied");
      return;
    }
    if (chain_[i.v] != h) Fail(std::string("state machine safety: node ") + n.id.str() + " " + what + " differs at " + i.str());
  }

  void Apply(int k, const Entry& e) {
    Node& n = nodes_[k];
    if (e.index.v != n.sm_index.v + 1) {
      Fail("node " + n.id.str() + " applies " + e.index.str() + " after " + n.sm_index.str());
      return;
    }
    n.sm_hash = Mix(Mix(Mix(n.sm_hash, e.index.v), e.term.v), HashStr(e.data));
    n.sm_index = e.index;
    if (e.index.v == chain_.size()) {
      chain_.push_back(n.sm_hash);
      applied_.push_back(Applied{e.term.v, HashStr(e.data)});
    } else if (e.index.v > chain_.size()) {
      Fail("node " + n.id.str() + " applies " + e.index.str() + " with a gap before it");
      return;
    } else if (chain_[e.index.v] != n.sm_hash) {
      Fail("state machine safety: node " + n.id.str() + " applies a different entry at " + e.index.str());
      return;
    }
    Trace(6, k, e.index.v);
    if (IsCommand(e.data)) {
      std::optional<Command> c = DecodeCommand(e.data);
      if (!c) {
        Fail("node " + n.id.str() + " applies an undecodable command at " + e.index.str());
        return;
      }
      std::optional<Reply> rep = ApplyCommand(n.kv, *c, !o_.break_dedup);
      if (rep && n.waiting.erase({c->client, c->seq})) ToClient(k, c->client, c->seq, 0, false, *rep);
      return;
    }
    auto it = proposed_.find(e.data);
    if (!e.data.empty() && it != proposed_.end() && it->second == e.index.v) {
      // The client sees its entry committed (the leader would answer it now).
      if (acked_.emplace(e.data, e.index.v).second) {
        ++r_.acked;
        max_acked_ = std::max(max_acked_, e.index.v);
      }
    }
  }

  void CheckLiveness() {
    int l = Leader();
    if (!l) {
      Fail("liveness: no leader after healing");
      return;
    }
    if (nodes_[l].raft->config().voters.size() != static_cast<size_t>(o_.nodes)) {
      Fail("liveness: removed nodes were not added back after healing");
      return;
    }
    for (int k = 1; k <= o_.nodes; ++k) {
      Node& n = nodes_[k];
      if (!n.up) continue;
      if (n.sm_index.v < max_acked_) {
        Fail("liveness: after healing, node " + n.id.str() + " applied only through " + n.sm_index.str() +
             " of " + std::to_string(max_acked_) + " (an acknowledged entry is missing)");
        return;
      }
      CheckChain(n, n.sm_index, n.sm_hash, "final state");
    }
    if (r_.acked == 0) Fail("liveness: nothing was ever committed");
  }

  // ---- network ----

  void Send(Message m) {
    ++r_.messages;
    int from = static_cast<int>(m.from.v), to = static_cast<int>(m.to.v);
    if (to < 1 || to > o_.nodes) return;
    if (m.type == MsgType::kSnapshot && m.snap_offset == 0) ++r_.snapshots_sent;
    if (faulty_ && Rand(1000) < kDropPermille) {
      ++r_.dropped;
      return;
    }
    int copies = faulty_ && Rand(1000) < kDupPermille ? 2 : 1;
    if (copies == 2) ++r_.duplicated;
    for (int c = 0; c < copies; ++c) {
      int64_t d = Between(kMinNetDelayUs, kMaxNetDelayUs);
      if (faulty_ && Rand(1000) < kSlowPermille) d = Between(kMaxNetDelayUs, kMaxSlowNetDelayUs);
      Trace(7, static_cast<uint64_t>(m.type) * 64 + from * 8 + to, m.index.v);
      At(now_ + d, [this, m, from, to] {
        if (blocked_[from][to] || !nodes_[to].up) {
          ++r_.dropped;
          return;
        }
        Trace(8, static_cast<uint64_t>(m.type) * 64 + from * 8 + to, m.term.v);
        nodes_[to].raft->Step(m);
        Drain(to);
      });
    }
  }

  // ---- clients ----

  // A message between a client and a node: lost, duplicated and delayed like the nodes'
  // messages while faults run, but never partitioned.
  void ClientNet(std::function<void()> deliver) {
    if (faulty_ && Rand(1000) < kDropPermille) return;
    int copies = faulty_ && Rand(1000) < kDupPermille ? 2 : 1;
    for (int i = 0; i < copies; ++i) At(now_ + Between(kMinNetDelayUs, kMaxNetDelayUs), deliver);
  }

  void ClientNext(uint32_t c) {
    Client& cl = clients_[c];
    cl.op = -1;
    if (now_ >= (o_.fault_ms + o_.heal_ms / 2) * kUs || history_.size() >= kMaxHistoryOps) return;
    LinOp op;
    op.client = c;
    op.seq = ++cl.seq;
    op.key = "k" + std::to_string(Rand(kSimKeys));
    uint64_t pick = Rand(10);
    op.kind = pick < 4 ? OpKind::kPut : pick < 8 ? OpKind::kGet : OpKind::kCas;
    if (op.kind != OpKind::kGet) op.value = "v" + std::to_string(c) + "." + std::to_string(op.seq);
    if (op.kind == OpKind::kCas) {
      auto it = cl.last_seen.find(op.key);
      op.expected = it != cl.last_seen.end() ? it->second : "none";
    }
    op.invoke_us = now_;
    cl.op = static_cast<int64_t>(history_.size());
    cl.attempts = 0;
    history_.push_back(op);
    ++r_.ops;
    Say("client %u invokes %s", c, DescribeOp(op).c_str());
    Trace(20, c, op.seq);
    ClientSend(c);
  }

  void ClientSend(uint32_t c) {
    Client& cl = clients_[c];
    if (cl.op < 0) return;
    const LinOp& op = history_[cl.op];
    if (++cl.attempts > kMaxClientAttempts) {
      Say("client %u gives up on #%llu: outcome unknown", c, (unsigned long long)op.seq);
      Trace(21, c, op.seq);
      cl.op = -1;
      At(now_ + Between(1, kMaxClientThinkUs), [this, c] { ClientNext(c); });
      return;
    }
    if (cl.attempts > 1) ++r_.client_retries;
    uint64_t token = ++cl.token;
    Command cmd{c, op.seq, op.kind, op.key, op.value, op.expected};
    int to = cl.guess;
    Trace(22, c * 16 + to, op.seq);
    ClientNet([this, to, cmd] { NodeRequest(to, cmd); });
    At(now_ + kClientTimeoutUs, [this, c, token] {
      Client& cl = clients_[c];
      if (cl.op < 0 || cl.token != token) return;
      cl.guess = OtherNode(cl.guess);
      ClientSend(c);
    });
  }

  int OtherNode(int k) { return 1 + static_cast<int>((k + Rand(o_.nodes - 1)) % o_.nodes); }

  // A node receives a client's request: it redirects unless it leads, and otherwise proposes
  // the command and answers once it applies it (Apply).
  void NodeRequest(int k, const Command& cmd) {
    Node& n = nodes_[k];
    if (!n.up) return;
    Raft& r = *n.raft;
    if (o_.break_stale_reads && cmd.kind == OpKind::kGet && r.role() == Role::kLeader) {
      Reply rep;
      auto it = n.kv.data.find(cmd.key);
      rep.found = it != n.kv.data.end();
      if (rep.found) rep.observed = it->second;
      ToClient(k, cmd.client, cmd.seq, 0, false, rep);
      return;
    }
    if (r.role() != Role::kLeader) {
      ToClient(k, cmd.client, cmd.seq, static_cast<int>(r.leader().v), true, Reply{});
      return;
    }
    auto p = r.Propose(EncodeCommand(cmd));
    if (!p.ok()) {  // busy (a transfer, too much uncommitted): try again shortly
      ToClient(k, cmd.client, cmd.seq, 0, true, Reply{});
      return;
    }
    if (n.waiting.size() >= kMaxWaitingPerNode) n.waiting.erase(n.waiting.begin());
    n.waiting.insert({cmd.client, cmd.seq});
    Trace(23, k, p->index.v);
    Drain(k);
  }

  // A node's answer: a result, or a redirect (to `hint`, 0: unknown).
  void ToClient(int k, uint32_t c, uint64_t seq, int hint, bool redirect, Reply rep) {
    ClientNet([this, k, c, seq, hint, redirect, rep] { ClientReceive(k, c, seq, hint, redirect, rep); });
  }

  void ClientReceive(int k, uint32_t c, uint64_t seq, int hint, bool redirect, const Reply& rep) {
    Client& cl = clients_[c];
    if (cl.op < 0 || history_[cl.op].seq != seq) return;  // an operation it no longer waits for
    if (redirect) {
      if (cl.guess != k) return;  // stale: it already moved on to another node
      cl.guess = hint >= 1 && hint <= o_.nodes && hint != k ? hint : OtherNode(k);
      ++cl.token;  // cancels the timeout
      At(now_ + kClientBackoffUs, [this, c] { ClientSend(c); });
      return;
    }
    LinOp& op = history_[cl.op];
    op.complete_us = now_;
    op.found = rep.found;
    op.observed = rep.observed;
    op.cas_ok = rep.cas_ok;
    if (op.kind == OpKind::kPut || (op.kind == OpKind::kCas && op.cas_ok)) cl.last_seen[op.key] = op.value;
    if (op.kind == OpKind::kGet && op.found) cl.last_seen[op.key] = op.observed;
    if (op.kind == OpKind::kCas && !op.cas_ok) cl.last_seen.erase(op.key);
    ++r_.ops_completed;
    Say("client %u completes %s (node %d)", c, DescribeOp(op).c_str(), k);
    Trace(24, c * 16 + k, seq);
    cl.op = -1;
    ++cl.token;
    At(now_ + Between(1, kMaxClientThinkUs), [this, c] { ClientNext(c); });
  }

  void CheckLinearizability() {
    r_.ops_unknown = r_.ops - r_.ops_completed;
    auto rep = CheckHistory(history_, o_.lin_max_states_per_key ? o_.lin_max_states_per_key : kMaxLinStatesPerKey);
    if (!rep.ok()) {
      Fail("linearizability checker: " + rep.status().ToString());
      return;
    }
    r_.lin_states = rep->states;
    r_.lin_inconclusive_keys = rep->inconclusive_keys;
    for (const KeyResult& k : rep->keys) {
      if (k.verdict != LinVerdict::kInconclusive) continue;
      r_.lin_note += (r_.lin_note.empty() ? "" : "; ") + std::string("key ") + k.key + " INCONCLUSIVE after " +
                     std::to_string(k.states) + " search states (" + std::to_string(k.ops) + " operations)";
    }
    const KeyResult* v = rep->FirstViolation();
    if (!v) return;
    std::string what = "linearizability (checked after the run): the history of key " + v->key + " (" + std::to_string(v->ops) +
                       " operations) is not linearizable; a non-linearizable subset of " +
                       std::to_string(v->minimal.size()) + ":";
    for (const LinOp& op : v->minimal) what += "\n      " + DescribeOp(op);
    Fail(what);
    r_.lin_violation = true;
  }

  // After the lin check, so a safety violation is the one reported.
  void CheckClientLiveness() {
    for (const LinOp& op : history_) {
      if (!op.completed() && op.invoke_us >= (o_.fault_ms + kHealSettleMs) * kUs) {
        Fail("liveness: a client operation invoked " + std::to_string(kHealSettleMs) +
             "ms after the faults stopped never completed: " + DescribeOp(op));
        return;
      }
    }
  }

  // ---- workload and faults ----

  int Leader() {
    int best = 0;
    for (int k = 1; k <= o_.nodes; ++k) {
      Node& n = nodes_[k];
      if (n.up && n.raft->role() == Role::kLeader &&
          (!best || n.raft->term() > nodes_[best].raft->term())) {
        best = k;
      }
    }
    return best;
  }

  void Propose() {
    if (now_ < (o_.fault_ms + o_.heal_ms / 2) * kUs) At(now_ + Between(1, 2 * kProposeEveryUs), [this] { Propose(); });
    int l = Leader();
    if (!l) return;
    std::string data = "c" + std::to_string(next_proposal_++);
    auto p = nodes_[l].raft->Propose(data);
    if (!p.ok()) return;
    ++r_.proposals;
    proposed_[data] = p->index.v;
    Trace(9, l, p->index.v);
    Drain(l);
  }

  void MaybeSnapshot(int k) {
    At(now_ + Between(kSnapshotEveryUs / 2, kSnapshotEveryUs * 3 / 2), [this, k] { MaybeSnapshot(k); });
    Node& n = nodes_[k];
    if (!n.up) return;
    Raft& r = *n.raft;
    if (r.applied().v < r.snapshot().meta.index.v + kSnapshotMinEntries) return;
    if (r.applied() != n.sm_index) {
      Fail("node " + n.id.str() + ": core applied index differs from the state machine's");
      return;
    }
    auto meta = r.SnapshotMetaAt(r.applied());
    if (!meta.ok()) {
      Fail("SnapshotMetaAt: " + meta.status().ToString());
      return;
    }
    Snapshot s{*meta, std::make_shared<const std::string>(EncodeImage(n.sm_index, n.sm_hash, n.kv))};
    Status st = r.SetSnapshot(s);
    uint64_t keep = Rand(kMaxKeepBehind + 1);
    LogIndex upto(meta->index.v > keep ? meta->index.v - keep : 0);
    if (st.ok()) st = r.Compact(upto);
    if (!st.ok()) {
      Fail("snapshot: " + st.ToString());
      return;
    }
    // The caller's storage keeps the snapshot and the entries after it (synchronously here:
    // every entry through it is already durable).
    n.disk.snapshot = s;
    auto& es = n.disk.entries;
    size_t drop = 0;
    while (drop < es.size() && es[drop].index <= meta->index) ++drop;
    es.erase(es.begin(), es.begin() + drop);
    Say("node %d snapshots at %llu, compacts to %llu", k, (unsigned long long)meta->index.v,
        (unsigned long long)upto.v);
    Trace(10, k, meta->index.v);
    Drain(k);
  }

  void Fault() {
    if (!faulty_) return;
    At(now_ + Between(kFaultEveryUs / 2, kFaultEveryUs * 3 / 2), [this] { Fault(); });
    int k = 1 + static_cast<int>(Rand(o_.nodes));
    switch (Rand(7)) {
      case 0: {  // crash, restart later
        if (!nodes_[k].up) return;
        Crash(k);
        At(now_ + Between(kUs, kMaxDownUs), [this, k] {
          if (!nodes_[k].up) Start(k);
        });
        return;
      }
      case 1: {  // a split: a random minority (or majority) on one side
        for (int a = 1; a <= o_.nodes; ++a) side_[a] = Rand(2);
        for (int a = 1; a <= o_.nodes; ++a) {
          for (int b = 1; b <= o_.nodes; ++b) blocked_[a][b] = side_[a] != side_[b];
        }
        Say("partition");
        Trace(11);
        return;
      }
      case 2: {  // one-way link cut
        int b = 1 + static_cast<int>(Rand(o_.nodes));
        if (b != k) blocked_[k][b] = true;
        Say("link %d->%d cut", k, b);
        Trace(12, k, b);
        return;
      }
      case 3: {  // heal the network
        for (auto& row : blocked_) row.assign(row.size(), false);
        Say("network healed");
        Trace(13);
        return;
      }
      case 4: {  // leadership transfer
        int l = Leader();
        if (!l || l == k) return;
        if (nodes_[l].raft->TransferLeadership(MdsId(k)).ok()) {
          ++r_.transfers;
          Say("node %d hands leadership to %d", l, k);
          Trace(14, l, k);
          Drain(l);
        }
        return;
      }
      case 5: {  // membership: remove a voter, or add back one that was removed
        int l = Leader();
        if (!l) return;
        Raft& r = *nodes_[l].raft;
        consensus::ConfigChange ch{consensus::ConfigOp::kAddVoter, MdsId(k)};
        if (r.config().Contains(MdsId(k))) {
          if (k == l || r.config().voters.size() <= 2) return;
          ch.op = consensus::ConfigOp::kRemoveVoter;
        }
        if (r.ProposeConfigChange(ch).ok()) {
          ++r_.config_changes;
          Say("node %d proposes %s %d", l, ch.op == consensus::ConfigOp::kAddVoter ? "add" : "remove", k);
          Trace(16, l, k * 2 + (ch.op == consensus::ConfigOp::kAddVoter));
          Drain(l);
        }
        return;
      }
      default:
        return;  // quiet
    }
  }

  void CrashLeader() {
    // Only while the faults last: a leader that appears only after them is left alone
    // (seed 50082 on 3 nodes crashed one after the faults stopped, and the liveness check
    // then blamed the clients' operations of the new election).
    if (!faulty_) return;
    int l = Leader();
    if (!l) {
      At(now_ + 10 * kUs, [this] { CrashLeader(); });
      return;
    }
    Crash(l);
    At(now_ + Between(kUs, kMaxDownUs), [this, l] {
      if (!nodes_[l].up) Start(l);
    });
  }

  // After the faults: the leader adds back every node that was removed.
  void Rejoin() {
    At(now_ + 20 * kUs, [this] { Rejoin(); });
    int l = Leader();
    if (!l) return;
    Raft& r = *nodes_[l].raft;
    for (int k = 1; k <= o_.nodes; ++k) {
      if (r.config().Contains(MdsId(k))) continue;
      if (r.ProposeConfigChange({consensus::ConfigOp::kAddVoter, MdsId(k)}).ok()) {
        Say("node %d proposes add %d", l, k);
        Trace(17, l, k);
        Drain(l);
      }
      return;
    }
  }

  void Heal() {
    faulty_ = false;
    for (auto& row : blocked_) row.assign(row.size(), false);
    for (int k = 1; k <= o_.nodes; ++k) {
      if (!nodes_[k].up) Start(k);
    }
    Say("faults stop");
    Trace(15);
    Rejoin();
  }

  struct Seen {
    uint64_t data, prev_term;
  };
  struct Client {
    uint64_t seq = 0;
    int guess = 1;       // the node it believes leads
    int attempts = 0;    // sends of the current operation
    uint64_t token = 0;  // the live timeout
    int64_t op = -1;     // its outstanding operation in history_ (-1: none)
    std::map<std::string, std::string> last_seen;  // a value to expect in a CAS
  };
  struct Applied {
    uint64_t term, data;
  };
  RaftSimOptions o_;
  SeededRandom rng_;
  consensus::Config config_;
  std::vector<Node> nodes_;
  std::vector<std::vector<bool>> blocked_;  // [from][to]
  std::map<int, uint64_t> side_;
  std::priority_queue<Ev> q_;
  uint64_t seq_ = 0;
  int64_t now_ = 0;
  bool faulty_ = true;
  uint64_t trace_ = 0;
  RaftSimResult r_;
  std::map<uint64_t, int> leader_of_term_;
  std::map<std::pair<uint64_t, uint64_t>, Seen> seen_;   // (index, term) -> entry, for log matching
  std::vector<uint64_t> chain_{0};            // hash chain of the applied prefix, by index
  std::vector<Applied> applied_{Applied{0, 0}};  // the entry applied at each index
  std::map<std::string, uint64_t> proposed_;  // data -> index it was proposed at
  std::map<std::string, uint64_t> acked_;
  uint64_t max_acked_ = 0;
  uint64_t next_proposal_ = 1;
  std::vector<Client> clients_;  // [1, kSimClients]
  std::vector<LinOp> history_;
};

}  // namespace

RaftSimResult RunRaftSim(const RaftSimOptions& options) {
  World w(options);
  return w.Run();
}

}  // namespace vstorage::sim
