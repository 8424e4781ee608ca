#include "mds/log.h"

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "common/log.h"

namespace vstorage::mds {

namespace {

constexpr uint32_t kRecordMagic = 0x4e524a56;  // "VJRN"
constexpr size_t kRecordHeader = 28;
constexpr char kSegMagic[8] = {'V', 'S', 'L', 'O', 'G', 'S', 'G', '1'};
constexpr uint32_t kSegFormat = 1;
constexpr size_t kSegHeader = 24;
constexpr char kHardMagic[8] = {'V', 'S', 'H', 'A', 'R', 'D', '0', '1'};
constexpr uint32_t kHardFormat = 1;
constexpr size_t kHardSize = 32;
constexpr char kSnapV1Magic[8] = {'V', 'S', 'S', 'N', 'A', 'P', '0', '1'};
constexpr size_t kSnapV1Header = 28;
constexpr char kSnapMagic[8] = {'V', 'S', 'S', 'N', 'A', 'P', '0', '2'};
constexpr uint32_t kSnapFormat = 2;
constexpr size_t kSnapHeader = 40;

// Reads exactly n bytes at off; a short file is corruption (an index that points past it).
Status ReadAll(const env::RandomAccessFile& f, char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ASSIGN_OR_RETURN(size_t r, f.ReadAt(off, p, n));
    if (r == 0) return Err(Code::kCorrupt, f.path() + ": unexpected end of file");
    p += r;
    n -= r;
    off += r;
  }
  return Status::Ok();
}

template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

uint32_t RecordCrc(uint64_t index, uint64_t term, std::string_view data) {
  char hdr[16];
  std::memcpy(hdr, &index, 8);
  std::memcpy(hdr + 8, &term, 8);
  uint32_t c = Crc32c(hdr, sizeof(hdr));
  return Crc32cExtend(c, data.data(), data.size());
}

std::string SegName(uint64_t first_index) {
  char b[32];
  std::snprintf(b, sizeof(b), "%020llu.seg", static_cast<unsigned long long>(first_index));
  return b;
}

// Checks a "VSSNAP02" file read whole from path; fills its (index, term) and image.
Status ParseSnapshotFile(const std::string& path, std::string_view s, SnapshotMeta* m, std::string* image) {
  if (s.size() < kSnapHeader || std::memcmp(s.data(), kSnapMagic, 8) != 0)
    return Err(Code::kCorrupt, path + " is not an MDS snapshot; restore the repository from a backup");
  uint64_t len = Get<uint64_t>(s.data() + 28);
  uint32_t crc = Get<uint32_t>(s.data() + 36);
  if (len != s.size() - kSnapHeader || Crc32c(s.data() + kSnapHeader, len) != crc)
    return Err(Code::kCorrupt, path + " fails its checksum; restore the repository from a backup");
  m->index = Get<uint64_t>(s.data() + 12);
  m->term = Get<uint64_t>(s.data() + 20);
  *image = std::string(s.substr(kSnapHeader));
  return Status::Ok();
}

// Parses the records of a v1 journal or a segment body starting at `off`. Calls fn for each
// good record; returns the offset where good records end and whether what follows is a torn
// tail (true) or corruption (false, with why).
struct Scan {
  size_t end = 0;
  bool clean = true;  // nothing after end
  bool torn = false;
  std::string why;
};
template <typename Fn>
Scan ScanRecords(std::string_view j, size_t off, Fn&& fn) {
  Scan s;
  while (off < j.size()) {
    size_t left = j.size() - off;
    if (left < kRecordHeader) {
      s.torn = true;
    } else if (Get<uint32_t>(j.data() + off) != kRecordMagic) {
      s.torn = j.find_first_not_of('\0', off) == std::string::npos;  // zeros after a crash
      s.why = "bad record magic";
    } else {
      uint32_t len = Get<uint32_t>(j.data() + off + 4);
      uint32_t crc = Get<uint32_t>(j.data() + off + 8);
      uint64_t index = Get<uint64_t>(j.data() + off + 12);
      uint64_t term = Get<uint64_t>(j.data() + off + 20);
      if (len > left - kRecordHeader) {
        s.torn = len <= kMaxLogRecordBytes;
        s.why = "record longer than the file";
      } else {
        std::string_view data(j.data() + off + kRecordHeader, len);
        if (RecordCrc(index, term, data) == crc) {
          Status st = fn(index, term, off, data);
          if (!st.ok()) {
            s.clean = false;
            s.why = st.message();
            s.end = off;
            return s;
          }
          off += kRecordHeader + len;
          continue;
        }
        s.torn = off + kRecordHeader + len == j.size();
        s.why = "record checksum mismatch";
      }
    }
    s.clean = false;
    break;
  }
  s.end = off;
  return s;
}

}  // namespace

