#include "consensus/raft.h"

#include <algorithm>

namespace vstorage::consensus {

namespace {
constexpr uint32_t kConfigChangeMagic = 0x56534343;  // "VSCC": a versioned encoding
constexpr uint8_t kConfigChangeFormat = 1;

void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetU64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

Config Apply(Config c, const ConfigChange& ch) {
  auto it = std::lower_bound(c.voters.begin(), c.voters.end(), ch.node);
  bool has = it != c.voters.end() && *it == ch.node;
  if (ch.op == ConfigOp::kAddVoter && !has) c.voters.insert(it, ch.node);
  if (ch.op == ConfigOp::kRemoveVoter && has) c.voters.erase(it);
  return c;
}

size_t EntryBytes(const Entry& e) { return e.data.size(); }
}  // namespace

std::string EncodeConfigChange(const ConfigChange& c) {
  std::string s;
  PutU64(&s, kConfigChangeMagic);
  s.push_back(static_cast<char>(kConfigChangeFormat));
  s.push_back(static_cast<char>(c.op));
  PutU64(&s, c.node.v);
  return s;
}

Result<ConfigChange> DecodeConfigChange(const std::string& data) {
  if (data.size() != 18 || GetU64(data, 0) != kConfigChangeMagic ||
      static_cast<uint8_t>(data[8]) != kConfigChangeFormat) {
    return Err(Code::kCorrupt, "config change: bad header");
  }
  auto op = static_cast<ConfigOp>(static_cast<uint8_t>(data[9]));
  if (op != ConfigOp::kAddVoter && op != ConfigOp::kRemoveVoter) return Err(Code::kCorrupt, "config change: bad op");
  ConfigChange c{op, MdsId(GetU64(data, 10))};
  if (c.node.v == 0) return Err(Code::kCorrupt, "config change: node 0");
  return c;
}

bool Config::Contains(MdsId id) const { return std::binary_search(voters.begin(), voters.end(), id); }

const char* MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kPreVote: return "PreVote";
    case MsgType::kPreVoteResp: return "PreVoteResp";
    case MsgType::kVote: return "Vote";
    case MsgType::kVoteResp: return "VoteResp";
    case MsgType::kAppend: return "Append";
    case MsgType::kAppendResp: return "AppendResp";
    case MsgType::kHeartbeat: return "Heartbeat";
    case MsgType::kHeartbeatResp: return "HeartbeatResp";
    case MsgType::kSnapshot: return "Snapshot";
    case MsgType::kSnapshotResp: return "SnapshotResp";
    case MsgType::kTimeoutNow: return "TimeoutNow";
  }
  return "?";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

Raft::Raft(const Options& options, Storage storage) : opt_(options) {
  VS_CHECK(opt_.id.v != 0);
  VS_CHECK(opt_.random != nullptr);
  VS_CHECK(opt_.heartbeat_ticks >= 1 && opt_.heartbeat_ticks < opt_.election_ticks);
  term_ = storage.hard_state.term;
  vote_ = storage.hard_state.vote;
  snapshot_ = std::move(storage.snapshot);
  base_index_ = snapshot_.meta.index;
  base_term_ = snapshot_.meta.term;
  VS_CHECK(base_index_.v == 0 || snapshot_.image != nullptr);
  base_config_ = base_index_.v ? snapshot_.meta.config : storage.initial;
  std::sort(base_config_.voters.begin(), base_config_.voters.end());
  VS_CHECK(base_config_.voters.size() <= kMaxVoters);
  log_ = std::move(storage.entries);
  for (size_t k = 0; k < log_.size(); ++k) {
    VS_CHECK(log_[k].index.v == base_index_.v + 1 + k);
    VS_CHECK(log_[k].term >= (k ? log_[k - 1].term : base_term_));
    VS_CHECK(log_[k].term <= term_);
  }
  stable_ = written_ = last_index();
  write_from_ = LogIndex(last_index().v + 1);
  VS_CHECK(storage.applied >= base_index_ && storage.applied <= last_index());
  commit_ = applied_ = storage.applied;
  RecomputeConfig();
  ResetTimers();
  role_dirty_ = true;
}

// ---- log helpers ----

std::optional<Term> Raft::TermAt(LogIndex i) const {
  if (i == base_index_) return base_term_;
  if (i < base_index_ || i > last_index()) return std::nullopt;
  return log_[i.v - base_index_.v - 1].term;
}

