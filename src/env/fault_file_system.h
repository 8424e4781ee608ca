// A FileSystem wrapper that fails or stalls chosen operations of the one below it (POSIX or
// in-memory), for tests of error paths and of what happens while an operation is in flight.
// Power cuts are the in-memory file system's (MemFileSystem::PowerCut); wrap one to have
// both.
//
// Every operation, on the file system or on a file it opened, goes through one check before
// it reaches the base:
//   1. it is counted (Calls),
//   2. the hook, if set, is called (without any lock of this wrapper held),
//   3. it blocks while a matching stall is in place (AddStall / ReleaseStall),
//   4. the first matching fault rule decides whether it fails; a failed operation does not
//      reach the base (except Close, which still releases the base file, as close(2) does,
//      and an Append with append_bytes_before_failing, which writes that much first).
// The error is the rule's code with the message "<op> <path>: injected fault #<id>".
//
// Thread-safe. Owns nothing: base and random must outlive it, and it must outlive the files
// and locks it returned. No call may be blocked in a stall when it is destroyed.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "env/file_system.h"
#include "env/random.h"

namespace vstorage::env {

enum class Op : uint8_t {
  kOpenWrite,  // NewWritableFile
  kOpenRead,   // NewRandomAccessFile
  kAppend,
  kSync,
  kTruncate,
  kClose,
  kRead,  // RandomAccessFile::ReadAt and Size
  kStat,  // Stat, and the helpers Exists and FileSize
  kListDir,
  kCreateDir,
  kRemoveDir,
  kRemove,
  kRename,  // matches a rule by either of its paths
  kSyncDir,
  kLock,
};
inline constexpr int kNumOps = static_cast<int>(Op::kLock) + 1;
const char* OpName(Op op);  // "open-write", "append", "sync", ...

// A set of operations: OpBit(Op::kSync) | OpBit(Op::kSyncDir).
using OpMask = uint32_t;
constexpr OpMask OpBit(Op op) { return OpMask{1} << static_cast<int>(op); }
inline constexpr OpMask kAllOps = (OpMask{1} << kNumOps) - 1;

inline constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

struct FaultRule {
  // A path starting with it matches ("/d/a" matches "/d/ab" too: end it with "/" to mean
  // what is inside a directory); "" matches every path.
  std::string path_prefix;
  OpMask ops = kAllOps;
  Code code = Code::kIoError;
  int64_t skip = 0;   // matching calls let through before the rule starts failing
  int64_t times = 1;  // failures before the rule retires; kForever never retires
  // Each matching call (after skip) fails with this probability, drawn from the wrapper's
  // Random (required when < 1).
  double probability = 1.0;
  // kAppend only: this many bytes of the data reach the file before the failure (a torn
  // write, as a disk filling up mid-write leaves).
  size_t append_bytes_before_failing = 0;
};

class FaultFileSystem : public FileSystem {
 public:
  // Called before each operation with the op and its path (a rename's source). May block;
  // must be thread-safe. Must not call this wrapper's Set/Add/Release methods.
  using Hook = std::function<void(Op op, const std::string& path)>;

  explicit FaultFileSystem(FileSystem* base, Random* random = nullptr);
  ~FaultFileSystem() override;

  // Returns the rule's id (> 0), used in the error message and by RemoveFault.
  int AddFault(FaultRule rule);
  void RemoveFault(int id);
  void ClearFaults();
  // Failures the rule has injected so far (also after it retired; 0 for an unknown id).
  int64_t Injected(int id) const;

  // Matching calls block before reaching the base until ReleaseStall(id). Returns the id.
  int AddStall(std::string path_prefix, OpMask ops);
  // Wakes every call blocked on the stall and retires it.
  void ReleaseStall(int id);
  // Calls blocked on the stall right now.
  int Stalled(int id) const;
  // Test handshake: waits in real time, at most timeout_ms, until n calls are blocked on the
  // stall. True when they are.
  bool WaitStalled(int id, int n, int64_t timeout_ms) const;

  void SetHook(Hook hook);  // an empty Hook removes it
  // Calls of op seen so far, failed and stalled ones included.
  int64_t Calls(Op op) const;

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

 private:
  class File;
  class Reader;
  struct Rule {
    FaultRule spec;
    int64_t seen = 0;      // matching calls
    int64_t injected = 0;  // failures
    bool retired = false;
  };
  struct Stall {
    std::string path_prefix;
    OpMask ops;
    int blocked = 0;
    bool released = false;
  };

  // Steps 1-4 above. `to` is a rename's destination (empty otherwise). On failure with
  // *append_prefix set, the caller writes that many bytes first.
  Status Check(Op op, const std::string& path, const std::string& to = {},
               size_t* append_prefix = nullptr);

  FileSystem* const base_;
  Random* const random_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  int next_id_ = 1;
  std::map<int, Rule> rules_;  // in id order: the oldest matching rule decides
  std::map<int, Stall> stalls_;
  std::shared_ptr<const Hook> hook_;
  int64_t calls_[kNumOps] = {};
};

}  // namespace vstorage::env