std::string EncodeLogRecord(const LogEntry& e) {
  std::string out;
  out.reserve(kRecordHeader + e.data.size());
  Put<uint32_t>(&out, kRecordMagic);
  Put<uint32_t>(&out, static_cast<uint32_t>(e.data.size()));
  Put<uint32_t>(&out, RecordCrc(e.index, e.term, e.data));
  Put<uint64_t>(&out, e.index);
  Put<uint64_t>(&out, e.term);
  out += e.data;
  return out;
}

std::string EncodeSegmentHeader(uint64_t first_index) {
  std::string out(kSegMagic, 8);
  Put<uint32_t>(&out, kSegFormat);
  Put<uint32_t>(&out, 0);
  Put<uint64_t>(&out, first_index);
  return out;
}

std::string EncodeHardState(const HardState& h) {
  std::string out(kHardMagic, 8);
  Put<uint32_t>(&out, kHardFormat);
  Put<uint64_t>(&out, h.term);
  Put<uint64_t>(&out, h.vote);
  Put<uint32_t>(&out, Crc32c(out.data(), out.size()));
  return out;
}

std::string EncodeSnapshotFile(const SnapshotMeta& m, std::string_view image) {
  std::string out(kSnapMagic, 8);
  Put<uint32_t>(&out, kSnapFormat);
  Put<uint64_t>(&out, m.index);
  Put<uint64_t>(&out, m.term);
  Put<uint64_t>(&out, image.size());
  Put<uint32_t>(&out, Crc32c(image.data(), image.size()));
  out += image;
  return out;
}

Result<std::unique_ptr<Log>> Log::Open(const std::string& dir) {
  std::unique_ptr<env::FileSystem> fs = env::NewPosixFileSystem();
  env::FileSystem* raw = fs.get();
  std::unique_ptr<Log> log(new Log(raw, dir));
  log->owned_fs_ = std::move(fs);
  RETURN_IF_ERROR(log->Load());
  return log;
}

Result<std::unique_ptr<Log>> Log::Open(env::FileSystem* fs, const std::string& dir) {
  std::unique_ptr<Log> log(new Log(fs, dir));
  RETURN_IF_ERROR(log->Load());
  return log;
}

Log::~Log() {
  // Segments (and their open files) go before the file system that made them.
  segs_.clear();
}

Result<bool> Log::Exists(const std::string& path) const { return fs_->Exists(path); }