const Entry* Raft::EntryAt(LogIndex i) const {
  if (i <= base_index_ || i > last_index()) return nullptr;
  return &log_[i.v - base_index_.v - 1];
}

bool Raft::IsUpToDate(LogIndex index, Term term) const {
  Term last_term = *TermAt(last_index());
  return term > last_term || (term == last_term && index >= last_index());
}

LogIndex Raft::FindConflictByTerm(LogIndex index, Term term) const {
  if (index > last_index()) index = last_index();
  while (index > base_index_ && *TermAt(index) > term) index = LogIndex(index.v - 1);
  return index;
}

void Raft::AppendEntries(std::vector<Entry> entries) {
  bool config = false;
  for (auto& e : entries) {
    VS_CHECK(e.index.v == last_index().v + 1);
    config |= e.type == EntryType::kConfig;
    log_.push_back(std::move(e));
  }
  if (config) RecomputeConfig();
}

void Raft::TruncateFrom(LogIndex i) {
  // Committed entries are never cut, unless a test switch broke a rule on purpose (then the
  // simulator has already reported the violation; carry on so it can).
  VS_CHECK(i > base_index_);
  VS_CHECK(i > commit_ || opt_.test_commit_old_terms || opt_.test_skip_log_check || opt_.test_ack_before_durable);
  if (i > last_index()) return;
  if (i <= commit_) commit_ = LogIndex(i.v - 1);
  bool config = pending_config_ >= i;
  log_.resize(i.v - base_index_.v - 1);
  write_from_ = std::min(write_from_, i);
  stable_ = std::min(stable_, LogIndex(i.v - 1));
  if (config) RecomputeConfig();
}

void Raft::RecomputeConfig() {
  Config c = base_config_;
  pending_config_ = LogIndex(0);
  for (const Entry& e : log_) {
    if (e.type != EntryType::kConfig) continue;
    auto ch = DecodeConfigChange(e.data);
    VS_CHECK(ch.ok());  // the leader encoded it; the log's checksums guard the bytes
    c = Apply(std::move(c), *ch);
    pending_config_ = e.index;
  }
  bool changed = !(c == config_);
  config_ = std::move(c);
  if (changed) OnConfigChanged();
}

void Raft::OnConfigChanged() {
  if (role_ != Role::kLeader) return;
  // A removed voter keeps its progress until the removal commits, so it gets the entry that
  // removes it and stops campaigning (DropRemovedProgress).
  for (MdsId v : config_.voters) {
    if (v == opt_.id || progress_.count(v)) continue;
    Progress p;
    p.next = LogIndex(last_index().v + 1);
    p.recent_active = true;
    progress_[v] = p;
  }
  if (transfer_to_ && !config_.Contains(*transfer_to_)) transfer_to_.reset();
  MaybeCommit();
  appends_dirty_ = true;
}

// ---- roles ----

void Raft::ResetTimers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  randomized_timeout_ = opt_.election_ticks + static_cast<int>(opt_.random->Uniform(opt_.election_ticks));
}

bool Raft::InLease() const { return leader_.v != 0 && election_elapsed_ < opt_.election_ticks; }

void Raft::SetHardState(Term term, MdsId vote) {
  if (term == term_ && vote == vote_) return;
  VS_CHECK(term >= term_);
  term_ = term;
  vote_ = vote;
  ++hs_version_;
}

void Raft::NoteRole() { role_dirty_ = true; }

void Raft::BecomeFollower(Term term, MdsId leader) {
  if (role_ != Role::kFollower || leader_ != leader || term != term_) NoteRole();
  if (term != term_) SetHardState(term, MdsId(0));
  role_ = Role::kFollower;
  leader_ = leader;
  progress_.clear();
  transfer_to_.reset();
  votes_.clear();
  ResetTimers();
}

void Raft::BecomePreCandidate() {
  role_ = Role::kPreCandidate;
  leader_ = MdsId(0);
  progress_.clear();
  ResetTimers();
  NoteRole();
}

void Raft::BecomeCandidate() {
  SetHardState(Term(term_.v + 1), opt_.id);
  role_ = Role::kCandidate;
  leader_ = MdsId(0);
  progress_.clear();
  ResetTimers();
  NoteRole();
}

