// vstorage-powercut-fs BACKING MOUNTPOINT: a FUSE file system that models a disk with a
// volatile write cache, for the power-cut tests (issue 13; tests/system/test_powercut.py).
//
// Every operation goes to the backing directory at once, so reads are plain passthrough;
// what is not durable yet is remembered so that it can be undone:
//   * file data, per inode: the size it had when it was last made durable, and the 4 KiB
//     pages changed since (their content before the first change). fsync/fdatasync of the
//     file makes its data durable.
//   * names, per directory: creates (files, directories, symlinks, nodes, links), unlinks,
//     rmdirs and renames since the directory was last fsynced, in order. A removed or
//     replaced inode is kept in BACKING/.powercut-graveyard until its removal is durable. A
//     rename between two directories is durable when both are.
// Writing "cut" to MOUNTPOINT/.powercut drops all of it, as losing power would: the pending
// names are undone newest first, then every dirty file gets its durable size and its saved
// pages back. "cut keep=P seed=S tear=1" models a disk that wrote some of it back: each page
// keeps its new content with probability P, each file its current size with probability
// P, only a random suffix of the pending names is undone (a journal commits them in order),
// and with tear=1 one restored page per file keeps a random half of its 512-byte sectors
// new (a torn write). With if_dirty=1 the cut happens only if something would be lost
// (EAGAIN otherwise); with wait_ms=N, if nothing would be lost yet, the write of the line
// waits up to N ms for the next change and the cut happens right after it (EAGAIN if none
// came). "flush lie" makes fsync and fdatasync succeed without making anything durable (a
// device with a volatile cache that ignores flushes: what vstorage-hwflush-check must
// catch); "flush ok" ends that. After a cut the power stays off: every operation waits and then fails
// with EIO (after a short stall), until "on" is written; so a server still alive for the
// instant before its SIGKILL cannot touch the disk. Reading .powercut reports the state and what the last cut
// dropped.
//
// Not modelled: mode, owner, times and xattrs are never rolled back; directories are
// known by path (a renamed directory takes its pending names along, and once the rename is
// durable their undo uses the new path); hard links share their data state but not their
// names; granularity is the 4 KiB page (sectors only when torn); mmap is not supported
// (direct I/O).
//
// Thread-safety: the FUSE loop is multithreaded; one mutex (g.mu) covers the undo state
// and every operation that changes the backing directory, so each change and what is
// saved to undo it are one step. Reads take it only to check the power; syncs drop it
// while the backing sync runs. Saved pages are bounded by
// kMaxSavedBytes: past it a write fails with EIO and says so on stderr.
#define FUSE_USE_VERSION 35
#include <dirent.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSector = 512;
constexpr uint64_t kMaxSavedBytes = 4ull << 30;
constexpr long kMaxWaitMs = 120000;  // the longest an armed cut (wait_ms) waits for a change
constexpr const char* kControl = "/.powercut";
constexpr const char* kGrave = ".powercut-graveyard";
constexpr uint64_t kControlFh = ~0ull;

struct FileState {
  int fd = -1;  // O_RDWR on the inode, whatever its name is now
  uint64_t durable_size = 0;
  std::map<uint64_t, std::string> pages;  // page index -> content before its first change
};

enum class NameOp { kCreate, kRemove, kRename };
struct NameRec {
  NameOp op;
  std::string dir1, dir2;  // the directories it changes (dir2: rename target's)
  std::string from, to;    // create/remove: `from`; rename: from -> to
  std::string grave;       // the removed or replaced inode, while the change is pending
  uint64_t id = 0;         // order of the changes
  bool synced1 = false, synced2 = false;
};

