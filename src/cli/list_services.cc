// vstorage [-c NAME] list-services [-M|-C]: the MDS and CS repositories made on this host that
// still exist, each with its state in the cluster and whether its daemon runs here.
#include <map>
#include <set>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/mds_session.h"
#include "cli/util.h"
#include "common/config.h"

namespace vstorage::cli {

namespace {

// The cluster's view of each service: "CS#1025" / "MDS#1" -> status.
struct ClusterView {
  bool known = false;  // the MDS answered
  std::string why;     // when it did not
  std::map<std::string, std::string> status;
};

ClusterView AskMds(const std::string& cluster) {
  ClusterView v;
  auto session = MdsSession::Open(cluster);
  proto::ClusterStatReply st;
  Status s = session.ok() ? session.value()->Call(proto::MsgType::kClusterStat, proto::Empty{}, &st)
                          : session.status();
  if (!s.ok()) {
    v.why = s.message();
    return v;
  }
  v.known = true;
  for (const auto& m : st.mds) v.status["MDS#" + m.id.str()] = m.status + (m.master ? " (master)" : "");
  for (const auto& c : st.cs) v.status["CS#" + c.id.str()] = c.status;
  return v;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  auto services = ListServices();
  if (!services.ok())
    return Fail(ctx, services.status().Annotate("cannot read " + ConfRoot() + "/services.list"));
  bool all = ctx.cluster.empty();
  std::vector<ServiceEntry> mine;
  for (const auto& e : ExistingServices(services.value())) {
    if (!all && e.cluster != ctx.cluster) continue;
    if (pa.Has("mds") && e.type != "mds") continue;
    if (pa.Has("cs") && e.type != "cs") continue;
    mine.push_back(e);
  }
  std::map<std::string, ClusterView> views;
  for (const auto& e : mine)
    if (!views.count(e.cluster)) views[e.cluster] = AskMds(e.cluster);

  std::vector<Table::Column> cols;
  if (all) cols.push_back({"CLUSTER", false});
  cols.push_back({"TYPE", false});
  cols.push_back({"ID", true});
  cols.push_back({"STATUS", false});
  cols.push_back({"PROCESS", false});
  cols.push_back({"REPOSITORY", false});
  Table t(std::move(cols));
  for (const auto& e : mine) {
    const ClusterView& v = views[e.cluster];
    std::string status = "unknown";
    if (v.known) {
      auto it = v.status.find((e.type == "cs" ? "CS#" : "MDS#") + e.id);
      // Removed from the cluster (rm-cs) or never part of this incarnation of it: the
      // repository is a leftover, not a service.
      if (it == v.status.end() || it->second == "dropped") continue;
      status = it->second;
    }
    std::vector<std::string> row;
    if (all) row.push_back(e.cluster);
    for (const auto& s : {e.type, e.id, status,
                          std::string(RepositoryInUse(e.repo) ? "running" : "stopped"), e.repo})
      row.push_back(s);
    t.AddRow(std::move(row));
  }
  t.Render(ctx.out);
  for (const auto& [cluster, v] : views)
    if (!v.known)
      ctx.err << "vstorage: STATUS of cluster '" << cluster << "' is unknown: " << v.why << "\n";
  return kExitOk;
}

}  // namespace

std::vector<ServiceEntry> ExistingServices(const std::vector<ServiceEntry>& listed) {
  std::vector<ServiceEntry> out;
  std::set<std::string> seen;  // repositories
  for (const auto& e : listed) {
    if (e.type != "cs" && e.type != "mds") continue;
    auto conf = ReadKeyValueFile(e.repo + "/" + e.type + ".conf");
    if (!conf.ok()) continue;  // repository gone (or replaced by something else)
    // A repository made again keeps only its latest id; older lines naming it are stale.
    if ((*conf)["cluster"] != e.cluster || (*conf)["id"] != e.id) continue;
    if (!seen.insert(e.repo).second) continue;
    out.push_back(e);
  }
  return out;
}

CommandDef ListServicesCommand() {
  CommandDef c;
  c.name = "list-services";
  c.synopsis = "[-M|-C]";
  c.description =
      "list the MDS and CS services of this host (all clusters without -c): id, state in the "
      "cluster, whether the daemon runs, repository";
  c.options = {{'M', "mds", false, "", "only metadata servers"},
               {'C', "cs", false, "", "only chunk servers"}};
  c.needs_cluster = false;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