void Raft::BecomeLeader() {
  role_ = Role::kLeader;
  leader_ = opt_.id;
  votes_.clear();
  progress_.clear();
  transfer_to_.reset();
  ResetTimers();
  NoteRole();
  for (MdsId v : config_.voters) {
    if (v == opt_.id) continue;
    Progress p;
    p.next = LogIndex(last_index().v + 1);
    p.recent_active = true;  // a grace period of one election timeout
    progress_[v] = p;
  }
  // The no-op lets the leader commit its predecessors' entries (§5.4.2) and learn commit.
  leader_start_ = LogIndex(last_index().v + 1);
  std::vector<Entry> noop(1);
  noop[0].index = leader_start_;
  noop[0].term = term_;
  AppendEntries(std::move(noop));
  appends_dirty_ = true;
  MaybeCommit();
}

void Raft::Campaign(bool pre, bool force) {
  if (!config_.Contains(opt_.id)) return;
  if (pre && opt_.pre_vote && !force) {
    BecomePreCandidate();
  } else {
    pre = false;
    BecomeCandidate();
  }
  votes_.clear();
  campaign_hs_ = hs_version_;
  campaign_pre_ = pre;
  campaign_force_ = force;
  for (MdsId v : config_.voters) {
    if (v == opt_.id) continue;
    Message m;
    m.type = pre ? MsgType::kPreVote : MsgType::kVote;
    m.to = v;
    m.term = pre ? Term(term_.v + 1) : term_;
    m.index = last_index();
    m.log_term = *TermAt(last_index());
    m.force = force;
    Send(std::move(m));
  }
  MaybeCountVotes();
}

void Raft::MaybeCountVotes() {
  if (role_ != Role::kPreCandidate && role_ != Role::kCandidate) return;
  size_t granted = 0, rejected = 0;
  // The candidate's own vote counts only once its (term, vote) is durable.
  if (config_.Contains(opt_.id) && hs_durable_ >= campaign_hs_) ++granted;
  for (auto& [id, yes] : votes_) {
    if (!config_.Contains(id)) continue;
    ++(yes ? granted : rejected);
  }
  size_t q = config_.Quorum();
  if (granted >= q) {
    if (role_ == Role::kPreCandidate) {
      Campaign(false, campaign_force_);
    } else {
      BecomeLeader();
    }
  } else if (rejected > config_.voters.size() - q) {
    BecomeFollower(term_, MdsId(0));
  }
}

// ---- ticks ----

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    if (transfer_to_ && ++transfer_elapsed_ >= opt_.election_ticks) transfer_to_.reset();
    if (election_elapsed_ >= opt_.election_ticks) {
      election_elapsed_ = 0;
      if (opt_.check_quorum) {
        size_t active = config_.Contains(opt_.id) ? 1 : 0;
        for (auto& [id, p] : progress_) {
          if (p.recent_active && config_.Contains(id)) ++active;
          p.recent_active = false;
        }
        if (active < config_.Quorum()) {
          BecomeFollower(term_, MdsId(0));
          return;
        }
      }
    }
    if (heartbeat_elapsed_ >= opt_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      BroadcastHeartbeats();
    }
    return;
  }
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_timeout_ && config_.Contains(opt_.id) && !install_ && !installing_) {
    Campaign(true, false);
  }
}

// ---- messages out ----

void Raft::Send(Message m) {
  m.from = opt_.id;
  if (hs_durable_ >= hs_version_) {
    out_.push_back(std::move(m));
    return;
  }
  if (held_.size() >= kMaxMessagesHeld) return;  // as if lost: every message may be
  Held h;
  h.m = std::move(m);
  h.need_hs = hs_version_;
  held_.push_back(std::move(h));
}

void Raft::SendAfterLog(Message m, LogIndex index) {
  m.from = opt_.id;
  bool snap = install_.has_value() || installing_.has_value();
  if (!snap && hs_durable_ >= hs_version_ && (stable_ >= index || opt_.test_ack_before_durable)) {
    out_.push_back(std::move(m));
    return;
  }
  if (held_.size() >= kMaxMessagesHeld) return;
  Held h;
  h.m = std::move(m);
  h.need_hs = hs_version_;
  h.need_log = index;
  h.need_term = TermAt(index).value_or(Term(0));
  h.need_snap = snap;
  held_.push_back(std::move(h));
}

void Raft::ReleaseHeld() {
  bool snap = install_.has_value() || installing_.has_value();
  size_t keep = 0;
  for (size_t k = 0; k < held_.size(); ++k) {
    Held& h = held_[k];
    bool ready = h.need_hs <= hs_durable_ && (!h.need_snap || !snap) &&
                 (!h.need_log || stable_ >= *h.need_log || opt_.test_ack_before_durable);
    if (!ready) {
      if (keep != k) held_[keep] = std::move(h);
      ++keep;
      continue;
    }
    // The log was cut below what this acknowledgement vouches for: it no longer holds.
    if (h.need_log && TermAt(*h.need_log) != h.need_term) continue;
    out_.push_back(std::move(h.m));
  }
  held_.resize(keep);
}

