// An in-memory FileSystem that remembers, besides what a running process sees, what a disk
// would still hold after a power cut, and can cut the power (PowerCut). For tests and the
// deterministic simulator; the same calls and error codes as the POSIX one.
//
// Durability model (about the weakest a POSIX file system allows, so that a missing Sync or
// SyncDir shows up as lost data here rather than on a customer's disk):
//
//  * Files are inodes: byte strings with a "live" content (what reads return) and a
//    "synced" content (what survives). WritableFile::Sync() makes synced = live. Appends
//    and truncations after the last Sync are unsynced; a power cut restores the synced
//    content. Opening an existing file with WriteMode::kTruncate is a truncation like any
//    other. Sync of a file never makes its name durable.
//  * Directories hold a live and a durable map of names to inodes. Every create (file,
//    directory, lock file), remove, and rename changes the live maps at once and is queued
//    as a pending namespace change. SyncDir(d) makes durable every pending change that
//    touches d (a rename touches both its directories and is committed whole), and with it,
//    transitively, each earlier pending change that touches a (directory, name) entry a
//    committed one touches. So every entry ends in a state it really had, and a durable file
//    that was renamed is found under exactly one of the names it had, never two or none. A
//    rename of a directory also commits every change before it (a journalling file system
//    commits in order), so that no directory can become its own ancestor.
//  * PowerCut() then rebuilds the live tree from the durable maps, starting at the root: a
//    name not made durable disappears (with everything under it), a removed or renamed
//    name not made durable comes back, and each surviving file holds its synced content. A
//    new directory's entries are lost with it unless its parent was synced too.
//  * With PowerCut(random) a file whose unsynced change is a pure append keeps a random
//    prefix of the appended bytes (some pages reached the disk): a torn tail.
//  * Real file systems usually keep more (ext4 commits its journal every few seconds, and
//    fdatasync of a new file often commits its name too): code that survives these power
//    cuts does not depend on that luck.
//  * Bound: at most kMaxPendingNamespaceOps changes wait for a SyncDir; past that the oldest
//    half is committed in order, as a kernel would write back its journal. Such a prefix of
//    history is a state a real disk can be left in, so it weakens no test that syncs.
//
// PowerCut also kills the "process": every WritableFile and RandomAccessFile opened before it
// fails with kIoError from then on (destroying them is safe), and every FileLock is released
// (destroying an old one later leaves a new holder's lock alone).
//
// Paths are absolute ("/a/b"); repeated and trailing slashes are ignored; "." and ".."
// components and relative paths are kInvalidArgument. The root "/" always exists. There are
// no symlinks, hard links, permissions or timestamps.
//
// Thread-safe: one mutex guards the whole tree, every file and every handle. Deterministic:
// results depend only on the sequence of calls (and the Random given to PowerCut).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "env/file_system.h"
#include "env/random.h"

namespace vstorage::env {

// Largest in-memory file (Append and Truncate past it are kTooBig). The model keeps a synced
// copy besides the live content, so a file costs up to twice its size.
inline constexpr uint64_t kMaxMemFileBytes = 256ull << 20;
// Pending namespace changes kept before the oldest half is committed (see above).
inline constexpr size_t kMaxPendingNamespaceOps = 1u << 16;

class MemFileSystem : public FileSystem {
 public:
  struct Options {
    uint64_t max_file_bytes = kMaxMemFileBytes;  // at most kMaxMemFileBytes (checked)
  };
  MemFileSystem();
  explicit MemFileSystem(Options options);
  ~MemFileSystem() override;
  MemFileSystem(const MemFileSystem&) = delete;
  MemFileSystem& operator=(const MemFileSystem&) = delete;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        WriteMode mode) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  Result<FileInfo> Stat(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveDir(const std::string& dir) override;
  Status Remove(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Drops every byte and every namespace change not yet synced, as described above, and
  // invalidates every open handle and lock. torn_tails (may be null, not owned, used only
  // during the call) lets appended-but-unsynced tails survive in part.
  void PowerCut(Random* torn_tails = nullptr);

  // Over the files reachable from the root: live bytes past the prefix each file has synced,
  // plus synced bytes an unsynced truncation cut. 0 when every file's content is durable
  // (names aside).
  uint64_t UnsyncedBytes() const;
  // Namespace changes waiting for a SyncDir.
  size_t PendingNamespaceOps() const;

 private:
  struct Node;
  struct PendingOp;
  class File;
  class Reader;
  class Lock;
  using NodePtr = std::shared_ptr<Node>;
  struct Resolved;

  // All private helpers expect mu_ held.
  Result<Resolved> Resolve(const std::string& op, const std::string& path) const;
  Status CheckHandle(uint64_t generation, const std::string& op, const std::string& path) const;
  void AddPendingOp(PendingOp op);
  void CommitSelected(const std::vector<bool>& selected);

  const Options options_;
  mutable std::mutex mu_;
  NodePtr root_;
  std::vector<PendingOp> pending_;
  uint64_t generation_ = 0;  // bumped by PowerCut: older handles are dead
  uint64_t next_lock_token_ = 1;
  std::map<const Node*, uint64_t> locks_;  // locked inode -> token of the FileLock holding it
};

}  // namespace vstorage::env
