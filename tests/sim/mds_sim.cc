#include "sim/mds_sim.h"

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <vector>

#include "env/env.h"
#include "mds/journal.h"
#include "mds/pipeline.h"
#include "mds/state.h"
#include "proto/codec.h"

namespace vstorage::sim {
namespace {

using mds::ApplyResult;
using mds::Command;
using mds::CommandType;

// Bounds of the simulated world (CONVENTIONS item 7).
constexpr int kNames = 24;                 // names in the root directory the clients share
constexpr int64_t kMaxNetDelayMs = 40;     // one way; a message is late by at most this
constexpr int64_t kRequestTimeoutMs = 200; // > 2 * kMaxNetDelayMs: nothing of a timed-out
                                           // request can still happen afterwards
constexpr double kDropProbability = 0.03;
constexpr int64_t kMeanUpMs = 1500;        // between MDS crashes
constexpr int64_t kMaxDownMs = 400;
constexpr int kReplicas = 3;

enum class Op { kCreate, kUnlink, kRename, kLookup, kBump };
const char* OpName(Op op) {
  switch (op) {
    case Op::kCreate: return "create";
    case Op::kUnlink: return "unlink";
    case Op::kRename: return "rename";
    case Op::kLookup: return "lookup";
    case Op::kBump: return "bump";
  }
  return "?";
}

struct Request {
  int client = 0;
  uint64_t id = 0;
  Op op = Op::kLookup;
  int name = 0, name2 = 0;
};

struct Reply {
  uint64_t id = 0;
  Code code = Code::kOk;
  uint64_t ino = 0;      // create, lookup, rename (of the file moved)
  uint64_t version = 0;  // bump: the new version; lookup: the chunk's (0: none)
};

// What the clients may assume about one name. Unknown after a request whose outcome they
// never learnt (an error, a lost reply); known again after a reply or an observation.
struct NameModel {
  enum State { kUnknown, kAbsent, kExists } state = kAbsent;
  uint64_t ino = 0;  // kExists: 0 when seen to exist without learning the inode (kExists reply)
};

std::string Name(int i) { return "f" + std::to_string(i); }

// The MDS: the real state machine, journal and pipeline on the simulated disk.
class SimMds {
 public:
  SimMds(env::SimEnv* env, bool bug) : env_(env), bug_(bug) {}

  Status Start() {
    ASSIGN_OR_RETURN(journal_, mds::Journal::Open(env_->env().fs, "/mds"));
    ASSIGN_OR_RETURN(state_, journal_->Recover());
    pipeline_ = std::make_unique<mds::CommitPipeline>(
        [this](const std::vector<Command>& batch) {
          std::vector<std::string> records;
          for (const auto& c : batch) records.push_back(proto::EncodeToString(c));
          return journal_->Append(records, 1);
        },
        [this](const std::vector<Command>& batch, std::vector<Result<ApplyResult>>* out) {
          for (const auto& c : batch) out->push_back(state_.Apply(c));
        },
        [this] { return env_->env().clock->WallNs(); });
    pipeline_->set_apply_before_durable_for_test(bug_);
    up_ = true;
    return Status::Ok();
  }

  // Power cut: the process and everything not yet on disk are gone.
  void Crash(env::Random* torn) {
    pipeline_.reset();
    journal_.reset();
    state_ = mds::MdsState();
    up_ = false;
    env_->mem().PowerCut(torn);
  }

  bool up() const { return up_; }
  const mds::MdsState& state() const { return state_; }
  // Every other command goes the way the service's namespace requests do (CommitAsync,
  // answered from its continuation, led by the proposing thread: LeadOrKick), so power
  // cuts and I/O faults are checked against both paths. Drain: the continuation has run
  // whichever thread led.
  Result<ApplyResult> Commit(CommandType type, std::string body) {
    if (!(async_next_ = !async_next_)) return pipeline_->Commit(type, std::move(body));
    std::optional<Result<ApplyResult>> got;
    pipeline_->CommitAsync(type, std::move(body), [&got](Result<ApplyResult> r) { got = std::move(r); },
                           /*defer_lead=*/true);
    pipeline_->LeadOrKick(/*only_if_fast=*/false);
    pipeline_->Drain();
    VS_CHECK(got.has_value());
    return std::move(*got);
  }
  template <typename T>
  Result<ApplyResult> Commit(CommandType type, const T& body) {
    return Commit(type, proto::EncodeToString(body));
  }