void Raft::SendAppend(MdsId to, Progress& p, bool allow_empty) {
  if (p.state == ProgressState::kSnapshot) {
    if (!p.snap_chunk_sent) SendSnapshotChunk(to, p);
    return;
  }
  if (p.state == ProgressState::kProbe && p.probe_sent) return;
  if (p.state == ProgressState::kReplicate && p.inflight.size() >= kMaxInflightAppends) return;
  LogIndex prev(p.next.v - 1);
  auto prev_term = TermAt(prev);
  if (!prev_term) {
    // Compacted away: the follower needs the snapshot.
    VS_CHECK(snapshot_.meta.index >= base_index_ && snapshot_.image);
    p.state = ProgressState::kSnapshot;
    p.sending = snapshot_;
    p.snap_offset = 0;
    p.snap_chunk_sent = false;
    p.inflight.clear();
    SendSnapshotChunk(to, p);
    return;
  }
  Message m;
  m.type = MsgType::kAppend;
  m.to = to;
  m.term = term_;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = commit_;
  size_t bytes = 0;
  for (LogIndex i = p.next; i <= last_index(); i = LogIndex(i.v + 1)) {
    const Entry* e = EntryAt(i);
    if (!m.entries.empty() && bytes + EntryBytes(*e) > kMaxAppendBytes) break;
    bytes += EntryBytes(*e);
    m.entries.push_back(*e);
  }
  if (m.entries.empty() && !allow_empty && p.state == ProgressState::kReplicate) return;
  if (p.state == ProgressState::kReplicate) {
    if (!m.entries.empty()) {
      p.next = LogIndex(m.entries.back().index.v + 1);
      p.inflight.push_back(m.entries.back().index);
    }
  } else {
    p.probe_sent = true;
  }
  Send(std::move(m));
}

void Raft::SendSnapshotChunk(MdsId to, Progress& p) {
  const std::string& img = *p.sending.image;
  Message m;
  m.type = MsgType::kSnapshot;
  m.to = to;
  m.term = term_;
  m.snapshot = p.sending.meta;
  m.snap_offset = std::min<uint64_t>(p.snap_offset, img.size());
  m.snap_total = img.size();
  m.snap_data = img.substr(m.snap_offset, kMaxSnapshotChunkBytes);
  p.snap_chunk_sent = true;
  Send(std::move(m));
}

void Raft::BroadcastAppends(bool allow_empty) {
  for (auto& [id, p] : progress_) SendAppend(id, p, allow_empty);
}

void Raft::BroadcastHeartbeats() {
  for (auto& [id, p] : progress_) {
    Message m;
    m.type = MsgType::kHeartbeat;
    m.to = id;
    m.term = term_;
    m.commit = std::min(p.match, commit_);
    Send(std::move(m));
    if (p.state == ProgressState::kSnapshot) {
      p.snap_chunk_sent = false;  // resend the outstanding chunk: it or its answer was lost
      SendSnapshotChunk(id, p);
    } else if (p.state == ProgressState::kReplicate && !p.inflight.empty() &&
               ++p.stall >= kReplicateStallHeartbeats) {
      p.state = ProgressState::kProbe;
      p.next = LogIndex(p.match.v + 1);
      p.inflight.clear();
      p.probe_sent = false;
      p.stall = 0;
    }
  }
}

void Raft::MaybeCommit() {
  if (role_ != Role::kLeader) return;
  std::vector<LogIndex> match;
  for (MdsId v : config_.voters) {
    if (v == opt_.id) {
      match.push_back(opt_.test_ack_before_durable ? last_index() : stable_);
    } else {
      auto it = progress_.find(v);
      match.push_back(it == progress_.end() ? LogIndex(0) : it->second.match);
    }
  }
  if (match.empty()) return;
  std::sort(match.begin(), match.end(), std::greater<LogIndex>());
  LogIndex q = match[config_.Quorum() - 1];
  if (q <= commit_) return;
  // §5.4.2: only an entry of the leader's own term is committed by counting replicas.
  if (TermAt(q) != term_ && !opt_.test_commit_old_terms) return;
  commit_ = q;
  commit_dirty_ = true;
  if (commit_ >= pending_config_) {
    for (auto it = progress_.begin(); it != progress_.end();) {
      it = config_.Contains(it->first) ? std::next(it) : progress_.erase(it);
    }
  }
}

