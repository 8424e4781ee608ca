// The Raft consensus core (issue 12, docs/design/consensus.md): a pure state machine in
// etcd-raft's shape. Inputs are messages (Step), clock ticks (Tick), proposals, membership
// changes, leadership-transfer requests and persistence completions; outputs are collected in
// a Ready the caller drains (messages to send, hard state and entries to persist, a snapshot
// to install, committed entries to apply, a role-change notice). No sockets, no clocks, no
// threads, no files: the caller does all I/O. Randomness (election-timeout jitter) comes from
// an injected RandomSource, so a seeded run is reproducible bit for bit.
//
// Features: leader election with pre-vote and check-quorum (a node that heard from a leader
// within the election timeout ignores vote requests, so a partitioned node cannot disrupt a
// stable leader); log replication with pipelining (at most kMaxInflightAppends unacknowledged
// appends per follower) and batching (at most kMaxAppendBytes of entries per message);
// conflict resolution with fast backtracking (a rejection carries a hint index and term);
// commitment of current-term entries only by counting (Raft §5.4.2); snapshots to followers
// that lag behind the leader's compacted log, in chunks of kMaxSnapshotChunkBytes;
// single-server membership changes (one voter added or removed at a time; a configuration
// entry takes effect on every node as soon as it is appended); leadership transfer
// (TimeoutNow). A one-voter group commits on its own durability.
//
// THE CALLER'S CONTRACT (what makes it safe):
//  1. After every input, drain Ready() while HasReady(). Process each Ready in this order:
//     install `snapshot` (it replaces the whole log), save `hard_state`, remove the entries
//     >= `truncate_from`, append `entries`. These writes must reach stable storage in the
//     order the Readys were handed out. They may be asynchronous: when each becomes durable,
//     report it with OnSnapshotInstalled / OnHardStateDurable / OnEntriesDurable, in order.
//  2. Every message in a Ready may be sent at once. The core holds back, until the state they
//     vouch for is reported durable, the messages that need it: a vote (the vote and term
//     must be durable), an append acknowledgement (the entries it acknowledges), the answer to
//     an installed snapshot; and every message waits for the hard state (term, vote) current
//     when it was made. A leader counts its own log toward commitment only up to the index
//     reported durable, and committed entries are handed out only up to that index too.
//  3. Apply `committed` in order, each exactly once. After a restart, pass to Restore the
//     durable state (hard state, snapshot, entries after it) and the index the state machine
//     was rebuilt to; entries above it are handed out again once known to be committed.
//  4. Compaction is the caller's decision: SetSnapshot with an image of the applied state,
//     then Compact. The core keeps the log in memory from the compaction point on.
//
// THREAD-SAFETY: none. One Raft object is driven by one thread at a time (the MDS's Raft
// loop); it performs no I/O and never blocks. RandomSource is used from that thread only.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace vstorage::consensus {

// Limits (CONVENTIONS item 7).
inline constexpr size_t kMaxVoters = 9;                        // voters in one configuration
inline constexpr size_t kMaxInflightAppends = 64;              // unacknowledged appends per follower
inline constexpr size_t kMaxAppendBytes = 1u << 20;            // entry data in one append (>= 1 entry)
inline constexpr size_t kMaxEntryBytes = 16u << 20;            // data of one proposed entry
inline constexpr uint64_t kMaxUncommittedEntries = 4096;       // a leader's log beyond commit
inline constexpr size_t kMaxSnapshotChunkBytes = 256u << 10;   // snapshot bytes in one message
inline constexpr uint64_t kMaxSnapshotBytes = 4ull << 30;      // an image larger is refused
inline constexpr size_t kMaxCommittedBytesPerReady = 8u << 20; // entry data handed to apply at once
inline constexpr size_t kMaxMessagesHeld = 1u << 16;           // waiting for durability; beyond: dropped
// A follower in the pipelined state whose appends go unanswered for this many heartbeats goes
// back to probing (the messages were lost: the core has no transport errors to go by).
inline constexpr int kReplicateStallHeartbeats = 3;

