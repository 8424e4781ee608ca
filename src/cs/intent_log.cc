#include "cs/intent_log.h"

// No raw syscall here: they all go through DiskIo (cs/disk_io.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/crc32c.h"
#include "common/log.h"
#include "cs/disk_io.h"

namespace vstorage::cs {

namespace {

constexpr char kMagic[8] = {'V', 'S', 'I', 'N', 'T', 'N', 'T', '1'};
constexpr uint32_t kOpMark = 1, kOpClear = 2;

void PutU32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void PutU64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t GetU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

Status FsyncDir(const std::string& dir) {
  ASSIGN_OR_RETURN(int fd, DiskIo::OpenDir(dir));
  Status st = DiskIo::Fsync(fd);
  DiskIo::Close(fd);
  return st;
}

}  // namespace

std::string IntentLog::EncodeHeader(const std::string& boot_id) {
  std::string h(kHeaderBytes, '\0');
  std::memcpy(h.data(), kMagic, 8);
  PutU32(h.data() + 8, kFormatVersion);
  std::memcpy(h.data() + 12, boot_id.data(), std::min(boot_id.size(), kMaxBootIdBytes));
  PutU32(h.data() + 60, Crc32c(h.data(), 60));
  return h;
}

std::string IntentLog::ReadBootId() {
  const char* over = std::getenv("VSTORAGE_BOOT_ID_FILE");
  std::string path = over && *over ? over : "/proc/sys/kernel/random/boot_id";
  auto fd = DiskIo::OpenReadOnly(path);
  if (!fd.ok()) {
    LOG_WARN("cannot read the boot id from %s (%s): every unclean stop counts as a power cut",
             path.c_str(), fd.status().ToString().c_str());
    return "";
  }
  char buf[kMaxBootIdBytes] = {};
  size_t got = 0;
  (void)DiskIo::PreadAll(*fd, buf, sizeof buf, 0, &got);
  DiskIo::Close(*fd);
  std::string id(buf, got);
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

std::string IntentLog::EncodeRecord(ChunkId id, uint32_t op) {
  std::string r(kRecordBytes, '\0');
  PutU64(r.data(), id.v);
  PutU32(r.data() + 8, op);
  PutU32(r.data() + 12, Crc32c(r.data(), 12));
  return r;
}

Result<std::unique_ptr<IntentLog>> IntentLog::Open(const std::string& repo_dir, const std::string& boot_id,
                                                   std::set<ChunkId>* found, bool* rebooted) {
  std::unique_ptr<IntentLog> log(new IntentLog(repo_dir, repo_dir + "/intents", boot_id));
  found->clear();
  *rebooted = false;
  if (auto fd = DiskIo::OpenReadOnly(log->path_); fd.ok()) {
    auto size = DiskIo::FileSize(*fd);
    std::string buf;
    Status st = size.status();
    if (size.ok()) {
      buf.resize(*size);
      size_t got = 0;
      st = DiskIo::PreadAll(*fd, buf.data(), buf.size(), 0, &got);
      buf.resize(got);
    }
    DiskIo::Close(*fd);
    if (!st.ok()) return st.Annotate("cannot read the write-intent log " + log->path_);
    if (buf.size() < kHeaderBytes || std::memcmp(buf.data(), kMagic, 8) != 0 ||
        GetU32(buf.data() + 60) != Crc32c(buf.data(), 60) || GetU32(buf.data() + 8) != kFormatVersion) {
      // Nothing can be trusted: the caller treats every chunk as suspect.
      return Err(Code::kCorrupt, "the write-intent log " + log->path_ + " has no valid header");
    }
    *rebooted = boot_id.empty() || buf.compare(0, kHeaderBytes, EncodeHeader(boot_id)) != 0;
    size_t off = kHeaderBytes;
    for (; off + kRecordBytes <= buf.size(); off += kRecordBytes) {
      const char* p = buf.data() + off;
      if (GetU32(p + 12) != Crc32c(p, 12)) break;
      ChunkId id{GetU64(p)};
      uint32_t op = GetU32(p + 8);
      if (op == kOpMark) found->insert(id);
      else if (op == kOpClear) found->erase(id);
      else break;
    }
    if (off != buf.size())
      LOG_WARN("write-intent log %s: %zu bytes after offset %zu are torn or damaged and ignored",
               log->path_.c_str(), buf.size() - off, off);
  }
  RETURN_IF_ERROR(log->Rewrite(*found));
  log->marked_ = *found;
  return log;
}

IntentLog::~IntentLog() { DiskIo::Close(fd_); }

Status IntentLog::Rewrite(const std::set<ChunkId>& ids) {
  std::string buf = EncodeHeader(boot_id_);
  for (ChunkId id : ids) buf += EncodeRecord(id, kOpMark);
  std::string tmp = path_ + ".tmp";
  ASSIGN_OR_RETURN(int fd, DiskIo::OpenFile(tmp, true));
  Status st = DiskIo::PwriteAll(fd, buf.data(), buf.size(), 0);
  if (st.ok()) st = DiskIo::Fdatasync(fd);
  DiskIo::Close(fd);
  if (st.ok()) st = DiskIo::Rename(tmp, path_, false);
  if (st.ok()) st = FsyncDir(repo_);
  if (!st.ok()) return st.Annotate("cannot write the write-intent log " + path_);
  ASSIGN_OR_RETURN(int nfd, DiskIo::OpenFile(path_, false));
  DiskIo::Close(fd_);
  fd_ = nfd;
  end_ = buf.size();
  return Status::Ok();
}

Status IntentLog::RunRound(const std::vector<ChunkId>& clears, const std::vector<ChunkId>& marks) {
  // Clears first: a chunk cleared and marked again must end up marked on replay.
  std::string buf;
  buf.reserve((clears.size() + marks.size()) * kRecordBytes);
  for (ChunkId id : clears) buf += EncodeRecord(id, kOpClear);
  for (ChunkId id : marks) buf += EncodeRecord(id, kOpMark);
  Status st = buf.empty() ? Status::Ok() : DiskIo::PwriteAll(fd_, buf.data(), buf.size(), end_);
  if (st.ok() && !marks.empty()) st = DiskIo::Fdatasync(fd_);
  if (st.ok()) {
    end_ += buf.size();
  } else {
    // What reached the file is unknown: start over with a fresh log of what is marked.
    std::set<ChunkId> all;
    {
      std::lock_guard<std::mutex> l(mu_);
      all = marked_;
    }
    all.insert(marks.begin(), marks.end());
    for (ChunkId id : clears) all.erase(id);
    if (Rewrite(all).ok()) return Status::Ok();
    return st.Annotate("write-intent log " + path_);
  }
  if (end_ > kCompactBytes) {
    std::set<ChunkId> all;
    {
      std::lock_guard<std::mutex> l(mu_);
      all = marked_;
    }
    all.insert(marks.begin(), marks.end());
    if (Status c = Rewrite(all); !c.ok()) LOG_WARN("%s; the log keeps growing", c.ToString().c_str());
  }
  return Status::Ok();
}

bool IntentLog::Contains(ChunkId id) {
  std::lock_guard<std::mutex> l(mu_);
  return marked_.count(id) > 0;
}

Status IntentLog::Mark(ChunkId id) {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    if (marked_.count(id)) return Status::Ok();
    if (auto f = failed_.find(id); f != failed_.end()) {
      Status st = f->second;
      failed_.erase(f);
      return st;
    }
    if (!writing_) {
      want_.insert(id);  // again, if a failed round's error went to another caller
      writing_ = true;
      std::vector<ChunkId> marks;
      while (!want_.empty() && marks.size() < kMaxRoundIds) {
        marks.push_back(*want_.begin());
        want_.erase(want_.begin());
      }
      std::vector<ChunkId> clears = std::move(clears_);
      clears_.clear();
      l.unlock();
      Status st = RunRound(clears, marks);
      l.lock();
      writing_ = false;
      if (st.ok()) ++rounds_;
      for (ChunkId m : marks) {
        if (st.ok()) marked_.insert(m);
        else failed_[m] = st;
      }
      cv_.notify_all();
      continue;
    }
    want_.insert(id);
    cv_.wait(l);
  }
}

void IntentLog::Clear(ChunkId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (marked_.erase(id)) clears_.push_back(id);
}

Status IntentLog::Flush() {
  std::unique_lock<std::mutex> l(mu_);
  if (writing_ || (clears_.empty() && end_ <= kCompactBytes)) return Status::Ok();
  writing_ = true;
  std::vector<ChunkId> clears = std::move(clears_);
  clears_.clear();
  l.unlock();
  Status st = RunRound(clears, {});
  l.lock();
  writing_ = false;
  cv_.notify_all();
  return st;
}

std::vector<ChunkId> IntentLog::Marked() {
  std::lock_guard<std::mutex> l(mu_);
  return {marked_.begin(), marked_.end()};
}

uint64_t IntentLog::rounds() const {
  std::lock_guard<std::mutex> l(mu_);
  return rounds_;
}

}  // namespace vstorage::cs
