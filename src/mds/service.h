// The MDS service: the state machine and its journal behind RPC, plus the master's soft
// state (CS liveness and load, client sessions and leases) and its background duties.
//
// Threading: mu_ guards the state machine and the soft state; it is held only for memory
// work. Every mutation goes through the commit pipeline (mds/pipeline.h): the command is
// appended to the journal and fdatasync'ed with no lock held, then applied under mu_, and
// only then is the request answered, so everything acknowledged survives SIGKILL and what a
// read sees is durable (docs/design/mds.md). Functions that commit take the caller's
// unique_lock on mu_ and release it while the command is made durable: state read before a
// commit may have moved on after it (chunk updates say what they read: UpdateChunkCmd.cas).
// The namespace mutations do not wait at all (CommitThenReply: they propose under mu_ and
// are answered from a continuation once applied), and they and the plain reads run on the
// server's I/O thread (RunsInline), which therefore only ever waits for mu_, held for
// memory work in slices (kStatRecordsPerSlice), and for a fast journal sync it leads
// itself (CommitPipeline::LeadOrKick). Replies are written to sockets after mu_ is
// released; calls to chunk servers are made without it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/auth.h"
#include "common/config.h"
#include "common/io_meter.h"
#include "env/env.h"
#include "mds/invalidation.h"
#include "mds/journal.h"
#include "mds/leases.h"
#include "mds/metrics.h"
#include "mds/pipeline.h"
#include "mds/placement.h"
#include "mds/policy_chunk.h"
#include "mds/policy_recovery.h"
#include "mds/policy_scrub.h"
#include "mds/policy_watchdog.h"
#include "mds/state.h"
#include "rpc/client.h"
#include "rpc/server.h"

namespace vstorage::mds {

inline constexpr int kWatchdogIntervalMs = 1000;
inline constexpr uint64_t kSnapshotEveryRecords = 20000;
inline constexpr int64_t kRecoveryFullScanMs = 30000;  // an idle MDS rescans chunks this often

// Commands after which a chunk may need a copy or a trim (the recovery scan runs again).
constexpr bool MayNeedRecovery(CommandType t) {
  switch (t) {
    case CommandType::kAllocChunk: case CommandType::kUpdateChunk: case CommandType::kRemoveCsReplicas:
    case CommandType::kDropCs: case CommandType::kSetXattr: case CommandType::kSetCsReleasing:
    case CommandType::kCreateCs: case CommandType::kUpdateCs: case CommandType::kSetCsHost:
    case CommandType::kSetConfig: case CommandType::kSetConfigMany: case CommandType::kRename:
    case CommandType::kLink: case CommandType::kSetCsLocation:
      return true;
    default:
      return false;
  }
}
inline constexpr size_t kMaxPendingDeletes = 100000;
inline constexpr size_t kStatRecordsPerSlice = 16384;  // ClusterStat walks, per hold of mu_

// Counters of the commit pipeline and snapshots, for benchmarks and `stat`.
struct MdsStats {
  uint64_t commands = 0;         // commands made durable and applied
  uint64_t syncs = 0;            // journal fdatasyncs (one covers a batch of commands)
  uint64_t snapshots = 0;        // snapshots written since start
  bool snapshot_running = false;  // a snapshot is being written now
  uint64_t recovery_scans = 0;          // recovery passes that walked every chunk
  uint64_t recovery_scans_skipped = 0;  // passes skipped: nothing had changed since an idle one
};

// What a commit's continuation answers (MdsService::CommitThenReply): an error, or a body
// (none: Empty), and the chunks the command freed, to delete.
struct ReplyOutcome {
  Status st = Status::Ok();
  std::string body;
  bool has_body = false;
  std::vector<FreedChunk> freed;
};

struct MdsConfig {
  std::string repo;
  std::string cluster;
  MdsId id{1};
  HostPort addr;  // base address; clients and CS use port + 1
  // Prometheus metrics (mds/metrics.h): mds.conf `metrics=HOST:PORT`, default the base port
  // + 2 on the same address; `metrics=off`: none.
  std::optional<HostPort> metrics;
};
Result<MdsConfig> LoadMdsConfig(const std::string& repo);

class MdsService {
 public:
  // Serves the repository. Time and the journal's files come from env (not owned; must
  // outlive the service); without one the service uses a POSIX Env of its own. Sockets,
  // the repository lock and the background threads' waits are still real (issue 11).
  static Result<std::unique_ptr<MdsService>> Start(const std::string& repo, const env::Env* env = nullptr);
  ~MdsService();
  void Stop();
  int port() const { return server_.port(); }
  // Thread-safe.
  MdsStats Stats() const;

