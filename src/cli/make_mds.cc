// vstorage -c NAME make-mds -I -a ADDR[:PORT] -r DIR [-p]   (guide 2.4.2)
#include "cli/commands.h"
#include "cli/password.h"
#include "cli/util.h"
#include "common/auth.h"
#include "common/config.h"
#include "common/limits.h"

namespace vstorage::cli {

namespace {

int Usage(Context& ctx, const std::string& msg) {
  return UsageFail(ctx.err, MakeMdsCommand(), msg);
}

// Refuses when this host already knows the cluster under another MDS address or already
// holds an MDS repository of it.
Status CheckNoSuchCluster(const std::string& cluster, const HostPort& addr) {
  std::string cdir = ClusterDir(cluster);
  std::string fix = "; choose another cluster name, or remove " + cdir +
                    " and the old repository if that cluster is gone";
  auto bs = ReadBsList(cluster);
  if (bs.ok()) {
    for (const auto& hp : bs.value())
      if (hp.str() != addr.str())
        return Err(Code::kExists, "cluster '" + cluster + "' already exists on this host (" +
                                      cdir + "/bs.list names MDS " + hp.str() + ")" + fix);
  } else if (PathExists(cdir + "/bs.list")) {
    return bs.status();
  }
  ASSIGN_OR_RETURN(auto services, ListServices());
  for (const auto& e : services)
    if (e.cluster == cluster && e.type == "mds" && PathExists(e.repo + "/mds.conf"))
      return Err(Code::kExists, "cluster '" + cluster +
                                    "' already exists on this host (MDS repository " + e.repo +
                                    ")" + fix);
  return Status::Ok();
}

int Run(Context& ctx, const ParsedArgs& pa) {
  if (!pa.Has("init"))
    return Fail(ctx, "adding MDS to an existing cluster is not supported yet; create a new "
                     "cluster with 'vstorage -c " + ctx.cluster + " make-mds -I ...'");
  if (!pa.Has("addr")) return Usage(ctx, "make-mds needs the MDS address: -a ADDR[:PORT]");
  if (!pa.Has("repo")) return Usage(ctx, "make-mds needs the repository directory: -r DIR");
  auto addr = ParseHostPort(pa.Get("addr"), kDefaultMdsPort);
  if (!addr.ok())
    return Usage(ctx, addr.status().message() + "; give -a ADDR or -a ADDR:PORT with PORT "
                                                "below 65535 (PORT+1 is used too)");
  const HostPort& hp = addr.value();
  std::string dir = AbsolutePath(pa.Get("repo"));

  Status st = CheckRepoDirUsable(dir);
  if (!st.ok()) return Fail(ctx, st);
  st = CheckNoSuchCluster(ctx.cluster, hp);
  if (!st.ok()) return Fail(ctx, st);

  auto pw = ctx.passwords.Read(PasswordPrompt{.confirm = true});
  if (!pw.ok()) return Fail(ctx, pw.status());
  PasswordDigest digest = MakePasswordDigest(pw.value());
  std::string digest_text = digest.Serialize() + "\n";
  std::string key = RandomBytes(kClusterKeyBytes);

  bool created = false;
  st = CreateRepoDir(dir, &created);
  if (st.ok())
    st = WriteKeyValueFile(dir + "/mds.conf",
                           {{"cluster", ctx.cluster}, {"id", "1"}, {"addr", hp.str()}});
  if (st.ok()) st = WriteFileAtomic(dir + "/cluster.key", HexEncode(key) + "\n", 0600);
  if (st.ok()) st = WriteFileAtomic(dir + "/auth_digest.key", digest_text, 0600);
  if (!st.ok()) {
    RemoveCreatedRepo(dir, created, {"mds.conf", "cluster.key", "auth_digest.key"});
    return Fail(ctx, st.Annotate("cannot create the MDS repository " + dir));
  }

  std::string cdir = ClusterDir(ctx.cluster);
  st = MakeDirs(cdir);
  if (st.ok()) st = WriteFileAtomic(cdir + "/auth_digest.key", digest_text, 0600);
  if (st.ok()) st = WriteClusterKey(ctx.cluster, key);
  if (st.ok()) st = AddToBsList(ctx.cluster, hp);
  if (st.ok()) st = RegisterService(ServiceEntry{ctx.cluster, "mds", "1", dir});
  if (st.ok()) {
    auto host_id = GetOrCreateHostId();
    if (!host_id.ok()) st = host_id.status();
  }
  if (!st.ok())
    return Fail(ctx, st.Annotate("MDS repository " + dir + " was created but the host "
                                 "configuration in " + ConfRoot() +
                                 " is incomplete; fix the cause, remove both and run make-mds "
                                 "again"));

  ctx.out << "Created cluster '" << ctx.cluster << "' with MDS#1 at " << hp.str() << " (ports "
          << hp.port << "-" << hp.port + 1 << "), repository " << dir << "\n"
          << "Start the MDS with: vstorage-mdsd -r " << dir << "\n";
  return kExitOk;
}

}  // namespace

CommandDef MakeMdsCommand() {
  CommandDef c;
  c.name = "make-mds";
  c.synopsis = "-I -a ADDR[:PORT] -r DIR [-p]";
  c.description = "create a new cluster and its first metadata server (MDS#1)";
  c.options = {
      {'I', "init", false, "", "create a new cluster (required: joining is not supported yet)"},
      {'a', "addr", true, "ADDR[:PORT]", "MDS address; PORT (default 2510) and PORT+1 are used"},
      {'r', "repo", true, "DIR", "MDS repository; must not exist or be empty"},
      {'p', "password", false, "", "ask for the cluster password (always asked)"},
  };
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
