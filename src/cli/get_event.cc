// vstorage -c NAME get-event: the master's event log (guide 5.6), oldest first.
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs&) {
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  proto::ClusterStatReply rep;
  Status st = session.value()->Call(proto::MsgType::kClusterStat, proto::Empty{}, &rep);
  if (!st.ok()) return Fail(ctx, st.Annotate("cannot read the event log"));
  Table t({{"TIME", false}, {"SYS", false}, {"SEV", false}, {"MESSAGE", false}});
  for (const auto& e : rep.events) t.AddRow({FormatEventTime(e.time_ms), e.sys, e.sev, e.message});
  t.Render(ctx.out);
  return kExitOk;
}

}  // namespace

CommandDef GetEventCommand() {
  CommandDef c;
  c.name = "get-event";
  c.description = "show the cluster event log (TIME SYS SEV MESSAGE)";
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
