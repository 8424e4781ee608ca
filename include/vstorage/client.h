// libvstorage: the C++ client of a vstorage cluster. Talks to the MDS for metadata and chunk
// maps, and directly to chunk servers for data (ARCHITECTURE §4). vstorage-mount is a thin
// FUSE layer over this API; programs may use it directly.
//
//   auto c = vstorage::Client::Connect({.cluster = "stor1"});      // bs.list + cluster key
//   auto a = (*c)->Create(vstorage::kRootInode, "f", 0644, true);
//   auto f = (*c)->Open(a->ino, /*write=*/true);                   // exclusive write lease
//   (*f)->Write(0, buf, len); (*f)->Fsync(); (*f)->Close();
//
// Every call is thread-safe. Errors are Status values whose message names cause and fix;
// CodeToErrno() maps them to errno.
//
// Asynchronous use: ReadAsync, WriteAsync, FsyncAsync and MdsCallAsync return at once and
// call their callback when done, so one thread can keep hundreds of requests in flight
// (an iSCSI, NBD or S3 server). The synchronous calls are these plus a wait. A callback
// runs on one of the client's I/O threads or slow-path workers (or, for a request that
// fails at once, on the calling thread before the call returns); it must not block, but
// may start further requests. Buffers stay the caller's and must live until the callback
// ran. At most kMaxAsyncOps requests are outstanding per client: beyond that a call waits
// for one to finish (backpressure), except in a callback (on an I/O thread or a slow-path
// worker), where it never waits. The synchronous calls must not be made from a callback
// (a VS_CHECK stops the process: it would wait for its own thread).
//
// In the common case nothing blocks: the chunk map is in the client's cache and the
// connection to the chunk server is up, so a request goes straight out and its reply
// completes it on an I/O thread. Everything else (a map to fetch from the MDS, a replica
// that failed, a retry, a connection to dial) goes to a bounded pool of slow-path workers
// (kMaxSlowPathWorkers) that run the retrying synchronous logic.
#pragma once
#include <atomic>
#include <optional>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/ids.h"
#include "common/io_meter.h"
#include "common/status.h"
#include "proto/messages.h"

namespace vstorage {
namespace rpc {
class ConnPool;
class WorkerPool;
}

inline constexpr int kMaxAsyncOps = 512;         // outstanding async requests per Client
inline constexpr int kAsyncOpWindow = 16;        // RPCs in flight per request (a write streams)
inline constexpr size_t kMaxSlowPathWorkers = 16;
// Bytes of acknowledged but not yet fsynced writes a Client keeps, all files together, to
// send again when every replica of their chunk lost them in a power cut (File::Replay). A
// write that would go past it first syncs its own file; past it still, the write is not kept
// and a lost copy of it is reported by the next fsync (EIO), as before.
inline constexpr int64_t kMaxReplayBytes = 64ll << 20;

struct ClientOptions {
  std::string cluster;
  int mds_timeout_ms = 60000;  // how long metadata calls keep retrying an unreachable MDS
  int io_timeout_ms = 60000;   // how long a write keeps retrying (e.g. a chunk below min)
  std::string hostname;        // shown in `vstorage stat`; default: this host's name
};

// A byte range of a file cut at chunk boundaries and at most max_piece bytes long.
struct Piece {
  uint64_t index = 0;      // chunk number
  uint64_t chunk_off = 0;  // offset within the chunk
  uint64_t buf_off = 0;    // offset within the caller's buffer
  uint64_t len = 0;
  uint64_t since_version = 0;  // sync units: the oldest chunk version written since the last sync
  uint64_t seq_upto = 0;       // sync units: the newest kept write (OpenSize::next_seq) the sync covers
};
std::vector<Piece> SplitRange(uint64_t offset, uint64_t len, uint64_t chunk_size, uint64_t max_piece);
// "/a/b/" -> {"a", "b"}; rejects "..", empty paths are the root.
Result<std::vector<std::string>> SplitPath(const std::string& path);

class Client;

class File {
 public:
  ~File();  // Close() unless called
  using DoneFn = std::function<void(Status)>;
  using ReadDoneFn = std::function<void(Result<size_t>)>;
  // Asynchronous forms of Read, Write and Fsync (see the top of this file). The File must
  // outlive its requests; Close() waits for them.
  void ReadAsync(uint64_t offset, size_t len, char* out, ReadDoneFn done);
  void WriteAsync(uint64_t offset, const char* data, size_t len, DoneFn done);
  void FsyncAsync(DoneFn done);

