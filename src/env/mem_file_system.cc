#include "env/mem_file_system.h"

#include <algorithm>
#include <set>
#include <utility>

#include "common/limits.h"

namespace vstorage::env {

struct MemFileSystem::Node {
  explicit Node(bool dir) : is_dir(dir) {}
  const bool is_dir;
  // A file: live content, content as of the last Sync, and the length of their common prefix
  // (data[0, clean) == synced[0, clean)), so that a Sync copies only what changed.
  std::string data;
  std::string synced;
  size_t clean = 0;
  // A directory.
  std::map<std::string, NodePtr> live;
  std::map<std::string, NodePtr> durable;
};

// One namespace change as it will be replayed on the durable maps: each entry sets
// dir->durable[name] to value, or erases it when value is null.
struct MemFileSystem::PendingOp {
  struct Entry {
    NodePtr dir;
    std::string name;
    NodePtr value;
  };
  Entry entries[2];
  int count = 1;
  bool barrier = false;  // a directory rename: commits everything before it
};

struct MemFileSystem::Resolved {
  NodePtr parent;  // null for the root
  std::string name;
  NodePtr node;      // null when the name does not exist
  std::string norm;  // "/a/b"
};

namespace {

Status Fail(Code code, const std::string& op, const std::string& path, const char* why) {
  return Err(code, op + " " + path + ": " + why);
}

}  // namespace

// --- handles ---

class MemFileSystem::File : public WritableFile {
 public:
  File(MemFileSystem* fs, NodePtr node, std::string path, uint64_t generation)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), generation_(generation) {}

  Status Append(std::string_view data) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    VS_CHECK(!closed_);
    RETURN_IF_ERROR(fs_->CheckHandle(generation_, "append", path_));
    if (data.size() > fs_->options_.max_file_bytes - node_->data.size())
      return TooBig("append", node_->data.size() + data.size());
    node_->data.append(data);
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    VS_CHECK(!closed_);
    RETURN_IF_ERROR(fs_->CheckHandle(generation_, "sync", path_));
    Node& n = *node_;
    n.synced.resize(n.clean);
    n.synced.append(n.data, n.clean);
    n.clean = n.data.size();
    return Status::Ok();
  }

  Status Truncate(uint64_t size_bytes) override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    VS_CHECK(!closed_);
    RETURN_IF_ERROR(fs_->CheckHandle(generation_, "truncate", path_));
    if (size_bytes > fs_->options_.max_file_bytes) return TooBig("truncate", size_bytes);
    Node& n = *node_;
    if (size_bytes < n.data.size()) n.clean = std::min<size_t>(n.clean, size_bytes);
    n.data.resize(size_bytes, '\0');
    return Status::Ok();
  }

  Status Close() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    VS_CHECK(!closed_);
    closed_ = true;
    return fs_->CheckHandle(generation_, "close", path_);
  }

  uint64_t Size() const override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    return node_->data.size();
  }
  const std::string& path() const override { return path_; }

 private:
  Status TooBig(const char* op, uint64_t size) const {
    return Err(Code::kTooBig, std::string(op) + " " + path_ + ": " + std::to_string(size) +
                                  " bytes, more than an in-memory file holds (" +
                                  std::to_string(fs_->options_.max_file_bytes) + ")");
  }

  MemFileSystem* const fs_;
  const NodePtr node_;
  const std::string path_;
  const uint64_t generation_;
  bool closed_ = false;
};

class MemFileSystem::Reader : public RandomAccessFile {
 public:
  Reader(const MemFileSystem* fs, NodePtr node, std::string path, uint64_t generation)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), generation_(generation) {}

  Result<size_t> ReadAt(uint64_t offset, char* buf, size_t n) const override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    RETURN_IF_ERROR(fs_->CheckHandle(generation_, "read", path_));
    const std::string& d = node_->data;
    if (offset >= d.size()) return size_t{0};
    size_t len = std::min<uint64_t>(n, d.size() - offset);
    std::copy_n(d.data() + offset, len, buf);
    return len;
  }

  Result<uint64_t> Size() const override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    RETURN_IF_ERROR(fs_->CheckHandle(generation_, "stat", path_));
    return uint64_t{node_->data.size()};
  }

  const std::string& path() const override { return path_; }

 private:
  const MemFileSystem* const fs_;
  const NodePtr node_;
  const std::string path_;
  const uint64_t generation_;
};

