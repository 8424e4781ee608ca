// Files behind an interface, with three implementations: POSIX (NewPosixFileSystem below;
// env/posix.cc is the only place that makes file syscalls), in-memory with a model of what survives a power cut
// (env/mem_file_system.h) and a fault-injecting wrapper over either
// (env/fault_file_system.h).
//
// Durability contract, the same for every implementation and the one callers must write to:
//  * Bytes appended or cut by Truncate are durable only after WritableFile::Sync()
//    (fdatasync) returns OK on that file.
//  * A name created, removed or renamed in a directory (a file, a directory, a rename's both
//    ends) is durable only after SyncDir() of that directory returns OK. Syncing a file does
//    not make its name durable; a new directory needs SyncDir of its parent.
//  * So a file that must survive is: created, appended, Sync()ed, and its directory
//    SyncDir()ed; WriteFileAtomic() below does all of it for a whole file.
//
// Paths: the POSIX file system takes any path the kernel does; the in-memory one takes only
// absolute paths without "." or ".." components. Portable callers use absolute paths.
// Errors: Status with the Code of the failure (kNotFound, kExists, kNotDir, kIsDir,
// kNotEmpty, kNoSpace, kBusy, kPermission, kNameTooLong, kIoError ...) and a message
// "<op> <path>: <reason>".
//
// Ownership: a FileSystem must outlive every file and lock it returned; the caller owns those.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vstorage::env {

// ReadFile refuses larger files (stream them with ReadAt).
inline constexpr uint64_t kMaxReadFileBytes = 4ull << 30;

// A file open for appending. Append, Truncate and Close come from one thread at a time; Sync
// and Size may run concurrently with them from another thread (a journal appends the next
// batch while the previous one syncs), and Sync then makes durable at least everything
// appended before it was called. One writer per file: two WritableFiles appending to the
// same file interleave in an unspecified order.
class WritableFile {
 public:
  // Closes the file if Close() was not called; an error of that close is lost.
  virtual ~WritableFile() = default;
  // Appends data at the end of the file. On error a prefix of data may have been appended:
  // the caller that cares (a journal) cuts the file back with Truncate.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync: every byte appended and every Truncate so far is durable when it returns OK.
  virtual Status Sync() = 0;
  // Sets the file's size (cutting a torn tail, or zero-extending); the next Append goes to
  // the new end. Durable after Sync().
  virtual Status Truncate(uint64_t size_bytes) = 0;
  // Releases the file; does not sync. Any call after Close (a second Close included) is a
  // programmer error and aborts.
  virtual Status Close() = 0;
  // The size of the file as this handle has made it (where the next Append goes).
  virtual uint64_t Size() const = 0;
  virtual const std::string& path() const = 0;
};

// A file open for reading at any offset. Thread-safe: ReadAt may be called from several
// threads at once.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to n bytes at offset into buf; returns how many were read, fewer than n only at
  // the end of the file (0 at or past it).
  virtual Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual const std::string& path() const = 0;
};

// An exclusive lock on a file, held until this object is destroyed. A second LockFile of the
// same path, from this process or another, is kBusy while it is held.
class FileLock {
 public:
  virtual ~FileLock() = default;
  virtual const std::string& path() const = 0;
};

enum class WriteMode {
  kTruncate,  // create, or empty an existing file (O_CREAT | O_TRUNC)
  kAppend,    // create, or keep an existing file and append at its end (O_CREAT)
};

struct FileInfo {
  bool is_dir = false;
  uint64_t size_bytes = 0;  // 0 for a directory
};

// Thread-safe: every implementation may be called from several threads at once.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                WriteMode mode) = 0;
  // kIsDir for a directory.
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  // Names in the directory, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // One level; kExists when the name exists (as a file or directory).
  virtual Status CreateDir(const std::string& dir) = 0;
  // An empty directory; kNotEmpty otherwise.
  virtual Status RemoveDir(const std::string& dir) = 0;
  // A file (kIsDir for a directory). Open handles keep working on the removed file.
  virtual Status Remove(const std::string& path) = 0;
  // Atomically replaces `to` (a file by a file, or an empty directory by a directory).
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync of a directory: makes the names created, removed and renamed in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Creates the file if needed and takes an exclusive lock on it (flock); kBusy if held.
  // Creating the lock file is a name change like any other (durable after SyncDir).
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  // Helpers built on the operations above (so a fault wrapper sees each step).

  // The whole file; kTooBig past kMaxReadFileBytes.
  Result<std::string> ReadFile(const std::string& path);
  // Replaces the file so that after a crash it holds either its old content or data, never
  // a mix: writes path + ".tmp", syncs it, renames it over path and syncs the directory.
  // OK means data is durable. Callers must not write the same path concurrently. If the
  // final SyncDir fails, the rename is done but not durable: the file reads as new now and
  // may be old after a crash.
  Status WriteFileAtomic(const std::string& path, std::string_view data);
  // false only when the path does not exist (kNotFound); other errors are returned.
  Result<bool> Exists(const std::string& path);
  // kIsDir for a directory.
  Result<uint64_t> FileSize(const std::string& path);
  // Every missing directory along dir (mkdir -p); no SyncDir.
  Status CreateDirs(const std::string& dir);
};

// The POSIX file system (env/posix.cc: every file syscall of the project's Env lives there).
// Paths are passed to the kernel as they are; files it creates are 0600 (owner only: an MDS
// journal holds every name and attribute of the cluster). The caller owns it.
std::unique_ptr<FileSystem> NewPosixFileSystem();

// "a/b" -> "a", "/b" -> "/", "b" -> ".".
std::string DirName(const std::string& path);
// path + "/" + name without doubling the slash.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace vstorage::env