// Injected randomness: Uniform(n) returns a value in [0, n). Not owned by the Raft object.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual uint64_t Uniform(uint64_t n) = 0;
};

// A seeded splitmix64 generator, for tests, the simulator and the daemon (seeded from its id).
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t Uniform(uint64_t n) override { return n ? Next() % n : 0; }

 private:
  uint64_t s_;
};

enum class EntryType : uint8_t {
  kNormal = 0,  // the caller's command (data), or empty: the leader's no-op of a new term
  kConfig = 1,  // a membership change: data = EncodeConfigChange
};

struct Entry {
  LogIndex index;
  Term term;
  EntryType type = EntryType::kNormal;
  std::string data;
  bool operator==(const Entry&) const = default;
};

enum class ConfigOp : uint8_t { kAddVoter = 1, kRemoveVoter = 2 };
struct ConfigChange {
  ConfigOp op = ConfigOp::kAddVoter;
  MdsId node;
};
std::string EncodeConfigChange(const ConfigChange& c);
Result<ConfigChange> DecodeConfigChange(const std::string& data);

// The voters, sorted, unique.
struct Config {
  std::vector<MdsId> voters;
  bool Contains(MdsId id) const;
  size_t Quorum() const { return voters.size() / 2 + 1; }
  bool operator==(const Config&) const = default;
};

struct SnapshotMeta {
  LogIndex index;  // last entry the image includes (0: none)
  Term term;       // its term
  Config config;   // the configuration as of index
  bool operator==(const SnapshotMeta&) const = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> image;  // never null once set; shared, not copied
};

struct HardState {
  Term term;
  MdsId vote;  // voted for in term (0: none)
  bool operator==(const HardState&) const = default;
};

enum class MsgType : uint8_t {
  kPreVote, kPreVoteResp, kVote, kVoteResp,
  kAppend, kAppendResp, kHeartbeat, kHeartbeatResp,
  kSnapshot, kSnapshotResp, kTimeoutNow,
};
const char* MsgTypeName(MsgType t);

