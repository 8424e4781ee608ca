// vstorage -c NAME set-config KEY=VALUE...: cluster-wide parameters kept by the MDS.
// All pairs travel in one request and the MDS applies them as one command: every one or none.
#include "cli/commands.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs& pa) {
  proto::SetConfigManyReq req;
  for (const auto& arg : pa.positional) {
    auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0)
      return UsageFail(ctx.err, SetConfigCommand(), "expected KEY=VALUE, got '" + arg + "'");
    std::string key = arg.substr(0, eq);
    if (req.values.count(key))
      return UsageFail(ctx.err, SetConfigCommand(),
                       "'" + key + "' is given twice; give each parameter once");
    req.values[key] = arg.substr(eq + 1);
  }
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  proto::Empty rep;
  Status st = session.value()->Call(proto::MsgType::kSetConfigMany, req, &rep);
  if (st.code() == Code::kInvalidArgument)
    return Fail(ctx, st.message() + "; correct them and run set-config again (" +
                         "'vstorage -c " + ctx.cluster + " get-config' lists the parameters)");
  if (!st.ok()) return Fail(ctx, st.Annotate("set-config failed"));
  for (const auto& [k, v] : req.values) ctx.out << "Set " << k << "=" << v << "\n";
  return kExitOk;
}

}  // namespace

CommandDef SetConfigCommand() {
  CommandDef c;
  c.name = "set-config";
  c.synopsis = "KEY=VALUE...";
  c.description = "set cluster configuration parameters (all of them, or none when one is invalid)";
  c.min_positional = 1;
  c.max_positional = 64;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