Status Log::Load() {
  // A v1 repository: convert it first (a conversion cut short is redone from the v1 files,
  // which go only after the new ones are durable).
  ASSIGN_OR_RETURN(bool v1, Exists(dir_ + "/journal"));
  if (v1) RETURN_IF_ERROR(ConvertV1());
  std::string logdir = dir_ + "/log";
  ASSIGN_OR_RETURN(bool have_logdir, Exists(logdir));
  if (!have_logdir) {
    Status st = fs_->CreateDir(logdir);
    if (!st.ok() && st.code() != Code::kExists) return st;
    RETURN_IF_ERROR(fs_->SyncDir(dir_));
  }
  // Hard state.
  std::string hp = dir_ + "/hardstate";
  ASSIGN_OR_RETURN(bool have_hard, Exists(hp));
  if (have_hard) {
    ASSIGN_OR_RETURN(std::string h, fs_->ReadFile(hp));
    if (h.size() != kHardSize || std::memcmp(h.data(), kHardMagic, 8) != 0 ||
        Crc32c(h.data(), kHardSize - 4) != Get<uint32_t>(h.data() + kHardSize - 4))
      return Err(Code::kCorrupt, hp + " is damaged; restore the repository from a backup");
    if (Get<uint32_t>(h.data() + 8) != kHardFormat)
      return Err(Code::kCorrupt, hp + " has format " + std::to_string(Get<uint32_t>(h.data() + 8)) +
                                     ", newer than this MDS knows; run a newer vstorage-mdsd");
    hard_.term = Get<uint64_t>(h.data() + 12);
    hard_.vote = Get<uint64_t>(h.data() + 20);
  }
  // Snapshot header (the image is read when asked for).
  std::string sp = dir_ + "/snapshot";
  ASSIGN_OR_RETURN(bool have_snap, Exists(sp));
  if (have_snap) {
    ASSIGN_OR_RETURN(std::unique_ptr<env::RandomAccessFile> f, fs_->NewRandomAccessFile(sp));
    char hdr[kSnapHeader];
    Status st = ReadAll(*f, hdr, kSnapHeader, 0);
    if (!st.ok() || std::memcmp(hdr, kSnapMagic, 8) != 0)
      return Err(Code::kCorrupt, sp + " is not an MDS snapshot; restore the repository from a backup");
    if (Get<uint32_t>(hdr + 8) != kSnapFormat)
      return Err(Code::kCorrupt, sp + " has format " + std::to_string(Get<uint32_t>(hdr + 8)) +
                                     ", newer than this MDS knows; run a newer vstorage-mdsd");
    snap_.index = Get<uint64_t>(hdr + 12);
    snap_.term = Get<uint64_t>(hdr + 20);
  }
  // Segments, in index order.
  std::vector<uint64_t> firsts;
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(logdir));
  for (const std::string& n : names) {
    if (n.size() == 24 && n.substr(20) == ".seg") firsts.push_back(std::strtoull(n.c_str(), nullptr, 10));
    else if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") (void)fs_->Remove(env::JoinPath(logdir, n));
  }
  std::sort(firsts.begin(), firsts.end());
  first_ = snap_.index + 1;
  for (size_t i = 0; i < firsts.size(); ++i)
    RETURN_IF_ERROR(LoadSegment(logdir + "/" + SegName(firsts[i]), firsts[i], i + 1 == firsts.size()));
  if (slots_.empty()) first_ = snap_.index + 1;
  // Where the log starts; an empty (tail) segment says it by its name, the index of the first
  // record appended to it, which must follow the snapshot like any first entry.
  const uint64_t starts = slots_.empty() && !segs_.empty() ? segs_.front()->first_index : first_;
  if (first_ + slots_.size() - 1 < snap_.index || starts < first_) {
    // The snapshot is ahead of every entry (installed whole): the log restarts after it.
    for (const auto& seg : segs_) RETURN_IF_ERROR(fs_->Remove(seg->path));
    segs_.clear();
    slots_.clear();
    first_ = snap_.index + 1;
  }
  if (!segs_.empty() && starts > snap_.index + 1)
    return Err(Code::kCorrupt, logdir + ": the log starts at index " + std::to_string(starts) +
                                   " but the snapshot ends at " + std::to_string(snap_.index) +
                                   "; restore the repository from a backup");
  if (segs_.empty()) {
    ASSIGN_OR_RETURN(auto seg, NewSegment(last_index() + 1));
    segs_.push_back(seg);
  }
  LOG_INFO("MDS log: snapshot at index %llu (term %llu), entries %llu..%llu",
           static_cast<unsigned long long>(snap_.index), static_cast<unsigned long long>(snap_.term),
           static_cast<unsigned long long>(first_), static_cast<unsigned long long>(last_index()));
  return Status::Ok();
}

