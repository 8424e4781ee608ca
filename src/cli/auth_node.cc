// vstorage -c NAME auth-node [-P]   (guide 2.5.1 step 5, 2.6.1 step 5)
// Proves the password to an MDS by SRP-6a (rpc::PasswordHandshake, docs/design/auth.md) and
// stores the cluster key it hands back once the MDS proved itself; the password itself never
// crosses the wire.
#include "cli/commands.h"
#include "cli/password.h"
#include "common/config.h"
#include "rpc/auth.h"
#include "rpc/client.h"
#include "rpc/socket.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs& pa) {
  auto bs = ReadBsList(ctx.cluster);
  if (!bs.ok()) return Fail(ctx, bs.status());
  auto pw = ctx.passwords.Read(PasswordPrompt{.no_prompt = pa.Has("stdin-password")});
  if (!pw.ok()) return Fail(ctx, pw.status());

  std::string tried;
  Status last;
  for (const HostPort& base : bs.value()) {
    HostPort addr = MdsServiceAddr(base);
    tried += (tried.empty() ? "" : ", ") + addr.str();
    auto sock = rpc::Socket::Connect(addr, rpc::kConnectTimeoutMs);
    if (!sock.ok()) {
      last = sock.status();
      continue;
    }
    auto key = rpc::PasswordHandshake(sock.value(), ctx.cluster, pw.value());
    if (!key.ok()) {
      last = key.status().Annotate(addr.str());
      if (key.status().code() == Code::kAuthFailed &&
          key.status().message().find("wrong password") != std::string::npos)
        return Fail(ctx, "wrong password for cluster '" + ctx.cluster +
                             "'; run auth-node again with the password given to make-mds");
      // Other refusals (not an MDS, another cluster) may be particular to this address.
      continue;
    }
    if (key.value().empty()) {
      last = Err(Code::kProtocol, addr.str() + " returned an empty cluster key");
      continue;
    }
    Status st = WriteClusterKey(ctx.cluster, key.value());
    if (!st.ok()) return Fail(ctx, st.Annotate("cannot store the cluster key"));
    ctx.out << "Host authenticated in cluster '" << ctx.cluster << "' (MDS " << addr.str()
            << ")\n";
    return kExitOk;
  }
  return Fail(ctx, "cannot authenticate in cluster '" + ctx.cluster + "': no MDS accepted the "
                   "request (tried " + tried + "): " + last.message() +
                   " \u2014 the MDS must be running and reachable; start vstorage-mdsd or fix " +
                   ClusterDir(ctx.cluster) + "/bs.list");
}

}  // namespace

CommandDef AuthNodeCommand() {
  CommandDef c;
  c.name = "auth-node";
  c.synopsis = "[-P]";
  c.description = "authenticate this host in the cluster with the cluster password";
  c.options = {
      {'P', "stdin-password", false, "", "read the password from stdin without prompting"},
  };
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