struct Globals {
  std::string backing;
  std::mutex mu;
  std::map<ino_t, FileState> files;
  std::vector<NameRec> names;
  uint64_t saved_bytes = 0, seq = 0, name_seq = 0, cuts = 0, dropped_pages_last = 0, dropped_names_last = 0;
  bool powered = true;  // false from a cut until "on": the disk is gone
  bool lying = false;   // "flush lie": fsync succeeds without making anything durable
  std::condition_variable power_cv;
  // "cut ... wait_ms=N" with nothing to lose yet arms the cut: the next change makes it.
  struct Armed {
    double keep = 0;
    uint64_t seed = 1;
    bool tear = false;
  };
  std::optional<Armed> armed;
  std::condition_variable armed_cv;  // the armed cut happened
} g;

// While the power is off every operation stalls for kOffStallMs, then fails: a server
// process still alive for the instant between the cut and its SIGKILL cannot touch the
// disk, and it dies before it sees an error it could act on. (Not forever: a process killed
// while its request is in our hands waits for the answer before it can exit.)
constexpr int kOffStallMs = 500;
int Off(std::unique_lock<std::mutex>& l) {
  if (g.powered) return 0;
  g.power_cv.wait_for(l, std::chrono::milliseconds(kOffStallMs));
  return -EIO;
}
int Gate() {
  std::unique_lock<std::mutex> l(g.mu);
  return Off(l);
}

std::string B(const char* path) { return g.backing + path; }
std::string DirOf(const std::string& p) {
  auto s = p.rfind('/');
  return s == 0 ? "/" : p.substr(0, s);
}
std::string NewGrave() { return g.backing + "/" + kGrave + "/" + std::to_string(++g.seq); }
int Errno() { return -errno; }

// The undo state of the inode behind fd, created on its first change since it was durable.
FileState* StateOf(int fd, bool created = false) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return nullptr;
  auto it = g.files.find(st.st_ino);
  if (it != g.files.end()) return &it->second;
  FileState s;
  s.fd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDWR | O_CLOEXEC);
  if (s.fd < 0) return nullptr;
  s.durable_size = created ? 0 : static_cast<uint64_t>(st.st_size);
  return &g.files.emplace(st.st_ino, std::move(s)).first->second;
}

// Saves the pages of [off, off+len) that are below the durable size and not saved yet
// (pages past it are cut away by a restore anyway).
int SaveRange(FileState* s, uint64_t off, uint64_t len) {
  if (len == 0) return 0;
  uint64_t end = std::min(off + len, s->durable_size);
  for (uint64_t p = off / kPage; p * kPage < end; ++p) {
    if (s->pages.count(p)) continue;
    if (g.saved_bytes + kPage > kMaxSavedBytes) {
      std::fprintf(stderr, "powercut-fs: more than kMaxSavedBytes (%llu) of unsynced pages; failing the write\n",
                   static_cast<unsigned long long>(kMaxSavedBytes));
      return -EIO;
    }
    std::string page(kPage, '\0');
    ssize_t n = ::pread(s->fd, page.data(), kPage, static_cast<off_t>(p * kPage));
    if (n < 0) return Errno();
    s->pages.emplace(p, std::move(page));
    g.saved_bytes += kPage;
  }
  return 0;
}

void ForgetFile(std::map<ino_t, FileState>::iterator it) {
  g.saved_bytes -= it->second.pages.size() * kPage;
  ::close(it->second.fd);
  g.files.erase(it);
}

void RemoveAll(const std::string& p) {
  std::error_code ec;
  std::filesystem::remove_all(p, ec);
}

// A name change is durable: what it removed goes for real.
void Commit(NameRec& r) {
  if (!r.grave.empty()) RemoveAll(r.grave);
}

bool Under(const std::string& p, const std::string& base) {
  return p.compare(0, base.size(), base) == 0 && (p.size() == base.size() || p[base.size()] == '/');
}
void Reroot(std::string& p, const std::string& from, const std::string& to) {
  if (Under(p, from)) p = to + p.substr(from.size());
}

