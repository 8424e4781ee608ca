// vstorage-fsx: a model-based random file-operations exerciser (in the spirit of fsx).
//
// One file on the file system under test is driven through random operations — buffered
// and O_DIRECT writes and reads, mmap writes with msync and mmap reads, truncate up and
// down, fallocate (mode 0, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE), fsync, close/reopen and,
// with --remount-cmd, a remount — while an in-memory copy of what the file must hold is
// kept alongside. Every read and every size is compared with that model; the first
// difference stops the run with the offset, both byte ranges, which operation last wrote
// there, and the last operations. A run is fully determined by its seed and options (the
// same command replays it); --log writes every operation as it is done.
//
// Not thread-safe and needs none: one process, one file, one operation at a time.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kDirectAlign = 4096;  // O_DIRECT offsets, lengths and buffers
constexpr size_t kHistory = 60;          // operations printed on a failure

struct Options {
  std::string path;
  uint64_t seed = 1;
  uint64_t ops = 10000;
  uint64_t max_size = 6u << 20;
  uint64_t max_len = 1u << 20;  // of one write/read/punch
  std::string remount_cmd;       // run with the file closed; then the file is reopened
  uint64_t remount_every = 0;    // on average one remount per this many ops (0: never)
  std::string log_path;
  bool no_direct = false, no_mmap = false, no_falloc = false;
  uint64_t progress_every = 0;
};

enum class Op { kWrite, kDirectWrite, kMmapWrite, kRead, kDirectRead, kMmapRead, kTruncate, kAllocate,
                kAllocKeep, kPunch, kZeroRange, kFsync, kReopen, kRemount };
const char* Name(Op o) {
  switch (o) {
    case Op::kWrite: return "write";
    case Op::kDirectWrite: return "write-direct";
    case Op::kMmapWrite: return "mmap-write";
    case Op::kRead: return "read";
    case Op::kDirectRead: return "read-direct";
    case Op::kMmapRead: return "mmap-read";
    case Op::kTruncate: return "truncate";
    case Op::kAllocate: return "fallocate";
    case Op::kAllocKeep: return "fallocate-keep-size";
    case Op::kPunch: return "punch-hole";
    case Op::kZeroRange: return "zero-range";
    case Op::kFsync: return "fsync";
    case Op::kReopen: return "close-reopen";
    case Op::kRemount: return "remount";
  }
  return "?";
}

class Fsx {
 public:
  explicit Fsx(Options o) : o_(std::move(o)), rng_(o_.seed) {}

  int Run() {
    if (!o_.log_path.empty()) {
      log_ = std::fopen(o_.log_path.c_str(), "w");
      if (!log_) return Fatal("cannot write the log " + o_.log_path + ": " + std::strerror(errno));
    }
    ::unlink(o_.path.c_str());
    if (!Open(true)) return 1;
    auto t0 = std::chrono::steady_clock::now();
    for (n_ = 1; n_ <= o_.ops; ++n_) {
      if (!Step()) return Fail();
      if (o_.progress_every && n_ % o_.progress_every == 0)
        std::fprintf(stderr, "fsx: %" PRIu64 " ops, size %zu\n", n_, model_.size());
    }
    if (!CheckAll("final check")) return Fail();
    Close();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("fsx: %" PRIu64 " operations clean (seed %" PRIu64 ") in %.1f s\n", o_.ops, o_.seed, s);
    if (log_) std::fclose(log_);
    return 0;
  }

 private:
  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  // Offsets and lengths biased towards the interesting places: chunk and block
  // boundaries, the end of the file.
  uint64_t PickOffset(uint64_t limit) {
    switch (Rand(4)) {
      case 0: {  // near a 1 MiB boundary (the smallest chunk size)
        uint64_t b = Rand(limit / (1 << 20) + 1) << 20;
        uint64_t o = b + Rand(8193) - 4096;
        return std::min(o > b + 4096 ? b : o, limit);
      }
      case 1: return std::min<uint64_t>(model_.size() + Rand(8192) - std::min<uint64_t>(model_.size(), 4096), limit);
      default: return Rand(limit + 1);
    }
  }
  uint64_t PickLen() { return Rand(3) == 0 ? 1 + Rand(512) : 1 + Rand(o_.max_len); }