Status Log::LoadSegment(const std::string& path, uint64_t first_index, bool tail) {
  ASSIGN_OR_RETURN(std::string body, fs_->ReadFile(path));
  if (body.size() < kSegHeader || std::memcmp(body.data(), kSegMagic, 8) != 0 ||
      Get<uint64_t>(body.data() + 16) != first_index) {
    if (tail && body.size() < kSegHeader && body.find_first_not_of('\0') == std::string::npos) {
      // Created but its header never became durable (a crash right after the roll).
      return fs_->Remove(path);
    }
    return Err(Code::kCorrupt, path + " is not an MDS log segment; restore the repository from a backup");
  }
  if (Get<uint32_t>(body.data() + 8) != kSegFormat)
    return Err(Code::kCorrupt, path + " has format " + std::to_string(Get<uint32_t>(body.data() + 8)) +
                                   ", newer than this MDS knows; run a newer vstorage-mdsd");
  auto seg = std::make_shared<Segment>();
  seg->first_index = first_index;
  seg->path = path;
  bool first_seg = segs_.empty();
  if (first_seg) first_ = first_index;
  uint64_t expect = first_seg ? first_index : last_index() + 1;
  if (first_index != expect)
    return Err(Code::kCorrupt, path + " starts at index " + std::to_string(first_index) + " but the log before it ends at " +
                                   std::to_string(expect - 1) + "; restore the repository from a backup");
  Scan sc = ScanRecords(body, kSegHeader, [&](uint64_t index, uint64_t term, size_t off, std::string_view data) {
    if (index != expect)
      return Err(Code::kCorrupt, "record index " + std::to_string(index) + " where " + std::to_string(expect) + " belongs");
    slots_.push_back(Slot{term, off, static_cast<uint32_t>(data.size()), seg.get()});
    ++expect;
    return Status::Ok();
  });
  if (!sc.clean && !(tail && sc.torn))
    return Err(Code::kCorrupt, path + " is damaged at offset " + std::to_string(sc.end) + " (" + sc.why +
                                   (tail ? ")" : ") in a segment that is not the last") +
                                   "; restore the repository from a backup");
  ASSIGN_OR_RETURN(seg->reader, fs_->NewRandomAccessFile(path));
  if (tail) {
    ASSIGN_OR_RETURN(seg->writer, fs_->NewWritableFile(path, env::WriteMode::kAppend));
    if (!sc.clean) {
      LOG_WARN("MDS log %s: cutting a torn record at offset %zu (%zu bytes, never acknowledged)", path.c_str(),
               sc.end, body.size() - sc.end);
      RETURN_IF_ERROR(seg->writer->Truncate(sc.end));
      RETURN_IF_ERROR(seg->writer->Sync());
    }
  }
  seg->size = sc.end;
  segs_.push_back(seg);
  return Status::Ok();
}

Result<std::shared_ptr<Log::Segment>> Log::NewSegment(uint64_t first_index) {
  auto seg = std::make_shared<Segment>();
  seg->first_index = first_index;
  seg->path = dir_ + "/log/" + SegName(first_index);
  std::string hdr = EncodeSegmentHeader(first_index);
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(seg->writer, fs_->NewWritableFile(seg->path, env::WriteMode::kTruncate));
    RETURN_IF_ERROR(seg->writer->Append(hdr));
    RETURN_IF_ERROR(seg->writer->Sync());
    RETURN_IF_ERROR(fs_->SyncDir(dir_ + "/log"));
    ASSIGN_OR_RETURN(seg->reader, fs_->NewRandomAccessFile(seg->path));
    return Status::Ok();
  }();
  if (!st.ok()) {
    seg->writer.reset();
    (void)fs_->Remove(seg->path);  // best effort: Load drops a headerless tail segment too
    return st;
  }
  seg->size = hdr.size();
  return seg;
}

