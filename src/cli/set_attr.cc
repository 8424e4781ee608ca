// vstorage set-attr [-R] PATH ATTR=VALUE...   (guide 3.5.2)
// The attributes travel as extended attributes "vstorage.<ATTR>" of the FUSE mount, which
// forwards them to the MDS; -c is accepted but not needed.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/mds_session.h"
#include "cli/util.h"
#include "common/limits.h"
#include "mds/placement.h"
#include "mds/state.h"

namespace vstorage::cli {

namespace {

const char* kKnownAttrs[] = {"replicas", "chunk-size", "tier", "failure-domain"};

bool IsKnownAttr(const std::string& a) {
  for (const char* k : kKnownAttrs)
    if (a == k) return true;
  return false;
}

bool ParseSmallUint(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 2) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  *out = v;
  return true;
}

struct AttrSetting {
  std::string name;
  std::string value;  // as sent to the filesystem
  std::string given;  // as typed, for messages
};

// Paths left unchanged by set-attr -R are listed up to this many, then counted.
constexpr size_t kMaxListedPaths = 50;

// What -R could not change: "PATH (ATTR)" for each path and attribute the MDS kept.
struct NotChanged {
  std::vector<std::string> items;
  size_t count = 0;
  void Add(const std::string& path, const std::string& attr) {
    if (++count <= kMaxListedPaths) items.push_back(path + " (" + attr + ")");
  }
};

// Sets every attribute on one path; the message on failure names path and cause. A
// chunk-size the MDS keeps because the file has data goes to *busy (when given) and the
// other attributes are still set.
Status SetOne(const std::string& path, const std::vector<AttrSetting>& attrs,
              NotChanged* busy = nullptr) {
  for (const auto& a : attrs) {
    std::string xname = "vstorage." + a.name;
    if (::setxattr(path.c_str(), xname.c_str(), a.value.data(), a.value.size(), 0) == 0) continue;
    int e = errno;
    if (e == EINVAL) return Err(Code::kInvalidArgument, InvalidAttrValueMessage(a.name, a.given));
    if (e == EBUSY && a.name == "chunk-size") {
      if (busy) {
        busy->Add(path, a.name);
        continue;
      }
      return Err(Code::kBusy, "chunk-size of " + path + " not changed: " +
                                  proto::kChunkSizeOfFileWithDataReason +
                                  " (or copy the file into a directory with the chunk size you "
                                  "want)");
    }
    return Err(e == ENOENT ? Code::kNotFound : Code::kIoError, XattrErrnoMessage(path, e));
  }
  return Status::Ok();
}

// Pre-order walk below dir, not following symlinks; sets attrs on directories and regular
// files. Entries that vanish during the walk are skipped; what the MDS keeps goes to *busy.
Status SetTree(const std::string& root, const std::vector<AttrSetting>& attrs, NotChanged* busy) {
  std::vector<std::string> stack{root};
  while (!stack.empty()) {
    std::string dir = std::move(stack.back());
    stack.pop_back();
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
      if (errno == ENOENT) continue;
      return Err(Code::kIoError, XattrErrnoMessage(dir, errno));
    }
    std::vector<std::string> subdirs;
    Status st;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string p = (dir == "/" ? "/" : dir + "/") + n;
      struct stat sb;
      if (::lstat(p.c_str(), &sb) != 0) {
        if (errno == ENOENT) continue;
        st = Err(Code::kIoError, XattrErrnoMessage(p, errno));
        break;
      }
      if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode)) continue;
      st = SetOne(p, attrs, busy);
      if (!st.ok()) {
        if (st.code() == Code::kNotFound) {
          st = Status::Ok();
          continue;
        }
        break;
      }
      if (S_ISDIR(sb.st_mode)) subdirs.push_back(p);
    }
    ::closedir(d);
    RETURN_IF_ERROR(st);
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return Status::Ok();
}

// ---- -p: PATH inside the cluster, set through the MDS (guide 3.5.4.2: no mount needed) ----