  // Reads up to len bytes at offset; short only at the end of the file; holes read as zeros.
  Result<size_t> Read(uint64_t offset, size_t len, char* out);
  // Returns once every replica of every touched chunk has the data (not yet durable).
  // data must be readable for all len bytes: the client reads it to compute the end-to-end
  // checksum of every 4 KiB block (a bad pointer faults in the caller, as with memcpy).
  // Bytes damaged on the way to a CS are sent again (kBadChecksum, at most 3 more times,
  // then EIO); a read whose bytes do not match the CS's checksums is retried elsewhere.
  Status Write(uint64_t offset, const char* data, size_t len);
  // Makes every write so far durable on every replica, and the file size on the MDS. Writes
  // that every replica of a chunk lost to a power cut since they were acknowledged are sent
  // again first (the client keeps them, up to kMaxReplayBytes): EIO only for one it could
  // not keep.
  Status Fsync();
  Status Truncate(uint64_t size);
  // fallocate(2) mode 0 / FALLOC_FL_KEEP_SIZE: disk space for [offset, offset+len) is
  // reserved on every replica (ENOSPC now rather than at a later write); the size grows to
  // offset+len unless keep_size. The bytes stay as they are.
  Status Allocate(uint64_t offset, uint64_t len, bool keep_size);
  // FALLOC_FL_PUNCH_HOLE: the range (within the size) reads as zeros and its space is
  // given back on every replica; the size stays. kNotSupported when the cluster's
  // gen.do_punch_hole is 0 (guide 3.5.7).
  Status PunchHole(uint64_t offset, uint64_t len);
  // FALLOC_FL_ZERO_RANGE: the range reads as zeros; the size grows to offset+len unless
  // keep_size.
  Status ZeroRange(uint64_t offset, uint64_t len, bool keep_size);
  // Tells the MDS the size this client wrote (cheap; what close(2) does, without fsync).
  Status Flush() { return PersistSize(); }
  // Waits for outstanding async requests, persists the size and releases the lease.
  // wait_release false: the release is sent and not waited for (a failure is logged); for
  // callers whose close is already asynchronous to their users, like the FUSE mount, where
  // the kernel sends RELEASE after close(2) returned. Later requests of this client reach
  // the MDS after it (one connection, in order).
  Status Close(bool wait_release = true);
  uint64_t size() const { return sz_->size.load(); }
  InodeId ino() const { return ino_; }
  bool writable() const { return write_; }

 private:
  friend class Client;
  File(Client* c, proto::Attr attr, bool write);
  struct AsyncOp;
  void Issue(const std::shared_ptr<AsyncOp>& op, size_t unit);
  void SlowPath(const std::shared_ptr<AsyncOp>& op, size_t unit);
  void UnitDone(const std::shared_ptr<AsyncOp>& op, Status st);
  void Pump(const std::shared_ptr<AsyncOp>& op);
  void Finish(const std::shared_ptr<AsyncOp>& op);
  void Start(const std::shared_ptr<AsyncOp>& op);
  // An fsync of every chunk with unsynced writes; `internal`: to let kept writes go
  // (kMaxReplayBytes), neither counted as the caller's fsync nor persisting the size.
  void StartSync(bool internal, DoneFn done);
  // The cached map of chunk `index`, if any (never asks the MDS). unless_reset: also false
  // when the chunk was reset since a kept write of it (NeedsReplay; one lock for both).
  bool Cached(uint64_t index, proto::ChunkMap* m, bool unless_reset = false);
  Result<proto::ChunkMap> Map(uint64_t index, bool allocate, bool* exists);
  void Forget(uint64_t index);
  void Remember(const proto::ChunkMap& m);
  enum class PieceOp { kData, kZero, kReserve };
  // kZero: the piece is zeroed on every replica (its space given back); kReserve: its
  // space is reserved. Both carry no data (data is ignored). `replaying`: the piece is a
  // kept write sent again (Replay): it is not kept twice, and *wrote_version says with
  // which chunk version it went.
  Status WritePiece(const Piece& p, const char* data, PieceOp op = PieceOp::kData, bool replaying = false,
                    uint64_t* wrote_version = nullptr);
  // An acknowledged write of chunk `index` at `version`: kept for Replay until an fsync
  // covers it (the data is copied while the Client's kMaxReplayBytes allow it).
  void Keep(uint64_t index, uint64_t version, const Piece& p, const char* data, PieceOp op);
  // Whether chunk `index`, now at `map_version`, was reset since some kept write of it.
  bool NeedsReplay(uint64_t index, uint64_t map_version);
  bool NeedsReplayLocked(uint64_t index, uint64_t map_version);  // under sz_->mu
  // Sends again, in their order, the kept writes of chunk `index` that a reset of the chunk
  // (every replica lost power) may have lost; one Replay per chunk at a time (a second one
  // waits for the first, then finds nothing left to send).
  Status Replay(uint64_t index);
  // A sync of chunk `index` covered the kept writes up to seq_upto: they are let go.
  void Synced(uint64_t index, uint64_t seq_upto);
  // Truncate: the kept writes of chunks from `first_index` on are let go (the chunks are).
  void DropKeptFrom(uint64_t first_index);
  // [offset, offset+len) reads as zeros afterwards; chunks that do not exist stay so.
  Status Zero(uint64_t offset, uint64_t len);
  // The size becomes at least `end` (reported to the MDS at the next flush or fsync).
  void GrowSize(uint64_t end);
  // The data changed now: the mtime reported at the next flush or fsync.
  void Touched();
  Status ReadPiece(const Piece& p, char* out);
  // Syncs every replica; a reset of the chunk since a kept write first replays them; a
  // reset since a write that could not be kept is an I/O error.
  Status SyncChunk(uint64_t index);
  Status PersistSize();

