// vstorage -c NAME make-cs -r DIR [-t TIER] [-a ADDR[:PORT]] [-S]   (guide 2.5.2, 7.6.4)
#include "cli/commands.h"
#include "cli/mds_session.h"
#include "cli/util.h"
#include "common/config.h"

namespace vstorage::cli {

namespace {

int Usage(Context& ctx, const std::string& msg) {
  return UsageFail(ctx.err, MakeCsCommand(), msg);
}

int Run(Context& ctx, const ParsedArgs& pa) {
  if (!pa.Has("repo")) return Usage(ctx, "make-cs needs the repository directory: -r DIR");
  uint32_t tier = 0;
  if (pa.Has("tier")) {
    std::string t = pa.Get("tier");
    if (t.size() != 1 || t[0] < '0' || t[0] > '3')
      return Usage(ctx, "invalid tier '" + t + "': give -t 0, 1, 2 or 3");
    tier = static_cast<uint32_t>(t[0] - '0');
  }
  std::string addr_text;
  if (pa.Has("addr")) {
    auto hp = ParseHostPort(pa.Get("addr"), 0);
    if (!hp.ok()) return Usage(ctx, hp.status().message() + "; give -a ADDR or -a ADDR:PORT");
    // The CS will listen there: an address it cannot serve on must not cost a CS id.
    Status st = CheckServiceAddress(hp.value());
    if (!st.ok())
      return Fail(ctx, "cannot use -a " + pa.Get("addr") + ": " + st.message() +
                           "; give an address of this host (-a ADDR or -a ADDR:PORT), or leave "
                           "-a out to use the one this host reaches the MDS from; nothing was "
                           "created");
    // Without a port the CS picks one; "host:0" would not parse back.
    addr_text = hp->port ? hp->str() : hp->host;
  }
  std::string dir = AbsolutePath(pa.Get("repo"));
  Status st = CheckRepoDirUsable(dir);
  if (!st.ok()) return Fail(ctx, st);
  auto key = ReadClusterKey(ctx.cluster);
  if (!key.ok()) return Fail(ctx, key.status());
  auto host_id = GetOrCreateHostId();
  if (!host_id.ok()) return Fail(ctx, host_id.status().Annotate("cannot read the host id"));

  // Create the directory before asking the MDS for an id, so an unwritable path does not
  // cost a CS id; take it back if the MDS cannot be asked.
  bool created = false;
  st = CreateRepoDir(dir, &created);
  if (!st.ok()) return Fail(ctx, st);
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) {
    RemoveCreatedRepo(dir, created, {});
    return Fail(ctx, session.status());
  }
  proto::CsCreateReq req{host_id.value(), tier};
  proto::CsCreateReply rep;
  st = session.value()->Call(proto::MsgType::kCsCreate, req, &rep);
  if (!st.ok()) {
    RemoveCreatedRepo(dir, created, {});
    return Fail(ctx, st.Annotate("the MDS did not create the CS"));
  }
  std::string id = rep.cs.str();
  st = WriteKeyValueFile(dir + "/cs.conf", {{"cluster", ctx.cluster},
                                            {"id", id},
                                            {"tier", std::to_string(tier)},
                                            {"host_id", host_id.value()},
                                            {"addr", addr_text},
                                            {"checksums", pa.Has("no-checksums") ? "0" : "1"}});
  if (st.ok()) st = WriteFileAtomic(dir + "/cluster.key", HexEncode(key.value()) + "\n", 0600);
  if (st.ok()) st = RegisterService(ServiceEntry{ctx.cluster, "cs", id, dir});
  if (!st.ok()) {
    RemoveCreatedRepo(dir, created, {"cs.conf", "cluster.key"});
    return Fail(ctx, st.Annotate("CS#" + id + " was allocated by the MDS but its repository " +
                                 dir + " could not be written; fix the cause and run make-cs "
                                 "again (CS#" + id + " stays unused)"));
  }
  ctx.out << "Created CS#" << id << " in " << dir << " (tier " << tier
          << (pa.Has("no-checksums") ? ", checksumming disabled" : "") << ")\n"
          << "Start it with: vstorage-csd -r " << dir << "\n";
  return kExitOk;
}

}  // namespace

CommandDef MakeCsCommand() {
  CommandDef c;
  c.name = "make-cs";
  c.synopsis = "-r DIR [-t TIER] [-a ADDR[:PORT]] [-S]";
  c.description = "create a chunk server repository and register the CS with the MDS";
  c.options = {
      {'r', "repo", true, "DIR", "CS repository; must not exist or be empty"},
      {'t', "tier", true, "TIER", "storage tier 0..3 (default 0)"},
      {'a', "addr", true, "ADDR[:PORT]", "address the CS serves data on (default: chosen)"},
      {'S', "no-checksums", false, "", "disable data checksumming on this CS (guide 7.6.4): faster, but a corrupt replica is no longer detected"},
  };
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
