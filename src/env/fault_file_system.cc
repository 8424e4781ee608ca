#include "env/fault_file_system.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace vstorage::env {

const char* OpName(Op op) {
  switch (op) {
    case Op::kOpenWrite: return "open-write";
    case Op::kOpenRead: return "open-read";
    case Op::kAppend: return "append";
    case Op::kSync: return "sync";
    case Op::kTruncate: return "truncate";
    case Op::kClose: return "close";
    case Op::kRead: return "read";
    case Op::kStat: return "stat";
    case Op::kListDir: return "list";
    case Op::kCreateDir: return "mkdir";
    case Op::kRemoveDir: return "rmdir";
    case Op::kRemove: return "remove";
    case Op::kRename: return "rename";
    case Op::kSyncDir: return "sync-dir";
    case Op::kLock: return "lock";
  }
  return "unknown";
}

namespace {

bool HasPrefix(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

class FaultFileSystem::File : public WritableFile {
 public:
  File(FaultFileSystem* fs, std::unique_ptr<WritableFile> base) : fs_(fs), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    size_t prefix = 0;
    Status st = fs_->Check(Op::kAppend, path(), {}, &prefix);
    if (!st.ok()) {
      if (prefix > 0) (void)base_->Append(data.substr(0, std::min(prefix, data.size())));
      return st;
    }
    return base_->Append(data);
  }
  Status Sync() override {
    RETURN_IF_ERROR(fs_->Check(Op::kSync, path()));
    return base_->Sync();
  }
  Status Truncate(uint64_t size_bytes) override {
    RETURN_IF_ERROR(fs_->Check(Op::kTruncate, path()));
    return base_->Truncate(size_bytes);
  }
  Status Close() override {
    Status st = fs_->Check(Op::kClose, path());
    Status closed = base_->Close();  // released even when the close "fails", as close(2)
    return st.ok() ? closed : st;
  }
  uint64_t Size() const override { return base_->Size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultFileSystem* const fs_;
  const std::unique_ptr<WritableFile> base_;
};

class FaultFileSystem::Reader : public RandomAccessFile {
 public:
  Reader(FaultFileSystem* fs, std::unique_ptr<RandomAccessFile> base) : fs_(fs), base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    RETURN_IF_ERROR(fs_->Check(Op::kRead, path()));
    return base_->ReadAt(offset, buf, n);
  }
  Result<uint64_t> Size() const override {
    RETURN_IF_ERROR(fs_->Check(Op::kRead, path()));
    return base_->Size();
  }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultFileSystem* const fs_;
  const std::unique_ptr<RandomAccessFile> base_;
};

FaultFileSystem::FaultFileSystem(FileSystem* base, Random* random) : base_(base), random_(random) {
  VS_CHECK(base_ != nullptr);
}

FaultFileSystem::~FaultFileSystem() {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, s] : stalls_) VS_CHECK(s.blocked == 0);
}

int FaultFileSystem::AddFault(FaultRule rule) {
  VS_CHECK(rule.probability >= 1 || random_ != nullptr);
  VS_CHECK(rule.skip >= 0 && rule.times > 0);
  std::lock_guard<std::mutex> l(mu_);
  int id = next_id_++;
  rules_[id].spec = std::move(rule);
  return id;
}

void FaultFileSystem::RemoveFault(int id) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.erase(id);
}

void FaultFileSystem::ClearFaults() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

int64_t FaultFileSystem::Injected(int id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = rules_.find(id);
  return it == rules_.end() ? 0 : it->second.injected;
}

int FaultFileSystem::AddStall(std::string path_prefix, OpMask ops) {
  std::lock_guard<std::mutex> l(mu_);
  int id = next_id_++;
  Stall& s = stalls_[id];
  s.path_prefix = std::move(path_prefix);
  s.ops = ops;
  return id;
}

void FaultFileSystem::ReleaseStall(int id) {
  std::lock_guard<std::mutex> l(mu_);
  stalls_.erase(id);
  cv_.notify_all();
}