// The MDS's answer for one path and attribute, in the words SetOne uses.
Status SetOneInCluster(MdsSession& s, InodeId ino, const std::string& path, const std::vector<AttrSetting>& attrs,
                       NotChanged* busy) {
  for (const auto& a : attrs) {
    proto::Empty e;
    Status st = s.Call(proto::MsgType::kSetXattr, proto::SetXattrReq{ino, a.name, a.value, 0, false, ClientId{}}, &e);
    if (st.ok()) continue;
    if (st.code() == Code::kBusy && a.name == "chunk-size" && busy) {
      busy->Add(path, a.name);
      continue;
    }
    return st.Annotate("cannot set " + a.name + " on " + path + " in cluster " + s.cluster());
  }
  return Status::Ok();
}

Result<InodeId> ResolveInCluster(MdsSession& s, const std::string& path) {
  InodeId ino = kRootInode;
  std::string done;
  std::istringstream parts(path);
  for (std::string name; std::getline(parts, name, '/');) {
    if (name.empty() || name == ".") continue;
    proto::AttrReply r;
    Status st = s.Call(proto::MsgType::kLookup, proto::LookupReq{ino, name}, &r);
    done += "/" + name;
    if (st.code() == Code::kNotFound)
      return Err(Code::kNotFound, done + " does not exist in cluster " + s.cluster() +
                                      " (with -p, PATH is a path from the cluster's root)");
    RETURN_IF_ERROR(st);
    ino = r.attr.ino;
  }
  return ino;
}

// Pre-order walk of the directories and regular files below dir, as SetTree does on a mount.
Status SetTreeInCluster(MdsSession& s, InodeId dir, const std::string& path, const std::vector<AttrSetting>& attrs,
                        NotChanged* busy) {
  std::vector<std::pair<InodeId, std::string>> stack{{dir, path}};
  while (!stack.empty()) {
    auto [ino, at] = std::move(stack.back());
    stack.pop_back();
    proto::ReaddirReply r;
    Status st = s.Call(proto::MsgType::kReaddir, proto::InodeReq{ino}, &r);
    if (st.code() == Code::kNotFound) continue;  // gone meanwhile
    RETURN_IF_ERROR(st);
    std::vector<std::pair<InodeId, std::string>> subdirs;
    for (const auto& e : r.entries) {
      if (e.type != proto::NodeType::kDir && e.type != proto::NodeType::kFile) continue;
      std::string p = (at == "/" ? "/" : at + "/") + e.name;
      Status one = SetOneInCluster(s, e.ino, p, attrs, busy);
      if (one.code() == Code::kNotFound) continue;
      RETURN_IF_ERROR(one);
      if (e.type == proto::NodeType::kDir) subdirs.push_back({e.ino, p});
    }
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return Status::Ok();
}

// The cluster mounted where path lies ("vstorage://NAME" in /proc/self/mountinfo), or "".
std::string MountedCluster(const std::string& path) {
  char real[PATH_MAX];
  if (!::realpath(path.c_str(), real)) return "";
  std::string rp = real, best, best_mp;
  std::ifstream f("/proc/self/mountinfo");
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    std::string id, parent, dev, root, mp, w;
    in >> id >> parent >> dev >> root >> mp;
    while (in >> w && w != "-") {}
    std::string fstype, source;
    in >> fstype >> source;
    if (source.rfind("vstorage://", 0) != 0) continue;
    bool under = rp == mp || rp.rfind(mp == "/" ? "/" : mp + "/", 0) == 0;
    if (under && mp.size() >= best_mp.size()) {
      best_mp = mp;
      best = source.substr(11);
    }
  }
  return best;
}