// ---- messages in ----

void Raft::Step(const Message& m) {
  if (m.from.v == 0 || m.from == opt_.id) return;
  bool vote_req = m.type == MsgType::kPreVote || m.type == MsgType::kVote;
  bool from_leader = m.type == MsgType::kAppend || m.type == MsgType::kHeartbeat || m.type == MsgType::kSnapshot;
  if (m.term > term_) {
    // A node that hears from a leader ignores would-be candidates (unless the leader itself
    // handed over): a partitioned node cannot depose a leader that still has a quorum.
    if (vote_req && opt_.check_quorum && InLease() && !m.force) return;
    if (m.type == MsgType::kPreVote || (m.type == MsgType::kPreVoteResp && !m.reject)) {
      // A pre-vote changes nobody's term.
    } else {
      BecomeFollower(m.term, from_leader ? m.from : MdsId(0));
    }
  } else if (m.term < term_) {
    if (from_leader) {
      // Tell a stale leader the term, so it steps down (it may have been partitioned away).
      Message r;
      r.type = MsgType::kAppendResp;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      r.index = LogIndex(0);
      Send(std::move(r));
    } else if (m.type == MsgType::kPreVote) {
      Message r;
      r.type = MsgType::kPreVoteResp;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      Send(std::move(r));
    }
    return;
  }

  switch (m.type) {
    case MsgType::kPreVote:
    case MsgType::kVote:
      HandleVoteRequest(m);
      return;
    case MsgType::kPreVoteResp:
    case MsgType::kVoteResp:
      HandleVoteResponse(m);
      return;
    case MsgType::kAppend:
    case MsgType::kHeartbeat:
    case MsgType::kSnapshot:
      if (role_ == Role::kLeader) return;  // another leader of this term cannot exist
      if (role_ != Role::kFollower) BecomeFollower(term_, m.from);
      if (leader_ != m.from) {
        leader_ = m.from;
        NoteRole();
      }
      election_elapsed_ = 0;
      if (m.type == MsgType::kAppend) HandleAppend(m);
      else if (m.type == MsgType::kHeartbeat) HandleHeartbeat(m);
      else HandleSnapshot(m);
      return;
    case MsgType::kAppendResp:
      HandleAppendResponse(m);
      return;
    case MsgType::kHeartbeatResp:
      if (role_ == Role::kLeader) {
        auto it = progress_.find(m.from);
        if (it == progress_.end()) return;
        Progress& p = it->second;
        p.recent_active = true;
        p.probe_sent = false;
        if (p.match < last_index()) SendAppend(m.from, p, false);
      }
      return;
    case MsgType::kSnapshotResp:
      HandleSnapshotResponse(m);
      return;
    case MsgType::kTimeoutNow:
      if (role_ != Role::kLeader && config_.Contains(opt_.id)) Campaign(false, true);
      return;
  }
}