  void Record(Op op, uint64_t off, uint64_t len) {
    char b[160];
    std::snprintf(b, sizeof b, "%8" PRIu64 " %-20s off %10" PRIu64 " len %9" PRIu64 "  (size before: %zu)", n_, Name(op), off,
                  len, model_.size());
    hist_.push_back(b);
    if (hist_.size() > kHistory) hist_.pop_front();
    if (log_) std::fprintf(log_, "%s\n", b);
  }

  bool Step() {
    // Weights: data operations dominate; a remount is rare and only with a command.
    struct W { Op op; unsigned w; } table[] = {
        {Op::kWrite, 20}, {Op::kDirectWrite, o_.no_direct ? 0u : 6u}, {Op::kMmapWrite, o_.no_mmap ? 0u : 5u},
        {Op::kRead, 20}, {Op::kDirectRead, o_.no_direct ? 0u : 6u}, {Op::kMmapRead, o_.no_mmap ? 0u : 4u},
        {Op::kTruncate, 8}, {Op::kAllocate, o_.no_falloc ? 0u : 2u}, {Op::kAllocKeep, o_.no_falloc ? 0u : 2u},
        {Op::kPunch, o_.no_falloc ? 0u : 5u}, {Op::kZeroRange, o_.no_falloc ? 0u : 4u}, {Op::kFsync, 4},
        {Op::kReopen, 2}};
    unsigned total = 0;
    for (auto& t : table) total += t.w;
    Op op = Op::kRead;
    if (o_.remount_every && !o_.remount_cmd.empty() && Rand(o_.remount_every) == 0) {
      op = Op::kRemount;
    } else {
      unsigned r = static_cast<unsigned>(Rand(total));
      for (auto& t : table) {
        if (r < t.w) {
          op = t.op;
          break;
        }
        r -= t.w;
      }
    }
    switch (op) {
      case Op::kWrite: return DoWrite(false);
      case Op::kDirectWrite: return DoWrite(true);
      case Op::kMmapWrite: return DoMmapWrite();
      case Op::kRead: return DoRead(false);
      case Op::kDirectRead: return DoRead(true);
      case Op::kMmapRead: return DoMmapRead();
      case Op::kTruncate: return DoTruncate();
      case Op::kAllocate:
      case Op::kAllocKeep:
      case Op::kPunch:
      case Op::kZeroRange: return DoFallocate(op);
      case Op::kFsync: {
        Record(op, 0, 0);
        if (::fsync(fd_) != 0) return Error("fsync");
        return CheckSize();
      }
      case Op::kReopen: {
        Record(op, 0, 0);
        Close();
        return Open(false) && CheckSize();
      }
      case Op::kRemount: {
        Record(op, 0, 0);
        Close();
        int rc = std::system(o_.remount_cmd.c_str());
        if (rc != 0) {
          why_ = "the remount command failed (status " + std::to_string(rc) + "): " + o_.remount_cmd;
          return false;
        }
        return Open(false) && CheckAll("after remount");
      }
    }
    return false;
  }

  void Fill(std::string* buf, uint64_t len) {
    // A random window of a random pool: cheap, and no two writes alike.
    if (pool_.empty()) {
      pool_.resize(o_.max_len + 65536);
      for (auto& c : pool_) c = static_cast<char>(rng_() | 1);
    }
    buf->assign(pool_.data() + Rand(pool_.size() - len + 1), len);
  }

