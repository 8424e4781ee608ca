// Every message on the wire. Numbers of MsgType never change meaning; new types get new
// numbers. Replies travel with the request's type and the response flag (rpc/frame.h);
// an error reply carries an ErrorReply body instead.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "proto/codec.h"

namespace vstorage::proto {

enum class MsgType : uint16_t {
  // Handshake (rpc/auth.h).
  kChallenge = 1,
  kChallengeResponse = 2,
  kHandshakeResult = 3,
  kPasswordAuth = 4,  // the old auth-node proof (an offline password oracle): refused
  kSrpStart = 5,      // auth-node -> MDS: SrpStart{A}; MDS -> auth-node: SrpChallenge{B}
  kSrpProof = 6,      // auth-node -> MDS: SrpProof{M1}; MDS -> auth-node: SrpProofReply
  kHello = 7,         // a plaintext client's first frame (Empty): the server then challenges

  // Client -> MDS.
  kRegisterClient = 100,
  kLookup = 101,
  kGetAttr = 102,
  kReaddir = 103,
  kCreate = 104,
  kUnlink = 105,
  kRename = 106,
  kSetAttr = 107,
  kOpen = 108,
  kRelease = 109,
  kClientHeartbeat = 110,
  kGetChunk = 111,
  kReportCsFailure = 112,
  kSetXattr = 113,
  kGetXattrs = 114,
  kStatfs = 115,
  kClusterStat = 116,
  kFileInfo = 117,
  kSetConfig = 118,
  kGetConfig = 119,
  kReadlink = 120,
  kSetConfigMany = 121,  // set-config K=V...: validated together, applied all or none
  kUnregisterClient = 122,  // a client going away (unmount): its session and leases end now
  kLink = 123,              // link(2): LinkReq -> AttrReply
  // Long poll: WatchChangesReq -> WatchChangesReply, the cache invalidations of other
  // clients' changes (answered when there are some or after at most max_wait_ms).
  kWatchChanges = 124,
  kReaddirPlus = 125,       // InodeReq -> ReaddirPlusReply: names with their attributes

  // CS / admin -> MDS.
  kCsCreate = 200,     // make-cs: allocate a CS id (journaled)
  kCsRegister = 201,   // csd start: address + chunk list
  kCsHeartbeat = 202,  // every few seconds: space and load
  kRmCs = 203,         // rm-cs [--wait] [-f] [--cancel] (admin)

