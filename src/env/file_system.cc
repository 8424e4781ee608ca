#include "env/file_system.h"

#include <algorithm>

namespace vstorage::env {

std::string DirName(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;  // "a/b/" names "a/b"
  size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  while (slash > 0 && path[slash - 1] == '/') --slash;
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

Result<std::string> FileSystem::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, NewRandomAccessFile(path));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > kMaxReadFileBytes)
    return Err(Code::kTooBig, "read " + path + ": " + std::to_string(size) +
                                  " bytes, more than ReadFile takes (" +
                                  std::to_string(kMaxReadFileBytes) + ")");
  // Read to the end rather than to `size`: the file may grow meanwhile, and some files
  // (/proc) report no size at all.
  std::string out(std::max<uint64_t>(size + 1, 4096), '\0');  // +1: room to see the end
  size_t got = 0;
  for (;;) {
    if (got == out.size()) {
      if (out.size() > kMaxReadFileBytes)
        return Err(Code::kTooBig, "read " + path + ": grew past what ReadFile takes (" +
                                      std::to_string(kMaxReadFileBytes) + " bytes)");
      out.resize(std::min<uint64_t>(out.size() * 2, kMaxReadFileBytes + 1));
    }
    ASSIGN_OR_RETURN(size_t n, f->ReadAt(got, out.data() + got, out.size() - got));
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

Status FileSystem::WriteFileAtomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, NewWritableFile(tmp, WriteMode::kTruncate));
    RETURN_IF_ERROR(f->Append(data));
    RETURN_IF_ERROR(f->Sync());
    RETURN_IF_ERROR(f->Close());
    return Rename(tmp, path);
  }();
  if (!st.ok()) {
    // Best effort: a leftover temp file is harmless (the next write truncates it).
    (void)Remove(tmp);
    return st;
  }
  return SyncDir(DirName(path));
}

Result<bool> FileSystem::Exists(const std::string& path) {
  Result<FileInfo> r = Stat(path);
  if (r.ok()) return true;
  if (r.status().code() == Code::kNotFound) return false;
  return r.status();
}

Result<uint64_t> FileSystem::FileSize(const std::string& path) {
  ASSIGN_OR_RETURN(FileInfo info, Stat(path));
  if (info.is_dir) return Err(Code::kIsDir, "size " + path + ": is a directory");
  return info.size_bytes;
}

Status FileSystem::CreateDirs(const std::string& dir) {
  size_t pos = 0;
  while (pos < dir.size()) {
    size_t slash = dir.find('/', pos + 1);
    if (slash == std::string::npos) slash = dir.size();
    std::string prefix = dir.substr(0, slash);
    pos = slash;
    if (prefix.empty() || prefix.back() == '/') continue;  // the root, or "//"
    Status st = CreateDir(prefix);
    if (!st.ok() && st.code() != Code::kExists) return st;
  }
  // The last component may exist as a file: that is not a directory.
  ASSIGN_OR_RETURN(FileInfo info, Stat(dir));
  if (!info.is_dir) return Err(Code::kNotDir, "mkdir " + dir + ": exists and is not a directory");
  return Status::Ok();
}

}  // namespace vstorage::env