  Client* c_;
  InodeId ino_;
  bool write_;
  uint64_t chunk_size_;
  // What every handle of the inode in this client shares (Client::FileOpened): the size as
  // this client knows it (a write through one handle is seen by a read, punch or truncate
  // through another at once; `dirty`: grown past what the MDS was told), the chunk-map
  // cache and the chunks written since the last fsync (an fsync on any handle syncs them).
  // An acknowledged write not yet covered by an fsync, kept to be sent again (Replay).
  struct Kept {
    uint64_t seq = 0;      // OpenSize::next_seq when it was acknowledged
    uint64_t version = 0;  // the chunk version it was written with (the newest replay's)
    uint64_t chunk_off = 0, len = 0;
    PieceOp op = PieceOp::kData;
    std::shared_ptr<const std::string> data;  // kData; shared so Replay copies no bytes
  };
  struct Unsynced {
    std::vector<Kept> writes;  // in the order they were acknowledged
    // A write too many for kMaxReplayBytes: the oldest chunk version of such writes
    // (UINT64_MAX: none) and the newest seq. A reset after it is an I/O error at fsync.
    uint64_t lost_version = UINT64_MAX, lost_seq = 0;
    uint64_t oldest = UINT64_MAX;  // the oldest version of `writes`
    void Reckon();                 // `oldest` again, after versions changed or writes went
  };
  struct OpenSize {
    ~OpenSize();  // gives the kept bytes back to the Client's budget
    std::atomic<uint64_t> size{0};
    std::atomic<bool> dirty{false};
    std::atomic<int64_t> write_ns{0};  // last data change not reported yet (its mtime), 0: none
    std::atomic<int64_t>* budget = nullptr;  // Client::replay_bytes_
    std::mutex mu;                     // guards what follows
    std::map<uint64_t, proto::ChunkMap> maps;
    // Chunk index -> the writes since the last fsync: a reset of the chunk after them
    // (proto::ChunkResetEpoch) means every replica may have lost them.
    std::map<uint64_t, Unsynced> unsynced;
    uint64_t next_seq = 0;
    int64_t kept_bytes = 0;  // data bytes in `unsynced`
    std::set<uint64_t> replaying;        // chunks a Replay is sending again (no lock held meanwhile)
    std::condition_variable replay_cv;   // a Replay ended
  };
  std::atomic<bool> read_some_{false};  // for the access time at close (relatime)
  std::shared_ptr<OpenSize> sz_;
  std::atomic<bool> closed_{false};
  std::mutex ops_mu_;
  std::condition_variable ops_cv_;
  int ops_ = 0;  // async requests outstanding (Close waits for none)
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& opts);
  ~Client();  // Goodbye() unless called
  // Stops the heartbeat and tells the MDS this client is gone: its leases end now and its
  // pending WatchChanges returns. The object may only be destroyed afterwards. Once.
  void Goodbye();
  ClientId id() const { return id_; }
  // Bytes of acknowledged writes not yet covered by an fsync that this client keeps to send
  // again after a power cut (at most kMaxReplayBytes).
  int64_t KeptWriteBytes() const { return replay_bytes_.load(); }
  const ClientOptions& options() const { return opts_; }

