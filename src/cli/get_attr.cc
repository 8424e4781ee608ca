// vstorage get-attr PATH   (guide 3.5.2): the vstorage.* extended attributes of a path in a
// mounted cluster.
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>

#include "cli/commands.h"
#include "cli/util.h"

namespace vstorage::cli {

namespace {

constexpr size_t kMaxXattrBytes = 64 * 1024;  // XATTR_SIZE_MAX / XATTR_LIST_MAX on Linux
const std::string kPrefix = "vstorage.";

// The value, or an errno.
int GetXattr(const std::string& path, const std::string& name, std::string* value) {
  std::vector<char> buf(256);
  for (;;) {
    ssize_t n = ::getxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (n >= 0) {
      value->assign(buf.data(), static_cast<size_t>(n));
      return 0;
    }
    if (errno != ERANGE || buf.size() >= kMaxXattrBytes) return errno;
    buf.resize(kMaxXattrBytes);
  }
}

// Names listed by the filesystem; an errno on failure.
int ListXattrs(const std::string& path, std::vector<std::string>* names) {
  std::vector<char> buf(1024);
  ssize_t n;
  for (;;) {
    n = ::listxattr(path.c_str(), buf.data(), buf.size());
    if (n >= 0) break;
    if (errno != ERANGE || buf.size() >= kMaxXattrBytes) return errno;
    buf.resize(kMaxXattrBytes);
  }
  for (size_t i = 0; i < static_cast<size_t>(n);) {
    std::string name(buf.data() + i);
    i += name.size() + 1;
    if (!name.empty()) names->push_back(name);
  }
  return 0;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  const std::string& path = pa.positional[0];
  std::vector<std::string> names;
  int e = ListXattrs(path, &names);
  // FUSE mounts that do not list still answer getxattr; ENOTSUP here is decided below.
  if (e != 0 && e != ENOTSUP) return Fail(ctx, XattrErrnoMessage(path, e));

  std::vector<std::string> order = {"replicas", "chunk-size"};
  std::vector<std::string> extra;
  for (const auto& n : names)
    if (n.rfind(kPrefix, 0) == 0) {
      std::string a = n.substr(kPrefix.size());
      if (std::find(order.begin(), order.end(), a) == order.end()) extra.push_back(a);
    }
  std::sort(extra.begin(), extra.end());
  order.insert(order.end(), extra.begin(), extra.end());

  std::vector<std::pair<std::string, std::string>> attrs;
  for (const auto& a : order) {
    std::string v;
    int ge = GetXattr(path, kPrefix + a, &v);
    if (ge == 0) {
      attrs.emplace_back(a, v);
    } else if (ge != ENODATA && ge != ENOTSUP) {
      return Fail(ctx, XattrErrnoMessage(path, ge));
    }
  }
  if (attrs.empty()) return Fail(ctx, NotInMountMessage(path));
  ctx.out << "File: '" << path << "'\nAttributes:\n";
  for (const auto& [k, v] : attrs) ctx.out << "  " << k << "=" << v << "\n";
  return kExitOk;
}

}  // namespace

CommandDef GetAttrCommand() {
  CommandDef c;
  c.name = "get-attr";
  c.synopsis = "PATH";
  c.description = "show the vstorage attributes (replicas, chunk-size, tier, failure-domain) of a mounted path";
  c.needs_cluster = false;
  c.min_positional = 1;
  c.max_positional = 1;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