// r is durable; `earlier` are the changes before it still pending. Those that touch a name
// r removed or replaced for good can no longer be undone (the directory they were in is
// gone), so they are durable too; the others follow a renamed directory to its new name.
void Settle(NameRec& r, std::vector<NameRec>& earlier) {
  Commit(r);
  if (r.op == NameOp::kCreate) return;
  const std::string& gone = r.op == NameOp::kRemove ? r.from : r.to;
  std::vector<NameRec> left;
  for (auto& e : earlier) {
    if (Under(e.from, gone) || (e.op == NameOp::kRename && Under(e.to, gone))) {
      Commit(e);
      continue;
    }
    if (r.op == NameOp::kRename) {
      Reroot(e.from, r.from, r.to);
      Reroot(e.to, r.from, r.to);
    }
    left.push_back(std::move(e));
  }
  earlier = std::move(left);
}

std::string Stats() {
  uint64_t pages = 0;
  for (auto& [ino, s] : g.files) pages += s.pages.size();
  std::ostringstream o;
  o << "cuts=" << g.cuts << " dirty_files=" << g.files.size() << " saved_pages=" << pages
    << " pending_names=" << g.names.size() << " dropped_pages_last=" << g.dropped_pages_last
    << " dropped_names_last=" << g.dropped_names_last << " powered=" << (g.powered ? 1 : 0) << "\n";
  return o.str();
}