  Result<proto::Attr> Lookup(InodeId parent, const std::string& name);
  Result<proto::Attr> GetAttr(InodeId ino);
  Result<std::vector<proto::DirEntry>> Readdir(InodeId ino);
  // uid/gid: the owner of the new node (the calling process's, on a mount). umask: the
  // creator's; the MDS applies it to mode unless the parent has a default POSIX ACL, which
  // the new node then inherits instead (acl(5)).
  Result<proto::Attr> Create(InodeId parent, const std::string& name, uint32_t mode, bool exclusive,
                             uint32_t uid = 0, uint32_t gid = 0, uint32_t umask = 0);
  // parent_after (optional): set to the parent directory's attributes once the change is
  // made, when the MDS gives them (Mkdir, Unlink, Rmdir, CreateOpen).
  Result<proto::Attr> Mkdir(InodeId parent, const std::string& name, uint32_t mode, uint32_t uid = 0, uint32_t gid = 0,
                            uint32_t umask = 0, std::optional<proto::Attr>* parent_after = nullptr);
  Result<proto::Attr> Symlink(InodeId parent, const std::string& name, const std::string& target, uint32_t uid = 0,
                              uint32_t gid = 0);
  Result<std::string> Readlink(InodeId ino);
  Status Unlink(InodeId parent, const std::string& name, std::optional<proto::Attr>* parent_after = nullptr);
  Status Rmdir(InodeId parent, const std::string& name, std::optional<proto::Attr>* parent_after = nullptr);
  // link(2): one more name for a file.
  Result<proto::Attr> Link(InodeId ino, InodeId new_parent, const std::string& new_name);
  Status Rename(InodeId parent, const std::string& name, InodeId new_parent, const std::string& new_name);
  // mask: proto::SetAttrMask. A size change zeroes the cut-off tail of the last chunk.
  // Times in nanoseconds since the epoch.
  Result<proto::Attr> SetAttr(InodeId ino, uint32_t mask, uint64_t size, int64_t mtime_ns, uint32_t mode,
                              int64_t atime_ns = 0, uint32_t uid = 0, uint32_t gid = 0);
  // "replicas" / "chunk-size", or a user./trusted./security. attribute (flags as setxattr(2):
  // XATTR_CREATE, XATTR_REPLACE), or a POSIX ACL (system.posix_acl_access/_default, in the
  // kernel's xattr form: common/posix_acl.h; an access ACL sets the mode's permission bits).
  Status SetXattr(InodeId ino, const std::string& name, const std::string& value, uint32_t flags = 0);
  Status RemoveXattr(InodeId ino, const std::string& name);
  // All of them: replicas, chunk-size and the namespaced ones.
  Result<std::map<std::string, std::string>> GetXattrs(InodeId ino);
  // A FIFO, socket or device node (rdev for devices).
  Result<proto::Attr> Mknod(InodeId parent, const std::string& name, proto::NodeType type, uint32_t mode,
                            uint64_t rdev, uint32_t uid, uint32_t gid, uint32_t umask = 0);
  Result<proto::StatfsReply> Statfs();
  // The cluster's gen.do_punch_hole (guide 3.5.7), asked of the MDS at most every
  // kConfigCacheMs.
  Result<bool> PunchHoleEnabled();
  Result<proto::Attr> ResolvePath(const std::string& path);

