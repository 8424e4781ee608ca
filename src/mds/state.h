// The MDS state machine: namespace, attributes, chunk maps, CS registry, cluster config and
// event log. Deterministic: the state is a function of the commands applied, in order
// (commands.h). Not thread-safe; the service serialises access. Soft state (liveness,
// leases, load) lives in the service, not here.
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "mds/commands.h"
#include "mds/placement.h"
#include "mds/state_tables.h"
#include "proto/messages.h"

namespace vstorage::mds {

inline constexpr size_t kMaxEvents = 1000;

struct ChunkInfo {
  ChunkId id;
  InodeId ino;
  uint64_t index = 0;
  uint64_t version = 1;
  std::vector<CsId> replicas;
  VS_FIELDS(id, ino, index, version, replicas)
};

struct CsRecord {
  CsId id;
  std::string host_id;
  uint32_t tier = 0;
  std::string addr;  // data service "host:port", empty until the CS first registers
  bool dropped = false;
  bool releasing = false;  // rm-cs in progress: its replicas are copied elsewhere
  // Master's wall clock at make-cs (the command's time); 0 for a CS made before snapshot
  // format 3. The watchdog gives a CS that never registered this long to start.
  int64_t created_ms = 0;
  // The host's location, "ROOM.ROW.RACK" or "" (placement.h ValidLocation); snapshot format 5.
  std::string location;
  VS_FIELDS(id, host_id, tier, addr, dropped, releasing, created_ms, location)
};

// Where a file's chunks go: its replica counts, tier and failure domain (inherited from the
// directory it was made in, changed with set-attr).
struct FilePlacement {
  uint32_t norm = 1, min = 1, tier = 0;
  FailureDomain domain = FailureDomain::kHost;
};

struct EventRecord {
  int64_t time_ms = 0;
  std::string sys, sev, message;
  VS_FIELDS(time_ms, sys, sev, message)
};

// Chunk replicas that stopped being referenced; the service deletes them on their CS.
struct FreedChunk {
  ChunkId id;
  std::vector<CsId> replicas;
  // A replica is deleted only if its version is at most this: a replica dropped at version
  // v and later copied back (always at a bumped version) survives a late delete.
  uint64_t max_version = UINT64_MAX;
};

struct ApplyResult {
  proto::Attr attr;             // kCreateNode: the new node
  ChunkId chunk;                // kAllocChunk
  CsId cs;                      // kCreateCs
  std::vector<FreedChunk> freed;
};

struct StateCounts {
  uint64_t files = 0, inodes = 0, chunks = 0, chunk_replicas = 0, file_bytes = 0;
};

// Parses "N" or "N:M" (1 <= M <= N <= kMaxReplicas; M defaults to ceil(N/2)).
Result<std::pair<uint32_t, uint32_t>> ParseReplicas(const std::string& v);
// Bytes with an optional K/M/G suffix; a power of two in [kMinChunkSizeBytes, 1 GiB].
Result<uint64_t> ParseChunkSizeValue(const std::string& v);
// 0..kMaxTier (guide 3.5.5).
Result<uint32_t> ParseTierValue(const std::string& v);
// disk, host, rack, row or room (guide 3.5.4.2, rack/row/room beyond it).
Result<FailureDomain> ParseFailureDomainValue(const std::string& v);

class MdsState {
 public:
  MdsState();  // a fresh cluster: the root directory, replicas 1:1, default config

  // Applies one command. On error the state is unchanged and the error names the cause.
  Result<ApplyResult> Apply(const Command& cmd);

  // Namespace queries.
  Result<proto::Attr> Lookup(InodeId parent, const std::string& name) const;
  Result<proto::Attr> GetAttr(InodeId ino) const;
  Result<std::vector<proto::DirEntry>> Readdir(InodeId ino) const;
  Result<std::string> Readlink(InodeId ino) const;
  // "/dir/file" of an inode (for events and messages); "" if it does not exist.
  std::string PathOf(InodeId ino) const;
  Result<std::map<std::string, std::string>> GetXattrs(InodeId ino) const;
  // (normal, minimum) replica counts of a file or directory.
  Result<std::pair<uint32_t, uint32_t>> ReplicasOf(InodeId ino) const;
  Result<FilePlacement> PlacementOf(InodeId ino) const;