// Drops what is not durable (see the top of this file). g.mu held.
void Cut(double keep, uint64_t seed, bool tear) {
  std::mt19937_64 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  uint64_t pages = 0, names = 0;
  size_t first = 0;  // names[first..] are undone
  if (keep > 0 && !g.names.empty()) first = std::uniform_int_distribution<size_t>(0, g.names.size())(rng);
  for (size_t i = g.names.size(); i-- > first;) {
    NameRec& r = g.names[i];
    int rc = 0;
    if (r.op == NameOp::kCreate) {
      rc = ::rename((g.backing + r.from).c_str(), NewGrave().c_str());
    } else if (r.op == NameOp::kRemove) {
      rc = ::rename(r.grave.c_str(), (g.backing + r.from).c_str());
    } else {
      rc = ::rename((g.backing + r.to).c_str(), (g.backing + r.from).c_str());
      if (rc == 0 && !r.grave.empty()) rc = ::rename(r.grave.c_str(), (g.backing + r.to).c_str());
    }
    if (rc != 0) std::fprintf(stderr, "powercut-fs: undo of %s failed: %s\n", r.from.c_str(), std::strerror(errno));
    ++names;
  }
  for (size_t i = 0; i < first; ++i) Commit(g.names[i]);  // written back before the cut
  g.names.clear();
  for (auto& [ino, s] : g.files) {
    struct stat st {};
    uint64_t cur = ::fstat(s.fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    uint64_t size = keep > 0 && chance(keep) ? cur : s.durable_size;
    if (size < cur) pages += (cur - size + kPage - 1) / kPage;
    if (::ftruncate(s.fd, static_cast<off_t>(size)) != 0) std::perror("powercut-fs: ftruncate");
    std::vector<uint64_t> restored;
    for (auto& [p, old] : s.pages) {
      if (p * kPage >= size || (keep > 0 && chance(keep))) continue;
      restored.push_back(p);
    }
    uint64_t torn = tear && !restored.empty()
                        ? restored[std::uniform_int_distribution<size_t>(0, restored.size() - 1)(rng)]
                        : ~0ull;
    for (uint64_t p : restored) {
      std::string page = s.pages[p];
      if (p == torn) {  // half of its sectors keep the new bytes
        std::string now(kPage, '\0');
        if (::pread(s.fd, now.data(), kPage, static_cast<off_t>(p * kPage)) < 0) std::perror("powercut-fs: pread");
        for (uint64_t sec = 0; sec < kPage / kSector; ++sec)
          if (chance(0.5)) std::memcpy(page.data() + sec * kSector, now.data() + sec * kSector, kSector);
      }
      uint64_t n = std::min(kPage, size - p * kPage);
      if (::pwrite(s.fd, page.data(), n, static_cast<off_t>(p * kPage)) != static_cast<ssize_t>(n))
        std::perror("powercut-fs: pwrite");
      ++pages;
    }
    ::close(s.fd);
  }
  g.files.clear();
  g.saved_bytes = 0;
  ++g.cuts;
  g.dropped_pages_last = pages;
  g.dropped_names_last = names;
}

// Whether a cut now would lose anything (g.mu held).
bool WouldDrop() {
  if (!g.names.empty()) return true;
  for (auto& [ino, s] : g.files) {
    struct stat st {};
    if (!s.pages.empty() || (::fstat(s.fd, &st) == 0 && static_cast<uint64_t>(st.st_size) != s.durable_size))
      return true;
  }
  return false;
}

// Ends every operation that changes the backing directory (g.mu held, the change made):
// an armed cut happens now, when there is certainly something to lose. A test that waits
// for that moment cannot miss it, however short (the MDS is dirty only between an append
// and its fdatasync).
struct Change {
  Change() = default;
  Change(const Change&) = delete;
  Change& operator=(const Change&) = delete;
  ~Change() {
    if (!g.armed || !WouldDrop()) return;
    Cut(g.armed->keep, g.armed->seed, g.armed->tear);
    g.powered = false;
    g.armed.reset();
    g.armed_cv.notify_all();
  }
};

// g.mu held. "cut ..." drops what is not durable and turns the power off; "on" turns it on.
int Control(std::unique_lock<std::mutex>& l, const std::string& line) {
  std::istringstream in(line);
  std::string word;
  if (in >> word && word == "on" && !(in >> word)) {
    g.powered = true;
    g.power_cv.notify_all();
    return 0;
  }
  if (word == "flush") {  // "flush lie" / "flush ok": a device whose cache ignores flushes
    std::string how;
    if (!(in >> how) || (how != "lie" && how != "ok") || (in >> word)) return -EINVAL;
    g.lying = how == "lie";
    return 0;
  }
  if (word != "cut") return -EINVAL;
  double keep = 0;
  uint64_t seed = 1;
  bool tear = false, if_dirty = false;
  long wait_ms = -1;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos) return -EINVAL;
    std::string k = word.substr(0, eq), v = word.substr(eq + 1);
    char* end = nullptr;
    if (k == "keep") {
      keep = std::strtod(v.c_str(), &end);
      if (*end || keep < 0 || keep > 1) return -EINVAL;
    } else if (k == "seed") {
      seed = std::strtoull(v.c_str(), &end, 10);
      if (*end || v.empty()) return -EINVAL;
    } else if (k == "wait_ms") {
      wait_ms = std::strtol(v.c_str(), &end, 10);
      if (*end || v.empty() || wait_ms < 0 || wait_ms > kMaxWaitMs) return -EINVAL;
    } else if (k == "tear" || k == "if_dirty") {
      if (v != "0" && v != "1") return -EINVAL;
      (k == "tear" ? tear : if_dirty) = v == "1";
    } else {
      return -EINVAL;
    }
  }
  if (g.armed) return -EBUSY;  // another cut is armed
  if (wait_ms >= 0 && !WouldDrop()) {
    // Armed: the next change cuts (Change), or after wait_ms nothing did (EAGAIN).
    g.armed = Globals::Armed{keep, seed, tear};
    bool cut = g.armed_cv.wait_for(l, std::chrono::milliseconds(wait_ms), [] { return !g.armed; });
    if (cut) return 0;
    g.armed.reset();
    return -EAGAIN;
  }
  // if_dirty=1: only when something would be lost (a test waiting for that moment).
  if (if_dirty && !WouldDrop()) return -EAGAIN;
  Cut(keep, seed, tear);
  g.powered = false;
  return 0;
}

bool Hidden(const char* path) {
  return std::strncmp(path + 1, kGrave, std::strlen(kGrave)) == 0 &&
         (path[1 + std::strlen(kGrave)] == '\0' || path[1 + std::strlen(kGrave)] == '/');
}