Status Log::ConvertV1() {
  std::string jp = dir_ + "/journal", sp = dir_ + "/snapshot", logdir = dir_ + "/log";
  SnapshotMeta meta;
  std::string image;
  ASSIGN_OR_RETURN(bool had_snapshot, Exists(sp));
  if (had_snapshot) {
    std::string s;
    {
      auto r = fs_->ReadFile(sp);
      if (!r.ok()) return r.status();
      s.swap(*r);
    }
    if (s.size() >= 8 && std::memcmp(s.data(), kSnapMagic, 8) == 0) {
      // Already rewritten by a conversion that stopped before it removed the journal.
      RETURN_IF_ERROR(ParseSnapshotFile(sp, s, &meta, &image));
    } else {
      if (s.size() < kSnapV1Header || std::memcmp(s.data(), kSnapV1Magic, 8) != 0)
        return Err(Code::kCorrupt, sp + " is not an MDS snapshot; restore the repository from a backup");
      uint64_t len = Get<uint64_t>(s.data() + 16);
      uint32_t crc = Get<uint32_t>(s.data() + 24);
      if (len != s.size() - kSnapV1Header || Crc32c(s.data() + kSnapV1Header, len) != crc)
        return Err(Code::kCorrupt, sp + " fails its checksum; restore the repository from a backup");
      meta.index = Get<uint64_t>(s.data() + 8);
      meta.term = meta.index ? 1 : 0;
      image = s.substr(kSnapV1Header);
    }
  }
  ASSIGN_OR_RETURN(std::string j, fs_->ReadFile(jp));
  std::vector<LogEntry> entries;
  uint64_t last = meta.index;
  Scan sc = ScanRecords(j, 0, [&](uint64_t index, uint64_t term, size_t, std::string_view data) {
    if (index <= meta.index) return Status::Ok();  // already in the snapshot
    if (last != 0 && index != last + 1)
      return Err(Code::kCorrupt, "record index " + std::to_string(index) + " follows " + std::to_string(last));
    entries.push_back({index, term, std::string(data)});
    last = index;
    return Status::Ok();
  });
  if (!sc.clean && !sc.torn)
    return Err(Code::kCorrupt, jp + " is damaged at offset " + std::to_string(sc.end) + " (" + sc.why +
                                   ") with valid records after it; restore the repository from a backup");
  // A fresh log directory holding the records, durable before anything of v1 goes.
  ASSIGN_OR_RETURN(bool have_logdir, Exists(logdir));
  if (have_logdir) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(logdir));
    for (const std::string& n : names) RETURN_IF_ERROR(fs_->Remove(env::JoinPath(logdir, n)));
  } else {
    RETURN_IF_ERROR(fs_->CreateDir(logdir));
  }
  uint64_t first = entries.empty() ? meta.index + 1 : entries.front().index;
  std::string seg = EncodeSegmentHeader(first);
  for (const auto& e : entries) seg += EncodeLogRecord(e);
  RETURN_IF_ERROR(fs_->WriteFileAtomic(logdir + "/" + SegName(first), seg));
  RETURN_IF_ERROR(fs_->SyncDir(dir_));
  if (had_snapshot) RETURN_IF_ERROR(fs_->WriteFileAtomic(dir_ + "/snapshot", EncodeSnapshotFile(meta, image)));
  RETURN_IF_ERROR(fs_->Remove(jp));
  RETURN_IF_ERROR(fs_->SyncDir(dir_));
  LOG_INFO("MDS repository %s converted to log format %u: snapshot at index %llu, %zu record(s)", dir_.c_str(),
           kSegFormat, static_cast<unsigned long long>(meta.index), entries.size());
  return Status::Ok();
}

SnapshotMeta Log::snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  return snap_;
}

Result<std::string> Log::ReadSnapshotImage() const {
  std::string sp = dir_ + "/snapshot";
  ASSIGN_OR_RETURN(bool have_snap, Exists(sp));
  if (!have_snap) return std::string();
  ASSIGN_OR_RETURN(std::string s, fs_->ReadFile(sp));
  SnapshotMeta m;
  std::string image;
  RETURN_IF_ERROR(ParseSnapshotFile(sp, s, &m, &image));
  return image;
}

HardState Log::hard_state() const {
  std::lock_guard<std::mutex> l(mu_);
  return hard_;
}

Status Log::SaveHardState(const HardState& h) {
  RETURN_IF_ERROR(fs_->WriteFileAtomic(dir_ + "/hardstate", EncodeHardState(h)));
  std::lock_guard<std::mutex> l(mu_);
  hard_ = h;
  return Status::Ok();
}

