// The vstorage subcommands (one .cc each) and the pure pieces of them that tests use.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "common/config.h"
#include "proto/messages.h"

namespace vstorage::cli {

CommandDef MakeMdsCommand();
CommandDef AuthNodeCommand();
CommandDef MakeCsCommand();
CommandDef ListServicesCommand();
CommandDef StatCommand();
CommandDef TopCommand();
CommandDef SetAttrCommand();
CommandDef GetAttrCommand();
CommandDef FileInfoCommand();
CommandDef SetConfigCommand();
CommandDef GetConfigCommand();
CommandDef GetEventCommand();
CommandDef RmCsCommand();
CommandDef MakeReportCommand();

inline constexpr size_t kStatEvents = 20;  // events shown by `stat`

// ---- stat ----
// The guide's `top` layout (5.1-5.4) without the "connected to" line: the header at kStat,
// then the MDS, CS (kStat columns), client and latest kStatEvents event tables.
void RenderStatText(const proto::ClusterStatReply& st, std::ostream& os);
// The sections RenderStatText is made of, for `top` to lay out. Each ends with a newline.
enum class StatHeader {
  kTop,      // 5.1: Cluster, Space, MDS nodes, CS nodes, Replication, IO
  kStat,     // kTop plus the Chunks and FS lines (what `stat` prints)
  kVerbose,  // kStat plus the per-tier space, IO QDEPTH and Sync rate lines (top's `v`)
};
void RenderStatHeader(const proto::ClusterStatReply& st, StatHeader level, std::ostream& os);
void RenderMdsTable(const proto::ClusterStatReply& st, std::ostream& os);
// The CS table's column sets: `stat` prints kStat; top's `i` cycles kDefault..kVersion.
enum class CsColumns { kStat, kDefault, kFlags, kRmw, kVersion };
const char* CsColumnsName(CsColumns cols);
void RenderCsTable(const proto::ClusterStatReply& st, CsColumns cols, std::ostream& os);
void RenderClientTable(const proto::ClusterStatReply& st, std::ostream& os);
// The latest max_events events, oldest first.
void RenderEventTable(const proto::ClusterStatReply& st, size_t max_events, std::ostream& os);
nlohmann::json StatToJson(const proto::ClusterStatReply& st);
// `stat` (and `top -b`): one request, then "connected to ..." and RenderStatText on
// ctx.out, or the JSON object when json. kExitError with the cause when the MDS fails.
int RunStatOnce(Context& ctx, bool json);
// The id of the MDS at base address `addr` (or its service address) in st.mds; else the
// master's id; else 0.
uint64_t ConnectedMdsId(const proto::ClusterStatReply& st, const HostPort& addr);

// ---- file-info ----
void RenderFileInfoText(const std::string& path, const proto::FileInfoReply& fi,
                        std::ostream& os);
nlohmann::json FileInfoToJson(const std::string& path, const proto::FileInfoReply& fi);

// ---- list-services ----
// The entries of services.list that still are services: the repository's cs.conf/mds.conf
// exists and names the same cluster and id. Each repository once, in list order.
std::vector<ServiceEntry> ExistingServices(const std::vector<ServiceEntry>& listed);

// ---- set-attr ----
inline constexpr uint64_t kMaxChunkSizeBytes = 1ull << 30;
// "N" or "N:M" with 1 <= M <= N <= kMaxReplicas.
bool ValidReplicas(const std::string& v);
// Bytes, or K/M/G suffixed (1024-based, optional trailing B); a power of two in
// [kMinChunkSizeBytes, kMaxChunkSizeBytes]. kInvalidArgument otherwise.
Result<uint64_t> ParseChunkSize(const std::string& v);
// The message for a value the attribute does not accept (names the accepted form).
std::string InvalidAttrValueMessage(const std::string& attr, const std::string& value);

// One line, no spaces (scripts grep it); invalid UTF-8 in strings is replaced, not thrown.
std::string DumpJson(const nlohmann::json& j);

}  // namespace vstorage::cli