void PendingName(NameOp op, const std::string& from, const std::string& to = "", const std::string& grave = "") {
  NameRec r;
  r.op = op;
  r.from = from;
  r.to = to;
  r.grave = grave;
  r.id = ++g.name_seq;
  r.dir1 = DirOf(from);
  r.dir2 = op == NameOp::kRename ? DirOf(to) : r.dir1;
  g.names.push_back(std::move(r));
}

// ---- operations ----

void* Init(struct fuse_conn_info*, struct fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->hard_remove = 1;
  cfg->direct_io = 1;  // no page cache in front of us: a cut is seen at once
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  return nullptr;
}

int GetAttr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  if (std::strcmp(path, kControl) == 0) {
    std::memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = 0;
    return 0;
  }
  if (Hidden(path)) return -ENOENT;
  if (int rc = Gate()) return rc;
  if (fi && fi->fh != kControlFh) return ::fstat(static_cast<int>(fi->fh), st) == 0 ? 0 : Errno();
  return ::lstat(B(path).c_str(), st) == 0 ? 0 : Errno();
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, struct fuse_file_info*, enum fuse_readdir_flags) {
  if (int rc = Gate()) return rc;
  DIR* d = ::opendir(B(path).c_str());
  if (!d) return Errno();
  bool root = std::strcmp(path, "/") == 0;
  while (struct dirent* e = ::readdir(d)) {
    if (root && std::strcmp(e->d_name, kGrave) == 0) continue;
    struct stat st {};
    st.st_ino = e->d_ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(e->d_type));
    fill(buf, e->d_name, &st, 0, static_cast<fuse_fill_dir_flags>(0));
  }
  ::closedir(d);
  return 0;
}

// The size of the file behind fd becomes `size`, the pages cut away saved first. g.mu held.
int Resize(int fd, off_t size) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno();
  if (size == st.st_size) return 0;  // nothing to undo (an O_TRUNC open of an empty file)
  FileState* s = StateOf(fd);
  if (!s) return -EIO;
  if (size < st.st_size) {
    if (int rc = SaveRange(s, static_cast<uint64_t>(size), static_cast<uint64_t>(st.st_size - size))) return rc;
  }
  return ::ftruncate(s->fd, size) == 0 ? 0 : Errno();  // s->fd: fd may be read-only
}

int Open(const char* path, struct fuse_file_info* fi) {
  if (std::strcmp(path, kControl) == 0) {
    fi->fh = kControlFh;
    fi->direct_io = 1;
    return 0;
  }
  // O_TRUNC arrives here (FUSE_CAP_ATOMIC_O_TRUNC), and is a change to undo like truncate.
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  int fd = ::open(B(path).c_str(), fi->flags & ~(O_CREAT | O_TRUNC | O_DIRECT));
  if (fd < 0) return Errno();
  if (fi->flags & O_TRUNC) {
    if (int rc = Resize(fd, 0)) {
      ::close(fd);
      return rc;
    }
  }
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = 1;
  return 0;
}

int Create(const char* path, mode_t mode, struct fuse_file_info* fi) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  struct stat st {};
  bool existed = ::lstat(B(path).c_str(), &st) == 0;
  // No O_DIRECT on the backing file: FUSE's buffers are not aligned for it, and direct_io
  // keeps the kernel's cache out of the way already.
  int fd = ::open(B(path).c_str(), (fi->flags | O_CREAT) & ~(O_TRUNC | O_DIRECT), mode);
  if (fd < 0) return Errno();
  if (!existed) {
    PendingName(NameOp::kCreate, path);
    StateOf(fd, true);
  } else if (fi->flags & O_TRUNC) {  // it appeared since the kernel's lookup
    if (int rc = Resize(fd, 0)) {
      ::close(fd);
      return rc;
    }
  }
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = 1;
  return 0;
}

