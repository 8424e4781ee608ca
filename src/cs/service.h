// The chunk server: a ChunkStore served over RPC (write with chain forwarding, read, sync,
// version changes and deletes ordered by the MDS) plus the link to the MDS (register with
// the chunk list, then heartbeats with space and load).
#pragma once
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/io_meter.h"
#include "cs/chunk_store.h"
#include "cs/write_order.h"
#include "rpc/client.h"
#include "rpc/server.h"

namespace vstorage::cs {

inline constexpr int kCsHeartbeatIntervalMs = 2000;
inline constexpr int kChainTimeoutMs = 20000;
inline constexpr size_t kMaxIoBytes = 8u << 20;  // one read/write request
inline constexpr uint64_t kReplicatePiece = 1u << 20;

// cs.conf of a CS repository.
struct CsConfig {
  std::string repo;
  std::string cluster;
  CsId id;
  uint32_t tier = 0;
  std::string host_id;
  std::string addr;  // "HOST:PORT" to listen on; empty = chosen at first start and saved
  bool checksums = true;  // "checksums=0" after make-cs -S (guide 7.6.4)
};
Result<CsConfig> LoadCsConfig(const std::string& repo);
Status SaveCsConfig(const CsConfig& c);

class CsService {
 public:
  // Locks the repository, opens the store, listens and starts talking to the MDS.
  // Fails (with the reason) if the repository is in use, missing or not a CS repository.
  static Result<std::unique_ptr<CsService>> Start(const std::string& repo);
  ~CsService();
  void Stop();
  // Blocks until Stop() (from a signal handler thread) is called.
  void Wait();
  int port() const { return server_.port(); }
  // Fault injection for the end-to-end checksum tests: one bit of every recv_every-th write
  // payload flips as it arrives (before the check), and of every send_every-th read reply
  // after its checksums were taken (0: never). Also from VSTORAGE_CS_FAULT_FLIP=recv=N,send=M
  // in the daemon's environment. Thread-safe.
  void SetFlipFaults(uint32_t recv_every, uint32_t send_every) {
    flip_recv_every_ = recv_every;
    flip_send_every_ = send_every;
  }
  // Writes refused because their bytes did not match the checksums they came with.
  uint64_t bad_checksums() const { return bad_checksums_; }

 private:
  CsService() = default;
  void Handle(rpc::ServerConn& c, rpc::Frame& req);
  void HandleWrite(rpc::ServerConn& c, rpc::Frame& req);
  void HandleRead(rpc::ServerConn& c, rpc::Frame& req);
  void HandleSync(rpc::ServerConn& c, rpc::Frame& req);
  // Copies a replica from another CS (MDS-driven recovery): stat, read in pieces, write, sync.
  Status Replicate(const proto::CsReplicateReq& r);
  // Scrubbing: reads a whole replica, checking the CRC of every block.
  Status Verify(const proto::CsVerifyReq& r);
  // True once the repository is gone (unmounted or deleted under the running CS): flag R.
  bool CheckRepoLost();
  void NoteError(const Status& st);
  void MdsLoop();
  void SweepLoop();  // ChunkStore::SweepIntents every heartbeat interval
  Status RegisterWithMds(rpc::Conn& c);
  Result<std::unique_ptr<rpc::Conn>> DialMds();

  CsConfig conf_;
  std::string location_;  // $CONF/location at start ("" when absent)
  std::string key_;
  int lock_fd_ = -1;
  std::unique_ptr<ChunkStore> store_;
  WriteOrder order_;
  rpc::Server server_;
  std::unique_ptr<rpc::ConnPool> peers_;
  std::atomic<bool> stop_{false};
  IoMeter io_;  // client reads, writes and syncs
  std::atomic<uint64_t> io_errors_{0}, csum_errors_{0};
  std::atomic<bool> repo_lost_{false};
  std::atomic<uint32_t> flip_recv_every_{0}, flip_send_every_{0};
  std::atomic<uint64_t> recv_payloads_{0}, sent_payloads_{0}, bad_checksums_{0};
  std::atomic<bool> registered_{false};  // reconciled with the MDS once since start
  uint64_t repo_dev_ = 0, repo_ino_ = 0;  // identity of the repository directory at start
  std::mutex err_mu_;
  std::string last_error_;
  std::thread mds_thread_, sweep_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace vstorage::cs