  // A fresh cluster's first commands: the chunk servers chunks are placed on.
  Status Setup() {
    for (int i = 0; i < kReplicas; ++i) {
      mds::CreateCsCmd c;
      c.host_id = "host" + std::to_string(i);
      auto r = Commit(CommandType::kCreateCs, c);
      if (!r.ok()) return r.status();
      cs_.push_back(r->cs);
    }
    return Status::Ok();
  }
  std::vector<CsId> Replicas() const {
    std::vector<CsId> v;
    for (const auto& c : state_.AllCs()) v.push_back(c.id);
    return v;
  }

  Reply Handle(const Request& q) {
    Reply p;
    p.id = q.id;
    auto fail = [&](const Status& st) {
      p.code = st.code();
      return p;
    };
    switch (q.op) {
      case Op::kCreate: {
        mds::CreateNodeCmd c;
        c.parent = kRootInode;
        c.name = Name(q.name);
        auto r = Commit(CommandType::kCreateNode, c);
        if (!r.ok()) return fail(r.status());
        p.ino = r->attr.ino.v;
        return p;
      }
      case Op::kUnlink: {
        mds::UnlinkCmd c;
        c.parent = kRootInode;
        c.name = Name(q.name);
        auto r = Commit(CommandType::kUnlink, c);
        if (!r.ok()) return fail(r.status());
        return p;
      }
      case Op::kRename: {
        auto from = state_.Lookup(kRootInode, Name(q.name));
        if (!from.ok()) return fail(from.status());
        mds::RenameCmd c;
        c.parent = kRootInode;
        c.name = Name(q.name);
        c.new_parent = kRootInode;
        c.new_name = Name(q.name2);
        auto r = Commit(CommandType::kRename, c);
        if (!r.ok()) return fail(r.status());
        p.ino = from->ino.v;
        return p;
      }
      case Op::kLookup: {
        auto a = state_.Lookup(kRootInode, Name(q.name));
        if (!a.ok()) return fail(a.status());
        p.ino = a->ino.v;
        auto ch = state_.GetChunk(a->ino, 0);
        p.version = ch ? ch->version : 0;
        return p;
      }
      case Op::kBump: {
        // A write that found a replica failed: the chunk moves to a new version (as
        // ReportFailure does), read-modify-write with compare-and-set.
        auto a = state_.Lookup(kRootInode, Name(q.name));
        if (!a.ok()) return fail(a.status());
        p.ino = a->ino.v;
        auto ch = state_.GetChunk(a->ino, 0);
        if (!ch) {
          mds::AllocChunkCmd c;
          c.ino = a->ino;
          c.index = 0;
          c.version = 1;
          c.replicas = Replicas();
          auto r = Commit(CommandType::kAllocChunk, c);
          if (!r.ok()) return fail(r.status());
          p.version = 1;
          return p;
        }
        mds::UpdateChunkCmd c;
        c.chunk = ch->id;
        c.version = ch->version + 1;
        c.replicas = ch->replicas;
        c.cas = true;
        c.expect_version = ch->version;
        c.expect_replicas = ch->replicas;
        auto r = Commit(CommandType::kUpdateChunk, c);
        if (!r.ok()) return fail(r.status());
        p.version = c.version;
        return p;
      }
    }
    return p;
  }

 private:
  env::SimEnv* env_;
  bool bug_;
  bool up_ = false;
  std::unique_ptr<mds::Journal> journal_;
  mds::MdsState state_;
  std::unique_ptr<mds::CommitPipeline> pipeline_;
  bool async_next_ = false;
  std::vector<CsId> cs_;
};

class World {
 public:
  explicit World(const SimOptions& o)
      : o_(o), env_(o.seed), rnd_(o.seed ^ 0x9e3779b97f4a7c15ull), torn_(o.seed + 17), mds_(&env_, o.apply_before_durable) {
    names_.resize(kNames);
    busy_.assign(kNames, false);
    clients_.resize(static_cast<size_t>(o.clients));
  }