// The value of vstorage.NAME on path, or "" when it cannot be read.
std::string GetVsAttr(const std::string& path, const std::string& name) {
  char buf[64];
  ssize_t n = ::getxattr(path.c_str(), ("vstorage." + name).c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Issue 9.8: a replica count the hosts of the path's tier cannot hold is accepted (hosts
// may be added later) but said at once, not first as failing writes; so is a tier without
// chunk servers (3.5.5.2: its data goes to other tiers). Best effort: silent if the MDS
// cannot be asked.
void WarnIfCannotPlace(Context& ctx, const std::string& path, const std::string& attr, const std::string& value) {
  std::string cluster = ctx.cluster.empty() ? MountedCluster(path) : ctx.cluster;
  if (cluster.empty()) return;
  uint32_t tier = 0;
  if (auto t = mds::ParseTierValue(GetVsAttr(path, "tier")); t.ok()) tier = *t;
  auto session = MdsSession::Open(cluster);
  if (!session.ok()) return;
  proto::ClusterStatReply st;
  if (!session.value()->Call(proto::MsgType::kClusterStat, proto::Empty{}, &st).ok()) return;
  std::set<std::string> hosts;
  size_t in_tier = 0;
  for (const auto& cs : st.cs)
    if (cs.status != "dropped" && cs.tier == tier) {
      hosts.insert(cs.host_id);
      ++in_tier;
    }
  if (attr == "tier" && in_tier == 0) {
    ctx.err << "Warning: tier=" << value << " set on " << path << ", but no chunk server is in tier " << tier
            << ": its new data goes to the other tiers until one is (make-cs -t " << tier
            << "), then moves there\n";
    return;
  }
  if (attr != "replicas") return;
  auto nm = mds::ParseReplicas(value);
  if (!nm.ok() || in_tier == 0) return;
  std::string w = mds::ReplicasHostsWarning(nm->first, nm->second, hosts.size());
  if (!w.empty()) ctx.err << "Warning: replicas=" << value << " set on " << path << ", but " << w << "\n";
}

int Run(Context& ctx, const ParsedArgs& pa) {
  bool in_cluster = pa.Has("path");
  std::vector<std::string> args = pa.positional;
  // The guide's own line (3.5.4.2) joins the path and the attribute: "-p /failure-domain=host".
  if (in_cluster && args.size() == 1 && args[0].find('=') != std::string::npos) {
    size_t eq = args[0].find('='), slash = args[0].rfind('/', eq);
    if (slash != std::string::npos)
      args = {slash == 0 ? "/" : args[0].substr(0, slash), args[0].substr(slash + 1)};
  }
  if (args.size() < 2)
    return UsageFail(ctx.err, SetAttrCommand(), "expected PATH and at least one ATTR=VALUE (e.g. replicas=3)");
  if (in_cluster && ctx.cluster.empty())
    return UsageFail(ctx.err, SetAttrCommand(), "-p needs the cluster: vstorage -c NAME set-attr -p PATH ATTR=VALUE");
  const std::string& path = args[0];
  std::vector<AttrSetting> attrs;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0)
      return UsageFail(ctx.err, SetAttrCommand(),
                       "expected ATTR=VALUE, got '" + arg + "' (e.g. replicas=3)");
    AttrSetting a{arg.substr(0, eq), arg.substr(eq + 1), arg.substr(eq + 1)};
    if (!IsKnownAttr(a.name))
      return UsageFail(ctx.err, SetAttrCommand(),
                       "unknown attribute '" + a.name +
                           "'; known attributes: replicas, chunk-size, tier, failure-domain");
    if (a.name == "replicas") {
      if (!ValidReplicas(a.value))
        return UsageFail(ctx.err, SetAttrCommand(), InvalidAttrValueMessage(a.name, a.given));
    } else if (a.name == "tier") {
      if (!mds::ParseTierValue(a.value).ok())
        return UsageFail(ctx.err, SetAttrCommand(), InvalidAttrValueMessage(a.name, a.given));
    } else if (a.name == "failure-domain") {
      if (!mds::ParseFailureDomain(a.value))
        return UsageFail(ctx.err, SetAttrCommand(), InvalidAttrValueMessage(a.name, a.given));
    } else {
      auto bytes = ParseChunkSize(a.value);
      if (!bytes.ok())
        return UsageFail(ctx.err, SetAttrCommand(), InvalidAttrValueMessage(a.name, a.given));
      a.value = std::to_string(bytes.value());
    }
    attrs.push_back(std::move(a));
  }

  bool recursive = pa.Has("recursive");
  NotChanged busy;
  Status st;
  if (in_cluster) {
    auto session = MdsSession::Open(ctx.cluster);
    if (!session.ok()) return Fail(ctx, session.status());
    MdsSession& ms = *session.value();
    auto ino = ResolveInCluster(ms, path);
    st = ino.status();
    if (st.ok()) st = SetOneInCluster(ms, *ino, path, attrs, recursive ? &busy : nullptr);
    if (st.ok() && recursive) st = SetTreeInCluster(ms, *ino, path, attrs, &busy);
  } else {
    st = SetOne(path, attrs, recursive ? &busy : nullptr);
    if (st.ok() && recursive) {
      struct stat sb;
      if (::stat(path.c_str(), &sb) == 0 && S_ISDIR(sb.st_mode)) st = SetTree(path, attrs, &busy);
    }
  }
  if (!st.ok()) return Fail(ctx, st);
  if (!in_cluster)
    for (const auto& a : attrs) WarnIfCannotPlace(ctx, path, a.name, a.value);
  if (busy.count) {
    ctx.err << "vstorage: " << busy.count << " path(s) kept their chunk-size, because "
            << proto::kChunkSizeOfFileWithDataReason << "; everything else was set. Not changed:\n";
    for (const auto& p : busy.items) ctx.err << "  " << p << "\n";
    if (busy.count > busy.items.size())
      ctx.err << "  ... and " << (busy.count - busy.items.size()) << " more\n";
    return kExitError;
  }
  return kExitOk;
}

}  // namespace