int Read(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)path;
  if (fi->fh == kControlFh) {
    std::string s;
    {
      std::lock_guard<std::mutex> l(g.mu);
      s = Stats();
    }
    if (static_cast<size_t>(off) >= s.size()) return 0;
    size_t n = std::min(size, s.size() - static_cast<size_t>(off));
    std::memcpy(buf, s.data() + off, n);
    return static_cast<int>(n);
  }
  if (int rc = Gate()) return rc;
  ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, off);
  return n < 0 ? Errno() : static_cast<int>(n);
}

int Write(const char* path, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)path;
  std::unique_lock<std::mutex> l(g.mu);
  if (fi->fh == kControlFh) {
    std::string line(buf, size);
    int rc = Control(l, line);
    if (rc == -EINVAL)
      std::fprintf(stderr, "powercut-fs: bad control line %s (want: cut [keep=P] [seed=S] [tear=0|1] [if_dirty=1] [wait_ms=N], on, or flush lie|ok)\n",
                   line.c_str());
    return rc != 0 ? rc : static_cast<int>(size);
  }
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  int fd = static_cast<int>(fi->fh);
  FileState* s = StateOf(fd);
  if (!s) return -EIO;
  if (int rc = SaveRange(s, static_cast<uint64_t>(off), size); rc != 0) return rc;
  ssize_t n = ::pwrite(fd, buf, size, off);
  return n < 0 ? Errno() : static_cast<int>(n);
}

int Truncate(const char* path, off_t size, struct fuse_file_info* fi) {
  if (std::strcmp(path, kControl) == 0) return 0;
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  int fd = fi ? static_cast<int>(fi->fh) : ::open(B(path).c_str(), O_RDWR);
  if (fd < 0) return Errno();
  int rc = Resize(fd, size);
  if (!fi) ::close(fd);
  return rc;
}

int Fallocate(const char* path, int mode, off_t off, off_t len, struct fuse_file_info* fi) {
  (void)path;
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  int fd = static_cast<int>(fi->fh);
  FileState* s = StateOf(fd);
  if (!s) return -EIO;
  if (int rc = SaveRange(s, static_cast<uint64_t>(off), static_cast<uint64_t>(len)); rc != 0) return rc;
  return ::fallocate(fd, mode, off, len) == 0 ? 0 : Errno();
}

// The sync runs without g.mu: while it is in flight the data is not durable yet, and a cut
// then drops it (the fsync fails with EIO, as it would on a machine that lost power).
// Writes that land during the sync are taken as covered by it (a kinder model than a disk).
int Fsync(const char* path, int datasync, struct fuse_file_info* fi) {
  (void)path;
  if (fi->fh == kControlFh) return 0;
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  if (g.lying) return 0;  // "flush lie": acknowledged, not done
  const uint64_t cuts = g.cuts;
  int fd = static_cast<int>(fi->fh);
  l.unlock();
  int rc = (datasync ? ::fdatasync(fd) : ::fsync(fd)) == 0 ? 0 : Errno();
  l.lock();
  if (g.cuts != cuts) return -EIO;
  if (rc != 0) return rc;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno();
  if (auto it = g.files.find(st.st_ino); it != g.files.end()) ForgetFile(it);
  return 0;
}