  // Anyone -> CS.
  kCsWrite = 300,
  kCsRead = 301,
  kCsSync = 302,
  kCsSetVersion = 303,  // MDS -> CS after a replica failed
  kCsDelete = 304,
  kCsReplicate = 305,   // MDS -> CS: pull a chunk from another CS (self-healing issue)
  kCsStat = 306,        // CS -> CS: version and length of a replica (before a copy)
  kCsVerify = 307,      // MDS -> CS: scrub one replica (read it all, checking every CRC)
};

struct ErrorReply {
  uint16_t code = 0;
  std::string message;
  VS_FIELDS(code, message)
};

// ---------- Handshake ----------
enum class PeerKind : uint8_t { kClient = 1, kCs = 2, kMds = 3, kAdmin = 4 };

struct Challenge {
  std::string cluster;
  std::string nonce;        // 16 random bytes
  std::string pw_salt;      // MDS only: lets auth-node derive the password hash
  uint32_t pw_iterations = 0;
  VS_FIELDS(cluster, nonce, pw_salt, pw_iterations)
};
struct ChallengeResponse {
  std::string cluster;
  std::string nonce;        // client's 16 random bytes
  std::string mac;          // HMAC(K, "client" | server_nonce | client_nonce)
  PeerKind kind = PeerKind::kClient;
  VS_FIELDS(cluster, nonce, mac, kind)
};
struct HandshakeResult {
  std::string mac;          // HMAC(K, "server" | client_nonce | server_nonce)
  VS_FIELDS(mac)
};
struct PasswordAuth {
  std::string proof;        // HMAC(PBKDF2(pw), "password" | server_nonce)
  VS_FIELDS(proof)
};
struct PasswordAuthReply {
  std::string wrapped_key;  // K xor HMAC(PBKDF2(pw), "wrap" | server_nonce)
  VS_FIELDS(wrapped_key)
};
// auth-node by SRP-6a (rpc/auth.h, common/srp.h): x = PBKDF2(pw, Challenge.pw_salt, ...).
struct SrpStart {
  std::string a_pub;  // PAD(A), 384 bytes
  VS_FIELDS(a_pub)
};
struct SrpChallenge {
  std::string b_pub;  // PAD(B), 384 bytes
  VS_FIELDS(b_pub)
};
struct SrpProof {
  std::string m1;  // the client's proof, 32 bytes
  VS_FIELDS(m1)
};
struct SrpProofReply {
  std::string m2;          // the server's proof, 32 bytes
  std::string sealed_key;  // srp::Seal(session key, "cluster key", K, cluster name)
  VS_FIELDS(m2, sealed_key)
};

// ---------- Namespace ----------
enum class NodeType : uint8_t { kFile = 1, kDir = 2, kSymlink = 3, kFifo = 4, kCharDev = 5, kBlockDev = 6, kSocket = 7 };

struct Attr {
  InodeId ino;
  NodeType type = NodeType::kFile;
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // nanoseconds since the epoch
  int64_t ctime_ns = 0;
  uint32_t nlink = 1;
  uint64_t chunk_size = 0;
  uint32_t uid = 0, gid = 0;
  int64_t atime_ns = 0;
  uint64_t rdev = 0;  // device number of a character or block device node
  VS_FIELDS(ino, type, mode, size, mtime_ns, ctime_ns, nlink, chunk_size, uid, gid, atime_ns, rdev)
};

struct RegisterClientReq {
  std::string hostname;
  ClientId reclaim_id;  // 0: new client
  VS_FIELDS(hostname, reclaim_id)
};
struct RegisterClientReply {
  ClientId client_id;
  uint8_t encryption = 1;  // gen.encryption: connections made from now on use TLS (rpc/tls.h)
  VS_FIELDS(client_id, encryption)
};
// The MDS's answer to a client's or a CS's heartbeat (an Empty, plus what peers must follow).
struct HeartbeatReply {
  uint8_t reserved = 0;
  uint8_t encryption = 1;  // gen.encryption
  VS_FIELDS(reserved, encryption)
};

struct LookupReq {
  InodeId parent;
  std::string name;
  VS_FIELDS(parent, name)
};
struct AttrReply {
  Attr attr;
  VS_FIELDS(attr)
};
struct InodeReq {
  InodeId ino;
  VS_FIELDS(ino)
};
struct DirEntry {
  std::string name;
  InodeId ino;
  NodeType type = NodeType::kFile;
  VS_FIELDS(name, ino, type)
};
struct ReaddirReply {
  std::vector<DirEntry> entries;
  VS_FIELDS(entries)
};
struct CreateReq {
  InodeId parent;
  std::string name;
  NodeType type = NodeType::kFile;
  uint32_t mode = 0644;
  std::string symlink_target;
  bool exclusive = true;  // O_EXCL semantics: existing name is kExists
  uint32_t uid = 0, gid = 0;  // of the creating process
  uint64_t rdev = 0;          // device nodes
  ClientId client;            // the creator: its own mount is not told of the change
  // A regular file is also opened for writing by `client` (write lease taken): the reply
  // is a CreateReply. Older MDS ignore it and answer an AttrReply.
  bool open_write = false;
  // The creator's umask: applied by the MDS unless the parent has a default ACL. Older
  // clients send none (their mode is already masked).
  uint32_t umask = 0;
  VS_FIELDS(parent, name, type, mode, symlink_target, exclusive, uid, gid, rdev, client, open_write, umask)
};
// The reply to every kCreate (an AttrReply with more after it, so older clients read it as
// one).
struct CreateReply {
  Attr attr;
  bool opened = false;  // the write lease was taken (else: open the file as usual)
  // The parent directory's attributes once the create is applied (none from older MDS):
  // a mount answers the kernel's next getattr of the directory with them.
  Attr parent;
  bool has_parent = false;
  VS_FIELDS(attr, opened, parent, has_parent)
};
// The reply to kUnlink (older MDS answer Empty: has_parent false).
struct UnlinkReply {
  Attr parent;  // the directory's attributes once the unlink is applied
  bool has_parent = false;
  InodeId removed;  // the node whose name went
  VS_FIELDS(parent, has_parent, removed)
};
struct UnlinkReq {
  InodeId parent;
  std::string name;
  bool dir = false;  // rmdir
  ClientId client;   // who asks (not told of its own change)
  VS_FIELDS(parent, name, dir, client)
};
struct RenameReq {
  InodeId parent;
  std::string name;
  InodeId new_parent;
  std::string new_name;
  ClientId client;  // who asks (not told of its own change)
  VS_FIELDS(parent, name, new_parent, new_name, client)
};
// kGrowSize: the size becomes at least `size` (a writer reporting how far it wrote); it never
// shrinks the file and frees nothing, so handles reporting late or out of order are safe.
enum SetAttrMask : uint32_t {
  kSetSize = 1, kSetMtime = 2, kSetMode = 4, kGrowSize = 8, kSetAtime = 16, kSetUid = 32, kSetGid = 64
};
struct SetAttrReq {
  InodeId ino;
  uint32_t mask = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;
  ClientId client;  // size changes need the write lease when one is held
  int64_t atime_ns = 0;
  uint32_t uid = 0, gid = 0;
  VS_FIELDS(ino, mask, size, mtime_ns, mode, client, atime_ns, uid, gid)
};
struct OpenReq {
  InodeId ino;
  ClientId client;
  bool write = false;
  VS_FIELDS(ino, client, write)
};
struct ReleaseReq {
  InodeId ino;
  ClientId client;
  bool write = false;
  bool read = false;  // the handle read data: the access time may be due (relatime)
  VS_FIELDS(ino, client, write, read)
};
struct LinkReq {
  InodeId ino;
  InodeId new_parent;
  std::string new_name;
  ClientId client;  // who asks (not told of its own change)
  VS_FIELDS(ino, new_parent, new_name, client)
};
// One cached thing another client changed: the name `name` in directory `parent`
// (kEntry: created, removed or renamed), or the attributes of inode `ino` (kInode).
enum class InvalKind : uint8_t { kEntry = 1, kInode = 2 };
struct Invalidation {
  InvalKind kind = InvalKind::kInode;
  InodeId ino;      // kInode; kEntry: the directory
  std::string name;  // kEntry
  VS_FIELDS(kind, ino, name)
};
struct WatchChangesReq {
  ClientId client;
  uint64_t after_seq = 0;    // everything up to this sequence number was handled
  uint32_t max_wait_ms = 0;  // 0: answer at once
  VS_FIELDS(client, after_seq, max_wait_ms)
};
struct WatchChangesReply {
  uint64_t seq = 0;  // of the last change in `changes` (or the current one): the next after_seq
  // The MDS lost track (queue overflow, MDS restart): drop every cached entry and attribute.
  bool resync = false;
  std::vector<Invalidation> changes;
  VS_FIELDS(seq, resync, changes)
};
struct DirEntryPlus {
  std::string name;
  Attr attr;
  VS_FIELDS(name, attr)
};
struct ReaddirPlusReply {
  std::vector<DirEntryPlus> entries;
  VS_FIELDS(entries)
};
struct UnregisterClientReq {
  ClientId client;
  VS_FIELDS(client)
};
struct ClientHeartbeat {
  ClientId client;
  uint64_t read_bytes = 0, write_bytes = 0, read_ops = 0, write_ops = 0, fsyncs = 0;
  uint32_t open_read = 0, open_write = 0;
  uint32_t lat_avg_ms = 0, lat_max_ms = 0;  // IOLAT over the last 20 s
  VS_FIELDS(client, read_bytes, write_bytes, read_ops, write_ops, fsyncs, open_read, open_write,
            lat_avg_ms, lat_max_ms)
};
struct ReadlinkReply {
  std::string target;
  VS_FIELDS(target)
};

// ---------- Chunks ----------
struct ReplicaLoc {
  CsId cs;
  std::string addr;  // "host:port" of the CS data service
  VS_FIELDS(cs, addr)
};
// A chunk version's high 32 bits count the chunk's resets: after every replica lost power,
// the MDS keeps one of them as the chunk's content (docs/design/cs.md "Power cuts") at the
// next reset epoch, and writes made before it that no fsync covered may be gone. A client
// that wrote at an older epoch fails its fsync (EIO), as a disk that lost its cache would.
inline constexpr int kChunkResetShift = 32;
inline constexpr uint64_t ChunkResetEpoch(uint64_t version) { return version >> kChunkResetShift; }
inline constexpr uint64_t NextResetVersion(uint64_t version) {
  return (ChunkResetEpoch(version) + 1) << kChunkResetShift;
}
struct ChunkMap {
  uint64_t index = 0;  // chunk number within the file
  ChunkId id;
  uint64_t version = 0;
  uint64_t chunk_size = 0;
  std::vector<ReplicaLoc> replicas;  // write chain order
  VS_FIELDS(index, id, version, chunk_size, replicas)
};
struct GetChunkReq {
  InodeId ino;
  uint64_t index = 0;
  bool allocate = false;  // for writes: create the chunk if the file has none there
  ClientId client;
  VS_FIELDS(ino, index, allocate, client)
};
struct GetChunkReply {
  bool exists = false;  // false: a hole (reads return zeros)
  ChunkMap map;
  VS_FIELDS(exists, map)
};
struct ReportCsFailureReq {
  InodeId ino;
  uint64_t index = 0;
  ChunkId chunk;
  uint64_t version = 0;
  std::vector<CsId> failed;
  ClientId client;
  uint16_t reason = 0;  // Code: kCorrupt for a checksum mismatch on read, else a failed write
  VS_FIELDS(ino, index, chunk, version, failed, client, reason)
};

// ---------- Attributes / config ----------
struct SetXattrReq {
  InodeId ino;
  std::string name;   // "replicas", "chunk-size", or a user./trusted./security. attribute
  std::string value;
  uint32_t flags = 0;   // XATTR_CREATE (1) / XATTR_REPLACE (2), as setxattr(2)
  bool remove = false;  // removexattr(2)
  ClientId client;      // who asks (not told of its own change)
  VS_FIELDS(ino, name, value, flags, remove, client)
};
// Why the MDS refuses (kBusy) a new chunk-size on a file: set-attr reaches the MDS through the
// mount's setxattr, which carries only EBUSY, so the CLI prints this same text.
inline constexpr const char* kChunkSizeOfFileWithDataReason =
    "the chunk size of a file that already has data cannot change; set it on the directory "
    "before creating the file";
struct XattrsReply {
  std::map<std::string, std::string> attrs;
  VS_FIELDS(attrs)
};
// Logical bytes (raw space / the root's replica count): what df shows.
struct StatfsReply {
  uint64_t total_bytes = 0, free_bytes = 0, allocatable_bytes = 0, files = 0;
  VS_FIELDS(total_bytes, free_bytes, allocatable_bytes, files)
};
struct ConfigReq {
  std::string key, value;
  VS_FIELDS(key, value)
};
struct SetConfigManyReq {
  std::map<std::string, std::string> values;
  VS_FIELDS(values)
};
struct ConfigReply {
  std::map<std::string, std::string> values;
  VS_FIELDS(values)
};

// ---------- Status ----------
struct MdsInfo {
  MdsId id;
  bool master = false;
  std::string status;
  std::string addr;
  int64_t uptime_ms = 0;
  uint64_t commits = 0;           // since start
  uint32_t commits_per_s = 0;     // COMMITS: journal commit rate over the last 20 s
  uint32_t ctime_x10 = 0;         // %CTIME: share of time spent writing the journal, tenths
  uint32_t cpu_x10 = 0;           // %CPU: process CPU time per wall time, tenths
  uint64_t mem_bytes = 0;
  VS_FIELDS(id, master, status, addr, uptime_ms, commits, commits_per_s, ctime_x10, cpu_x10,
            mem_bytes)
};
struct CsInfo {
  CsId id;
  std::string status;  // active, inactive, offline, dropped; releasing during rm-cs
  std::string addr;
  std::string host_id;
  uint32_t tier = 0;
  uint64_t total_bytes = 0, free_bytes = 0;
  uint64_t replicas = 0, unique = 0;
  uint32_t qdepth_x10 = 0;
  uint32_t iowait_pct = 0, lat_avg_ms = 0, lat_max_ms = 0;  // last 20 s, as the CS measured them
  std::string flags;
  std::string location;  // its host's "ROOM.ROW.RACK", "" when not set
  VS_FIELDS(id, status, addr, host_id, tier, total_bytes, free_bytes, replicas, unique,
            qdepth_x10, iowait_pct, lat_avg_ms, lat_max_ms, flags, location)
};
struct ClientInfo {
  ClientId id;
  std::string host;
  uint32_t open_read = 0, open_write = 0;
  uint64_t read_bps = 0, write_bps = 0, read_ops = 0, write_ops = 0, fsyncs = 0;
  uint32_t lat_avg_ms = 0, lat_max_ms = 0;  // IOLAT: last 20 s, as the client measured it
  VS_FIELDS(id, host, open_read, open_write, read_bps, write_bps, read_ops, write_ops, fsyncs,
            lat_avg_ms, lat_max_ms)
};
struct EventInfo {
  int64_t time_ms = 0;
  std::string sys, sev, message;
  VS_FIELDS(time_ms, sys, sev, message)
};
struct ChunkStateCounts {
  uint64_t healthy = 0, degraded = 0, urgent = 0, blocked = 0, pending = 0, offline = 0,
           replicating = 0, overcommitted = 0, deleting = 0, void_ = 0, standby = 0;
  VS_FIELDS(healthy, degraded, urgent, blocked, pending, offline, replicating, overcommitted,
            deleting, void_, standby)
};
struct ClusterStatReply {
  std::string cluster;
  std::string status;  // healthy, degraded, failure, unknown
  int64_t epoch_uptime_ms = 0;
  uint32_t replicas_norm = 1, replicas_min = 1;
  uint64_t total_bytes = 0, free_bytes = 0, allocatable_bytes = 0;
  uint64_t files = 0, inodes = 0, chunks = 0, chunk_replicas = 0, fs_bytes = 0;
  ChunkStateCounts chunk_states;
  std::vector<MdsInfo> mds;
  std::vector<CsInfo> cs;
  std::vector<ClientInfo> clients;
  std::vector<EventInfo> events;
  // CS id -> why its removal (rm-cs) cannot go on now, for the --wait progress line.
  std::map<std::string, std::string> cs_notes;
  VS_FIELDS(cluster, status, epoch_uptime_ms, replicas_norm, replicas_min, total_bytes,
            free_bytes, allocatable_bytes, files, inodes, chunks, chunk_replicas, fs_bytes,
            chunk_states, mds, cs, clients, events, cs_notes)
};
struct FileChunkInfo {
  uint64_t index = 0;
  ChunkId id;
  uint64_t version = 0;
  std::string state;
  std::vector<CsId> replicas;
  VS_FIELDS(index, id, version, state, replicas)
};
struct FileInfoReply {
  Attr attr;
  uint32_t replicas_norm = 0, replicas_min = 0;
  std::vector<FileChunkInfo> chunks;
  VS_FIELDS(attr, replicas_norm, replicas_min, chunks)
};

// ---------- CS <-> MDS ----------
struct CsCreateReq {
  std::string host_id;
  uint32_t tier = 0;
  VS_FIELDS(host_id, tier)
};
struct CsCreateReply {
  CsId cs;
  VS_FIELDS(cs)
};
struct ChunkReplicaState {
  ChunkId id;
  uint64_t version = 0;
  uint64_t size_bytes = 0;
  VS_FIELDS(id, version, size_bytes)
};
struct CsRegisterReq {
  CsId cs;
  std::string host_id;
  uint32_t tier = 0;
  std::string addr;  // data service "host:port"
  uint64_t total_bytes = 0, free_bytes = 0;
  std::vector<ChunkReplicaState> chunks;
  bool checksums = true;  // flag C in stat
  std::vector<ChunkId> lost;  // replicas found damaged at start (kept in <repo>/quarantine)
  // Replicas that may lack writes that were acknowledged but not synced, or hold torn
  // ones: they were being written when the CS last stopped uncleanly (cs/intent_log.h).
  std::vector<ChunkId> suspect;
  // The host's location file, "ROOM.ROW.RACK" or "" (rack/row/room failure domains).
  std::string location;
  VS_FIELDS(cs, host_id, tier, addr, total_bytes, free_bytes, chunks, checksums, lost, suspect, location)
};
struct CsSetVersionReq {
  ChunkId chunk;
  uint64_t old_version = 0;
  uint64_t new_version = 0;
  VS_FIELDS(chunk, old_version, new_version)
};
struct CsRegisterReply {
  std::vector<ChunkId> delete_chunks;  // stale or unknown replicas to drop
  // Listed replicas that missed only version bumps: applied before the CS serves I/O.
  std::vector<CsSetVersionReq> set_versions;
  uint8_t encryption = 1;  // gen.encryption
  VS_FIELDS(delete_chunks, set_versions, encryption)
};
struct CsHeartbeat {
  CsId cs;
  uint64_t total_bytes = 0, free_bytes = 0;
  uint32_t qdepth_x10 = 0;
  uint32_t iowait_pct = 0, lat_avg_ms = 0, lat_max_ms = 0;
  int64_t oldest_io_ms = 0;  // age of the oldest disk operation still running (a hung disk: flag T)
  uint64_t io_errors = 0, csum_errors = 0;
  std::string repo;         // the repository path, for "hard error on <path>"
  bool repo_lost = false;   // the repository vanished under the running CS (flag R)
  std::string last_error;   // the latest I/O error, for the event log
  VS_FIELDS(cs, total_bytes, free_bytes, qdepth_x10, iowait_pct, lat_avg_ms, lat_max_ms, oldest_io_ms,
            io_errors, csum_errors, repo, repo_lost, last_error)
};
struct RmCsReq {
  CsId cs;
  bool force = false;   // -f: the CS is lost for good; drop it now, rebuild from the rest
  bool cancel = false;  // --cancel
  VS_FIELDS(cs, force, cancel)
};

// ---------- Data service ----------
struct CsWriteReq {
  ChunkId chunk;
  uint64_t version = 0;
  uint64_t offset = 0;         // within the chunk
  uint64_t chunk_size = 0;     // bound for offset+len
  std::vector<ReplicaLoc> chain;  // the CS after this one, in order
  bool sync = false;           // fdatasync before replying
  // > 0: no payload; [offset, offset+zero_len) reads as zeros afterwards and its space is
  // given back (truncate, punch hole, zero range).
  uint64_t zero_len = 0;
  // With zero_len: reserve the disk space of the range instead (fallocate), bytes unchanged.
  bool reserve = false;
  // End-to-end checksums: the CRC32C of each segment of the payload (common/crc32c.h:
  // SegmentCrcs, cut at 4 KiB of the chunk), from the client. Each CS checks them before it
  // forwards or stores anything (kBadChecksum on a mismatch) and stores the checksums built
  // from them, never ones recomputed over the bytes it received. Empty: no payload.
  std::vector<uint32_t> crcs;
  VS_FIELDS(chunk, version, offset, chunk_size, chain, sync, zero_len, reserve, crcs)
  // payload: the data
};
// Reply to CsWrite and CsSync. The receiving CS has the data (or synced) when the reply is
// not an error; `failed` lists downstream CS of the chain that did not, so the client can
// report them to the MDS (ARCHITECTURE §4: failure during a write).
struct CsWriteReply {
  std::vector<CsId> failed;
  std::string failure;  // what went wrong downstream, for the log and the user
  VS_FIELDS(failed, failure)
};
struct CsReadReq {
  ChunkId chunk;
  uint64_t version = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  bool want_crcs = false;  // reply with CsReadReply.crcs (end-to-end checksums)
  VS_FIELDS(chunk, version, offset, length, want_crcs)
  // reply: CsReadReply, payload exactly `length` bytes (zeros past the written end)
};
struct CsReadReply {
  // With want_crcs: the CRC32C of each segment of the payload (SegmentCrcs), derived from
  // the checksums stored with the chunk after the CS verified the bytes against them; the
  // reader checks the bytes it got against these.
  std::vector<uint32_t> crcs;
  VS_FIELDS(crcs)
};
struct CsSyncReq {
  ChunkId chunk;
  uint64_t version = 0;
  std::vector<ReplicaLoc> chain;
  VS_FIELDS(chunk, version, chain)
};
struct CsDeleteReq {
  ChunkId chunk;
  uint64_t max_version = UINT64_MAX;  // a newer replica (copied back since) is kept
  VS_FIELDS(chunk, max_version)
};
struct CsReplicateReq {
  ChunkId chunk;
  uint64_t version = 0;
  uint64_t chunk_size = 0;
  ReplicaLoc source;
  uint64_t max_bytes_per_s = 0;  // 0 = unlimited (mds.recovery.max_rate_mb)
  VS_FIELDS(chunk, version, chunk_size, source, max_bytes_per_s)
};
struct CsVerifyReq {
  ChunkId chunk;
  uint64_t version = 0;
  VS_FIELDS(chunk, version)
};
struct CsStatReq {
  ChunkId chunk;
  VS_FIELDS(chunk)
};
// Reply: ChunkReplicaState.
struct Empty {
  uint8_t reserved = 0;
  VS_FIELDS(reserved)
};

}  // namespace vstorage::proto
