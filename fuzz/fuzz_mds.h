// MDS pieces shared by the harnesses of the metadata server and the seed generator: a small
// cluster built by real commands (CS, directories, files, chunks, a symlink, attributes), so
// fuzzed commands find something to act on.
#pragma once
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "mds/commands.h"
#include "mds/state.h"

namespace vsfuzz {

inline constexpr int64_t kBaseTimeMs = 1700000000000;

template <typename T>
vstorage::mds::Command MakeCommand(vstorage::mds::CommandType type, const T& body, int64_t time_ms) {
  vstorage::mds::Command c;
  c.type = type;
  c.time_ms = time_ms;
  c.time_ns = time_ms * 1000000;
  c.body = vstorage::proto::EncodeToString(body);
  return c;
}

// The commands that make the base cluster from a fresh MdsState. Inode numbers are handed
// out in order from 2: /d = 2, /d/f = 3, /g = 4, /s = 5, /d/e = 6.
inline std::vector<vstorage::mds::Command> BaseCommands() {
  using namespace vstorage;
  using namespace vstorage::mds;
  std::vector<Command> out;
  int64_t t = kBaseTimeMs;
  for (const char* host : {"h1", "h2", "h3"}) out.push_back(MakeCommand(CommandType::kCreateCs, CreateCsCmd{host, 0}, ++t));
  for (uint64_t i = 0; i < 3; ++i)
    out.push_back(MakeCommand(CommandType::kUpdateCs,
                              UpdateCsCmd{CsId{kFirstCsId + i}, "127.0.0.1:" + std::to_string(3000 + i), 0}, ++t));
  auto node = [&](uint64_t parent, const char* name, proto::NodeType type, const char* target = "") {
    CreateNodeCmd c;
    c.parent = InodeId{parent};
    c.name = name;
    c.type = type;
    c.mode = type == proto::NodeType::kDir ? 0755 : 0644;
    c.symlink_target = target;
    c.uid = 1000;
    c.gid = 1000;
    out.push_back(MakeCommand(CommandType::kCreateNode, c, ++t));
  };
  node(1, "d", proto::NodeType::kDir);
  node(2, "f", proto::NodeType::kFile);
  node(1, "g", proto::NodeType::kFile);
  node(1, "s", proto::NodeType::kSymlink, "/d/f");
  node(2, "e", proto::NodeType::kDir);
  out.push_back(MakeCommand(CommandType::kAllocChunk,
                            AllocChunkCmd{InodeId{4}, 0, 1, {CsId{kFirstCsId}, CsId{kFirstCsId + 1}}}, ++t));
  out.push_back(MakeCommand(CommandType::kAllocChunk, AllocChunkCmd{InodeId{4}, 3, 1, {CsId{kFirstCsId + 2}}}, ++t));
  SetAttrCmd sa;
  sa.ino = InodeId{4};
  sa.mask = proto::kSetSize;
  sa.size = 5 << 20;
  out.push_back(MakeCommand(CommandType::kSetAttr, sa, ++t));
  out.push_back(MakeCommand(CommandType::kSetXattr, SetXattrCmd{InodeId{3}, "user.k", "v", 0, false}, ++t));
  out.push_back(MakeCommand(CommandType::kSetXattr, SetXattrCmd{InodeId{2}, "replicas", "2:1", 0, false}, ++t));
  out.push_back(MakeCommand(CommandType::kSetConfig, SetConfigCmd{"mds.wd.offline_tout", "600000"}, ++t));
  out.push_back(MakeCommand(CommandType::kAddEvent, AddEventCmd{"MDS", "INF", "base cluster"}, ++t));
  return out;
}

inline vstorage::mds::MdsState BaseState() {
  vstorage::mds::MdsState s;
  for (const auto& c : BaseCommands()) {
    auto r = s.Apply(c);
    VSFUZZ_CHECK(r.ok(), "base command %d: %s", static_cast<int>(c.type), r.status().ToString().c_str());
  }
  return s;
}

// Every snapshot image a state produces must load back into the same state.
inline void CheckSnapshotRoundTrip(const vstorage::mds::MdsState& s, const char* what) {
  std::string e1 = s.Encode();
  vstorage::mds::MdsState s2;
  vstorage::Status st = s2.Decode(e1);
  VSFUZZ_CHECK(st.ok(), "%s: the image of a state does not load: %s", what, st.ToString().c_str());
  std::string e2 = s2.Encode();
  VSFUZZ_CHECK(e1 == e2, "%s: image -> state -> image differs (%zu vs %zu bytes)", what, e1.size(), e2.size());
}

}  // namespace vsfuzz
