#include "common/config.h"
#include "common/auth.h"
#include "common/limits.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vstorage {

Result<HostPort> ParseHostPort(const std::string& s, int default_port) {
  HostPort hp;
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    hp.host = s;
    hp.port = default_port;
  } else {
    hp.host = s.substr(0, colon);
    char* end = nullptr;
    long p = std::strtol(s.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65534)
      return Err(Code::kInvalidArgument, "bad port '" + s.substr(colon + 1) + "' in address '" +
                                             s + "': give a port from 1 to 65534");
    hp.port = static_cast<int>(p);
  }
  if (hp.host.empty()) return Err(Code::kInvalidArgument, "empty host in address '" + s + "'");
  return hp;
}

bool IsValidClusterName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

std::string ConfRoot() {
  const char* e = std::getenv("VSTORAGE_CONF_DIR");
  return (e && *e) ? std::string(e) : std::string("/etc/vstorage");
}

std::string ClusterDir(const std::string& cluster) { return ConfRoot() + "/clusters/" + cluster; }

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return Err(e == ENOENT ? Code::kNotFound : Code::kIoError,
               path + ": " + std::strerror(e));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Err(Code::kIoError, path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

static Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Err(Code::kIoError, dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Err(Code::kIoError, "fsync " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& data, int mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Err(Code::kIoError, tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Err(e == ENOSPC ? Code::kNoSpace : Code::kIoError, tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Err(Code::kIoError, "fsync " + tmp + ": " + std::strerror(e));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Err(Code::kIoError, "rename " + tmp + ": " + std::strerror(errno));
  auto slash = path.rfind('/');
  return FsyncDir(slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash)));
}

Status MakeDirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    std::string parent = cur.empty() ? "." : cur;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0755) != 0) {
      if (errno == EEXIST) continue;
      return Err(Code::kIoError, "mkdir " + cur + ": " + std::strerror(errno));
    }
    // A new directory's entry is durable only once its parent is synced (a power cut
    // would otherwise take a repository with every file fsynced inside it).
    RETURN_IF_ERROR(FsyncDir(parent));
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::map<std::string, std::string>> ReadKeyValueFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::map<std::string, std::string> kv;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return Err(Code::kCorrupt, path + ": bad line '" + line + "'");
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

Status WriteKeyValueFile(const std::string& path, const std::map<std::string, std::string>& kv) {
  std::string text;
  for (auto& [k, v] : kv) text += k + "=" + v + "\n";
  return WriteFileAtomic(path, text);
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  VS_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) == 1);
  return s;
}

std::string HexEncode(const std::string& bin) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(bin.size() * 2);
  for (unsigned char c : bin) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

Result<std::string> HexDecode(const std::string& hex) {
  if (hex.size() % 2) return Err(Code::kCorrupt, "odd-length hex string");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int a = nib(hex[i]), b = nib(hex[i + 1]);
    if (a < 0 || b < 0) return Err(Code::kCorrupt, "bad hex digit");
    out.push_back(static_cast<char>(a * 16 + b));
  }
  return out;
}

static std::string Trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

Result<std::string> GetOrCreateHostId() {
  std::string path = ConfRoot() + "/host_id";
  auto r = ReadFile(path);
  if (r.ok()) {
    std::string id = Trim(r.value());
    if (!id.empty()) return id;
  } else if (r.status().code() != Code::kNotFound) {
    return r.status();
  }
  RETURN_IF_ERROR(MakeDirs(ConfRoot()));
  std::string id = HexEncode(RandomBytes(16));
  RETURN_IF_ERROR(WriteFileAtomic(path, id + "\n"));
  return id;
}

Result<std::vector<HostPort>> ReadBsList(const std::string& cluster) {
  std::string path = ClusterDir(cluster) + "/bs.list";
  auto r = ReadFile(path);
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound)
      return Err(Code::kNotFound,
                 "unknown cluster '" + cluster + "': " + path +
                     " does not exist; create the cluster with 'vstorage -c " + cluster +
                     " make-mds -I ...' or add the MDS address (HOST:PORT) to that file");
    return r.status();
  }
  std::vector<HostPort> out;
  std::stringstream ss(r.value());
  std::string line;
  while (std::getline(ss, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(line, kDefaultMdsPort));
    out.push_back(hp);
  }
  if (out.empty()) return Err(Code::kNotFound, path + " lists no MDS address");
  return out;
}