void Raft::HandleVoteRequest(const Message& m) {
  bool pre = m.type == MsgType::kPreVote;
  bool can_vote = vote_ == m.from || (vote_.v == 0 && leader_.v == 0) || (pre && m.term > term_);
  bool up = opt_.test_skip_log_check || IsUpToDate(m.index, m.log_term);
  Message r;
  r.type = pre ? MsgType::kPreVoteResp : MsgType::kVoteResp;
  r.to = m.from;
  if (can_vote && up) {
    r.term = m.term;
    if (!pre) {
      SetHardState(term_, m.from);
      election_elapsed_ = 0;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  Send(std::move(r));  // a granted vote waits until it is durable
}

void Raft::HandleVoteResponse(const Message& m) {
  if (m.type == MsgType::kPreVoteResp) {
    if (role_ != Role::kPreCandidate) return;
    if (!m.reject && m.term.v != term_.v + 1) return;
  } else {
    if (role_ != Role::kCandidate || m.term != term_) return;
  }
  votes_[m.from] = !m.reject;
  MaybeCountVotes();
}

void Raft::HandleAppend(const Message& m) {
  Message r;
  r.type = MsgType::kAppendResp;
  r.to = m.from;
  r.term = term_;
  if (m.index < commit_) {
    r.index = commit_;
    SendAfterLog(std::move(r), commit_);
    return;
  }
  for (size_t k = 0; k < m.entries.size(); ++k) {
    if (m.entries[k].index.v != m.index.v + 1 + k) return;  // malformed: drop
  }
  auto t = TermAt(m.index);
  if (!t || *t != m.log_term) {
    r.reject = true;
    r.index = m.index;
    r.hint_index = FindConflictByTerm(std::min(m.index, last_index()), m.log_term);
    r.hint_term = TermAt(r.hint_index).value_or(Term(0));
    Send(std::move(r));
    return;
  }
  size_t k = 0;
  for (; k < m.entries.size(); ++k) {
    const Entry& e = m.entries[k];
    if (e.index > last_index()) break;
    if (*TermAt(e.index) != e.term) {
      TruncateFrom(e.index);
      break;
    }
  }
  if (k < m.entries.size()) AppendEntries(std::vector<Entry>(m.entries.begin() + k, m.entries.end()));
  LogIndex last_new(m.index.v + m.entries.size());
  commit_ = std::max(commit_, std::min(m.commit, last_new));
  r.index = last_new;
  SendAfterLog(std::move(r), last_new);
}

void Raft::HandleHeartbeat(const Message& m) {
  commit_ = std::max(commit_, std::min(m.commit, last_index()));
  Message r;
  r.type = MsgType::kHeartbeatResp;
  r.to = m.from;
  r.term = term_;
  Send(std::move(r));
}

void Raft::HandleSnapshot(const Message& m) {
  const SnapshotMeta& meta = m.snapshot;
  Message ack;
  ack.type = MsgType::kAppendResp;
  ack.to = m.from;
  ack.term = term_;
  if (meta.index <= commit_) {
    incoming_.reset();
    ack.index = commit_;
    SendAfterLog(std::move(ack), commit_);
    return;
  }
  if (m.snap_total > kMaxSnapshotBytes || m.snap_offset + m.snap_data.size() > m.snap_total) return;
  if (m.snap_offset == 0) incoming_ = Incoming{meta, m.snap_total, ""};
  Message r;
  r.type = MsgType::kSnapshotResp;
  r.to = m.from;
  r.term = term_;
  r.snapshot = meta;
  if (!incoming_ || !(incoming_->meta == meta) || incoming_->total != m.snap_total ||
      m.snap_offset != incoming_->data.size()) {
    r.snap_offset = incoming_ && incoming_->meta == meta ? incoming_->data.size() : 0;
    Send(std::move(r));
    return;
  }
  incoming_->data += m.snap_data;
  if (incoming_->data.size() < incoming_->total) {
    r.snap_offset = incoming_->data.size();
    Send(std::move(r));
    return;
  }
  // Complete. If the log already holds the snapshot's last entry, it matches up to there.
  if (TermAt(meta.index) == meta.term) {
    incoming_.reset();
    commit_ = meta.index;
    ack.index = meta.index;
    SendAfterLog(std::move(ack), meta.index);
    return;
  }
  Snapshot s{meta, std::make_shared<const std::string>(std::move(incoming_->data))};
  incoming_.reset();
  log_.clear();
  base_index_ = meta.index;
  base_term_ = meta.term;
  base_config_ = meta.config;
  commit_ = applied_ = stable_ = meta.index;
  write_from_ = LogIndex(meta.index.v + 1);
  written_ = meta.index;
  snapshot_ = s;
  install_ = s;
  RecomputeConfig();
  ack.index = meta.index;
  SendAfterLog(std::move(ack), meta.index);  // held until installed
}

void Raft::HandleAppendResponse(const Message& m) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& p = it->second;
  p.recent_active = true;
  if (m.reject) {
    if (p.state == ProgressState::kSnapshot || m.index <= p.match) return;  // stale
    if (p.state == ProgressState::kProbe && m.index.v + 1 != p.next.v) return;  // stale
    LogIndex probe = m.hint_term.v ? FindConflictByTerm(m.hint_index, m.hint_term) : m.hint_index;
    LogIndex next = std::max(std::min(m.index, LogIndex(probe.v + 1)), LogIndex(p.match.v + 1));
    p.state = ProgressState::kProbe;
    p.inflight.clear();
    p.next = next;
    p.probe_sent = false;
    p.stall = 0;
    SendAppend(m.from, p, true);
    return;
  }
  if (m.index > last_index()) return;  // cannot be: the follower's log matches ours
  bool advanced = m.index > p.match;
  if (advanced) {
    p.match = m.index;
    p.stall = 0;
  }
  while (!p.inflight.empty() && p.inflight.front() <= m.index) p.inflight.pop_front();
  if (p.state == ProgressState::kProbe ||
      (p.state == ProgressState::kSnapshot && p.match >= p.sending.meta.index)) {
    p.state = ProgressState::kReplicate;
    p.next = LogIndex(p.match.v + 1);
    p.inflight.clear();
    p.sending = Snapshot{};
  } else if (p.state == ProgressState::kReplicate && p.next <= p.match) {
    p.next = LogIndex(p.match.v + 1);
  }
  p.probe_sent = false;
  if (advanced) MaybeCommit();
  if (transfer_to_ == m.from && p.match == last_index()) {
    Message t;
    t.type = MsgType::kTimeoutNow;
    t.to = m.from;
    t.term = term_;
    Send(std::move(t));
  }
  SendAppend(m.from, p, false);
}

void Raft::HandleSnapshotResponse(const Message& m) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& p = it->second;
  p.recent_active = true;
  if (p.state != ProgressState::kSnapshot || !(m.snapshot == p.sending.meta)) return;
  p.snap_offset = m.snap_offset;
  p.snap_chunk_sent = false;
  p.stall = 0;
  if (p.snap_offset < p.sending.image->size()) SendSnapshotChunk(m.from, p);
}