 private:
  struct CsSoft {
    int64_t last_seen_ms = 0;
    int64_t reported_failed_ms = 0;  // a client's write failed on it; no new replicas until it reports again
    bool registered = false;
    uint64_t total_bytes = 0, free_bytes = 0;
    uint32_t qdepth_x10 = 0;
    uint32_t iowait_pct = 0, lat_avg_ms = 0, lat_max_ms = 0;
    uint64_t io_errors = 0, csum_errors = 0;
    std::string status = "offline";
    std::string repo;          // its repository path, as the CS reports it
    bool checksums = true;     // flag C
    bool repo_lost = false;    // flag R: the repository vanished; treated as failed
    bool io_stuck = false;     // an I/O request has been pending over mds.wd.io_tout now
    uint64_t io_timeouts = 0;  // flag T: such episodes since the CS registered
    int64_t hard_error_event_ms = 0;
    ChunkId scrub_cursor;      // scrubbing walks the CS's chunks in id order
    int64_t next_scrub_ms = 0;
  };

  using Lock = std::unique_lock<std::mutex>;  // on mu_
  MdsService() = default;
  void Handle(rpc::ServerConn& c, rpc::Frame& req);
  // Requests Handle answers from a commit's continuation (CommitThenReply): no thread waits
  // for their sync.
  static bool CommitsAsync(proto::MsgType t);
  // Requests Handle may serve on the server's I/O thread (rpc::Server::InlineFilter): the
  // asynchronous commits while the pipeline has room, and reads that need only mu_.
  bool RunsInline(proto::MsgType t) const;
  using Outcome = ReplyOutcome;
  using Then = std::function<Outcome(Lock& l, Result<ApplyResult>& res)>;
  // Proposes a command and returns at once (never blocks: the caller made room, see
  // CommitsAsync). Once the command is durable and applied, then(l, res) runs under mu_ on
  // the pipeline's leading thread, and its Outcome is sent to the requester after mu_ is
  // released. Called with mu_ held, so nothing slips between what the caller checked and
  // the proposal's place in the log.
  void CommitThenReply(rpc::ServerConn c, const rpc::Frame& req, CommandType type, std::string body, Then then);
  // Commits one command (journal, then state) and returns Apply's result; the state is
  // unchanged when Apply fails. l (on mu_) is released while the command is made durable
  // and held again on return.
  Result<ApplyResult> Commit(Lock& l, CommandType type, std::string body);
  template <typename T>
  Result<ApplyResult> Commit(Lock& l, CommandType type, const T& body) {
    return Commit(l, type, proto::EncodeToString(body));
  }
  // Chunk update from what the caller read (c): applies only if c is still current.
  Result<ApplyResult> UpdateChunkFrom(Lock& l, const ChunkInfo& c, uint64_t version, std::vector<CsId> replicas);
  // Journals an event without waiting (may be called with mu_ held).
  void AddEvent(const std::string& sev, const std::string& msg, const std::string& sys = "MDS");

