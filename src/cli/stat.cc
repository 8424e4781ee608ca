// vstorage -c NAME stat [--json]: the guide's 5.1-5.4 layout, printed once (`top -b` too).
#include <cstdio>
#include <functional>
#include <map>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/mds_session.h"

namespace vstorage::cli {

namespace {

bool IsAvailMds(const proto::MdsInfo& m) { return m.status == "avail" || m.status == "active"; }

std::string SpaceTag(const proto::ClusterStatReply& st) {
  if (st.allocatable_bytes == 0) return "[FULL]";
  if (st.free_bytes < st.total_bytes / 10) return "[LOW]";
  return "[OK]";
}

uint64_t ChunkTotal(const proto::ClusterStatReply& st) {
  if (st.chunks) return st.chunks;
  const auto& c = st.chunk_states;
  return c.healthy + c.degraded + c.urgent + c.blocked + c.pending + c.offline + c.void_;
}

std::string ChunkTag(const proto::ChunkStateCounts& c) {
  if (c.blocked || c.offline) return "[FAIL]";
  if (c.degraded || c.urgent || c.pending || c.replicating || c.standby) return "[WARN]";
  return "[OK]";
}

// "Chunks: [OK] 38 (100%) healthy, 0 (0%) degraded, ..." wrapped like the guide.
void RenderChunksLine(const proto::ClusterStatReply& st, std::ostream& os) {
  constexpr size_t kMaxLineChars = 78;
  const std::string kIndent(9, ' ');
  const auto& c = st.chunk_states;
  uint64_t total = ChunkTotal(st);
  std::vector<std::pair<uint64_t, const char*>> items = {
      {c.healthy, "healthy"},         {c.degraded, "degraded"},       {c.urgent, "urgent"},
      {c.blocked, "blocked"},         {c.pending, "pending"},         {c.offline, "offline"},
      {c.replicating, "replicating"}, {c.overcommitted, "overcommitted"},
      {c.deleting, "deleting"},       {c.void_, "void"}};
  if (c.standby) items.push_back({c.standby, "standby"});
  std::string line = "Chunks: " + ChunkTag(c);
  for (size_t i = 0; i < items.size(); ++i) {
    std::string item = std::to_string(items[i].first) + " (" + Percent(items[i].first, total) +
                       ") " + items[i].second + (i + 1 < items.size() ? "," : "");
    if (line.size() + 1 + item.size() > kMaxLineChars && line.size() > kIndent.size()) {
      os << line << "\n";
      line = kIndent + item;
    } else {
      line += " " + item;
    }
  }
  os << line << "\n";
}

std::string Rate(uint64_t bytes_per_s) { return FormatSize(bytes_per_s) + "/s"; }

std::string Tenths(uint32_t x10) { return std::to_string(x10 / 10) + "." + std::to_string(x10 % 10); }

}  // namespace

uint64_t ConnectedMdsId(const proto::ClusterStatReply& st, const HostPort& addr) {
  for (const auto& m : st.mds)
    if (m.addr == addr.str() || m.addr == MdsServiceAddr(addr).str()) return m.id.v;
  for (const auto& m : st.mds)
    if (m.master) return m.id.v;
  return 0;
}

void RenderStatHeader(const proto::ClusterStatReply& st, StatHeader level, std::ostream& os) {
  os << "Cluster '" << st.cluster << "': " << st.status << "\n";
  uint64_t logical_total = st.total_bytes / std::max<uint32_t>(1, st.replicas_norm);
  os << "Space: " << SpaceTag(st) << " allocatable " << FormatSize(st.allocatable_bytes)
     << " of " << FormatSize(logical_total) << ", free " << FormatSize(st.free_bytes) << " of "
     << FormatSize(st.total_bytes) << "\n";
  if (level == StatHeader::kVerbose) {
    // Per tier only what the CS report (their space); the MDS does not report a per-tier
    // allocatable figure, so none is printed.
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> tiers;  // tier -> (total, free)
    std::map<uint32_t, size_t> tier_cs;
    for (const auto& c : st.cs) {
      if (c.status == "dropped") continue;
      tiers[c.tier].first += c.total_bytes;
      tiers[c.tier].second += c.free_bytes;
      ++tier_cs[c.tier];
    }
    for (const auto& [tier, space] : tiers)
      os << "tier " << tier << ": " << FormatSize(space.first) << " total, "
         << FormatSize(space.second) << " free, " << tier_cs[tier] << " CS\n";
  }

  size_t mds_avail = 0;
  for (const auto& m : st.mds) mds_avail += IsAvailMds(m);
  os << "MDS nodes: " << mds_avail << " of " << st.mds.size()
     << ", epoch uptime: " << FormatDuration(st.epoch_uptime_ms) << "\n";

  size_t cs_total = 0, active = 0, inactive = 0, offline = 0;
  for (const auto& c : st.cs) {
    if (c.status == "dropped") continue;
    ++cs_total;
    if (c.status == "active") ++active;
    else if (c.status == "inactive") ++inactive;
    else if (c.status == "offline") ++offline;
  }
  os << "CS nodes: " << active << " of " << cs_total << " (" << active << " avail, " << inactive
     << " inactive, " << offline << " offline)\n";
  os << "Replication: " << st.replicas_norm << " norm, " << st.replicas_min << " limit\n";
  if (level != StatHeader::kTop) {
    RenderChunksLine(st, os);
    os << "FS: " << FormatSize(st.fs_bytes) << " in " << st.files << " files, " << st.inodes
       << " inodes, " << st.chunks << " chunks, " << st.chunk_replicas << " chunk replicas\n";
  }

  uint64_t rbps = 0, wbps = 0, rops = 0, wops = 0, fsyncs = 0;
  for (const auto& c : st.clients) {
    rbps += c.read_bps;
    wbps += c.write_bps;
    rops += c.read_ops;
    wops += c.write_ops;
    fsyncs += c.fsyncs;
  }
  os << "IO:      read " << PadLeft(FormatSize(rbps), 7) << "/s ("
     << PadLeft(std::to_string(rops), 2) << "ops/s), write " << PadLeft(FormatSize(wbps), 7)
     << "/s (" << PadLeft(std::to_string(wops), 2) << "ops/s)\n";
  if (level == StatHeader::kVerbose) {
    // 3.5.5.2's line from the CS' current queue depths (the guide's is a 60 s figure).
    uint32_t sum = 0, max = 0;
    size_t n = 0;
    for (const auto& c : st.cs) {
      if (c.status != "active") continue;
      sum += c.qdepth_x10;
      max = std::max(max, c.qdepth_x10);
      ++n;
    }
    os << "IO QDEPTH: " << Tenths(n ? static_cast<uint32_t>(sum / n) : 0) << " aver, "
       << Tenths(max) << " max\n";
    os << "Sync rate: " << fsyncs << "ops/s\n";
  }
}

void RenderMdsTable(const proto::ClusterStatReply& st, std::ostream& os) {
  Table mds({{"MDSID", true}, {"STATUS", false}, {"%CTIME", true}, {"COMMITS", true},
             {"%CPU", true}, {"MEM", true}, {"UPTIME", true}, {"HOST", false}});
  for (const auto& m : st.mds)
    mds.AddRow({(m.master ? "M " : "") + m.id.str(), m.status, Tenths(m.ctime_x10) + "%",
                std::to_string(m.commits_per_s) + "/s", Tenths(m.cpu_x10) + "%",
                m.mem_bytes ? FormatSize(m.mem_bytes) : "-", FormatDuration(m.uptime_ms),
                m.addr});
  mds.Render(os);
}

const char* CsColumnsName(CsColumns cols) {
  switch (cols) {
    case CsColumns::kStat: return "stat";
    case CsColumns::kDefault: return "default";
    case CsColumns::kFlags: return "flags";
    case CsColumns::kRmw: return "rmw";
    case CsColumns::kVersion: return "version";
  }
  return "?";
}

void RenderCsTable(const proto::ClusterStatReply& st, CsColumns cols, std::ostream& os) {
  // Column sets of the guide: 5.3 (default), 5.3/7.x FLAGS, 7.7 RMW/JRMW, 3.5.5.2
  // BUILD_VERSION. The CS do not report RMW counters or their build: those cells say n/a.
  auto live = [](const proto::CsInfo& x) {
    return x.status == "active" || x.status == "releasing";
  };
  auto id = [](const proto::CsInfo& x) { return x.id.str(); };
  auto status = [](const proto::CsInfo& x) { return x.status; };
  auto space = [](const proto::CsInfo& x) { return FormatSize(x.total_bytes); };
  auto avail = [](const proto::CsInfo& x) { return FormatSize(x.free_bytes); };
  auto replicas = [](const proto::CsInfo& x) { return std::to_string(x.replicas); };
  auto unique = [](const proto::CsInfo& x) { return std::to_string(x.unique); };
  auto iowait = [live](const proto::CsInfo& x) {
    return live(x) ? std::to_string(x.iowait_pct) + "%" : "-";
  };
  auto iolat = [live](const proto::CsInfo& x) {
    return live(x) ? std::to_string(x.lat_avg_ms) + "/" + std::to_string(x.lat_max_ms) : "-";
  };
  auto qdepth = [](const proto::CsInfo& x) { return Tenths(x.qdepth_x10); };
  auto host = [](const proto::CsInfo& x) { return x.addr.empty() ? "-" : x.addr; };
  auto flags = [](const proto::CsInfo& x) { return x.flags.empty() ? "-" : x.flags; };
  auto na = [](const proto::CsInfo&) { return std::string("n/a"); };
  auto tier = [](const proto::CsInfo& x) { return std::to_string(x.tier); };
  using Col = Table::Column;
  std::vector<std::pair<Col, std::function<std::string(const proto::CsInfo&)>>> c = {
      {{"CSID", true}, id}, {{"STATUS", false}, status}};
  auto add = [&c](Col col, std::function<std::string(const proto::CsInfo&)> f) {
    c.push_back({std::move(col), std::move(f)});
  };
  switch (cols) {
    case CsColumns::kStat:
    case CsColumns::kDefault:
      add({"SPACE", true}, space);
      add({"AVAIL", true}, avail);
      add({"REPLICAS", true}, replicas);
      add({"UNIQUE", true}, unique);
      add({"IOWAIT", true}, iowait);
      add({"IOLAT(ms)", true}, iolat);
      add({"QDEPTH", true}, qdepth);
      add({"HOST", false}, host);
      if (cols == CsColumns::kStat)
        add({"FLAGS", false}, [](const proto::CsInfo& x) { return x.flags; });
      break;
    case CsColumns::kFlags:
      add({"SPACE", true}, space);
      add({"AVAIL", true}, avail);
      add({"REPLICAS", true}, replicas);
      add({"TIER", true}, tier);
      add({"FLAGS", false}, flags);
      add({"HOST", false}, host);
      break;
    case CsColumns::kRmw:
      add({"IOWAIT", true}, iowait);
      add({"IOLAT(ms)", true}, iolat);
      add({"QDEPTH", true}, qdepth);
      add({"RMW", true}, na);
      add({"JRMW", true}, na);
      add({"HOST", false}, host);
      break;
    case CsColumns::kVersion:
      add({"SPACE", true}, space);
      add({"AVAIL", true}, avail);
      add({"REPLICAS", true}, replicas);
      add({"UNIQUE", true}, unique);
      add({"HOST", false}, host);
      add({"BUILD_VERSION", false}, na);
      break;
  }
  std::vector<Col> header;
  for (const auto& [col, f] : c) header.push_back(col);
  Table t(header);
  for (const auto& x : st.cs) {
    std::vector<std::string> row;
    for (const auto& [col, f] : c) row.push_back(f(x));
    t.AddRow(std::move(row));
  }
  t.Render(os);
}

void RenderClientTable(const proto::ClusterStatReply& st, std::ostream& os) {
  Table cl({{"CLID", true}, {"LEASES", true}, {"READ", true}, {"WRITE", true},
            {"RD_OPS", true}, {"WR_OPS", true}, {"FSYNCS", true}, {"IOLAT(ms)", true},
            {"HOST", false}});
  for (const auto& c : st.clients)
    cl.AddRow({c.id.str(), std::to_string(c.open_read) + "/" + std::to_string(c.open_write),
               Rate(c.read_bps), Rate(c.write_bps), std::to_string(c.read_ops) + "ops/s",
               std::to_string(c.write_ops) + "ops/s", std::to_string(c.fsyncs) + "ops/s",
               std::to_string(c.lat_avg_ms) + "/" + std::to_string(c.lat_max_ms),
               c.host});
  cl.Render(os);
}

void RenderEventTable(const proto::ClusterStatReply& st, size_t max_events, std::ostream& os) {
  Table ev({{"TIME", false}, {"SYS", false}, {"SEV", false}, {"MESSAGE", false}});
  size_t first = st.events.size() > max_events ? st.events.size() - max_events : 0;
  for (size_t i = first; i < st.events.size(); ++i) {
    const auto& e = st.events[i];
    ev.AddRow({FormatEventTime(e.time_ms), e.sys, e.sev, e.message});
  }
  ev.Render(os);
}

void RenderStatText(const proto::ClusterStatReply& st, std::ostream& os) {
  RenderStatHeader(st, StatHeader::kStat, os);
  os << "\n";
  RenderMdsTable(st, os);
  os << "\n";
  RenderCsTable(st, CsColumns::kStat, os);
  os << "\n";
  RenderClientTable(st, os);
  os << "\n";
  // The latest events, as top shows them; `get-event` lists them all.
  RenderEventTable(st, kStatEvents, os);
}

nlohmann::json StatToJson(const proto::ClusterStatReply& st) {
  using nlohmann::json;
  const auto& c = st.chunk_states;
  json j;
  j["cluster"] = st.cluster;
  j["status"] = st.status;
  j["epoch_uptime_ms"] = st.epoch_uptime_ms;
  j["space"] = {{"total", st.total_bytes},
                {"free", st.free_bytes},
                {"allocatable", st.allocatable_bytes}};
  j["replication"] = {{"norm", st.replicas_norm}, {"min", st.replicas_min}};
  j["chunks"] = {{"healthy", c.healthy},
                 {"degraded", c.degraded},
                 {"urgent", c.urgent},
                 {"blocked", c.blocked},
                 {"pending", c.pending},
                 {"offline", c.offline},
                 {"replicating", c.replicating},
                 {"overcommitted", c.overcommitted},
                 {"deleting", c.deleting},
                 {"void", c.void_},
                 {"standby", c.standby},
                 {"total", ChunkTotal(st)}};
  j["fs"] = {{"bytes", st.fs_bytes},
             {"files", st.files},
             {"inodes", st.inodes},
             {"chunks", st.chunks},
             {"chunk_replicas", st.chunk_replicas}};
  uint64_t rbps = 0, wbps = 0, rops = 0, wops = 0;
  json clients = json::array();
  for (const auto& cl : st.clients) {
    rbps += cl.read_bps;
    wbps += cl.write_bps;
    rops += cl.read_ops;
    wops += cl.write_ops;
    clients.push_back({{"id", cl.id.v},
                       {"host", cl.host},
                       {"open_read", cl.open_read},
                       {"open_write", cl.open_write},
                       {"read_bps", cl.read_bps},
                       {"write_bps", cl.write_bps},
                       {"read_ops", cl.read_ops},
                       {"write_ops", cl.write_ops},
                       {"fsyncs", cl.fsyncs},
                       {"iolat_avg_ms", cl.lat_avg_ms},
                       {"iolat_max_ms", cl.lat_max_ms}});
  }
  j["io"] = {{"read_bps", rbps}, {"write_bps", wbps}, {"read_ops", rops}, {"write_ops", wops}};
  json mds = json::array();
  for (const auto& m : st.mds)
    mds.push_back({{"id", m.id.v},
                   {"master", m.master},
                   {"status", m.status},
                   {"host", m.addr},
                   {"uptime_ms", m.uptime_ms},
                   {"commits", m.commits},
                   {"commits_per_s", m.commits_per_s},
                   {"ctime_pct", static_cast<double>(m.ctime_x10) / 10.0},
                   {"cpu_pct", static_cast<double>(m.cpu_x10) / 10.0},
                   {"mem_bytes", m.mem_bytes}});
  j["mds"] = std::move(mds);
  json cs = json::array();
  for (const auto& s : st.cs)
    cs.push_back({{"id", s.id.v},
                  {"status", s.status},
                  {"space", s.total_bytes},
                  {"avail", s.free_bytes},
                  {"replicas", s.replicas},
                  {"unique", s.unique},
                  {"qdepth", static_cast<double>(s.qdepth_x10) / 10.0},
                  {"iowait_pct", s.iowait_pct},
                  {"iolat_avg_ms", s.lat_avg_ms},
                  {"iolat_max_ms", s.lat_max_ms},
                  {"host", s.addr},
                  {"host_id", s.host_id},
                  {"tier", s.tier},
                  {"location", s.location},
                  {"flags", s.flags}});
  j["cs"] = std::move(cs);
  j["clients"] = std::move(clients);
  json events = json::array();
  for (const auto& e : st.events)
    events.push_back(
        {{"time_ms", e.time_ms}, {"sys", e.sys}, {"sev", e.sev}, {"message", e.message}});
  j["events"] = std::move(events);
  return j;
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int RunStatOnce(Context& ctx, bool json) {
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  proto::ClusterStatReply st;
  Status s = session.value()->Call(proto::MsgType::kClusterStat, proto::Empty{}, &st);
  if (!s.ok()) return Fail(ctx, s.Annotate("cluster status request failed"));
  if (json) {
    ctx.out << DumpJson(StatToJson(st)) << "\n";
    return kExitOk;
  }
  uint64_t id = ConnectedMdsId(st, session.value()->mds_addr());
  if (id)
    ctx.out << "connected to MDS#" << id << "\n";
  else
    ctx.out << "connected to MDS at " << session.value()->mds_addr().str() << "\n";
  RenderStatText(st, ctx.out);
  return kExitOk;
}

CommandDef StatCommand() {
  CommandDef c;
  c.name = "stat";
  c.synopsis = "[--json]";
  c.description = "show cluster status: space, MDS, CS, clients, events";
  c.options = {{0, "json", false, "", "print one JSON object instead of the text layout"}};
  c.run = [](Context& ctx, const ParsedArgs& pa) { return RunStatOnce(ctx, pa.Has("json")); };
  return c;
}

}  // namespace vstorage::cli