// ---- caller requests ----

Result<Proposal> Raft::Propose(std::string data) {
  if (role_ != Role::kLeader) return Err(Code::kNotMaster, "not the leader");
  if (transfer_to_) return Err(Code::kBusy, "leadership transfer in progress");
  if (data.size() > kMaxEntryBytes) return Err(Code::kTooBig, "entry over kMaxEntryBytes");
  if (last_index().v - commit_.v >= kMaxUncommittedEntries) return Err(Code::kBusy, "too many uncommitted entries");
  std::vector<Entry> e(1);
  e[0].index = LogIndex(last_index().v + 1);
  e[0].term = term_;
  e[0].data = std::move(data);
  Proposal p{e[0].index, term_};
  AppendEntries(std::move(e));
  appends_dirty_ = true;
  return p;
}

Result<Proposal> Raft::ProposeConfigChange(const ConfigChange& c) {
  if (role_ != Role::kLeader) return Err(Code::kNotMaster, "not the leader");
  if (transfer_to_) return Err(Code::kBusy, "leadership transfer in progress");
  // One change at a time, and not before an entry of this term is committed: otherwise two
  // leaders' overlapping single-server changes could produce disjoint majorities.
  if (pending_config_ > commit_ || commit_ < leader_start_) return Err(Code::kBusy, "a configuration change is pending");
  if (c.node.v == 0) return Err(Code::kInvalidArgument, "node 0");
  bool has = config_.Contains(c.node);
  if (c.op == ConfigOp::kAddVoter) {
    if (has) return Err(Code::kInvalidArgument, "already a voter");
    if (config_.voters.size() >= kMaxVoters) return Err(Code::kInvalidArgument, "kMaxVoters reached");
  } else {
    if (!has) return Err(Code::kInvalidArgument, "not a voter");
    if (c.node == opt_.id) return Err(Code::kInvalidArgument, "transfer leadership before removing the leader");
  }
  if (last_index().v - commit_.v >= kMaxUncommittedEntries) return Err(Code::kBusy, "too many uncommitted entries");
  std::vector<Entry> e(1);
  e[0].index = LogIndex(last_index().v + 1);
  e[0].term = term_;
  e[0].type = EntryType::kConfig;
  e[0].data = EncodeConfigChange(c);
  Proposal p{e[0].index, term_};
  AppendEntries(std::move(e));  // takes effect now
  appends_dirty_ = true;
  return p;
}

Status Raft::TransferLeadership(MdsId to) {
  if (role_ != Role::kLeader) return Err(Code::kNotMaster, "not the leader");
  if (to == opt_.id || !config_.Contains(to)) return Err(Code::kInvalidArgument, "not another voter");
  transfer_to_ = to;
  transfer_elapsed_ = 0;
  Progress& p = progress_[to];
  if (p.match == last_index()) {
    Message t;
    t.type = MsgType::kTimeoutNow;
    t.to = to;
    t.term = term_;
    Send(std::move(t));
  } else {
    SendAppend(to, p, false);
  }
  return Status::Ok();
}

// ---- persistence completions ----

void Raft::OnHardStateDurable(uint64_t version) {
  VS_CHECK(version <= hs_version_);
  hs_durable_ = std::max(hs_durable_, version);
  MaybeCountVotes();
  ReleaseHeld();
}

