// vstorage -c NAME list-services: the MDS and CS repositories made on this host.
#include "cli/commands.h"
#include "cli/format.h"
#include "common/config.h"

namespace vstorage::cli {

namespace {

int Run(Context& ctx, const ParsedArgs&) {
  auto services = ListServices();
  if (!services.ok())
    return Fail(ctx, services.status().Annotate("cannot read " + ConfRoot() + "/services.list"));
  bool all = ctx.cluster.empty();
  std::vector<Table::Column> cols;
  if (all) cols.push_back({"CLUSTER", false});
  cols.push_back({"TYPE", false});
  cols.push_back({"ID", true});
  cols.push_back({"REPOSITORY", false});
  Table t(std::move(cols));
  for (const auto& e : services.value()) {
    if (!all && e.cluster != ctx.cluster) continue;
    if (all)
      t.AddRow({e.cluster, e.type, e.id, e.repo});
    else
      t.AddRow({e.type, e.id, e.repo});
  }
  t.Render(ctx.out);
  return kExitOk;
}

}  // namespace

CommandDef ListServicesCommand() {
  CommandDef c;
  c.name = "list-services";
  c.description = "list the MDS and CS services created on this host (all clusters without -c)";
  c.needs_cluster = false;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