uint64_t Log::first_index() const {
  std::lock_guard<std::mutex> l(mu_);
  return first_;
}

uint64_t Log::last_index() const {
  std::lock_guard<std::mutex> l(mu_);
  return first_ + slots_.size() - 1;
}

uint64_t Log::entries_since_snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t last = first_ + slots_.size() - 1;
  return last > snap_.index ? last - snap_.index : 0;
}

Result<uint64_t> Log::TermAt(uint64_t index) const {
  std::lock_guard<std::mutex> l(mu_);
  if (index >= first_ && index - first_ < slots_.size()) return slots_[index - first_].term;
  if (index == snap_.index) return snap_.term;
  return Err(Code::kNotFound, "log entry " + std::to_string(index) + " is not held (entries " +
                                  std::to_string(first_) + ".." + std::to_string(first_ + slots_.size() - 1) + ")");
}

Result<std::vector<LogEntry>> Log::Read(uint64_t lo, uint64_t hi, size_t max_bytes) const {
  struct Want {
    std::shared_ptr<Segment> seg;
    uint64_t index, term, offset;
    uint32_t len;
  };
  std::vector<Want> want;
  {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t last = first_ + slots_.size() - 1;
    if (lo < first_) return Err(Code::kNotFound, "log entry " + std::to_string(lo) + " was compacted into the snapshot");
    hi = std::min(hi, last);
    size_t bytes = 0;
    for (uint64_t i = lo; i <= hi; ++i) {
      const Slot& s = slots_[i - first_];
      if (!want.empty() && bytes + s.len > max_bytes) break;
      bytes += s.len;
      std::shared_ptr<Segment> seg;
      for (const auto& p : segs_)
        if (p.get() == s.seg) seg = p;
      want.push_back({seg, i, s.term, s.offset, s.len});
    }
  }
  std::vector<LogEntry> out;
  out.reserve(want.size());
  for (const auto& w : want) {
    std::string rec(kRecordHeader + w.len, '\0');
    RETURN_IF_ERROR(ReadAll(*w.seg->reader, rec.data(), rec.size(), w.offset));
    std::string_view data(rec.data() + kRecordHeader, w.len);
    if (Get<uint32_t>(rec.data() + 8) != RecordCrc(w.index, w.term, data))
      return Err(Code::kCorrupt, w.seg->path + ": log entry " + std::to_string(w.index) +
                                     " fails its checksum on read; the disk returned other data than was written");
    out.push_back({w.index, w.term, std::string(data)});
  }
  return out;
}

Status Log::Append(const std::vector<LogEntry>& entries) {
  RETURN_IF_ERROR(broken_);
  if (entries.empty()) return Status::Ok();
  std::shared_ptr<Segment> tail;
  uint64_t last;
  {
    std::lock_guard<std::mutex> l(mu_);
    tail = segs_.back();
    last = first_ + slots_.size() - 1;
  }
  for (size_t i = 0; i < entries.size(); ++i)
    VS_CHECK(entries[i].index == last + 1 + i);
  if (tail->size >= kLogSegmentBytes) {
    std::shared_ptr<Segment> full = tail;
    ASSIGN_OR_RETURN(tail, NewSegment(last + 1));
    {
      std::lock_guard<std::mutex> l(mu_);
      segs_.push_back(tail);
    }
    // Only the tail is written: the full segment keeps its reader, not an fd per segment
    // for writing (TruncateSuffix reopens one if it ever cuts back into it).
    full->writer.reset();
  }
  std::string buf;
  std::vector<Slot> added;
  for (const auto& e : entries) {
    if (e.data.size() > kMaxLogRecordBytes)
      return Err(Code::kTooBig, "log entry of " + std::to_string(e.data.size()) + " bytes is over the limit of " +
                                    std::to_string(kMaxLogRecordBytes));
    added.push_back(Slot{e.term, tail->size + buf.size(), static_cast<uint32_t>(e.data.size()), tail.get()});
    buf += EncodeLogRecord(e);
  }
  Status st = tail->writer->Append(buf);
  if (st.ok()) st = tail->writer->Sync();
  if (!st.ok()) {
    // Leave no partial record behind for the next append to follow.
    Status cut = tail->writer->Truncate(tail->size);
    if (!cut.ok()) Break(tail->path, cut);
    return st;
  }
  tail->size += buf.size();
  std::lock_guard<std::mutex> l(mu_);
  slots_.insert(slots_.end(), added.begin(), added.end());
  return Status::Ok();
}