  // Chunks.
  std::optional<ChunkInfo> GetChunk(InodeId ino, uint64_t index) const;
  std::optional<ChunkInfo> ChunkById(ChunkId id) const;
  std::vector<ChunkInfo> FileChunks(InodeId ino) const;
  // Every chunk, in chunk id order.
  void ForEachChunk(const std::function<void(const ChunkInfo&)>& fn) const;
  // A slice of that walk, for callers that let go of the state between slices: the chunks
  // with id >= from, at most max; returns the id to go on from, 0 at the end.
  uint64_t ForEachChunkFrom(uint64_t from, size_t max, const std::function<void(const ChunkInfo&)>& fn) const;
  // The chunks with a replica on cs (an index kept by Apply: O(chunks on cs), not O(all
  // chunks)), in no particular order; fn must not change the state.
  void ForEachChunkOnCs(CsId cs, const std::function<void(const ChunkInfo&)>& fn) const;
  size_t ChunkCountOnCs(CsId cs) const;

  // Chunk servers.
  Result<CsRecord> Cs(CsId id) const;
  std::vector<CsRecord> AllCs() const;

  // Cluster configuration: every known parameter with its value.
  std::map<std::string, std::string> Config() const;
  int64_t ConfigValue(const std::string& key) const;
  // OK when key is a known parameter and value is in its range; otherwise kInvalidArgument
  // naming the parameter and what it accepts. Applying a SetConfig command checks the same.
  static Status CheckConfig(const std::string& key, const std::string& value);

  const std::deque<EventRecord>& Events() const { return events_; }
  const std::set<InodeId>& Orphans() const { return orphans_; }
  StateCounts Counts() const;
  // Counts() in slices: adds the files (and their bytes) among at most max inodes with
  // number >= from to *c and returns the number to go on from, 0 at the end; inodes and
  // chunks are set at once, chunk_replicas is left alone (a chunk walk counts them).
  uint64_t CountFilesFrom(uint64_t from, size_t max, StateCounts* c) const;

  // Snapshot image (journal.h). Decode replaces the whole state.
  std::string Encode() const;
  Status Decode(std::string_view image);

  bool operator==(const MdsState& o) const { return Encode() == o.Encode(); }

 private:
  // A chunk reference of a file: chunk index -> chunk id (the file's list is sorted by index).
  struct ChunkRef {
    uint64_t index = 0;
    ChunkId id;
  };
  // What only some inodes have: a directory's names, a symlink's target, extended
  // attributes, a device number. An empty file has none of it.
  struct InodeExtra {
    DirIndex children;  // directories
    std::string symlink;
    std::map<std::string, std::string> xattrs;  // user./trusted./security. attributes, POSIX ACLs
    uint64_t rdev = 0;
  };
  // proto::Attr without its padding, plus the namespace links (112 bytes).
  struct Inode {
    uint64_t ino = 0;
    InodeId parent;
    uint64_t size = 0, chunk_size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0, atime_ns = 0;
    uint32_t mode = 0, nlink = 1, uid = 0, gid = 0;
    proto::NodeType type = proto::NodeType::kFile;
    uint8_t norm = 1, min = 1;
    uint8_t tier = 0;
    FailureDomain domain = FailureDomain::kHost;
    bool dead = false;
    std::vector<ChunkRef> chunks;  // files
    CopyPtr<InodeExtra> extra;
    uint64_t key() const { return ino; }
    void set_key(uint64_t k) { ino = k; }
    bool is_dir() const { return type == proto::NodeType::kDir; }
    proto::Attr attr() const;
    const std::string& symlink() const;
    const DirIndex* children() const { return extra ? &extra->children : nullptr; }
    size_t child_count() const { return extra ? extra->children.size() : 0; }
    InodeId Child(std::string_view name) const { return extra ? extra->children.Find(name) : InodeId{}; }
  };
  // A chunk (56 bytes): up to kInlineReplicas replica ids below 2^32 inline, otherwise all
  // of them in spilled_replicas_.
  static constexpr size_t kInlineReplicas = 5;
  struct Chunk {
    uint64_t id = 0;
    InodeId ino;
    uint64_t index = 0;
    uint64_t version = 1;
    uint32_t replicas[kInlineReplicas] = {};
    uint8_t n_replicas = 0;
    bool spilled = false;
    bool dead = false;
    uint64_t key() const { return id; }
    void set_key(uint64_t k) { id = k; }
  };

