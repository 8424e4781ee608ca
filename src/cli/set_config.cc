// vstorage -c NAME set-config KEY=VALUE...: cluster-wide parameters kept by the MDS.
#include "cli/commands.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs& pa) {
  std::vector<proto::ConfigReq> reqs;
  for (const auto& arg : pa.positional) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0)
      return UsageFail(ctx.err, SetConfigCommand(), "expected KEY=VALUE, got '" + arg + "'");
    reqs.push_back(proto::ConfigReq{arg.substr(0, eq), arg.substr(eq + 1)});
  }
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  for (const auto& r : reqs) {
    proto::Empty rep;
    Status st = session.value()->Call(proto::MsgType::kSetConfig, r, &rep);
    if (!st.ok()) return Fail(ctx, st.Annotate("cannot set '" + r.key + "'"));
  }
  return kExitOk;
}

}  // namespace

CommandDef SetConfigCommand() {
  CommandDef c;
  c.name = "set-config";
  c.synopsis = "KEY=VALUE...";
  c.description = "set cluster configuration parameters";
  c.min_positional = 1;
  c.max_positional = 64;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