bool ValidReplicas(const std::string& v) {
  auto colon = v.find(':');
  uint32_t n = 0, m = 1;
  if (!ParseSmallUint(v.substr(0, colon), &n)) return false;
  if (colon != std::string::npos && !ParseSmallUint(v.substr(colon + 1), &m)) return false;
  return n >= 1 && n <= kMaxReplicas && m >= 1 && m <= n;
}

Result<uint64_t> ParseChunkSize(const std::string& v) {
  auto bad = [&] { return Err(Code::kInvalidArgument, InvalidAttrValueMessage("chunk-size", v)); };
  size_t i = 0;
  uint64_t n = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
    if (n > kMaxChunkSizeBytes) return bad();
    n = n * 10 + static_cast<uint64_t>(v[i] - '0');
    ++i;
  }
  if (i == 0) return bad();
  std::string suffix = v.substr(i);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() == 2 && suffix[1] == 'B') suffix.pop_back();
  int shift = 0;
  if (suffix.empty() || suffix == "B") shift = 0;
  else if (suffix == "K") shift = 10;
  else if (suffix == "M") shift = 20;
  else if (suffix == "G") shift = 30;
  else return bad();
  if (n > (kMaxChunkSizeBytes >> shift)) return bad();
  n <<= shift;
  if (n < kMinChunkSizeBytes || n > kMaxChunkSizeBytes || (n & (n - 1)) != 0) return bad();
  return n;
}

std::string InvalidAttrValueMessage(const std::string& attr, const std::string& value) {
  if (attr == "replicas")
    return "invalid value '" + value + "' for attribute 'replicas': expected N or N:M with 1 <= "
           "M <= N <= " + std::to_string(kMaxReplicas);
  if (attr == "chunk-size")
    return "invalid value '" + value + "' for attribute 'chunk-size': expected a power of two "
           "between 1M and 1G (bytes, or with a K/M/G suffix)";
  if (attr == "tier")
    return "invalid value '" + value + "' for attribute 'tier': expected 0, 1, 2 or 3 (guide 3.5.5)";
  if (attr == "failure-domain")
    return "invalid value '" + value + "' for attribute 'failure-domain': expected disk, host, rack, row or "
           "room (guide 3.5.4.2; rack, row and room come from each host's location file)";
  return "invalid value '" + value + "' for attribute '" + attr + "'";
}

CommandDef SetAttrCommand() {
  CommandDef c;
  c.name = "set-attr";
  c.synopsis = "[-R] [-p] PATH ATTR=VALUE...";
  c.description =
      "set replicas=N[:M], chunk-size=SIZE, tier=0..3 or failure-domain=disk|host|rack|row|room on a path of "
      "a mounted cluster";
  c.options = {{'R', "recursive", false, "", "also set it on everything below PATH"},
               {'p', "path", false, "",
                "PATH is a path inside the cluster (from its root), set through the MDS: no mount needed (-c NAME)"}};
  c.needs_cluster = false;
  c.min_positional = 1;
  c.max_positional = 1 + 64;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