  SimResult Run() {
    Status st = env_.env().fs->CreateDir("/mds");
    if (st.ok()) st = env_.env().fs->SyncDir("/");
    if (st.ok()) st = mds_.Start();
    if (st.ok()) st = mds_.Setup();
    if (!st.ok()) return Fail("setup: " + st.ToString());
    // Disk faults as a real disk has them: an append or a sync fails now and then.
    env::FaultRule rule;
    rule.path_prefix = "/mds/log/";
    rule.ops = env::OpBit(env::Op::kAppend) | env::OpBit(env::Op::kSync);
    rule.times = env::kForever;
    rule.probability = 0.02;
    rule.append_bytes_before_failing = 13;
    fault_ = env_.faults().AddFault(rule);
    for (int c = 0; c < o_.clients; ++c) At(static_cast<int64_t>(rnd_.Uniform(20)), [this, c] { NextOp(c); });
    At(Exp(kMeanUpMs), [this] { CrashMds(); });
    while (!events_.empty() && res_.ok) {
      Event e = events_.top();
      events_.pop();
      if (e.at_ms > o_.duration_ms) break;
      if (e.at_ms > now_ms_) {
        env_.clock().AdvanceMs(e.at_ms - now_ms_);
        now_ms_ = e.at_ms;
      }
      e.fn();
    }
    if (!res_.ok) return res_;
    // Faults stop; one last cut and restart, then everything known must be there.
    res_.io_errors = static_cast<uint64_t>(env_.faults().Injected(fault_));
    env_.faults().RemoveFault(fault_);
    if (mds_.up()) mds_.Crash(&torn_);
    ++res_.crashes;
    st = mds_.Start();
    if (!st.ok()) return Fail("final restart: " + st.ToString());
    CheckRecovered();
    return res_;
  }

 private:
  struct Event {
    int64_t at_ms;
    uint64_t seq;
    std::function<void()> fn;
    bool operator<(const Event& o) const { return at_ms != o.at_ms ? at_ms > o.at_ms : seq > o.seq; }
  };
  struct Client {
    uint64_t next_id = 1;
    uint64_t waiting = 0;  // request id in flight, 0 for none
    Request req;
  };

  void At(int64_t delay_ms, std::function<void()> fn) {
    events_.push(Event{now_ms_ + delay_ms, seq_++, std::move(fn)});
  }
  int64_t Exp(int64_t mean_ms) {
    // Geometric-ish, from integers only (bit-for-bit the same everywhere).
    return 1 + static_cast<int64_t>(rnd_.Uniform(static_cast<uint64_t>(2 * mean_ms)));
  }
  void Trace(const std::string& s) {
    std::string line = std::to_string(now_ms_) + " " + s;
    for (unsigned char ch : line) res_.trace_hash = (res_.trace_hash ^ ch) * 1099511628211ull;
    res_.trace_hash = (res_.trace_hash ^ '\n') * 1099511628211ull;
    if (o_.verbose) std::printf("  %s\n", line.c_str());
  }
  SimResult Fail(const std::string& why) {
    if (res_.ok) {
      res_.ok = false;
      res_.violation = "t=" + std::to_string(now_ms_) + "ms: " + why;
      Trace("VIOLATION " + why);
    }
    return res_;
  }
  bool Drop() {
    bool d = rnd_.Bernoulli(kDropProbability);
    if (d) ++res_.dropped;
    return d;
  }

  void NextOp(int c) {
    if (!res_.ok) return;
    Client& cl = clients_[static_cast<size_t>(c)];
    // Only one request in flight per name (two for a rename), so each reply tells the
    // model exactly what happened to it.
    std::vector<int> free;
    for (int i = 0; i < kNames; ++i)
      if (!busy_[static_cast<size_t>(i)]) free.push_back(i);
    if (free.size() < 2) {
      At(5, [this, c] { NextOp(c); });
      return;
    }
    Request q;
    q.client = c;
    q.id = cl.next_id++;
    uint64_t r = rnd_.Uniform(100);
    q.op = r < 30 ? Op::kCreate : r < 45 ? Op::kUnlink : r < 55 ? Op::kRename : r < 80 ? Op::kLookup : Op::kBump;
    q.name = free[rnd_.Uniform(free.size())];
    busy_[static_cast<size_t>(q.name)] = true;
    if (q.op == Op::kRename) {
      do q.name2 = free[rnd_.Uniform(free.size())];
      while (q.name2 == q.name);
      busy_[static_cast<size_t>(q.name2)] = true;
    }
    cl.waiting = q.id;
    cl.req = q;
    ++res_.requests;
    Trace("c" + std::to_string(c) + " sends " + OpName(q.op) + " " + Name(q.name) +
          (q.op == Op::kRename ? " " + Name(q.name2) : "") + " #" + std::to_string(q.id));
    if (!Drop()) At(1 + static_cast<int64_t>(rnd_.Uniform(kMaxNetDelayMs)), [this, q] { Deliver(q); });
    At(kRequestTimeoutMs, [this, c, id = q.id] { Timeout(c, id); });
  }