  Result<const Inode*> Find(InodeId ino) const;
  Result<const Inode*> Dir(InodeId ino) const;
  Inode& At(InodeId ino) { return *inodes_.Find(ino.v); }
  const Inode& At(InodeId ino) const { return *inodes_.Find(ino.v); }
  Result<ApplyResult> ApplyOne(const Command& cmd);
  Result<ApplyResult> CreateNode(const CreateNodeCmd& c, int64_t now);
  Result<ApplyResult> Unlink(const UnlinkCmd& c, int64_t now);
  void Orphan(InodeId ino, int64_t now);
  Result<ApplyResult> Link(const LinkCmd& c, int64_t now);
  Result<ApplyResult> FreeOrphan(const FreeOrphanCmd& c);
  Result<ApplyResult> Rename(const RenameCmd& c, int64_t now);
  Result<ApplyResult> SetAttr(const SetAttrCmd& c, int64_t now);
  Result<ApplyResult> SetXattr(const SetXattrCmd& c, int64_t now);
  Result<ApplyResult> SetAcl(const SetXattrCmd& c, int64_t now);
  static void ChmodAcl(Inode& n);  // after n.mode changed: its access ACL follows
  static Status CheckXattrSpace(const Inode& n, const std::string& name, const std::string& value);
  static void InheritAcl(const Inode& dir, const CreateNodeCmd& c, Inode* n);
  Result<ApplyResult> AllocChunk(const AllocChunkCmd& c);
  Result<ApplyResult> UpdateChunk(const UpdateChunkCmd& c);
  Result<ApplyResult> SetConfig(const SetConfigCmd& c);
  Result<ApplyResult> SetConfigMany(const SetConfigManyCmd& c);
  Result<ApplyResult> RemoveCsFromChunks(CsId cs, bool drop);
  // Removes a file's chunks at index >= first_index into `freed`.
  void FreeChunks(Inode& n, uint64_t first_index, std::vector<FreedChunk>* freed);
  void RemoveInode(InodeId ino, std::vector<FreedChunk>* freed);

  // Chunk replicas, kept in step with the per-CS index.
  std::vector<CsId> ReplicaList(const Chunk& c) const;
  ChunkInfo InfoOf(const Chunk& c) const;
  void SetReplicas(Chunk& c, const std::vector<CsId>& replicas);
  Chunk& InsertChunk(const ChunkInfo& info);
  void EraseChunk(Chunk& c);
  Status InsertDecodedInode(const proto::Attr& a, InodeId parent, std::string symlink, uint32_t norm, uint32_t min,
                            uint32_t tier, uint32_t domain,
                            const std::vector<proto::DirEntry>& children, std::map<std::string, std::string> xattrs);
  Status InsertDecodedChunk(const ChunkInfo& c, Inode** last);
  Status DecodeFormat45(std::string_view image, uint32_t format);
  // After a decode: what the rest relies on (ids handed out next are above those in use;
  // every entry names an inode, a file has as many names as links, every directory is
  // reached from the root by its parent link exactly once); kCorrupt otherwise.
  Status CheckDecoded();

  IdTable<Inode> inodes_;
  // Files unlinked (or replaced by a rename) while open: no name, nlink 0, data kept until
  // kFreeOrphan. Part of the state (in snapshots as inodes with nlink 0).
  std::set<InodeId> orphans_;
  IdTable<Chunk> chunks_;
  std::map<uint64_t, std::vector<CsId>> spilled_replicas_;  // chunk id -> replicas
  std::map<CsId, U64Set> chunks_by_cs_;                     // CS -> ids of its chunks
  std::map<CsId, CsRecord> cs_;
  std::map<std::string, std::string> config_;  // only values set explicitly
  std::deque<EventRecord> events_;
  uint64_t next_ino_ = 2, next_chunk_ = 1, next_cs_ = kFirstCsId;
};

}  // namespace vstorage::mds