class MemFileSystem::Lock : public FileLock {
 public:
  Lock(MemFileSystem* fs, NodePtr node, std::string path, uint64_t generation, uint64_t token)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), generation_(generation), token_(token) {}
  ~Lock() override {
    std::lock_guard<std::mutex> l(fs_->mu_);
    // After a power cut the inode may be locked again by someone else: leave that lock be.
    auto it = fs_->locks_.find(node_.get());
    if (generation_ == fs_->generation_ && it != fs_->locks_.end() && it->second == token_)
      fs_->locks_.erase(it);
  }
  const std::string& path() const override { return path_; }

 private:
  MemFileSystem* const fs_;
  const NodePtr node_;
  const std::string path_;
  const uint64_t generation_;
  const uint64_t token_;
};

// --- the file system ---

MemFileSystem::MemFileSystem() : MemFileSystem(Options()) {}

MemFileSystem::MemFileSystem(Options options) : options_(options), root_(std::make_shared<Node>(true)) {
  VS_CHECK(options_.max_file_bytes <= kMaxMemFileBytes);
}

MemFileSystem::~MemFileSystem() = default;

Status MemFileSystem::CheckHandle(uint64_t generation, const std::string& op, const std::string& path) const {
  if (generation == generation_) return Status::Ok();
  return Fail(Code::kIoError, op, path, "opened before a power cut; the handle is dead");
}

Result<MemFileSystem::Resolved> MemFileSystem::Resolve(const std::string& op, const std::string& path) const {
  if (path.empty() || path[0] != '/')
    return Fail(Code::kInvalidArgument, op, path, "the in-memory file system takes absolute paths only");
  if (path.size() > kMaxPathBytes) return Fail(Code::kNameTooLong, op, path, "File name too long");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    if (slash > pos) {
      std::string part = path.substr(pos, slash - pos);
      if (part == "." || part == "..")
        return Fail(Code::kInvalidArgument, op, path, "'.' and '..' are not taken by the in-memory file system");
      if (part.size() > kMaxNameBytes) return Fail(Code::kNameTooLong, op, path, "File name too long");
      parts.push_back(std::move(part));
    }
    pos = slash + 1;
  }
  Resolved r;
  if (parts.empty()) {
    r.node = root_;
    r.norm = "/";
    return r;
  }
  NodePtr cur = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto it = cur->live.find(parts[i]);
    if (it == cur->live.end()) return Fail(Code::kNotFound, op, path, "No such file or directory");
    if (!it->second->is_dir) return Fail(Code::kNotDir, op, path, "Not a directory");
    cur = it->second;
  }
  r.parent = cur;
  r.name = parts.back();
  auto it = cur->live.find(r.name);
  if (it != cur->live.end()) r.node = it->second;
  for (const auto& p : parts) r.norm += "/" + p;
  return r;
}

void MemFileSystem::AddPendingOp(PendingOp op) {
  pending_.push_back(std::move(op));
  if (pending_.size() > kMaxPendingNamespaceOps) {
    // The oldest half, in order: a prefix of history is always a consistent state.
    std::vector<bool> selected(pending_.size(), false);
    std::fill(selected.begin(), selected.begin() + static_cast<ptrdiff_t>(pending_.size() / 2), true);
    CommitSelected(selected);
  }
}

void MemFileSystem::CommitSelected(const std::vector<bool>& selected) {
  std::vector<PendingOp> rest;
  for (size_t i = 0; i < pending_.size(); ++i) {
    PendingOp& op = pending_[i];
    if (!selected[i]) {
      rest.push_back(std::move(op));
      continue;
    }
    for (int k = 0; k < op.count; ++k) {
      auto& e = op.entries[k];
      if (e.value)
        e.dir->durable[e.name] = e.value;
      else
        e.dir->durable.erase(e.name);
    }
  }
  pending_ = std::move(rest);
}