  void ModelWrite(uint64_t off, const char* p, uint64_t len) {
    if (model_.size() < off + len) {
      model_.resize(off + len, '\0');
      writer_.resize(off + len, 0);
    }
    std::memcpy(model_.data() + off, p, len);
    std::fill(writer_.begin() + static_cast<long>(off), writer_.begin() + static_cast<long>(off + len),
              static_cast<uint32_t>(n_));
  }
  void ModelZero(uint64_t off, uint64_t len) {
    if (off >= model_.size()) return;
    len = std::min<uint64_t>(len, model_.size() - off);
    std::memset(model_.data() + off, 0, len);
    std::fill(writer_.begin() + static_cast<long>(off), writer_.begin() + static_cast<long>(off + len),
              static_cast<uint32_t>(n_));
  }
  void ModelResize(uint64_t size) {
    if (size < model_.size()) {
      model_.resize(size);
      writer_.resize(size);
    } else {
      size_t old = model_.size();
      model_.resize(size, '\0');
      writer_.resize(size, 0);
      std::fill(writer_.begin() + static_cast<long>(old), writer_.end(), static_cast<uint32_t>(n_));
    }
  }

  bool DoWrite(bool direct) {
    uint64_t off = PickOffset(o_.max_size - 1), len = std::min(PickLen(), o_.max_size - off);
    if (direct) {
      off = off / kDirectAlign * kDirectAlign;
      len = std::max<uint64_t>(kDirectAlign, len / kDirectAlign * kDirectAlign);
      if (off + len > o_.max_size) return true;
    }
    Record(direct ? Op::kDirectWrite : Op::kWrite, off, len);
    Fill(&buf_, len);
    if (direct) {
      char* a = Aligned(len);
      std::memcpy(a, buf_.data(), len);
      if (!PwriteAll(dfd_, a, len, off, "pwrite O_DIRECT")) return false;
    } else if (!PwriteAll(fd_, buf_.data(), len, off, "pwrite")) {
      return false;
    }
    ModelWrite(off, buf_.data(), len);
    return CheckSize();
  }

  bool DoMmapWrite() {
    if (model_.empty()) return true;
    uint64_t off = Rand(model_.size()), len = std::min(PickLen(), model_.size() - off);
    Record(Op::kMmapWrite, off, len);
    uint64_t moff = off / 4096 * 4096, mlen = off + len - moff;
    void* p = ::mmap(nullptr, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(moff));
    if (p == MAP_FAILED) return Error("mmap");
    Fill(&buf_, len);
    std::memcpy(static_cast<char*>(p) + (off - moff), buf_.data(), len);
    bool ok = ::msync(p, mlen, MS_SYNC) == 0;
    int e = errno;
    ::munmap(p, mlen);
    if (!ok) {
      errno = e;
      return Error("msync");
    }
    ModelWrite(off, buf_.data(), len);
    return CheckSize();
  }