Status AddToBsList(const std::string& cluster, const HostPort& addr) {
  std::string dir = ClusterDir(cluster);
  RETURN_IF_ERROR(MakeDirs(dir));
  std::string text;
  auto r = ReadFile(dir + "/bs.list");
  if (r.ok()) text = r.value();
  if (text.find(addr.str()) != std::string::npos) return Status::Ok();
  if (!text.empty() && text.back() != '\n') text += "\n";
  text += addr.str() + "\n";
  return WriteFileAtomic(dir + "/bs.list", text);
}

Result<std::string> ParseClusterKey(const std::string& path, const std::string& text,
                                    const std::string& fix) {
  auto key = HexDecode(Trim(text));
  Status st = key.status();
  if (st.ok() && key->size() != kClusterKeyBytes)
    st = Err(Code::kCorrupt, std::to_string(key->size()) + " bytes instead of " +
                                 std::to_string(kClusterKeyBytes));
  if (!st.ok())
    return Err(Code::kCorrupt, "cluster key file " + path + " is damaged (" + st.message() +
                                   "; it must hold " + std::to_string(2 * kClusterKeyBytes) +
                                   " hex digits): " + fix);
  return key;
}

Result<std::string> ReadClusterKey(const std::string& cluster) {
  std::string path = ClusterDir(cluster) + "/cluster.key";
  auto r = ReadFile(path);
  if (!r.ok()) {
    if (r.status().code() != Code::kNotFound) return r.status();
    if (!PathExists(ClusterDir(cluster) + "/bs.list"))
      return Err(Code::kNotFound,
                 "unknown cluster '" + cluster + "': this host has no configuration for it (" +
                     ClusterDir(cluster) + " holds no bs.list); create the cluster with "
                     "'vstorage -c " + cluster + " make-mds -I ...', or join an existing one: "
                     "put its MDS address (HOST:PORT) into " + ClusterDir(cluster) +
                     "/bs.list and run 'vstorage -c " + cluster + " auth-node'");
    return Err(Code::kAuthFailed, "this host is not authenticated in cluster '" + cluster +
                                      "': run 'vstorage -c " + cluster + " auth-node' first");
  }
  return ParseClusterKey(path, r.value(),
                         "remove it and run 'vstorage -c " + cluster + " auth-node' on this host "
                         "to write it again");
}

Status WriteClusterKey(const std::string& cluster, const std::string& key) {
  RETURN_IF_ERROR(MakeDirs(ClusterDir(cluster)));
  return WriteFileAtomic(ClusterDir(cluster) + "/cluster.key", HexEncode(key) + "\n", 0600);
}

Status RegisterService(const ServiceEntry& e) {
  RETURN_IF_ERROR(MakeDirs(ConfRoot()));
  std::string path = ConfRoot() + "/services.list";
  auto r = ReadFile(path);
  if (!r.ok() && r.status().code() != Code::kNotFound) return r.status();
  // A repository made again (its old service removed) belongs to the new one only.
  std::string text;
  std::stringstream ss(r.ok() ? r.value() : "");
  for (ServiceEntry o; ss >> o.cluster >> o.type >> o.id >> o.repo;)
    if (o.repo != e.repo) text += o.cluster + " " + o.type + " " + o.id + " " + o.repo + "\n";
  text += e.cluster + " " + e.type + " " + e.id + " " + e.repo + "\n";
  return WriteFileAtomic(path, text);
}

Result<std::vector<ServiceEntry>> ListServices() {
  std::vector<ServiceEntry> out;
  auto r = ReadFile(ConfRoot() + "/services.list");
  if (!r.ok()) {
    if (r.status().code() == Code::kNotFound) return out;
    return r.status();
  }
  std::stringstream ss(r.value());
  ServiceEntry e;
  while (ss >> e.cluster >> e.type >> e.id >> e.repo) out.push_back(e);
  return out;
}

Result<int> LockRepository(const std::string& dir) {
  std::string path = dir + "/LOCK";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Err(Code::kIoError, path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Err(Code::kBusy, "repository " + dir + " is in use by another process");
  }
  return fd;
}

}  // namespace vstorage