  Result<std::unique_ptr<File>> Open(InodeId ino, bool write);
  // Create (a regular file) and Open(write=true) in one MDS round trip (two with an older
  // MDS). Returns the attributes with the open file.
  Result<std::pair<proto::Attr, std::unique_ptr<File>>> CreateOpen(InodeId parent, const std::string& name,
                                                                   uint32_t mode, bool exclusive, uint32_t uid = 0,
                                                                   uint32_t gid = 0, uint32_t umask = 0,
                                                                   std::optional<proto::Attr>* parent_after = nullptr);
  // The entries of a directory with the attributes of each (sizes as GetAttr gives them).
  Result<std::vector<proto::DirEntryPlus>> ReaddirPlus(InodeId ino);
  // Long poll for what other clients changed since after_seq (mds/invalidation.h): waits up
  // to max_wait_ms at the MDS. One attempt at the current MDS, no retries; kProtocol from
  // an MDS that does not know the request.
  Result<proto::WatchChangesReply> WatchChanges(uint64_t after_seq, uint32_t max_wait_ms);
  // a->size becomes at least what this client's open handles of a->ino wrote (and they
  // take up a larger size), as GetAttr does with the MDS's answer.
  void MergeOpenSize(proto::Attr* a);

  // Metadata call with retries over every MDS address until mds_timeout_ms.
  template <typename Req, typename Rep>
  Status MdsCall(proto::MsgType type, const Req& req, Rep* rep);
  // The same, asynchronous (see the top of this file): done(status, reply).
  template <typename Req, typename Rep>
  void MdsCallAsync(proto::MsgType type, const Req& req, std::function<void(Status, Rep)> done);
  void MdsCallRawAsync(proto::MsgType type, std::string body, std::function<void(Status, std::string)> done);

 private:
  friend class File;
  explicit Client(ClientOptions o);
  Status MdsCallRaw(proto::MsgType type, const std::string& body, std::string* reply_body);
  Status RemoveName(InodeId parent, const std::string& name, bool dir, std::optional<proto::Attr>* parent_after);
  // Async admission: a slot among kMaxAsyncOps (waits for one unless InCallback()).
  void AdmitAsync();
  // On a thread that runs completion callbacks (an I/O thread or a slow-path worker).
  bool InCallback() const;
  void AsyncFinished();
  Status Register(ClientId reclaim);
  void Heartbeat();
  void Reclaim();
  void FileOpened(File* f);
  void FileClosed(File* f);
  // Zeroes the chunk holding `from` from there to its end (after a truncate to `from`), so
  // that a later extension reads zeros there.
  Status ZeroTail(File* f, uint64_t from);

  ClientOptions opts_;
  ClientId id_;
  std::vector<std::string> mds_addrs_;
  std::unique_ptr<rpc::ConnPool> mds_pool_;
  std::unique_ptr<rpc::ConnPool> cs_pool_;
  std::atomic<size_t> mds_index_{0};
  std::atomic<bool> need_reclaim_{false};
  std::unique_ptr<rpc::WorkerPool> slow_;  // the slow path of async requests
  std::mutex async_mu_;
  std::condition_variable async_cv_;
  int async_ops_ = 0;
  std::atomic<int64_t> replay_bytes_{0};  // kept write bytes of every File (kMaxReplayBytes)

  std::mutex files_mu_;
  std::multimap<InodeId, File*> files_;

  static constexpr int64_t kConfigCacheMs = 5000;
  std::mutex config_mu_;  // guards the two below
  int64_t config_at_ms_ = 0;
  bool punch_hole_ = true;

  std::atomic<uint64_t> read_bytes_{0}, write_bytes_{0}, read_ops_{0}, write_ops_{0}, fsyncs_{0};
  IoMeter io_;  // reads, writes and fsyncs, for IOLAT in `stat`
  std::atomic<bool> stop_{false};
  std::atomic<bool> said_goodbye_{false};
  std::mutex hb_mu_;
  std::condition_variable hb_cv_;
  std::thread hb_;
};

template <typename Req, typename Rep>
Status Client::MdsCall(proto::MsgType type, const Req& req, Rep* rep) {
  std::string body;
  RETURN_IF_ERROR(MdsCallRaw(type, proto::EncodeToString(req), &body));
  return proto::DecodeFromString(body, rep, "MDS reply");
}

template <typename Req, typename Rep>
void Client::MdsCallAsync(proto::MsgType type, const Req& req, std::function<void(Status, Rep)> done) {
  MdsCallRawAsync(type, proto::EncodeToString(req), [done = std::move(done)](Status st, std::string body) {
    Rep rep{};
    if (st.ok()) st = proto::DecodeFromString(body, &rep, "MDS reply");
    done(st, std::move(rep));
  });
}

}  // namespace vstorage