  Result<proto::ChunkMap> MapOf(InodeId ino, uint64_t index) const;
  Result<proto::GetChunkReply> GetChunk(Lock& l, const proto::GetChunkReq& r, const std::string& peer);
  Result<proto::GetChunkReply> ReportFailure(Lock& l, const proto::ReportCsFailureReq& r);
  Result<proto::CsRegisterReply> RegisterCs(Lock& l, const proto::CsRegisterReq& r);
  // `vstorage stat`. l (on mu_) is released between slices of kStatRecordsPerSlice records
  // of its walks over the inodes and chunks, and held again on return.
  proto::ClusterStatReply ClusterStat(Lock& l);
  std::string Metrics();  // RenderMetrics of ClusterStat(), for the metrics endpoint
  // Unlinked files whose openers are all gone (closed, expired, or never came back after an
  // MDS restart within the lease timeout) are freed. Under mu_.
  void FreeClosedOrphans(Lock& l, int64_t now);
  // set-config: every pair of r is checked, then all are applied as one command, or none.
  Status SetConfigMany(Lock& l, const proto::SetConfigManyReq& r, const std::string& peer);
  // gen.encryption (rpc/tls.h), told to clients and CS with every heartbeat.
  uint8_t Encryption() const { return state_.ConfigValue("gen.encryption") != 0 ? 1 : 0; }
  proto::FileInfoReply FileInfo(InodeId ino, Status* st);
  // Guide table 5.3.2.1, by ClassifyChunk (policy_chunk.h) over the chunk's view.
  std::string ChunkState(const ChunkInfo& c, uint32_t norm, uint32_t min) const;
  // Views for the policies (policy_*.h), under mu_.
  // A scan over many chunks takes the views of every CS once (AllReplicaViews) and passes
  // them in; a CS not among them gets its view made on the spot.
  using ReplicaViews = std::map<CsId, ReplicaView>;
  ReplicaView ReplicaViewOf(CsId cs, const ReplicaViews* all = nullptr) const;
  ReplicaViews AllReplicaViews() const;
  RecoveryChunkView RecoveryViewOf(const ChunkInfo& c, const FilePlacement& fp, uint64_t chunk_size_bytes,
                                   const ReplicaViews* all = nullptr) const;
  // A placement request for a file's chunks: its replicas, tier and failure domain, strict
  // or not as mds.alloc.strict_tier and mds.alloc.strict_failure_domain say. Under mu_.
  PlacementRequest RequestFor(const FilePlacement& fp) const;
  // The small id of a failure domain key at one level (ReplicaView::domains), from 1. Under mu_.
  uint32_t DomainId(FailureDomain d, const std::string& key) const;
  bool CsActive(CsId id) const;
  // Active and not being removed: its replicas count toward a chunk's normal number.
  bool CsCounts(CsId id) const;
  std::string CsAddr(CsId id) const;
  void QueueDeletes(const std::vector<FreedChunk>& freed);
  void Background();
  // The watchdog (policy_watchdog.h) over the CS soft state: statuses, events, and one
  // kRemoveCsReplicas per CS that went offline. l is released while that commits.
  void UpdateCsStatuses(Lock& l, int64_t now);
  std::vector<CsCandidate> Candidates() const;
  struct CsTally {
    uint32_t active = 0, inactive = 0, offline = 0;
  };
  std::string ClusterStatusLocked(int64_t now, CsTally* tally = nullptr) const;
  // Guide 5.6.1 events for changes of the cluster status and of space usage.
  void ClusterEvents(int64_t now);
  void HandleHeartbeat(const proto::CsHeartbeat& r, int64_t now, Status* st);
  Status RmCs(Lock& l, const proto::RmCsReq& r, const std::string& peer);
  // Drops one replica that is known bad (scrubbing found a checksum mismatch) and queues its
  // delete; recovery then rebuilds it. Never drops the last replica.
  void DropBadReplica(ChunkId id, uint64_t version, CsId cs, const std::string& why);
  // A replica found bad: out of the chunk's list (into *freed, to delete) unless it is the
  // last copy, which is kept and reported once.
  void DropBadReplicaLocked(Lock& l, const ChunkInfo& c, CsId cs, const std::string& what, const std::string& why,
                            std::vector<FreedChunk>* freed);
  // Commits a command that frees `ino` (unlink, rename over it, last close of an orphan)
  // while Open of that inode waits for it (an open must not slip between the decision
  // that nobody holds the file open and the free).
  Result<ApplyResult> CommitFreeing(Lock& l, InodeId ino, CommandType type, std::string body);
  // Scrubbing (guide 7.6.5): mds.wd.verify_chunks chunks per minute per CS, as
  // ScheduleScrub (policy_scrub.h) picks them; a checksum mismatch drops the replica.
  void ScrubLoop();
  // Snapshots every kSnapshotEveryRecords entries, built from the log on this thread
  // (BuildSnapshot): the master's state and lock are not touched.
  void SnapshotLoop();
  // Self-healing (guide 5.3, 5.6.1): keeps every chunk at its normal replica count.
  void RecoveryLoop();
  // One pass, as planned by policy_recovery.h: picks chunks below their normal count
  // (blocked first, then the fewest counted replicas), copies them CS-to-CS with
  // mds.recovery.parallel workers, then drops extra replicas.
  void RecoveryPass();
  // Carries out one PlanCopy: bumps the version, has the target copy from the first source
  // that reads clean, commits what ResolveCopy makes of the outcome. *copied: a replica was added.
  // move: carries out a PlanMove instead (a misplaced replica copied to where it belongs;
  // nothing when there is no room there).
  Status RecoverChunk(ChunkId id, bool* copied, bool move = false);
  // What the recovery scan depends on besides the commands counted in replica_cmds_: each
  // CS's status and flags. Under mu_.
  std::string RecoverySignatureLocked() const;
  // rm-cs: a releasing CS that no chunk lists any more is dropped.
  void FinishReleases();