  void Deliver(const Request& q) {
    if (!mds_.up()) {
      Trace("mds down: drops #" + std::to_string(q.id));
      return;
    }
    Reply p = mds_.Handle(q);
    Trace("mds " + std::string(OpName(q.op)) + " #" + std::to_string(q.id) + " -> " + CodeName(p.code) +
          " ino " + std::to_string(p.ino) + " v" + std::to_string(p.version));
    if (!Drop()) At(1 + static_cast<int64_t>(rnd_.Uniform(kMaxNetDelayMs)), [this, c = q.client, p] { OnReply(c, p); });
  }

  void Finish(int c) {
    Client& cl = clients_[static_cast<size_t>(c)];
    busy_[static_cast<size_t>(cl.req.name)] = false;
    if (cl.req.op == Op::kRename) busy_[static_cast<size_t>(cl.req.name2)] = false;
    cl.waiting = 0;
    At(1 + static_cast<int64_t>(rnd_.Uniform(10)), [this, c] { NextOp(c); });
  }

  void Timeout(int c, uint64_t id) {
    Client& cl = clients_[static_cast<size_t>(c)];
    if (cl.waiting != id) return;
    Trace("c" + std::to_string(c) + " times out #" + std::to_string(id));
    Unknown(cl.req);
    Finish(c);
  }

  void Unknown(const Request& q) {
    if (q.op == Op::kLookup) return;
    if (q.op == Op::kBump) {
      bump_unknown_.insert(q.name);  // a bump may have happened: versions may have moved on
      return;
    }
    names_[static_cast<size_t>(q.name)].state = NameModel::kUnknown;
    if (q.op == Op::kRename) names_[static_cast<size_t>(q.name2)].state = NameModel::kUnknown;
  }

  // A client learnt that `name` holds ino (0: some file) or nothing; it must stay so.
  void Observe(int name, bool exists, uint64_t ino, const char* how) {
    NameModel& m = names_[static_cast<size_t>(name)];
    ++res_.observations;
    if (m.state == NameModel::kExists && !exists) {
      Fail(Name(name) + ": " + how + " finds no file, but a create (or what a client saw) said inode " +
           std::to_string(m.ino) + " is there: an acknowledged or observed change was lost");
      return;
    }
    if (m.state == NameModel::kExists && exists && m.ino && ino && m.ino != ino) {
      Fail(Name(name) + ": " + how + " finds inode " + std::to_string(ino) + " where inode " + std::to_string(m.ino) +
           " was acknowledged");
      return;
    }
    if (m.state == NameModel::kAbsent && exists) {
      Fail(Name(name) + ": " + how + " finds inode " + std::to_string(ino) +
           " after an acknowledged unlink/rename away (or an observed absence)");
      return;
    }
    // The inode is known only when this observation names it or a known one is confirmed.
    if (!exists) m.ino = 0;
    else if (ino) m.ino = ino;
    else if (m.state != NameModel::kExists) m.ino = 0;
    m.state = exists ? NameModel::kExists : NameModel::kAbsent;
  }

  void ObserveVersion(uint64_t ino, uint64_t version, bool bumped, const char* how) {
    if (ino == 0) return;
    uint64_t& seen = max_version_[ino];
    if (bumped ? version <= seen : version < seen) {
      Fail("inode " + std::to_string(ino) + ": " + how + " gives chunk version " + std::to_string(version) +
           " after version " + std::to_string(seen) + " was acknowledged or seen: a version went backwards");
      return;
    }
    seen = std::max(seen, version);
  }