// One message between group members. Fields used per type:
//   kPreVote/kVote      index, log_term: the candidate's last entry; force: leadership
//                       transfer (ignore leader leases). kPreVote's term is the candidate's + 1.
//   kPreVoteResp/kVoteResp  reject.
//   kAppend             index, log_term: the entry before `entries`; commit.
//   kAppendResp         !reject: index = highest index known to match (durable);
//                       reject: index = the rejected prev index, hint_index/hint_term: the
//                       follower's last entry at or before it with term <= log_term.
//   kHeartbeat          commit (at most the follower's known match).
//   kSnapshot           snapshot meta, snap_offset, snap_total, snap_data (one chunk).
//   kSnapshotResp       snapshot.index, snap_offset: bytes received so far (next expected).
struct Message {
  MsgType type = MsgType::kHeartbeat;
  MdsId from, to;
  Term term;
  LogIndex index;
  Term log_term;
  std::vector<Entry> entries;
  LogIndex commit;
  bool reject = false;
  LogIndex hint_index;
  Term hint_term;
  bool force = false;
  SnapshotMeta snapshot;
  uint64_t snap_offset = 0;
  uint64_t snap_total = 0;
  std::string snap_data;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

struct RoleNotice {
  Role role = Role::kFollower;
  Term term;
  MdsId leader;  // 0: unknown
};

// What the caller must do; see the contract above for the order.
struct Ready {
  std::optional<Snapshot> snapshot;        // install: replaces the log and the state machine
  std::optional<HardState> hard_state;     // save (report with its version)
  uint64_t hard_state_version = 0;
  std::optional<LogIndex> truncate_from;   // remove every entry >= this
  std::vector<Entry> entries;              // append (consecutive, after the truncation)
  std::vector<Entry> committed;            // apply, in order (durable and committed)
  std::vector<Message> messages;           // send
  std::optional<RoleNotice> role;          // role, term or leader changed
  bool Empty() const {
    return !snapshot && !hard_state && !truncate_from && entries.empty() && committed.empty() &&
           messages.empty() && !role;
  }
};

struct Options {
  MdsId id;
  int election_ticks = 10;   // a follower campaigns after [election, 2*election) silent ticks
  int heartbeat_ticks = 1;   // a leader's heartbeat period; < election_ticks
  bool pre_vote = true;
  bool check_quorum = true;  // a leader steps down without a quorum for election_ticks
  RandomSource* random = nullptr;  // required; not owned
  // Test-only switches that break one rule, so the simulator can show it catches them.
  bool test_commit_old_terms = false;   // commit any entry a quorum holds (breaks §5.4.2)
  bool test_skip_log_check = false;     // grant votes without the up-to-date check
  bool test_ack_before_durable = false; // acknowledge and count entries not yet durable
};

// The durable state a node starts from (after a restart, what its storage holds).
struct Storage {
  HardState hard_state;
  Snapshot snapshot;             // meta.index 0: none (image may be null then)
  std::vector<Entry> entries;    // consecutive, from snapshot.meta.index + 1
  LogIndex applied;              // the state machine's index (>= snapshot index, <= last entry)
  Config initial;                // the bootstrap configuration (used when the snapshot has none)
};

struct Proposal {
  LogIndex index;
  Term term;
};

class Raft {
 public:
  // Checks the options and storage (programmer errors abort).
  Raft(const Options& options, Storage storage);
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  // One tick of the caller's clock.
  void Tick();
  // A message from a peer (any order, duplicates and stale ones are fine).
  void Step(const Message& m);
  // The leader appends a command. kNotMaster on a non-leader, kBusy during a leadership
  // transfer or with kMaxUncommittedEntries beyond commit, kTooBig over kMaxEntryBytes.
  // The entry is committed when handed out in `committed` with this index and term.
  Result<Proposal> Propose(std::string data);
  // The leader adds or removes one voter. kBusy while an earlier change is uncommitted or
  // before the leader has committed an entry of its term; kInvalidArgument for a no-op change,
  // for removing the leader itself (transfer leadership first) or beyond kMaxVoters.
  Result<Proposal> ProposeConfigChange(const ConfigChange& c);
  // The leader hands leadership to a voter (TimeoutNow once it is up to date). Abandoned after
  // an election timeout. kNotMaster on a non-leader, kInvalidArgument for a non-voter.
  Status TransferLeadership(MdsId to);

  // Persistence completions (contract item 1), each for a write of an earlier Ready.
  void OnHardStateDurable(uint64_t version);
  // The entries up to index (the last of a write, with its term) are durable.
  void OnEntriesDurable(LogIndex index, Term term);
  void OnSnapshotInstalled(LogIndex index);

  // Compaction (contract item 4). SetSnapshot: an image of the state through meta.index
  // (<= applied); meta must be SnapshotMetaAt(meta.index). Compact drops entries <= upto
  // (upto <= the snapshot's index); the leader sends the snapshot to followers needing them.
  Result<SnapshotMeta> SnapshotMetaAt(LogIndex index) const;
  Status SetSnapshot(Snapshot s);
  Status Compact(LogIndex upto);

  bool HasReady() const;
  Ready TakeReady();

