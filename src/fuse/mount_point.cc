#include "fuse/mount_point.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

namespace vstorage::fuse {

namespace {

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string o = s.substr(i + 1, 3);
      if (o.find_first_not_of("01234567") == std::string::npos) {
        out.push_back(static_cast<char>(std::stoi(o, nullptr, 8)));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

const char* FileKind(mode_t m) {
  if (S_ISREG(m)) return "a regular file";
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a directory";
}

}  // namespace

bool IsVstorageMountOf(const std::string& mountinfo, const std::string& dir,
                       const std::string& cluster) {
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    std::istringstream f(line);
    std::vector<std::string> w;
    for (std::string x; f >> x;) w.push_back(x);
    if (w.size() < 7) continue;
    size_t dash = 6;
    while (dash < w.size() && w[dash] != "-") ++dash;
    if (dash + 2 >= w.size()) continue;
    if (Unescape(w[4]) == dir && w[dash + 1] == "fuse.vstorage" &&
        Unescape(w[dash + 2]) == "vstorage://" + cluster)
      return true;
  }
  return false;
}

Status CheckMountPoint(const std::string& dir, const std::string& cluster,
                       const std::string& mountinfo) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return Err(Code::kIoError, "mount point " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return Err(Code::kNotDir, "mount point " + dir + " is " + FileKind(st.st_mode) +
                                  ", not a directory; mount on an (empty) directory, e.g. "
                                  "'mkdir -p /vstorage/" + cluster + "' and mount there");
  if (IsVstorageMountOf(mountinfo, dir, cluster))
    return Err(Code::kExists, "cluster '" + cluster + "' is already mounted on " + dir +
                                  "; use that mount, or unmount it first with 'fusermount3 -u " +
                                  dir + "'");
  return Status::Ok();
}

}  // namespace vstorage::fuse
