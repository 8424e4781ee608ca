// The MDS snapshot image loader (MdsState::Decode: formats 2, 3 and 4). The input is the
// image (the snapshot file's CRC is log_fuzz's business). Checked: no decode allocates past
// the AllocGuard; an image that loads re-encodes to an image that loads to the same state;
// and the loaded state can be used (queries, and commands applied to it) without crashing:
// an image the loader accepts must satisfy what the rest of the MDS relies on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_mds.h"

namespace {
using namespace vstorage;
using namespace vstorage::mds;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view image(reinterpret_cast<const char*>(data), size);
  MdsState s;
  Status st;
  {
    vsfuzz::AllocGuard g(size);
    st = s.Decode(image);
  }
  if (!st.ok()) return 0;
  vsfuzz::CheckSnapshotRoundTrip(s, "loaded snapshot");

  (void)s.Counts();
  (void)s.Config();
  s.ForEachChunk([&](const ChunkInfo& c) { (void)s.PathOf(c.ino); });
  for (const CsRecord& cs : s.AllCs()) (void)s.ChunkCountOnCs(cs.id);
  int64_t t = vsfuzz::kBaseTimeMs;
  auto apply = [&](CommandType type, const auto& body) {
    std::string before = s.Encode();
    auto r = s.Apply(vsfuzz::MakeCommand(type, body, ++t));
    if (!r.ok()) VSFUZZ_CHECK(s.Encode() == before, "a failed command changed the loaded state");
  };
  auto root = s.Readdir(kRootInode);
  VSFUZZ_CHECK(root.ok(), "the root of a loaded snapshot is not a directory: %s", root.status().ToString().c_str());
  int n = 0;
  for (const proto::DirEntry& e : *root) {
    if (++n > 16) break;
    (void)s.GetAttr(e.ino);
    (void)s.Lookup(kRootInode, e.name);
    (void)s.Readlink(e.ino);
    (void)s.GetXattrs(e.ino);
    (void)s.FileChunks(e.ino);
    (void)s.PathOf(e.ino);
    if (auto sub = s.Readdir(e.ino); sub.ok())
      for (const proto::DirEntry& se : *sub) (void)s.GetAttr(se.ino);
    SetAttrCmd sa;
    sa.ino = e.ino;
    sa.mask = proto::kSetSize | proto::kSetMode;
    sa.mode = 0600;
    apply(CommandType::kSetAttr, sa);
    apply(CommandType::kRename, RenameCmd{kRootInode, e.name, kRootInode, e.name + ".r", false});
    apply(CommandType::kUnlink, UnlinkCmd{kRootInode, e.name + ".r", e.type == proto::NodeType::kDir, false});
  }
  CreateNodeCmd c;
  c.parent = kRootInode;
  c.name = "fuzz-new";
  apply(CommandType::kCreateNode, c);
  for (const CsRecord& cs : s.AllCs()) apply(CommandType::kDropCs, DropCsCmd{cs.id});
  vsfuzz::CheckSnapshotRoundTrip(s, "loaded snapshot after commands");
  return 0;
}