Result<std::unique_ptr<WritableFile>> MemFileSystem::NewWritableFile(const std::string& path, WriteMode mode) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("open-write", path));
  if (r.node && r.node->is_dir) return Fail(Code::kIsDir, "open-write", path, "Is a directory");
  if (!r.node) {
    r.node = std::make_shared<Node>(false);
    r.parent->live[r.name] = r.node;
    PendingOp op;
    op.entries[0] = {r.parent, r.name, r.node};
    AddPendingOp(std::move(op));
  } else if (mode == WriteMode::kTruncate) {
    r.node->data.clear();
    r.node->clean = 0;
  }
  return std::unique_ptr<WritableFile>(std::make_unique<File>(this, r.node, path, generation_));
}

Result<std::unique_ptr<RandomAccessFile>> MemFileSystem::NewRandomAccessFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("open-read", path));
  if (!r.node) return Fail(Code::kNotFound, "open-read", path, "No such file or directory");
  if (r.node->is_dir) return Fail(Code::kIsDir, "open-read", path, "is a directory");
  return std::unique_ptr<RandomAccessFile>(std::make_unique<Reader>(this, r.node, path, generation_));
}

Result<FileInfo> MemFileSystem::Stat(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("stat", path));
  if (!r.node) return Fail(Code::kNotFound, "stat", path, "No such file or directory");
  FileInfo info;
  info.is_dir = r.node->is_dir;
  info.size_bytes = r.node->is_dir ? 0 : r.node->data.size();
  return info;
}

Result<std::vector<std::string>> MemFileSystem::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("list", dir));
  if (!r.node) return Fail(Code::kNotFound, "list", dir, "No such file or directory");
  if (!r.node->is_dir) return Fail(Code::kNotDir, "list", dir, "Not a directory");
  std::vector<std::string> names;
  names.reserve(r.node->live.size());
  for (const auto& [name, node] : r.node->live) names.push_back(name);
  return names;
}

Status MemFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("mkdir", dir));
  if (r.node) return Fail(Code::kExists, "mkdir", dir, "File exists");
  auto node = std::make_shared<Node>(true);
  r.parent->live[r.name] = node;
  PendingOp op;
  op.entries[0] = {r.parent, r.name, node};
  AddPendingOp(std::move(op));
  return Status::Ok();
}

Status MemFileSystem::RemoveDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("rmdir", dir));
  if (!r.node) return Fail(Code::kNotFound, "rmdir", dir, "No such file or directory");
  if (!r.parent) return Fail(Code::kInvalidArgument, "rmdir", dir, "the root cannot be removed");
  if (!r.node->is_dir) return Fail(Code::kNotDir, "rmdir", dir, "Not a directory");
  if (!r.node->live.empty()) return Fail(Code::kNotEmpty, "rmdir", dir, "Directory not empty");
  r.parent->live.erase(r.name);
  PendingOp op;
  op.entries[0] = {r.parent, r.name, nullptr};
  AddPendingOp(std::move(op));
  return Status::Ok();
}

Status MemFileSystem::Remove(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("remove", path));
  if (!r.node) return Fail(Code::kNotFound, "remove", path, "No such file or directory");
  if (r.node->is_dir) return Fail(Code::kIsDir, "remove", path, "Is a directory");
  r.parent->live.erase(r.name);
  PendingOp op;
  op.entries[0] = {r.parent, r.name, nullptr};
  AddPendingOp(std::move(op));
  return Status::Ok();
}

Status MemFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string what = from + " -> " + to;
  ASSIGN_OR_RETURN(Resolved src, Resolve("rename", from));
  ASSIGN_OR_RETURN(Resolved dst, Resolve("rename", to));
  if (!src.node) return Fail(Code::kNotFound, "rename", what, "No such file or directory");
  if (!src.parent || !dst.parent) return Fail(Code::kInvalidArgument, "rename", what, "the root cannot be renamed");
  if (src.node == dst.node) return Status::Ok();  // POSIX: the same file under both names
  if (src.node->is_dir) {
    if (dst.norm.compare(0, src.norm.size() + 1, src.norm + "/") == 0)
      return Fail(Code::kInvalidArgument, "rename", what, "a directory cannot move under itself");
    if (dst.node && !dst.node->is_dir) return Fail(Code::kNotDir, "rename", what, "Not a directory");
    if (dst.node && !dst.node->live.empty()) return Fail(Code::kNotEmpty, "rename", what, "Directory not empty");
  } else if (dst.node && dst.node->is_dir) {
    return Fail(Code::kIsDir, "rename", what, "Is a directory");
  }
  src.parent->live.erase(src.name);
  dst.parent->live[dst.name] = src.node;
  PendingOp op;
  op.entries[0] = {src.parent, src.name, nullptr};
  op.entries[1] = {dst.parent, dst.name, src.node};
  op.count = 2;
  op.barrier = src.node->is_dir;
  AddPendingOp(std::move(op));
  return Status::Ok();
}

