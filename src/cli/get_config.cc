// vstorage -c NAME get-config: cluster-wide parameters as "KEY = VALUE" lines, sorted.
#include "cli/commands.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs&) {
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  proto::ConfigReply rep;
  Status st = session.value()->Call(proto::MsgType::kGetConfig, proto::Empty{}, &rep);
  if (!st.ok()) return Fail(ctx, st.Annotate("cannot read the cluster configuration"));
  for (const auto& [k, v] : rep.values) ctx.out << k << " = " << v << "\n";
  return kExitOk;
}

}  // namespace

CommandDef GetConfigCommand() {
  CommandDef c;
  c.name = "get-config";
  c.description = "show cluster configuration parameters";
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
