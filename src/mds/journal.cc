#include "mds/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/config.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/serde.h"

namespace vstorage::mds {

namespace {

constexpr uint32_t kRecordMagic = 0x4e524a56;  // "VJRN"
constexpr size_t kRecordHeader = 28;
constexpr char kSnapMagic[8] = {'V', 'S', 'S', 'N', 'A', 'P', '0', '1'};
constexpr size_t kSnapHeader = 28;

Status ErrnoStatus(const std::string& what) {
  int e = errno;
  return Err(e == ENOSPC ? Code::kNoSpace : Code::kIoError, what + ": " + std::strerror(e));
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus("open " + dir);
  int r = ::fsync(fd);
  ::close(fd);
  if (r != 0) return ErrnoStatus("fsync " + dir);
  return Status::Ok();
}

Status WriteAll(int fd, const char* p, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path);
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint32_t RecordCrc(uint64_t index, uint64_t term, std::string_view data) {
  char hdr[16];
  std::memcpy(hdr, &index, 8);
  std::memcpy(hdr + 8, &term, 8);
  uint32_t c = Crc32c(hdr, sizeof(hdr));
  return Crc32cExtend(c, data.data(), data.size());
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir) {
  std::unique_ptr<Journal> j(new Journal(dir));
  std::string path = dir + "/journal";
  bool existed = ::access(path.c_str(), F_OK) == 0;
  j->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j->fd_ < 0) return ErrnoStatus("cannot open the MDS journal " + path);
  if (!existed) RETURN_IF_ERROR(FsyncDir(dir));
  return j;
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<MdsState> Journal::Recover() {
  MdsState state;
  uint64_t snap_index = 0;
  std::string snap_path = dir_ + "/snapshot";
  if (::access(snap_path.c_str(), F_OK) == 0) {
    ASSIGN_OR_RETURN(std::string s, ReadFile(snap_path));
    if (s.size() < kSnapHeader || std::memcmp(s.data(), kSnapMagic, 8) != 0)
      return Err(Code::kCorrupt, snap_path + " is not an MDS snapshot; restore the repository from a backup");
    snap_index = Load<uint64_t>(s.data() + 8);
    uint64_t len = Load<uint64_t>(s.data() + 16);
    uint32_t crc = Load<uint32_t>(s.data() + 24);
    if (len != s.size() - kSnapHeader || Crc32c(s.data() + kSnapHeader, len) != crc)
      return Err(Code::kCorrupt, snap_path + " fails its checksum; restore the repository from a backup");
    RETURN_IF_ERROR(state.Decode(std::string_view(s).substr(kSnapHeader)));
  }
  last_index_ = snap_index;

  std::string path = dir_ + "/journal";
  ASSIGN_OR_RETURN(std::string j, ReadFile(path));
  size_t off = 0;
  uint64_t replayed = 0;
  since_snapshot_ = 0;
  while (off < j.size()) {
    size_t left = j.size() - off;
    bool torn = false;
    std::string why;
    if (left < kRecordHeader) {
      torn = true;
    } else if (Load<uint32_t>(j.data() + off) != kRecordMagic) {
      torn = j.find_first_not_of('\0', off) == std::string::npos;  // zeros after a crash
      why = "bad record magic";
    } else {
      uint32_t len = Load<uint32_t>(j.data() + off + 4);
      uint32_t crc = Load<uint32_t>(j.data() + off + 8);
      uint64_t index = Load<uint64_t>(j.data() + off + 12);
      uint64_t term = Load<uint64_t>(j.data() + off + 20);
      if (len > left - kRecordHeader) {
        torn = true;
      } else {
        std::string_view data(j.data() + off + kRecordHeader, len);
        if (RecordCrc(index, term, data) != crc) {
          torn = off + kRecordHeader + len == j.size();
          why = "record checksum mismatch";
        } else {
          if (last_index_ != 0 && index != last_index_ + 1 && index > snap_index)
            return Err(Code::kCorrupt, path + ": record index " + std::to_string(index) + " follows " +
                                           std::to_string(last_index_) + "; restore the repository from a backup");
          if (index > snap_index) {
            Command cmd;
            RETURN_IF_ERROR(proto::DecodeStoredRecord(data, &cmd, "journal record"));
            auto r = state.Apply(cmd);
            if (!r.ok())
              return Err(Code::kCorrupt, path + ": record " + std::to_string(index) +
                                             " does not apply (" + r.status().message() + ")");
            last_index_ = index;
            ++replayed;
            ++since_snapshot_;
          }
          off += kRecordHeader + len;
          continue;
        }
      }
    }
    if (!torn)
      return Err(Code::kCorrupt, path + " is damaged at offset " + std::to_string(off) + " (" + why +
                                     ") with valid records after it; restore the repository from a backup");
    LOG_WARN("journal %s: cutting a torn record at offset %zu (%zu bytes, never acknowledged)",
             path.c_str(), off, left);
    if (::ftruncate(fd_, static_cast<off_t>(off)) != 0 || ::fdatasync(fd_) != 0)
      return ErrnoStatus("truncate " + path);
    break;
  }
  end_ = off;
  LOG_INFO("MDS state recovered: snapshot at index %llu, %llu journal records replayed",
           static_cast<unsigned long long>(snap_index), static_cast<unsigned long long>(replayed));
  return state;
}

Status Journal::Append(const std::vector<std::string>& records, uint64_t term) {
  std::string buf;
  uint64_t index = last_index_;
  for (const auto& r : records) {
    ++index;
    char hdr[kRecordHeader];
    uint32_t magic = kRecordMagic, len = static_cast<uint32_t>(r.size()), crc = RecordCrc(index, term, r);
    std::memcpy(hdr, &magic, 4);
    std::memcpy(hdr + 4, &len, 4);
    std::memcpy(hdr + 8, &crc, 4);
    std::memcpy(hdr + 12, &index, 8);
    std::memcpy(hdr + 20, &term, 8);
    buf.append(hdr, kRecordHeader);
    buf.append(r);
  }
  std::string path = dir_ + "/journal";
  Status st = WriteAll(fd_, buf.data(), buf.size(), end_, path);
  if (st.ok() && ::fdatasync(fd_) != 0) st = ErrnoStatus("fdatasync " + path);
  if (!st.ok()) {
    // Leave no partial record behind for the next append to follow.
    if (::ftruncate(fd_, static_cast<off_t>(end_)) != 0) LOG_WARN("cannot cut %s back", path.c_str());
    return st;
  }
  end_ += buf.size();
  last_index_ = index;
  since_snapshot_ += records.size();
  return Status::Ok();
}

Status Journal::WriteSnapshot(const MdsState& state) {
  std::string image = state.Encode();
  std::string out(kSnapHeader, '\0');
  std::memcpy(out.data(), kSnapMagic, 8);
  uint64_t len = image.size();
  uint32_t crc = Crc32c(image.data(), image.size());
  std::memcpy(out.data() + 8, &last_index_, 8);
  std::memcpy(out.data() + 16, &len, 8);
  std::memcpy(out.data() + 24, &crc, 4);
  out += image;
  std::string tmp = dir_ + "/snapshot.tmp", path = dir_ + "/snapshot";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create " + tmp);
  Status st = WriteAll(fd, out.data(), out.size(), 0, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus("fsync " + tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("rename " + tmp);
  if (st.ok()) st = FsyncDir(dir_);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  // The snapshot covers every record: the journal can start over.
  if (::ftruncate(fd_, 0) != 0 || ::fdatasync(fd_) != 0) return ErrnoStatus("truncate " + dir_ + "/journal");
  end_ = 0;
  since_snapshot_ = 0;
  return Status::Ok();
}

}  // namespace vstorage::mds