Status MemFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("sync-dir", dir));
  if (!r.node) return Fail(Code::kNotFound, "sync-dir", dir, "No such file or directory");
  if (!r.node->is_dir) return Fail(Code::kNotDir, "sync-dir", dir, "Not a directory");
  // One pass from the newest change back: a change is committed when it touches the
  // directory, shares an entry with a later committed change, or precedes a committed
  // directory rename. Each entry then ends at a state it really had, and so does each inode.
  const Node* d = r.node.get();
  std::vector<bool> selected(pending_.size(), false);
  std::set<std::pair<const Node*, std::string>> in_play;
  bool all_earlier = false;
  for (size_t i = pending_.size(); i-- > 0;) {
    const PendingOp& op = pending_[i];
    bool take = all_earlier;
    for (int k = 0; k < op.count && !take; ++k) {
      const auto& e = op.entries[k];
      take = e.dir.get() == d || in_play.count({e.dir.get(), e.name}) > 0;
    }
    if (!take) continue;
    selected[i] = true;
    for (int k = 0; k < op.count; ++k) in_play.insert({op.entries[k].dir.get(), op.entries[k].name});
    if (op.barrier) all_earlier = true;
  }
  CommitSelected(selected);
  return Status::Ok();
}

Result<std::unique_ptr<FileLock>> MemFileSystem::LockFile(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(Resolved r, Resolve("lock", path));
  if (r.node && r.node->is_dir) return Fail(Code::kIsDir, "lock", path, "Is a directory");
  if (!r.node) {
    r.node = std::make_shared<Node>(false);
    r.parent->live[r.name] = r.node;
    PendingOp op;
    op.entries[0] = {r.parent, r.name, r.node};
    AddPendingOp(std::move(op));
  }
  if (locks_.count(r.node.get()) > 0) return Fail(Code::kBusy, "lock", path, "held by another process or handle");
  uint64_t token = next_lock_token_++;
  locks_[r.node.get()] = token;
  return std::unique_ptr<FileLock>(std::make_unique<Lock>(this, r.node, path, generation_, token));
}

void MemFileSystem::PowerCut(Random* torn_tails) {
  std::lock_guard<std::mutex> l(mu_);
  // Rebuild the live tree from what is durable, from the root down, in name order so that
  // the draws from torn_tails are deterministic.
  std::vector<Node*> stack{root_.get()};
  std::set<const Node*> seen{root_.get()};
  while (!stack.empty()) {
    Node* dir = stack.back();
    stack.pop_back();
    dir->live = dir->durable;
    for (auto it = dir->live.rbegin(); it != dir->live.rend(); ++it) {
      Node* n = it->second.get();
      if (!seen.insert(n).second) continue;
      if (n->is_dir) {
        stack.push_back(n);
        continue;
      }
      bool pure_append = n->clean == n->synced.size() && n->data.size() > n->synced.size();
      if (torn_tails != nullptr && pure_append) {
        n->data.resize(n->synced.size() + torn_tails->Uniform(n->data.size() - n->synced.size() + 1));
        n->synced = n->data;
      } else {
        n->data = n->synced;
      }
      n->clean = n->data.size();
    }
  }
  pending_.clear();
  locks_.clear();
  ++generation_;
}

uint64_t MemFileSystem::UnsyncedBytes() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t total = 0;
  std::vector<const Node*> stack{root_.get()};
  std::set<const Node*> seen;
  while (!stack.empty()) {
    const Node* dir = stack.back();
    stack.pop_back();
    for (const auto& [name, child] : dir->live) {
      if (!seen.insert(child.get()).second) continue;
      if (child->is_dir)
        stack.push_back(child.get());
      else
        total += (child->data.size() - child->clean) + (child->synced.size() - child->clean);
    }
  }
  return total;
}

size_t MemFileSystem::PendingNamespaceOps() const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_.size();
}

}  // namespace vstorage::env