  std::unique_ptr<env::PosixEnv> posix_env_;  // when Start was given no Env
  env::Env env_;
  MdsConfig conf_;
  std::string key_;
  PasswordDigest digest_;
  int lock_fd_ = -1;
  int64_t start_ms_ = 0;

  mutable std::mutex mu_;
  MdsState state_;
  std::unique_ptr<Journal> journal_;  // written only by the pipeline's leader
  std::multiset<InodeId> freeing_;     // inodes a command being committed frees (mu_)
  std::set<ChunkId> bumping_;          // chunks whose replicas are told a new version (mu_)
  LeaseTable leases_;
  std::map<CsId, CsSoft> cs_soft_;
  uint64_t placement_rotation_ = 0;
  uint64_t commits_ = 0;
  IoMeter journal_io_;  // journal appends, for %CTIME and COMMITS in `stat`
  struct CpuMark {
    int64_t wall_ms = 0, cpu_ms = 0;
  };
  CpuMark cpu_marks_[2];
  uint32_t CpuX10(int64_t now);

  std::mutex del_mu_;
  struct PendingDelete {
    CsId cs;
    ChunkId chunk;
    uint64_t max_version;
  };
  std::deque<PendingDelete> pending_deletes_;

  rpc::Server server_;
  std::unique_ptr<rpc::ConnPool> cs_pool_;
  std::atomic<bool> stop_{false};
  std::thread bg_;
  std::thread recovery_;
  std::thread scrub_;
  std::thread snapshot_;
  std::unique_ptr<MetricsServer> metrics_;
  std::atomic<bool> snapshot_running_{false};
  mutable std::map<std::string, uint32_t> domain_ids_[kMaxFailureDomain + 1];  // DomainId, under mu_
  std::atomic<uint64_t> replica_cmds_{0};  // applied commands for which MayNeedRecovery
  // The recovery thread's: what the last scan saw, and whether it found nothing to do.
  std::string recovery_sig_;
  uint64_t recovery_cmds_ = 0;
  int64_t recovery_scan_ms_ = 0;
  bool recovery_idle_ = false;
  std::atomic<uint64_t> recovery_scans_{0}, recovery_scans_skipped_{0};
  std::atomic<uint64_t> snapshots_{0};
  std::map<ChunkId, CsId> replicating_;  // chunk -> copy target; writes wait while it is copied
  std::set<ChunkId> pending_;      // blocked chunks queued for recovery (state "pending")
  std::set<ChunkId> urgent_;       // a replica failed during a write; not yet rebuilt
  // Chunks whose every live replica failed its checksum as a recovery source, with the
  // replica list then: not retried (nor reported again) until that list changes.
  std::map<ChunkId, std::vector<CsId>> no_intact_;
  std::string last_status_;        // for "The cluster is ..." events
  int last_fill_decile_ = -1;      // for "The cluster is filled up to N%"
  bool replication_running_ = false;  // between "Replication started" and "completed" (mu_)
  std::map<InodeId, int64_t> alloc_event_ms_;  // rate limit of "Failed to allocate" events
  // rm-cs that cannot go on: CS -> (reason for the progress line, the placement error last
  // reported in an event). Cleared when a copy of its data can be placed again.
  struct ReleaseStuck {
    std::string note, reported;
  };
  std::map<CsId, ReleaseStuck> release_stuck_;
  std::string last_replicas_warning_;  // set-attr -R warns once, not once per file
  int64_t last_replicas_warning_ms_ = 0;
  // Distinct hosts with chunk servers (dropped ones aside) in the tier.
  size_t CsHosts(uint32_t tier) const;
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  // What each mount must drop from its kernel cache (kWatchChanges); fed by the namespace
  // requests of Handle after their commands are applied.
  InvalidationHub hub_;
  // Last member: destroyed first, while what its callbacks use still exists.
  std::unique_ptr<CommitPipeline> pipeline_;
};

}  // namespace vstorage::mds
