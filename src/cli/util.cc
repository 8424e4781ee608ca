#include "cli/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common/config.h"
#include "rpc/server.h"

namespace vstorage::cli {

Status CheckRepoDirUsable(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Err(Code::kIoError, "cannot use repository " + dir + ": " + std::strerror(errno) +
                                   "; check the path and its permissions");
  }
  if (!S_ISDIR(st.st_mode))
    return Err(Code::kNotDir, "repository " + dir +
                                  " exists and is not a directory; choose another -r");
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return Err(Code::kIoError, "cannot read repository " + dir + ": " + std::strerror(errno) +
                                   "; check its permissions");
  bool empty = true;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n == "lost+found") continue;
    empty = false;
    break;
  }
  ::closedir(d);
  if (!empty)
    return Err(Code::kExists,
               "repository " + dir + " is not empty; choose another -r or remove it");
  return Status::Ok();
}

std::string AbsolutePath(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dir, ec);
  if (ec) return dir;
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Status CreateRepoDir(const std::string& dir, bool* created) {
  *created = !PathExists(dir);
  Status st = MakeDirs(dir);
  if (!st.ok()) return st.Annotate("cannot create repository; check the path and permissions");
  return Status::Ok();
}

void RemoveCreatedRepo(const std::string& dir, bool created,
                       std::initializer_list<const char*> files) {
  for (const char* f : files) {
    std::string p = dir + "/" + f;
    ::unlink(p.c_str());
    ::unlink((p + ".tmp").c_str());
  }
  if (created) ::rmdir(dir.c_str());
}

Status CheckServiceAddress(const HostPort& addr) {
  // "999.1.1.1" is no IPv4 address, but the resolver would take it for a host name and ask
  // DNS; say what is wrong with it instead.
  if (addr.host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr a;
    if (::inet_pton(AF_INET, addr.host.c_str(), &a) != 1)
      return Err(Code::kInvalidArgument, "'" + addr.host + "' is not a valid IPv4 address "
                                         "(four numbers from 0 to 255, e.g. 10.0.0.5)");
  }
  rpc::Server probe;
  Status st = probe.Listen(addr);
  if (!st.ok()) return st;
  probe.Stop();
  return Status::Ok();
}

bool RepositoryInUse(const std::string& dir) {
  struct stat st;
  if (::stat((dir + "/LOCK").c_str(), &st) != 0) return false;
  auto locks = ReadFile("/proc/locks");
  if (!locks.ok()) return false;
  // "1: FLOCK  ADVISORY  WRITE 10516 fe:00:10952732 0 EOF": the file is MAJOR:MINOR:INODE,
  // device numbers in hex.
  char want[64];
  std::snprintf(want, sizeof want, " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::istringstream lines(locks.value());
  for (std::string line; std::getline(lines, line);)
    if (line.find("FLOCK") != std::string::npos && (line + " ").find(want) != std::string::npos)
      return true;
  return false;
}

std::string NotInMountMessage(const std::string& path) {
  return path + " is not inside a vstorage mount; mount the cluster with 'vstorage-mount -c "
                "NAME DIR' and give a path below DIR";
}

std::string XattrErrnoMessage(const std::string& path, int err) {
  switch (err) {
    case ENOTSUP:
    case ENODATA:
      return NotInMountMessage(path);
    case ENOENT:
      return path + ": no such file or directory; check the path";
    case EACCES:
    case EPERM:
      return path + ": permission denied; run as root or as the owner of the file";
    case ENOTCONN:
      return path + ": the vstorage mount is not connected (vstorage-mount died?); remount it";
    default:
      return path + ": " + std::strerror(err);
  }
}

}  // namespace vstorage::cli