  bool DoRead(bool direct) {
    uint64_t off = PickOffset(o_.max_size), len = PickLen();
    if (direct) {
      off = off / kDirectAlign * kDirectAlign;
      len = std::max<uint64_t>(kDirectAlign, len / kDirectAlign * kDirectAlign);
    }
    Record(direct ? Op::kDirectRead : Op::kRead, off, len);
    char* a = Aligned(len);
    ssize_t got = 0;
    while (static_cast<uint64_t>(got) < len) {
      ssize_t r = ::pread(direct ? dfd_ : fd_, a + got, len - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Error(direct ? "pread O_DIRECT" : "pread");
      if (r == 0) break;
      got += r;
    }
    uint64_t want = off >= model_.size() ? 0 : std::min<uint64_t>(len, model_.size() - off);
    if (static_cast<uint64_t>(got) != want) {
      why_ = "read at " + std::to_string(off) + " returned " + std::to_string(got) + " bytes, the model has " +
             std::to_string(want);
      return false;
    }
    return Compare(off, a, want, direct ? "read O_DIRECT" : "read");
  }

  bool DoMmapRead() {
    if (model_.empty()) return true;
    uint64_t off = Rand(model_.size()), len = std::min(PickLen(), model_.size() - off);
    Record(Op::kMmapRead, off, len);
    uint64_t moff = off / 4096 * 4096, mlen = off + len - moff;
    void* p = ::mmap(nullptr, mlen, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(moff));
    if (p == MAP_FAILED) return Error("mmap");
    bool ok = Compare(off, static_cast<char*>(p) + (off - moff), len, "mmap read");
    ::munmap(p, mlen);
    return ok;
  }

  bool DoTruncate() {
    uint64_t size = Rand(2) ? Rand(model_.size() + 1) : PickOffset(o_.max_size);
    Record(Op::kTruncate, size, 0);
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Error("ftruncate");
    ModelResize(size);
    return CheckSize();
  }

  bool DoFallocate(Op op) {
    uint64_t off = PickOffset(o_.max_size - 1), len = std::min(PickLen(), o_.max_size - off);
    int mode = op == Op::kAllocate ? 0
               : op == Op::kAllocKeep ? FALLOC_FL_KEEP_SIZE
               : op == Op::kPunch ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
                                  : (FALLOC_FL_ZERO_RANGE | (Rand(2) ? FALLOC_FL_KEEP_SIZE : 0));
    Record(op, off, len);
    if (::fallocate(fd_, mode, static_cast<off_t>(off), static_cast<off_t>(len)) != 0)
      return Error(("fallocate mode " + std::to_string(mode)).c_str());
    if (op == Op::kPunch || op == Op::kZeroRange) ModelZero(off, len);
    if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > model_.size()) ModelResize(off + len);
    return CheckSize();
  }