int FaultFileSystem::Stalled(int id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = stalls_.find(id);
  return it == stalls_.end() ? 0 : it->second.blocked;
}

bool FaultFileSystem::WaitStalled(int id, int n, int64_t timeout_ms) const {
  std::unique_lock<std::mutex> l(mu_);
  // Real time on purpose: the test's safety net against a call that never comes.
  return cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] {
    auto it = stalls_.find(id);
    return it != stalls_.end() && it->second.blocked >= n;
  });
}

void FaultFileSystem::SetHook(Hook hook) {
  std::lock_guard<std::mutex> l(mu_);
  hook_ = hook ? std::make_shared<const Hook>(std::move(hook)) : nullptr;
}

int64_t FaultFileSystem::Calls(Op op) const {
  std::lock_guard<std::mutex> l(mu_);
  return calls_[static_cast<int>(op)];
}

Status FaultFileSystem::Check(Op op, const std::string& path, const std::string& to, size_t* append_prefix) {
  const OpMask bit = OpBit(op);
  auto matches = [&](const std::string& prefix) {
    return HasPrefix(path, prefix) || (!to.empty() && HasPrefix(to, prefix));
  };
  std::shared_ptr<const Hook> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++calls_[static_cast<int>(op)];
    hook = hook_;
  }
  if (hook) (*hook)(op, path);

  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    auto it = std::find_if(stalls_.begin(), stalls_.end(),
                           [&](const auto& s) { return (s.second.ops & bit) && matches(s.second.path_prefix); });
    if (it == stalls_.end()) break;
    const int id = it->first;
    ++it->second.blocked;
    cv_.notify_all();  // WaitStalled
    cv_.wait(l, [&] { return stalls_.count(id) == 0; });
  }

  for (auto& [id, rule] : rules_) {
    const FaultRule& spec = rule.spec;
    if (rule.retired || !(spec.ops & bit) || !matches(spec.path_prefix)) continue;
    if (++rule.seen <= spec.skip) continue;
    if (spec.probability < 1 && !random_->Bernoulli(spec.probability)) continue;
    if (++rule.injected >= spec.times) rule.retired = true;
    if (append_prefix != nullptr && op == Op::kAppend) *append_prefix = spec.append_bytes_before_failing;
    std::string what = to.empty() ? path : path + " -> " + to;
    return Err(spec.code, std::string(OpName(op)) + " " + what + ": injected fault #" + std::to_string(id));
  }
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultFileSystem::NewWritableFile(const std::string& path, WriteMode mode) {
  RETURN_IF_ERROR(Check(Op::kOpenWrite, path));
  ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f, base_->NewWritableFile(path, mode));
  return std::unique_ptr<WritableFile>(std::make_unique<File>(this, std::move(f)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultFileSystem::NewRandomAccessFile(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kOpenRead, path));
  ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> f, base_->NewRandomAccessFile(path));
  return std::unique_ptr<RandomAccessFile>(std::make_unique<Reader>(this, std::move(f)));
}

Result<FileInfo> FaultFileSystem::Stat(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kStat, path));
  return base_->Stat(path);
}

Result<std::vector<std::string>> FaultFileSystem::ListDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kListDir, dir));
  return base_->ListDir(dir);
}

Status FaultFileSystem::CreateDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kCreateDir, dir));
  return base_->CreateDir(dir);
}

Status FaultFileSystem::RemoveDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kRemoveDir, dir));
  return base_->RemoveDir(dir);
}

Status FaultFileSystem::Remove(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kRemove, path));
  return base_->Remove(path);
}

Status FaultFileSystem::Rename(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(Check(Op::kRename, from, to));
  return base_->Rename(from, to);
}

Status FaultFileSystem::SyncDir(const std::string& dir) {
  RETURN_IF_ERROR(Check(Op::kSyncDir, dir));
  return base_->SyncDir(dir);
}

Result<std::unique_ptr<FileLock>> FaultFileSystem::LockFile(const std::string& path) {
  RETURN_IF_ERROR(Check(Op::kLock, path));
  return base_->LockFile(path);
}

}  // namespace vstorage::env
