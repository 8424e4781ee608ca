// The MDS service: the state machine and its journal behind RPC, plus the master's soft
// state (CS liveness and load, client sessions and leases) and its background duties.
//
// Threading: one lock (mu_) guards the state machine, the journal and the soft state. A
// mutation applies a command to the state and appends it to the journal (fdatasync) before
// the reply is sent, so everything acknowledged survives SIGKILL (docs/design/mds.md).
// Calls to chunk servers (set-version, delete) are made without holding the lock where they
// can block, except set-version during a failure report, which must finish before the new
// chunk map is handed out.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/auth.h"
#include "common/config.h"
#include "mds/journal.h"
#include "mds/leases.h"
#include "mds/placement.h"
#include "mds/state.h"
#include "rpc/client.h"
#include "rpc/server.h"

namespace vstorage::mds {

inline constexpr int kWatchdogIntervalMs = 1000;
inline constexpr int kCsInactiveAfterMs = 10000;  // missed heartbeats before "inactive"
inline constexpr uint64_t kSnapshotEveryRecords = 20000;
inline constexpr size_t kMaxPendingDeletes = 100000;

struct MdsConfig {
  std::string repo;
  std::string cluster;
  MdsId id{1};
  HostPort addr;  // base address; clients and CS use port + 1
};
Result<MdsConfig> LoadMdsConfig(const std::string& repo);

class MdsService {
 public:
  static Result<std::unique_ptr<MdsService>> Start(const std::string& repo);
  ~MdsService();
  void Stop();
  int port() const { return server_.port(); }

 private:
  struct CsSoft {
    int64_t last_seen_ms = 0;
    bool registered = false;
    uint64_t total_bytes = 0, free_bytes = 0;
    uint32_t qdepth_x10 = 0;
    uint64_t io_errors = 0, csum_errors = 0;
    std::string status = "offline";
  };

  MdsService() = default;
  void Handle(rpc::ServerConn& c, rpc::Frame& req);
  // Applies + journals one command; the state is unchanged when Apply fails.
  Result<ApplyResult> Commit(CommandType type, std::string body);
  template <typename T>
  Result<ApplyResult> Commit(CommandType type, const T& body) {
    return Commit(type, proto::EncodeToString(body));
  }
  void AddEvent(const std::string& sev, const std::string& msg);

  Result<proto::ChunkMap> MapOf(InodeId ino, uint64_t index) const;
  Result<proto::GetChunkReply> GetChunk(const proto::GetChunkReq& r, const std::string& peer);
  Result<proto::GetChunkReply> ReportFailure(const proto::ReportCsFailureReq& r);
  Result<proto::CsRegisterReply> RegisterCs(const proto::CsRegisterReq& r);
  proto::ClusterStatReply ClusterStat();
  proto::FileInfoReply FileInfo(InodeId ino, Status* st);
  std::string ChunkState(const ChunkInfo& c, uint32_t norm, uint32_t min) const;
  bool CsActive(CsId id) const;
  std::string CsAddr(CsId id) const;
  void QueueDeletes(const std::vector<FreedChunk>& freed);
  void Background();
  void UpdateCsStatuses(int64_t now);
  std::vector<CsCandidate> Candidates() const;
  std::string ClusterStatusLocked(int64_t now) const;
  // Self-healing (guide 5.3, 5.6.1): keeps every chunk at its normal replica count.
  void RecoveryLoop();
  // One pass: drops extra replicas, picks chunks below their normal count (fewest live
  // replicas first) and copies them CS-to-CS, one chunk at a time.
  void RecoveryPass();
  Status RecoverChunk(ChunkId id);

  MdsConfig conf_;
  std::string key_;
  PasswordDigest digest_;
  int lock_fd_ = -1;
  int64_t start_ms_ = 0;

  mutable std::mutex mu_;
  MdsState state_;
  std::unique_ptr<Journal> journal_;
  LeaseTable leases_;
  std::map<CsId, CsSoft> cs_soft_;
  uint64_t placement_rotation_ = 0;
  uint64_t commits_ = 0;

  std::mutex del_mu_;
  std::deque<std::pair<CsId, ChunkId>> pending_deletes_;

  rpc::Server server_;
  std::unique_ptr<rpc::ConnPool> cs_pool_;
  std::atomic<bool> stop_{false};
  std::thread bg_;
  std::thread recovery_;
  std::set<ChunkId> replicating_;  // writes wait (kUnavailable) while a chunk is copied
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
};

}  // namespace vstorage::mds