int FsyncDir(const char* path, int, struct fuse_file_info*) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  if (g.lying) return 0;
  const uint64_t cuts = g.cuts, upto = g.name_seq;  // names changed before the sync began
  l.unlock();
  int fd = ::open(B(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno();
  int rc = ::fsync(fd) == 0 ? 0 : Errno();
  ::close(fd);
  l.lock();
  if (g.cuts != cuts) return -EIO;
  if (rc != 0) return rc;
  std::vector<NameRec> left;
  for (auto& r : g.names) {
    if (r.id <= upto) {
      r.synced1 |= r.dir1 == path;
      r.synced2 |= r.dir2 == path;
    }
    if (r.synced1 && r.synced2) Settle(r, left);
    else left.push_back(std::move(r));
  }
  g.names = std::move(left);
  return 0;
}

off_t Lseek(const char*, off_t off, int whence, struct fuse_file_info* fi) {
  if (fi->fh == kControlFh) return -ESPIPE;
  if (int rc = Gate()) return rc;
  off_t r = ::lseek(static_cast<int>(fi->fh), off, whence);
  return r < 0 ? Errno() : r;
}

int Release(const char*, struct fuse_file_info* fi) {
  if (fi->fh != kControlFh) ::close(static_cast<int>(fi->fh));
  return 0;
}

int Flush(const char*, struct fuse_file_info*) { return 0; }  // no durability

int Mkdir(const char* path, mode_t mode) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  if (::mkdir(B(path).c_str(), mode) != 0) return Errno();
  PendingName(NameOp::kCreate, path);
  return 0;
}

int Mknod(const char* path, mode_t mode, dev_t dev) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  if (::mknod(B(path).c_str(), mode, dev) != 0) return Errno();
  PendingName(NameOp::kCreate, path);
  return 0;
}

int Symlink(const char* target, const char* path) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  if (::symlink(target, B(path).c_str()) != 0) return Errno();
  PendingName(NameOp::kCreate, path);
  return 0;
}

int Link(const char* from, const char* to) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  if (::link(B(from).c_str(), B(to).c_str()) != 0) return Errno();
  PendingName(NameOp::kCreate, to);
  return 0;
}

bool EmptyDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return false;
  bool empty = true;
  while (struct dirent* e = ::readdir(d))
    if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) empty = false;
  ::closedir(d);
  return empty;
}

// unlink and rmdir: the inode goes to the graveyard until the removal is durable.
int Remove(const char* path, bool dir) {
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  struct stat st {};
  if (::lstat(B(path).c_str(), &st) != 0) return Errno();
  if (dir != S_ISDIR(st.st_mode)) return dir ? -ENOTDIR : -EISDIR;
  if (dir && !EmptyDir(B(path))) return -ENOTEMPTY;
  std::string grave = NewGrave();
  if (::rename(B(path).c_str(), grave.c_str()) != 0) return Errno();
  PendingName(NameOp::kRemove, path, "", grave);
  return 0;
}
int Unlink(const char* path) { return Remove(path, false); }
int Rmdir(const char* path) { return Remove(path, true); }

int Rename(const char* from, const char* to, unsigned int flags) {
  if (flags & RENAME_EXCHANGE) return -EINVAL;
  std::unique_lock<std::mutex> l(g.mu);
  if (int rc = Off(l)) return rc;
  Change change;  // an armed cut (wait_ms) happens right after it
  struct stat sf {}, st {};
  if (::lstat(B(from).c_str(), &sf) != 0) return Errno();
  std::string grave;
  if (::lstat(B(to).c_str(), &st) == 0) {
    if (flags & RENAME_NOREPLACE) return -EEXIST;
    if (sf.st_ino == st.st_ino) return 0;  // two names of one inode: rename(2) does nothing
    if (S_ISDIR(sf.st_mode) != S_ISDIR(st.st_mode)) return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTDIR;
    if (S_ISDIR(st.st_mode) && !EmptyDir(B(to))) return -ENOTEMPTY;
    grave = NewGrave();
    if (::rename(B(to).c_str(), grave.c_str()) != 0) return Errno();
  }
  if (::rename(B(from).c_str(), B(to).c_str()) != 0) {
    int e = errno;
    if (!grave.empty()) (void)::rename(grave.c_str(), B(to).c_str());
    return -e;
  }
  for (auto& r : g.names) {
    Reroot(r.dir1, from, to);
    Reroot(r.dir2, from, to);
  }
  PendingName(NameOp::kRename, from, to, grave);
  return 0;
}

