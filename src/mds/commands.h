// The commands of the MDS state machine (ARCHITECTURE §2). Every change to the metadata is
// one Command: applied to MdsState and appended to the journal, replayed in order after a
// restart (and, with the MDS quorum, replicated to followers before it is applied there).
// A command carries everything Apply needs, including the time, so that applying the same
// sequence of commands always yields the same state. Numbers never change meaning.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ids.h"
#include "proto/messages.h"

namespace vstorage::mds {

enum class CommandType : uint16_t {
  kCreateNode = 1,
  kUnlink = 2,
  kRename = 3,
  kSetAttr = 4,
  kSetXattr = 5,
  kAllocChunk = 6,
  kUpdateChunk = 7,
  kCreateCs = 8,
  kUpdateCs = 9,
  kDropCs = 10,
  kSetConfig = 11,
  kAddEvent = 12,
  kSetCsReleasing = 13,  // rm-cs: move the data of a CS away (or --cancel)
  kSetConfigMany = 14,   // set-config K=V...: every pair or none
  kSetCsHost = 15,       // a CS started with a new host id (/etc/vstorage/host_id rewritten)
  kFreeOrphan = 16,      // the last opener of an unlinked file is gone: free it
  kLink = 17,            // a hard link: one more name for a file
  kRemoveCsReplicas = 18,  // a CS went offline: out of every chunk's list (not a last copy)
  kSetCsLocation = 19,     // a CS started on a host with another location (room.row.rack)
};

struct Command {
  CommandType type = CommandType::kAddEvent;
  int64_t time_ms = 0;  // wall clock of the master when the command was made
  std::string body;     // the encoded *Cmd struct below
  int64_t time_ns = 0;  // the same in nanoseconds (0 in records written before: time_ms)
  VS_FIELDS(type, time_ms, body, time_ns)
};

struct CreateNodeCmd {
  InodeId parent;
  std::string name;
  proto::NodeType type = proto::NodeType::kFile;
  uint32_t mode = 0644;
  std::string symlink_target;
  bool exclusive = true;
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;
  uint32_t umask = 0;  // the creator's, applied unless the directory has a default ACL
  VS_FIELDS(parent, name, type, mode, symlink_target, exclusive, uid, gid, rdev, umask)
};
struct UnlinkCmd {
  InodeId parent;
  std::string name;
  bool dir = false;
  // The file is open somewhere (the MDS saw a lease): only its name goes; the inode stays,
  // with nlink 0, on the orphan list until kFreeOrphan.
  bool keep_open = false;
  VS_FIELDS(parent, name, dir, keep_open)
};
struct LinkCmd {
  InodeId ino;
  InodeId new_parent;
  std::string new_name;
  VS_FIELDS(ino, new_parent, new_name)
};
struct FreeOrphanCmd {
  InodeId ino;
  VS_FIELDS(ino)
};
struct RenameCmd {
  InodeId parent;
  std::string name;
  InodeId new_parent;
  std::string new_name;
  bool keep_replaced = false;  // a file replaced at new_name is open: it becomes an orphan
  VS_FIELDS(parent, name, new_parent, new_name, keep_replaced)
};
struct SetAttrCmd {
  InodeId ino;
  uint32_t mask = 0;  // proto::SetAttrMask
  uint64_t size = 0;
  int64_t mtime_ms = 0;  // records written before mtime_ns: milliseconds
  uint32_t mode = 0;
  int64_t mtime_ns = 0, atime_ns = 0;
  uint32_t uid = 0, gid = 0;
  VS_FIELDS(ino, mask, size, mtime_ms, mode, mtime_ns, atime_ns, uid, gid)
};
struct SetXattrCmd {
  InodeId ino;
  std::string name;  // "replicas" or "chunk-size", or a user./trusted./security. attribute
  std::string value;
  uint32_t flags = 0;   // 1: must not exist yet (XATTR_CREATE), 2: must exist (XATTR_REPLACE)
  bool remove = false;
  VS_FIELDS(ino, name, value, flags, remove)
};
struct AllocChunkCmd {
  InodeId ino;
  uint64_t index = 0;
  uint64_t version = 1;
  std::vector<CsId> replicas;  // chain order
  VS_FIELDS(ino, index, version, replicas)
};
struct UpdateChunkCmd {
  ChunkId chunk;
  uint64_t version = 0;
  std::vector<CsId> replicas;
  // Compare-and-set: with cas, the command applies only if the chunk still has exactly
  // this version and replica list (the state the master read when it made the command);
  // otherwise kStaleVersion and nothing changes. Commands are made before the ones ahead
  // of them in the pipeline are applied, so a read-modify-write must say what it read.
  bool cas = false;
  uint64_t expect_version = 0;
  std::vector<CsId> expect_replicas;
  VS_FIELDS(chunk, version, replicas, cas, expect_version, expect_replicas)
};
// The CS is offline for good (mds.wd.offline_tout): it leaves the replica list of every
// chunk it is on, except where it is the only replica (that one waits for it). One command
// for the whole CS, however many chunks it held.
struct RemoveCsReplicasCmd {
  CsId cs;
  VS_FIELDS(cs)
};
struct CreateCsCmd {
  std::string host_id;
  uint32_t tier = 0;
  VS_FIELDS(host_id, tier)
};
struct UpdateCsCmd {
  CsId cs;
  std::string addr;
  uint32_t tier = 0;
  VS_FIELDS(cs, addr, tier)
};
// Marks a CS dropped and removes it from every chunk's replica list (rm-cs, when its data
// has moved away, or rm-cs -f for a CS that is lost).
struct DropCsCmd {
  CsId cs;
  VS_FIELDS(cs)
};
struct SetCsReleasingCmd {
  CsId cs;
  bool releasing = true;
  VS_FIELDS(cs, releasing)
};
// The CS now runs on the host with this id (guide 2.5.2.1, 8.1.7: a cloned host got a new
// host_id); failure domains follow it from here on.
struct SetCsHostCmd {
  CsId cs;
  std::string host_id;
  VS_FIELDS(cs, host_id)
};
// The CS's host is at this location (its location file, placement.h ValidLocation): the
// rack, row and room failure domains follow it from here on.
struct SetCsLocationCmd {
  CsId cs;
  std::string location;
  VS_FIELDS(cs, location)
};
struct SetConfigCmd {
  std::string key;
  std::string value;
  VS_FIELDS(key, value)
};
// Applied only when every pair is valid, so one set-config changes all or nothing.
struct SetConfigManyCmd {
  std::map<std::string, std::string> values;
  VS_FIELDS(values)
};
struct AddEventCmd {
  std::string sys = "MDS";
  std::string sev = "INF";  // INF, WRN, ERR
  std::string message;
  VS_FIELDS(sys, sev, message)
};

}  // namespace vstorage::mds
