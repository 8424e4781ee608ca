// vstorage -c NAME file-info [--json] PATH (not in the guide): where the chunks of a file
// are. The mount passes cluster inode ids through as st_ino, so the MDS is asked by inode.
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstring>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/mds_session.h"
#include "cli/util.h"

namespace vstorage::cli {

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

std::string ReplicasText(const proto::FileInfoReply& fi) {
  return std::to_string(fi.replicas_norm) + ":" + std::to_string(fi.replicas_min);
}

std::string JoinIds(const std::vector<CsId>& ids) {
  std::string s;
  for (const auto& id : ids) s += (s.empty() ? "" : ",") + id.str();
  return s.empty() ? "-" : s;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  const std::string& path = pa.positional[0];
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) return Fail(ctx, XattrErrnoMessage(path, errno));
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) == 0 && fs.f_type != kFuseSuperMagic)
    return Fail(ctx, NotInMountMessage(path));
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok()) return Fail(ctx, session.status());
  proto::FileInfoReply fi;
  Status st = session.value()->Call(proto::MsgType::kFileInfo,
                                    proto::InodeReq{InodeId{sb.st_ino}}, &fi);
  if (st.code() == Code::kNotFound)
    return Fail(ctx, path + " (inode " + std::to_string(sb.st_ino) + ") is not known to cluster '" +
                         ctx.cluster + "'; is the path in a mount of this cluster?");
  if (!st.ok()) return Fail(ctx, st.Annotate("file-info request failed"));
  if (pa.Has("json"))
    ctx.out << DumpJson(FileInfoToJson(path, fi)) << "\n";
  else
    RenderFileInfoText(path, fi, ctx.out);
  return kExitOk;
}

}  // namespace

void RenderFileInfoText(const std::string& path, const proto::FileInfoReply& fi,
                        std::ostream& os) {
  os << "File: '" << path << "'\n"
     << "Inode: " << fi.attr.ino.str() << "\n"
     << "Size: " << FormatSize(fi.attr.size) << " (" << fi.attr.size << " bytes)\n"
     << "Replicas: " << ReplicasText(fi) << "\n"
     << "Chunk size: " << FormatSize(fi.attr.chunk_size) << " (" << fi.attr.chunk_size
     << " bytes)\n"
     << "Chunks: " << fi.chunks.size() << "\n\n";
  Table t({{"INDEX", true}, {"CHUNK_ID", true}, {"VERSION", true}, {"STATE", false},
           {"REPLICAS", false}});
  for (const auto& c : fi.chunks)
    t.AddRow({std::to_string(c.index), c.id.str(), std::to_string(c.version), c.state,
              JoinIds(c.replicas)});
  t.Render(os);
}

nlohmann::json FileInfoToJson(const std::string& path, const proto::FileInfoReply& fi) {
  using nlohmann::json;
  json chunks = json::array();
  for (const auto& c : fi.chunks) {
    json reps = json::array();
    for (const auto& r : c.replicas) reps.push_back(r.v);
    chunks.push_back({{"index", c.index},
                      {"id", c.id.v},
                      {"version", c.version},
                      {"state", c.state},
                      {"replicas", std::move(reps)}});
  }
  return json{{"path", path},
              {"ino", fi.attr.ino.v},
              {"size", fi.attr.size},
              {"replicas", ReplicasText(fi)},
              {"chunk_size", fi.attr.chunk_size},
              {"chunks", std::move(chunks)}};
}

CommandDef FileInfoCommand() {
  CommandDef c;
  c.name = "file-info";
  c.synopsis = "[--json] PATH";
  c.description = "show the chunks of a file in a mounted cluster and the CS holding them";
  c.options = {{0, "json", false, "", "print one JSON object"}};
  c.min_positional = 1;
  c.max_positional = 1;
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