Status Log::TruncateSuffix(uint64_t from) {
  RETURN_IF_ERROR(broken_);
  Status st = DoTruncateSuffix(from);
  // The index has dropped the entries but the files may still hold them: appending after
  // them would leave a gap that Open refuses, so nothing more is written.
  if (!st.ok()) Break(dir_ + "/log", st);
  return st;
}

void Log::Break(const std::string& path, const Status& why) {
  LOG_ERROR("MDS log %s: %s; no more entries are written until the MDS restarts", path.c_str(),
            why.ToString().c_str());
  broken_ = Err(Code::kIoError, "the MDS log at " + path + " could not be put back after a failed write (" +
                                    why.message() + "); restart the MDS, and check the disk");
}

Status Log::DoTruncateSuffix(uint64_t from) {
  std::vector<std::shared_ptr<Segment>> drop;
  std::shared_ptr<Segment> cut;
  uint64_t cut_at = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    VS_CHECK(from > snap_.index);
    uint64_t last = first_ + slots_.size() - 1;
    if (from > last) return Status::Ok();
    VS_CHECK(from >= first_);
    const Slot& s = slots_[from - first_];
    while (segs_.size() > 1 && segs_.back()->first_index > from) {
      drop.push_back(segs_.back());
      segs_.pop_back();
    }
    cut = segs_.back();
    cut_at = cut.get() == s.seg ? s.offset : cut->size;
    slots_.resize(from - first_);
  }
  for (const auto& d : drop) {
    d->writer.reset();
    RETURN_IF_ERROR(fs_->Remove(d->path));
  }
  // The segment cut becomes the tail: the only one with a writer.
  if (!cut->writer) {
    ASSIGN_OR_RETURN(cut->writer, fs_->NewWritableFile(cut->path, env::WriteMode::kAppend));
  }
  RETURN_IF_ERROR(cut->writer->Truncate(cut_at));
  RETURN_IF_ERROR(cut->writer->Sync());
  cut->size = cut_at;
  if (!drop.empty()) RETURN_IF_ERROR(fs_->SyncDir(dir_ + "/log"));
  return Status::Ok();
}

Status Log::SaveSnapshot(const SnapshotMeta& m, std::string_view image) {
  RETURN_IF_ERROR(fs_->WriteFileAtomic(dir_ + "/snapshot", EncodeSnapshotFile(m, image)));
  {
    std::lock_guard<std::mutex> l(mu_);
    snap_ = m;
  }
  Compact(m.index > kLogKeepBehindSnapshot ? m.index - kLogKeepBehindSnapshot : 0);
  return Status::Ok();
}

void Log::Compact(uint64_t upto) {
  std::vector<std::shared_ptr<Segment>> drop;
  {
    std::lock_guard<std::mutex> l(mu_);
    // A segment goes when the next one starts at or before upto + 1 (all its entries are
    // <= upto); the tail segment always stays.
    while (segs_.size() > 1 && segs_[1]->first_index <= upto + 1) {
      uint64_t n = segs_[1]->first_index - first_;
      slots_.erase(slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(n));
      first_ = segs_[1]->first_index;
      drop.push_back(segs_.front());
      segs_.erase(segs_.begin());
    }
  }
  for (const auto& d : drop) {
    Status st = fs_->Remove(d->path);
    if (!st.ok()) LOG_WARN("cannot remove %s: %s", d->path.c_str(), st.ToString().c_str());
    // Readers that still hold the segment keep its file open; it closes with the last of them.
  }
}

}  // namespace vstorage::mds
