// File leases and client sessions: soft state of the master (not journaled). Pure: time is
// passed in. Not thread-safe; the MDS server calls it under its lock.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/limits.h"
#include "common/status.h"

namespace vstorage::mds {

struct ClientSession {
  ClientId id;
  std::string host;
  int64_t last_seen_ms = 0;
  // Cumulative counters from the last two heartbeats, for rates.
  uint64_t read_bytes = 0, write_bytes = 0, read_ops = 0, write_ops = 0, fsyncs = 0;
  uint64_t read_bps = 0, write_bps = 0, read_ops_ps = 0, write_ops_ps = 0, fsyncs_ps = 0;
  uint32_t open_read = 0, open_write = 0;
  uint32_t lat_avg_ms = 0, lat_max_ms = 0;
};

class LeaseTable {
 public:
  explicit LeaseTable(int64_t timeout_ms = kLeaseTimeoutMs) : timeout_ms_(timeout_ms) {}

  // Starts (or, after an MDS restart, resumes) a client session. id 0 allocates a new id.
  ClientId Register(ClientId want, const std::string& host, int64_t now_ms);
  // Refreshes the session's leases; an unknown id (MDS restarted) is re-created.
  ClientSession& Touch(ClientId id, int64_t now_ms);
  // Exclusive (write) or shared (read) lease. A client may hold several opens of one file;
  // conflicts are only between different clients: kBusy naming the holder.
  Status Acquire(InodeId ino, ClientId c, bool write, int64_t now_ms);
  void Release(InodeId ino, ClientId c, bool write);
  bool HoldsWrite(InodeId ino, ClientId c) const;
  // Some client has the file open (a read or write lease).
  bool IsOpen(InodeId ino) const { return files_.count(ino) != 0; }
  // Drops sessions not seen for the lease timeout, with their leases. Returns their ids.
  std::vector<ClientId> Expire(int64_t now_ms);
  // A client that said goodbye (unmount): its session and every lease it held end now, so
  // the next mount need not wait for them to expire.
  void Unregister(ClientId c);
  const std::map<ClientId, ClientSession>& sessions() const { return sessions_; }
  size_t open_count(ClientId c, bool write) const;

 private:
  struct FileLeases {
    std::map<ClientId, uint32_t> readers;  // client -> open count
    ClientId writer;                       // 0: none
    uint32_t writer_opens = 0;
  };
  void DropLeases(ClientId c);
  int64_t timeout_ms_;
  uint64_t next_id_ = kFirstClientId;
  std::map<ClientId, ClientSession> sessions_;
  std::map<InodeId, FileLeases> files_;
};

}  // namespace vstorage::mds
