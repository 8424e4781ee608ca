// vstorage -c NAME rm-cs [--wait] [-f] [--cancel] CSID (guide 3.2.2): removes a chunk
// server. Its replicas are copied to the others first (the CS shows as "releasing"); once it
// holds nothing it is "dropped". -f drops a lost CS at once; --cancel stops a removal.
#include <chrono>
#include <thread>

#include "cli/commands.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

const proto::CsInfo* FindCs(const proto::ClusterStatReply& st, CsId id) {
  for (const auto& c : st.cs)
    if (c.id == id) return &c;
  return nullptr;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  const std::string& arg = pa.positional[0];
  char* end = nullptr;
  unsigned long long v = std::strtoull(arg.c_str(), &end, 10);
  if (arg.empty() || *end != '\0' || v < kFirstCsId)
    return UsageFail(ctx.err, RmCsCommand(), "invalid CS id '" + arg + "': chunk server ids start at " +
                                                 std::to_string(kFirstCsId) + " (see 'vstorage -c " + ctx.cluster + " stat')");
  CsId id{v};
  bool force = pa.Has("force"), cancel = pa.Has("cancel"), wait = pa.Has("wait");
  if (force && cancel) return UsageFail(ctx.err, RmCsCommand(), "-f and --cancel exclude each other");
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  auto& mds = *session.value();
  proto::Empty e;
  Status st = mds.Call(proto::MsgType::kRmCs, proto::RmCsReq{id, force, cancel}, &e);
  if (!st.ok()) return Fail(ctx, st);
  if (cancel) {
    ctx.out << "Removal of CS#" << id.str() << " cancelled\n";
    return kExitOk;
  }
  if (force) {
    ctx.out << "CS#" << id.str() << " dropped; its replicas are rebuilt from the other chunk servers\n";
    return kExitOk;
  }
  if (!wait) {
    ctx.out << "Removal of CS#" << id.str() << " started; follow it with 'vstorage -c " << ctx.cluster << " stat'\n";
    return kExitOk;
  }
  ctx.out << "Removing CS#" << id.str() << ": copying its replicas to other chunk servers\n";
  ctx.out.flush();
  int64_t last = -1;
  std::string last_note;
  for (;;) {
    proto::ClusterStatReply rep;
    st = mds.Call(proto::MsgType::kClusterStat, proto::Empty{}, &rep);
    if (!st.ok()) return Fail(ctx, st.Annotate("lost track of the removal of CS#" + id.str()));
    const proto::CsInfo* cs = FindCs(rep, id);
    if (!cs) return Fail(ctx, "CS#" + id.str() + " is no longer known to the cluster");
    if (cs->status == "dropped") {
      ctx.out << "CS#" << id.str() << " removed\n";
      return kExitOk;
    }
    if (cs->status != "releasing" && cs->status != "inactive" && cs->status != "offline")
      return Fail(ctx, "removal of CS#" + id.str() + " was cancelled (status " + cs->status + ")");
    auto n = rep.cs_notes.find(id.str());
    std::string note = n == rep.cs_notes.end() ? "" : n->second;
    if (static_cast<int64_t>(cs->replicas) != last || note != last_note) {
      last = static_cast<int64_t>(cs->replicas);
      last_note = note;
      ctx.out << "CS#" << id.str() << ": " << cs->replicas << " replicas left to move (" << cs->status << ")"
              << (note.empty() ? "" : "; waiting: " + note) << "\n";
      ctx.out.flush();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

CommandDef RmCsCommand() {
  CommandDef c;
  c.name = "rm-cs";
  c.synopsis = "[--wait] [-f] [--cancel] CSID";
  c.description = "remove a chunk server (its data is moved to the others first)";
  c.options = {
      {0, "wait", false, "", "wait until the data has moved and the CS is dropped, showing progress"},
      {'f', "force", false, "", "drop a CS that is lost for good now; its replicas are rebuilt from the rest"},
      {0, "cancel", false, "", "cancel a removal in progress"},
  };
  c.min_positional = 1;
  c.max_positional = 1;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