void Raft::OnEntriesDurable(LogIndex index, Term term) {
  // A report for entries since cut off (a later Ready truncated them) does not count.
  if (index <= stable_ || TermAt(index) != term) return;
  stable_ = index;
  MaybeCommit();
  ReleaseHeld();
}

void Raft::OnSnapshotInstalled(LogIndex index) {
  if (installing_ && *installing_ <= index) installing_.reset();
  ReleaseHeld();
}

// ---- compaction ----

Result<SnapshotMeta> Raft::SnapshotMetaAt(LogIndex index) const {
  if (index < base_index_ || index > applied_) return Err(Code::kRange, "snapshot index outside [compacted, applied]");
  SnapshotMeta m;
  m.index = index;
  m.term = *TermAt(index);
  Config c = base_config_;
  for (LogIndex i(base_index_.v + 1); i <= index; i = LogIndex(i.v + 1)) {
    const Entry* e = EntryAt(i);
    if (e->type != EntryType::kConfig) continue;
    auto ch = DecodeConfigChange(e->data);
    VS_CHECK(ch.ok());
    c = Apply(std::move(c), *ch);
  }
  m.config = std::move(c);
  return m;
}

Status Raft::SetSnapshot(Snapshot s) {
  if (!s.image) return Err(Code::kInvalidArgument, "snapshot without an image");
  if (s.meta.index < snapshot_.meta.index) return Err(Code::kRange, "older than the current snapshot");
  ASSIGN_OR_RETURN(SnapshotMeta want, SnapshotMetaAt(s.meta.index));
  if (!(want == s.meta)) return Err(Code::kInvalidArgument, "snapshot meta differs from SnapshotMetaAt");
  snapshot_ = std::move(s);
  return Status::Ok();
}

Status Raft::Compact(LogIndex upto) {
  if (upto <= base_index_) return Status::Ok();
  if (upto > snapshot_.meta.index) return Err(Code::kRange, "compaction beyond the snapshot");
  if (upto > applied_ || upto > stable_) return Err(Code::kRange, "compaction beyond applied or durable");
  ASSIGN_OR_RETURN(SnapshotMeta m, SnapshotMetaAt(upto));
  log_.erase(log_.begin(), log_.begin() + (upto.v - base_index_.v));
  base_index_ = upto;
  base_term_ = m.term;
  base_config_ = m.config;
  return Status::Ok();
}

// ---- Ready ----

bool Raft::HasReady() const {
  if (install_ || hs_version_ > hs_emitted_ || write_from_ <= last_index() || write_from_ <= written_) return true;
  if (!out_.empty() || role_dirty_) return true;
  if (role_ == Role::kLeader && (appends_dirty_ || commit_dirty_)) return true;
  return !installing_ && applied_ < std::min(commit_, stable_);
}

Ready Raft::TakeReady() {
  Ready r;
  if (role_ == Role::kLeader && (appends_dirty_ || commit_dirty_)) {
    BroadcastAppends(commit_dirty_);
    appends_dirty_ = commit_dirty_ = false;
  }
  if (install_) {
    r.snapshot = std::move(*install_);
    installing_ = r.snapshot->meta.index;
    install_.reset();
  }
  if (hs_version_ > hs_emitted_) {
    r.hard_state = HardState{term_, vote_};
    r.hard_state_version = hs_version_;
    hs_emitted_ = hs_version_;
  }
  if (write_from_ <= written_) r.truncate_from = write_from_;
  for (LogIndex i = write_from_; i <= last_index(); i = LogIndex(i.v + 1)) r.entries.push_back(*EntryAt(i));
  written_ = last_index();
  write_from_ = LogIndex(last_index().v + 1);
  if (!installing_) {
    LogIndex upto = std::min(commit_, stable_);
    size_t bytes = 0;
    while (applied_ < upto) {
      const Entry* e = EntryAt(LogIndex(applied_.v + 1));
      if (!r.committed.empty() && bytes + EntryBytes(*e) > kMaxCommittedBytesPerReady) break;
      bytes += EntryBytes(*e);
      r.committed.push_back(*e);
      applied_ = e->index;
    }
  }
  ReleaseHeld();
  r.messages = std::move(out_);
  out_.clear();
  if (role_dirty_) {
    r.role = RoleNotice{role_, term_, leader_};
    role_dirty_ = false;
  }
  return r;
}

}  // namespace vstorage::consensus