  // Observers (tests, the simulator's checkers, status pages).
  MdsId id() const { return opt_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  MdsId leader() const { return leader_; }
  LogIndex commit() const { return commit_; }
  LogIndex applied() const { return applied_; }
  LogIndex last_index() const { return LogIndex(base_index_.v + log_.size()); }
  LogIndex first_index() const { return LogIndex(base_index_.v + 1); }
  LogIndex stable_index() const { return stable_; }
  const Config& config() const { return config_; }
  // The term of an entry held (or of the compaction point); nullopt otherwise.
  std::optional<Term> TermAt(LogIndex i) const;
  const Entry* EntryAt(LogIndex i) const;
  const Snapshot& snapshot() const { return snapshot_; }

 private:
  enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };
  struct Progress {
    LogIndex match, next;
    ProgressState state = ProgressState::kProbe;
    bool probe_sent = false;           // probe: one append per heartbeat
    std::deque<LogIndex> inflight;     // replicate: last index of each unacked append
    bool recent_active = false;        // heard from since the last quorum check
    Snapshot sending;                  // snapshot state: the image being sent
    uint64_t snap_offset = 0;          // next chunk to send
    bool snap_chunk_sent = false;      // a chunk is outstanding (resent each heartbeat)
    int stall = 0;                     // heartbeats with appends in flight and no answer
  };
  struct Held {
    Message m;
    uint64_t need_hs = 0;             // hard state version that must be durable
    std::optional<LogIndex> need_log; // entries through this index durable (with need_term)
    Term need_term;
    bool need_snap = false;           // the pending snapshot installed
  };
  struct Incoming {  // a snapshot being received
    SnapshotMeta meta;
    uint64_t total = 0;
    std::string data;
  };

  void BecomeFollower(Term term, MdsId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Campaign(bool pre, bool force);
  void ResetTimers();
  bool InLease() const;
  void SetHardState(Term term, MdsId vote);
  void MaybeCountVotes();

  void Send(Message m);                       // held until the current hard state is durable
  void SendAfterLog(Message m, LogIndex index);  // also until entries through index are durable
  void ReleaseHeld();

  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleVoteResponse(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleSnapshotResponse(const Message& m);

  void SendAppend(MdsId to, Progress& p, bool allow_empty);
  void SendSnapshotChunk(MdsId to, Progress& p);
  void BroadcastAppends(bool allow_empty);
  void BroadcastHeartbeats();
  void MaybeCommit();
  void AppendEntries(std::vector<Entry> entries);  // at last_index()+1, local
  void TruncateFrom(LogIndex i);
  void RecomputeConfig();
  void OnConfigChanged();
  bool IsUpToDate(LogIndex index, Term term) const;
  LogIndex FindConflictByTerm(LogIndex index, Term term) const;
  void NoteRole();

  Options opt_;
  // Durable-ish state (mirrors the caller's storage).
  Term term_;
  MdsId vote_;
  uint64_t hs_version_ = 0, hs_durable_ = 0, hs_emitted_ = 0;
  LogIndex base_index_;  // the entry before log_[0] (compaction point)
  Term base_term_;
  Config base_config_;   // configuration as of base_index_
  std::vector<Entry> log_;
  LogIndex stable_;      // entries through here are durable
  Snapshot snapshot_;    // the newest image, for lagging followers
  std::optional<Snapshot> install_;  // to hand out in the next Ready
  std::optional<LogIndex> installing_;  // handed out, not yet reported installed
  LogIndex write_from_, written_;  // entries >= write_from_ not yet handed out; written_: last handed
  bool truncated_ = false;
  Config config_;
  LogIndex pending_config_;  // last config entry index in the log (0: none)

  // Volatile state.
  Role role_ = Role::kFollower;
  MdsId leader_;
  LogIndex commit_, applied_;
  int election_elapsed_ = 0, heartbeat_elapsed_ = 0, randomized_timeout_ = 0;
  std::map<MdsId, bool> votes_;  // responses of this campaign
  uint64_t campaign_hs_ = 0;     // the self vote counts once this version is durable
  bool campaign_pre_ = false, campaign_force_ = false;
  std::map<MdsId, Progress> progress_;  // leader: every voter but itself
  LogIndex leader_start_;  // leader: index of its term's first entry (the no-op)
  std::optional<MdsId> transfer_to_;
  int transfer_elapsed_ = 0;
  std::optional<Incoming> incoming_;
  std::vector<Held> held_;
  std::vector<Message> out_;
  bool role_dirty_ = false;
  bool appends_dirty_ = false;  // leader: new entries to send at TakeReady
  bool commit_dirty_ = false;   // leader: commit advanced, tell the followers at TakeReady
};

}  // namespace vstorage::consensus