int Chmod(const char* path, mode_t mode, struct fuse_file_info*) {
  if (int rc = Gate()) return rc;
  return ::chmod(B(path).c_str(), mode) == 0 ? 0 : Errno();
}
int Chown(const char* path, uid_t uid, gid_t gid, struct fuse_file_info*) {
  if (int rc = Gate()) return rc;
  return ::lchown(B(path).c_str(), uid, gid) == 0 ? 0 : Errno();
}
int Utimens(const char* path, const struct timespec tv[2], struct fuse_file_info*) {
  if (int rc = Gate()) return rc;
  return ::utimensat(AT_FDCWD, B(path).c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : Errno();
}
int Readlink(const char* path, char* buf, size_t size) {
  if (int rc = Gate()) return rc;
  ssize_t n = ::readlink(B(path).c_str(), buf, size - 1);
  if (n < 0) return Errno();
  buf[n] = '\0';
  return 0;
}
int Access(const char* path, int mask) {
  if (std::strcmp(path, kControl) == 0) return 0;
  if (int rc = Gate()) return rc;
  return ::access(B(path).c_str(), mask) == 0 ? 0 : Errno();
}
int StatFs(const char*, struct statvfs* st) {
  if (int rc = Gate()) return rc;
  return ::statvfs(g.backing.c_str(), st) == 0 ? 0 : Errno(); }
int SetXattr(const char* path, const char* name, const char* value, size_t size, int flags) {
  if (int rc = Gate()) return rc;
  return ::lsetxattr(B(path).c_str(), name, value, size, flags) == 0 ? 0 : Errno();
}
int GetXattr(const char* path, const char* name, char* value, size_t size) {
  if (int rc = Gate()) return rc;
  ssize_t n = ::lgetxattr(B(path).c_str(), name, value, size);
  return n < 0 ? Errno() : static_cast<int>(n);
}
int ListXattr(const char* path, char* list, size_t size) {
  if (int rc = Gate()) return rc;
  ssize_t n = ::llistxattr(B(path).c_str(), list, size);
  return n < 0 ? Errno() : static_cast<int>(n);
}
int RemoveXattr(const char* path, const char* name) {
  if (int rc = Gate()) return rc;
  return ::lremovexattr(B(path).c_str(), name) == 0 ? 0 : Errno();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: vstorage-powercut-fs BACKING_DIR MOUNTPOINT [fuse options]\n");
    return 2;
  }
  char* real = ::realpath(argv[1], nullptr);
  if (!real) {
    std::fprintf(stderr, "vstorage-powercut-fs: %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  g.backing = real;
  std::free(real);
  ::umask(0);  // the kernel applied the caller's umask already
  std::error_code ec;
  std::filesystem::remove_all(g.backing + "/" + kGrave, ec);  // a previous run's leftovers
  std::filesystem::create_directory(g.backing + "/" + kGrave, ec);
  if (ec) {
    std::fprintf(stderr, "vstorage-powercut-fs: cannot create %s/%s: %s\n", g.backing.c_str(), kGrave,
                 ec.message().c_str());
    return 1;
  }
  struct fuse_operations ops {};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.readdir = ReadDir;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.truncate = Truncate;
  ops.fallocate = Fallocate;
  ops.fsync = Fsync;
  ops.fsyncdir = FsyncDir;
  ops.lseek = Lseek;
  ops.release = Release;
  ops.flush = Flush;
  ops.mkdir = Mkdir;
  ops.mknod = Mknod;
  ops.symlink = Symlink;
  ops.link = Link;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.rename = Rename;
  ops.chmod = Chmod;
  ops.chown = Chown;
  ops.utimens = Utimens;
  ops.readlink = Readlink;
  ops.access = Access;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  std::vector<char*> args = {argv[0], argv[2], const_cast<char*>("-f"), const_cast<char*>("-o"),
                             const_cast<char*>("fsname=powercut,subtype=powercut")};
  for (int i = 3; i < argc; ++i) args.push_back(argv[i]);
  return fuse_main(static_cast<int>(args.size()), args.data(), &ops, nullptr);
}