  bool Open(bool create) {
    fd_ = ::open(o_.path.c_str(), O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0644);
    if (fd_ < 0) return Error(("open " + o_.path).c_str());
    if (!o_.no_direct) {
      dfd_ = ::open(o_.path.c_str(), O_RDWR | O_DIRECT);
      if (dfd_ < 0) return Error(("open O_DIRECT " + o_.path).c_str());
    }
    return true;
  }
  void Close() {
    if (dfd_ >= 0) ::close(dfd_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = dfd_ = -1;
  }

  char* Aligned(uint64_t len) {
    if (abuf_cap_ < len) {
      std::free(abuf_);
      abuf_cap_ = (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
      abuf_ = static_cast<char*>(std::aligned_alloc(kDirectAlign, abuf_cap_));
    }
    return abuf_;
  }

  bool PwriteAll(int fd, const char* p, uint64_t len, uint64_t off, const char* what) {
    while (len > 0) {
      ssize_t r = ::pwrite(fd, p, len, static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Error(what);
      p += r;
      len -= static_cast<uint64_t>(r);
      off += static_cast<uint64_t>(r);
    }
    return true;
  }

  bool CheckSize() {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return Error("fstat");
    if (static_cast<uint64_t>(st.st_size) != model_.size()) {
      why_ = "fstat says size " + std::to_string(st.st_size) + ", the model has " + std::to_string(model_.size());
      return false;
    }
    return true;
  }

  bool CheckAll(const char* what) {
    if (!CheckSize()) return false;
    std::string b(model_.size(), '\0');
    uint64_t got = 0;
    while (got < b.size()) {
      ssize_t r = ::pread(fd_, b.data() + got, b.size() - got, static_cast<off_t>(got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Error("pread (whole file)");
      got += static_cast<uint64_t>(r);
    }
    return Compare(0, b.data(), b.size(), what);
  }

  bool Compare(uint64_t off, const char* got, uint64_t len, const char* what) {
    if (std::memcmp(got, model_.data() + off, len) == 0) return true;
    uint64_t i = 0;
    while (got[i] == model_[off + i]) ++i;
    uint64_t at = off + i;
    char b[256];
    std::snprintf(b, sizeof b, "%s: wrong byte at offset %" PRIu64 " (0x%" PRIx64 "), last written by op %u\n", what,
                  at, at, writer_[at]);
    why_ = b;
    why_ += "  file : " + Hex(got + i, std::min<uint64_t>(16, len - i)) + "\n";
    why_ += "  model: " + Hex(model_.data() + at, std::min<uint64_t>(16, len - i));
    return false;
  }

  static std::string Hex(const char* p, uint64_t n) {
    std::string s;
    char b[4];
    for (uint64_t i = 0; i < n; ++i) {
      std::snprintf(b, sizeof b, "%02x ", static_cast<uint8_t>(p[i]));
      s += b;
    }
    return s;
  }

  bool Error(const char* what) {
    why_ = std::string(what) + " failed: " + std::strerror(errno);
    return false;
  }

  int Fatal(const std::string& m) {
    std::fprintf(stderr, "fsx: %s\n", m.c_str());
    return 2;
  }

  int Fail() {
    std::fprintf(stderr, "fsx: FAILED at operation %" PRIu64 " (seed %" PRIu64 "): %s\n", n_, o_.seed, why_.c_str());
    std::fprintf(stderr, "fsx: the last operations:\n");
    for (const auto& h : hist_) std::fprintf(stderr, "  %s\n", h.c_str());
    std::fprintf(stderr, "fsx: replay with the same command (seed %" PRIu64 ", same options)%s\n", o_.seed,
                 log_ ? "; every operation is in the log" : "; add --log FILE for every operation");
    if (log_) std::fclose(log_);
    return 1;
  }

  Options o_;
  std::mt19937_64 rng_;
  std::string model_;
  std::vector<uint32_t> writer_;  // per byte: the op that last set it (0 = never)
  std::string buf_;
  std::string pool_;  // random bytes writes are cut from
  char* abuf_ = nullptr;
  uint64_t abuf_cap_ = 0;
  int fd_ = -1, dfd_ = -1;
  uint64_t n_ = 0;
  std::deque<std::string> hist_;
  std::string why_;
  FILE* log_ = nullptr;
};

int Usage() {
  std::fprintf(stderr,
               "usage: vstorage-fsx [options] FILE\n"
               "  -S SEED          seed (default 1); the same seed and options replay a run\n"
               "  -N OPS           number of operations (default 10000)\n"
               "  --max-size B     largest file size (default 6 MiB)\n"
               "  --max-len B      largest single write/read/punch (default 1 MiB)\n"
               "  --remount-cmd C  shell command run with the file closed, about once per\n"
               "  --remount-every K operations (both needed for remounts)\n"
               "  --log FILE       write every operation to FILE\n"
               "  --no-direct --no-mmap --no-falloc   leave those operations out\n"
               "  --progress K     print progress every K operations\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    auto num = [&](uint64_t* v) {
      const char* s = next();
      if (!s) return false;
      char* end = nullptr;
      *v = std::strtoull(s, &end, 10);
      return end && *end == 0;
    };
    bool ok = true;
    if (a == "-S") ok = num(&o.seed);
    else if (a == "-N") ok = num(&o.ops);
    else if (a == "--max-size") ok = num(&o.max_size);
    else if (a == "--max-len") ok = num(&o.max_len);
    else if (a == "--remount-every") ok = num(&o.remount_every);
    else if (a == "--progress") ok = num(&o.progress_every);
    else if (a == "--remount-cmd") ok = (next() ? (o.remount_cmd = argv[i], true) : false);
    else if (a == "--log") ok = (next() ? (o.log_path = argv[i], true) : false);
    else if (a == "--no-direct") o.no_direct = true;
    else if (a == "--no-mmap") o.no_mmap = true;
    else if (a == "--no-falloc") o.no_falloc = true;
    else if (!a.empty() && a[0] == '-') return Usage();
    else o.path = a;
    if (!ok) return Usage();
  }
  if (o.path.empty() || o.max_size < 2 * kDirectAlign || o.max_len == 0) return Usage();
  return Fsx(o).Run();
}