  void OnReply(int c, const Reply& p) {
    Client& cl = clients_[static_cast<size_t>(c)];
    if (cl.waiting != p.id) return;  // after its timeout: ignored, as a real client does
    const Request& q = cl.req;
    Trace("c" + std::to_string(c) + " gets #" + std::to_string(p.id) + " " + CodeName(p.code));
    bool ok = p.code == Code::kOk;
    if (ok) ++res_.acked;
    switch (q.op) {
      case Op::kCreate:
        if (ok) names_[static_cast<size_t>(q.name)] = {NameModel::kExists, p.ino};
        else if (p.code == Code::kExists) Observe(q.name, true, 0, "create (EEXIST)");
        else Unknown(q);
        break;
      case Op::kUnlink:
        if (ok) names_[static_cast<size_t>(q.name)] = {NameModel::kAbsent, 0};
        else if (p.code == Code::kNotFound) Observe(q.name, false, 0, "unlink (ENOENT)");
        else Unknown(q);
        break;
      case Op::kRename:
        if (ok) {
          names_[static_cast<size_t>(q.name)] = {NameModel::kAbsent, 0};
          names_[static_cast<size_t>(q.name2)] = {NameModel::kExists, p.ino};
        } else if (p.code == Code::kNotFound) {
          Observe(q.name, false, 0, "rename (ENOENT)");
        } else {
          Unknown(q);
        }
        break;
      case Op::kLookup:
        if (ok) {
          Observe(q.name, true, p.ino, "lookup");
          if (res_.ok && !bump_unknown_.count(q.name)) ObserveVersion(p.ino, p.version, false, "lookup");
        } else if (p.code == Code::kNotFound) {
          Observe(q.name, false, 0, "lookup");
        }
        break;
      case Op::kBump:
        if (ok) {
          Observe(q.name, true, p.ino, "bump");
          if (res_.ok) ObserveVersion(p.ino, p.version, !bump_unknown_.count(q.name), "bump");
          bump_unknown_.erase(q.name);
        } else if (p.code == Code::kNotFound) {
          Observe(q.name, false, 0, "bump");
        } else {
          Unknown(q);
        }
        break;
    }
    Finish(c);
  }

  void CrashMds() {
    if (!res_.ok) return;
    Trace("mds crashes (power cut)");
    mds_.Crash(&torn_);
    ++res_.crashes;
    At(1 + static_cast<int64_t>(rnd_.Uniform(kMaxDownMs)), [this] { RestartMds(); });
  }

  void RestartMds() {
    Status st = mds_.Start();
    Trace("mds restarts: " + st.ToString());
    if (!st.ok()) {
      Fail("the MDS does not start after a power cut: " + st.ToString());
      return;
    }
    CheckRecovered();
    At(Exp(kMeanUpMs), [this] { CrashMds(); });
  }

  // The recovered state against everything acknowledged or observed.
  void CheckRecovered() {
    for (int i = 0; i < kNames && res_.ok; ++i) {
      if (busy_[static_cast<size_t>(i)]) continue;  // its request may still be answered
      auto a = mds_.state().Lookup(kRootInode, Name(i));
      Observe(i, a.ok(), a.ok() ? a->ino.v : 0, "the recovered state");
      if (a.ok() && res_.ok && !bump_unknown_.count(i)) {
        auto ch = mds_.state().GetChunk(a->ino, 0);
        ObserveVersion(a->ino.v, ch ? ch->version : 0, false, "the recovered state");
      }
    }
  }

  const SimOptions o_;
  env::SimEnv env_;
  env::SeededRandom rnd_, torn_;
  SimMds mds_;
  std::priority_queue<Event> events_;
  uint64_t seq_ = 0;
  int64_t now_ms_ = 0;
  int fault_ = 0;
  std::vector<NameModel> names_;
  std::vector<bool> busy_;
  std::set<int> bump_unknown_;
  std::map<uint64_t, uint64_t> max_version_;  // inode -> highest chunk version acknowledged/seen
  std::vector<Client> clients_;
  SimResult res_;
};

}  // namespace

SimResult RunMdsSim(const SimOptions& options) {
  World w(options);
  return w.Run();
}

}  // namespace vstorage::sim
