// Writes the seed corpora of fuzz/corpus/<harness>/ from the project's real encoders (and
// the golden files of src/mds/testdata), in each harness's input layout (see the comment at
// the top of each harness). Run by hand after a format change:
//   build-fuzz/fuzz/vstorage-fuzz-seeds fuzz/corpus
// Deterministic: the same tree gives the same files.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/auth.h"
#include "common/srp.h"
#include "common/config.h"
#include "common/posix_acl.h"
#include "cs/chunk_store.h"
#include "cs/intent_log.h"
#include "env/mem_file_system.h"
#include "fuzz_mds.h"
#include "mds/journal.h"
#include "mds/log.h"
#include "proto/messages.h"
#include "rpc/frame.h"

namespace {

using namespace vstorage;
namespace fs = std::filesystem;

std::string g_out;
std::string g_src;

void Seed(const std::string& harness, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_out + "/" + harness);
  std::ofstream f(g_out + "/" + harness + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  VSFUZZ_CHECK(f.good(), "write seed %s/%s", harness.c_str(), name.c_str());
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  VSFUZZ_CHECK(f.good(), "read %s", path.c_str());
  return std::string(std::istreambuf_iterator<char>(f), {});
}

template <typename T>
std::string Enc(const T& m) {
  return proto::EncodeToString(m);
}

// ---- message_fuzz: selector (index in the generated type list) + body ----
#define VSFUZZ_TYPE(T) #T,
constexpr const char* kMessageNames[] = {
#include "message_types.inc"
};
constexpr const char* kCommandNames[] = {
#include "command_types.inc"
#include "state_types.inc"
};
#undef VSFUZZ_TYPE

template <size_t N>
uint8_t IndexOf(const char* const (&names)[N], const char* name) {
  for (size_t i = 0; i < N; ++i)
    if (std::strcmp(names[i], name) == 0) return static_cast<uint8_t>(i);
  VSFUZZ_CHECK(false, "no type %s", name);
  return 0;
}

template <typename T>
void MessageSeed(const char* type, const char* name, const T& m) {
  Seed("message_fuzz", name, std::string(1, static_cast<char>(IndexOf(kMessageNames, type))) + Enc(m));
}

proto::Attr SampleAttr() {
  proto::Attr a;
  a.ino = InodeId{4};
  a.type = proto::NodeType::kFile;
  a.mode = 0100644;
  a.size = 5 << 20;
  a.mtime_ns = a.ctime_ns = a.atime_ns = 1700000000123456789;
  a.chunk_size = 1 << 20;
  a.uid = a.gid = 1000;
  return a;
}

void MessageSeeds() {
  proto::CsRegisterReq reg;
  reg.cs = CsId{kFirstCsId};
  reg.host_id = "0123456789abcdef0123456789abcdef";
  reg.addr = "127.0.0.1:7000";
  reg.total_bytes = 1ull << 40;
  reg.free_bytes = 1ull << 39;
  reg.chunks = {{ChunkId{1}, 3, 4096}, {ChunkId{2}, 1, 1 << 20}};
  reg.lost = {ChunkId{9}};
  reg.suspect = {ChunkId{2}};
  MessageSeed("CsRegisterReq", "cs_register", reg);

  proto::CsWriteReq w;
  w.chunk = ChunkId{7};
  w.version = 2;
  w.offset = 4096;
  w.chunk_size = 1 << 20;
  w.chain = {{CsId{kFirstCsId + 1}, "127.0.0.1:7001"}, {CsId{kFirstCsId + 2}, "127.0.0.1:7002"}};
  w.sync = true;
  MessageSeed("CsWriteReq", "cs_write", w);

  proto::CreateReq c;
  c.parent = kRootInode;
  c.name = "file.txt";
  c.uid = c.gid = 1000;
  c.client = ClientId{kFirstClientId};
  c.open_write = true;
  c.umask = 022;
  MessageSeed("CreateReq", "create", c);

  proto::ReaddirPlusReply rp;
  rp.entries = {{"a", SampleAttr()}, {"b", SampleAttr()}};
  MessageSeed("ReaddirPlusReply", "readdir_plus", rp);

  proto::WatchChangesReply wc;
  wc.seq = 42;
  wc.changes = {{proto::InvalKind::kEntry, kRootInode, "a"}, {proto::InvalKind::kInode, InodeId{4}, ""}};
  MessageSeed("WatchChangesReply", "watch_changes", wc);

  proto::ClusterStatReply cs;
  cs.cluster = "stor1";
  cs.status = "healthy";
  cs.mds = {{MdsId{1}, true, "avail", "127.0.0.1:2510", 1000, 5, 1, 2, 3, 4096}};
  cs.cs = {{CsId{kFirstCsId}, "active", "127.0.0.1:7000", "h1", 0, 100, 50, 3, 1, 0, 0, 1, 2, "C"}};
  cs.clients = {{ClientId{kFirstClientId}, "host", 1, 1, 0, 0, 0, 0, 0, 0, 0}};
  cs.events = {{1700000000000, "MDS", "INF", "started"}};
  cs.cs_notes = {{"1025", "waiting"}};
  MessageSeed("ClusterStatReply", "cluster_stat", cs);

  proto::SetXattrReq x;
  x.ino = InodeId{4};
  x.name = acl::kAccessXattr;
  acl::Acl a;
  a.entries = {{acl::kUserObj, 6, acl::kUndefinedId}, {acl::kUser, 4, 1001}, {acl::kGroupObj, 4, acl::kUndefinedId},
               {acl::kMask, 4, acl::kUndefinedId}, {acl::kOther, 0, acl::kUndefinedId}};
  x.value = acl::Serialize(a);
  MessageSeed("SetXattrReq", "set_xattr_acl", x);

  proto::FileInfoReply fi;
  fi.attr = SampleAttr();
  fi.replicas_norm = 2;
  fi.replicas_min = 1;
  fi.chunks = {{0, ChunkId{1}, 1, "healthy", {CsId{kFirstCsId}, CsId{kFirstCsId + 1}}}};
  MessageSeed("FileInfoReply", "file_info", fi);

  proto::ChallengeResponse cr;
  cr.cluster = "stor1";
  cr.nonce = std::string(16, 'n');
  cr.mac = std::string(32, 'm');
  cr.kind = proto::PeerKind::kCs;
  MessageSeed("ChallengeResponse", "challenge_response", cr);
}

// ---- frame_fuzz: what a peer sends on a connection ----
std::string FrameBytes(proto::MsgType type, uint32_t flags, const std::string& body, const std::string& payload = "") {
  rpc::Frame f;
  f.type = static_cast<uint16_t>(type);
  f.req_id = 7;
  f.flags = flags;
  char h[rpc::kFrameHeaderBytes];
  rpc::EncodeFrameHeader(f, body.size(), payload.size(), h);
  return std::string(h, sizeof h) + body + payload;
}

void FrameSeeds() {
  proto::ChallengeResponse cr;
  cr.cluster = "fuzz";
  cr.nonce = std::string(16, 'n');
  cr.mac = std::string(32, 'm');
  Seed("frame_fuzz", "challenge_response", FrameBytes(proto::MsgType::kChallengeResponse, 0, Enc(cr)));
  Seed("frame_fuzz", "password_auth",
       FrameBytes(proto::MsgType::kPasswordAuth, 0, Enc(proto::PasswordAuth{std::string(32, 'p')})));
  // auth-node by SRP: A (= g^2 here), then a proof, one handshake.
  std::string a_pub(srp::kSrpGroupBytes, '\0');
  a_pub.back() = 4;
  Seed("frame_fuzz", "srp_start_then_proof",
       FrameBytes(proto::MsgType::kSrpStart, 0, Enc(proto::SrpStart{a_pub})) +
           FrameBytes(proto::MsgType::kSrpProof, 0, Enc(proto::SrpProof{std::string(32, 'm')})));
  Seed("frame_fuzz", "error_reply",
       FrameBytes(proto::MsgType::kHandshakeResult, rpc::kFlagResponse | rpc::kFlagError,
                  Enc(proto::ErrorReply{static_cast<uint16_t>(Code::kAuthFailed), "no"})));
  proto::CsReadReq rd{ChunkId{7}, 2, 0, 4096};
  Seed("frame_fuzz", "two_frames_with_payload",
       FrameBytes(proto::MsgType::kCsRead, 0, Enc(rd)) +
           FrameBytes(proto::MsgType::kCsRead, rpc::kFlagResponse, Enc(proto::Empty{}), std::string(100, 'd')));
}

// ---- command_fuzz / journal_fuzz ----
void CommandSeeds() {
  using namespace vstorage::mds;
  auto rec = [](const char* type, const char* name, const std::string& body) {
    Seed("command_fuzz", name, std::string(1, static_cast<char>(IndexOf(kCommandNames, type))) + body);
  };
  std::vector<Command> base = vsfuzz::BaseCommands();
  rec("Command", "record_command", Enc(base[6]));
  rec("UpdateChunkCmd", "record_update_chunk",
      Enc(UpdateChunkCmd{ChunkId{1}, 2, {CsId{kFirstCsId}}, true, 1, {CsId{kFirstCsId}, CsId{kFirstCsId + 1}}}));
  rec("SetConfigManyCmd", "record_set_config_many",
      Enc(SetConfigManyCmd{{{"mds.recovery.parallel", "8"}, {"mds.wd.io_tout", "20000"}}}));
  rec("ChunkInfo", "record_chunk_info", Enc(ChunkInfo{ChunkId{1}, InodeId{4}, 0, 1, {CsId{kFirstCsId}}}));

  // Apply mode: [u8 type][u16 len][body] after a selector past the record types.
  auto seq = [](const std::vector<Command>& cmds) {
    std::string s(1, static_cast<char>(0xff));
    for (const Command& c : cmds) {
      s.push_back(static_cast<char>(c.type));
      uint16_t len = static_cast<uint16_t>(c.body.size());
      s.append(reinterpret_cast<const char*>(&len), 2);
      s += c.body;
    }
    return s;
  };
  int64_t t = vsfuzz::kBaseTimeMs;
  CreateNodeCmd mk;
  mk.parent = InodeId{2};
  mk.name = "new";
  SetAttrCmd trunc;
  trunc.ino = InodeId{4};
  trunc.mask = proto::kSetSize;
  trunc.size = 4096;
  std::vector<Command> a = {
      vsfuzz::MakeCommand(CommandType::kCreateNode, mk, ++t),
      vsfuzz::MakeCommand(CommandType::kRename, RenameCmd{InodeId{2}, "f", kRootInode, "g", true}, ++t),
      vsfuzz::MakeCommand(CommandType::kLink, LinkCmd{InodeId{3}, InodeId{2}, "f2"}, ++t),
      vsfuzz::MakeCommand(CommandType::kUnlink, UnlinkCmd{InodeId{2}, "f2", false, true}, ++t),
      vsfuzz::MakeCommand(CommandType::kSetAttr, trunc, ++t),
  };
  Seed("command_fuzz", "apply_namespace", seq(a));
  std::vector<Command> b = {
      vsfuzz::MakeCommand(CommandType::kUpdateChunk,
                          UpdateChunkCmd{ChunkId{1}, 2, {CsId{kFirstCsId + 2}}, true, 1,
                                         {CsId{kFirstCsId}, CsId{kFirstCsId + 1}}},
                          ++t),
      vsfuzz::MakeCommand(CommandType::kSetCsReleasing, SetCsReleasingCmd{CsId{kFirstCsId + 1}, true}, ++t),
      vsfuzz::MakeCommand(CommandType::kRemoveCsReplicas, RemoveCsReplicasCmd{CsId{kFirstCsId}}, ++t),
      vsfuzz::MakeCommand(CommandType::kDropCs, DropCsCmd{CsId{kFirstCsId + 2}}, ++t),
      vsfuzz::MakeCommand(CommandType::kSetCsHost, SetCsHostCmd{CsId{kFirstCsId}, "h9"}, ++t),
      vsfuzz::MakeCommand(CommandType::kFreeOrphan, FreeOrphanCmd{InodeId{3}}, ++t),
  };
  Seed("command_fuzz", "apply_chunks_cs", seq(b));
  std::vector<Command> c = {
      vsfuzz::MakeCommand(CommandType::kSetXattr, SetXattrCmd{InodeId{2}, "chunk-size", "4M", 0, false}, ++t),
      vsfuzz::MakeCommand(CommandType::kSetXattr, SetXattrCmd{InodeId{3}, "user.k", "", 0, true}, ++t),
      vsfuzz::MakeCommand(CommandType::kSetConfigMany, SetConfigManyCmd{{{"mds.recovery.parallel", "8"}}}, ++t),
      vsfuzz::MakeCommand(CommandType::kAddEvent, AddEventCmd{"CS", "WRN", "x"}, ++t),
  };
  Seed("command_fuzz", "apply_attrs_config", seq(c));

  // journal_fuzz: [u8 flags] then [u8 type][u8 rflags][u16 len][body].
  auto jseq = [](uint8_t flags, const std::vector<Command>& cmds, bool raw_last) {
    std::string s(1, static_cast<char>(flags));
    for (size_t i = 0; i < cmds.size(); ++i) {
      bool raw = raw_last && i + 1 == cmds.size();
      std::string body = raw ? Enc(cmds[i]) : cmds[i].body;
      s.push_back(static_cast<char>(cmds[i].type));
      s.push_back(static_cast<char>(raw ? 1 : (i == 2 ? 2 : 0)));
      uint16_t len = static_cast<uint16_t>(body.size());
      s.append(reinterpret_cast<const char*>(&len), 2);
      s += body;
    }
    return s;
  };
  Seed("journal_fuzz", "replay_namespace", jseq(0, a, false));
  Seed("journal_fuzz", "snapshot_then_chunks", jseq(1 | 4, b, true));
  Seed("journal_fuzz", "segments_attrs", jseq(2 | 4, c, false));
}

// ---- log_fuzz / snapshot_fuzz ----
std::string ReadMem(env::MemFileSystem& mfs, const std::string& path) {
  auto r = mfs.ReadFile(path);
  VSFUZZ_CHECK(r.ok(), "read %s", path.c_str());
  return *r;
}

void LogSeeds() {
  using namespace vstorage::mds;
  // A log as the MDS writes it: the base commands, a snapshot, more entries, a hard state.
  env::MemFileSystem mfs;
  VSFUZZ_CHECK(mfs.CreateDirs("/repo").ok(), "mkdir");
  std::vector<Command> cmds = vsfuzz::BaseCommands();
  {
    auto log = Log::Open(&mfs, "/repo");
    VSFUZZ_CHECK(log.ok(), "Log::Open");
    std::vector<LogEntry> entries;
    for (size_t i = 0; i < cmds.size(); ++i) entries.push_back({i + 1, 1, Enc(cmds[i])});
    VSFUZZ_CHECK((*log)->Append(entries).ok(), "append");
    VSFUZZ_CHECK((*log)->SaveHardState({2, 1}).ok(), "hardstate");
  }
  std::string seg_path = "/repo/log/00000000000000000001.seg";
  std::string seg = ReadMem(mfs, seg_path);
  std::string c;
  vsfuzz::AppendEntry(&c, 0, seg);
  Seed("log_fuzz", "segment", c);
  vsfuzz::AppendEntry(&c, 1, ReadMem(mfs, "/repo/hardstate"));
  {
    auto j = Journal::Open(&mfs, "/repo");
    VSFUZZ_CHECK(j.ok(), "open");
    auto st = (*j)->Recover();
    VSFUZZ_CHECK(st.ok(), "recover");
    VSFUZZ_CHECK((*j)->WriteSnapshot(*st).ok(), "snapshot");
  }
  vsfuzz::AppendEntry(&c, 2, ReadMem(mfs, "/repo/snapshot"));
  Seed("log_fuzz", "segment_hardstate_snapshot", c);
  // A torn tail: the last record cut in half.
  std::string torn;
  vsfuzz::AppendEntry(&torn, 0, seg.substr(0, seg.size() - 20));
  Seed("log_fuzz", "torn_tail", torn);
  // Two segments; the second starts where the first ends.
  {
    std::string s1 = EncodeSegmentHeader(1), s2 = EncodeSegmentHeader(4);
    for (uint64_t i = 1; i <= 3; ++i) s1 += EncodeLogRecord({i, 1, Enc(cmds[i - 1])});
    for (uint64_t i = 4; i <= 6; ++i) s2 += EncodeLogRecord({i, 2, Enc(cmds[i - 1])});
    std::string two;
    vsfuzz::AppendEntry(&two, 0, s1);
    vsfuzz::AppendEntry(&two, 0, s2);
    vsfuzz::AppendEntry(&two, 5, "leftover");
    Seed("log_fuzz", "two_segments", two);
  }
  // The golden v1 repository (journal + VSSNAP01 snapshot), converted at Open.
  std::string v1;
  vsfuzz::AppendEntry(&v1, 3, Slurp(g_src + "/src/mds/testdata/journal_v1/journal"));
  vsfuzz::AppendEntry(&v1, 2, Slurp(g_src + "/src/mds/testdata/journal_v1/snapshot"));
  Seed("log_fuzz", "v1_repository", v1);

  // snapshot_fuzz: images of formats 4 (the base cluster, the golden image), 3 and 2.
  MdsState base = vsfuzz::BaseState();
  Seed("snapshot_fuzz", "base_v4", base.Encode());
  Seed("snapshot_fuzz", "golden_v4", Slurp(g_src + "/src/mds/testdata/state_v4.img"));
  for (uint32_t format : {2u, 3u}) {
    std::string img;
    Encoder e(&img);
    e.U32(format);
    e.U64(4);                // next_ino
    e.U64(2);                // next_chunk
    e.U64(kFirstCsId + 1);   // next_cs
    e.U32(3);                // inodes (format 3 attributes: times in ms)
    auto inode = [&](uint64_t ino, proto::NodeType type, uint32_t mode, uint64_t parent,
                     std::vector<proto::DirEntry> children) {
      e.U64(ino);
      e.U8(static_cast<uint8_t>(type));
      e.U32(mode);
      e.U64(type == proto::NodeType::kFile ? 4096 : 0);  // size
      e.I64(1234);                                       // mtime_ms
      e.I64(1234);                                       // ctime_ms
      e.U32(type == proto::NodeType::kDir ? 2 : 1);      // nlink
      e.U64(1 << 20);                                    // chunk_size
      e.U64(parent);
      e.Str(type == proto::NodeType::kSymlink ? "/f" : "");
      e.U32(1);  // norm
      e.U32(1);  // min
      proto::Put(e, children);
    };
    inode(1, proto::NodeType::kDir, 040755, 1, {{"f", InodeId{2}, proto::NodeType::kFile}, {"s", InodeId{3}, proto::NodeType::kSymlink}});
    inode(2, proto::NodeType::kFile, 0100644, 1, {});
    inode(3, proto::NodeType::kSymlink, 0120777, 1, {});
    e.U32(1);  // chunks: id, ino, index, version, replicas
    e.U64(1);
    e.U64(2);
    e.U64(0);
    e.U64(1);
    e.Ids(std::vector<CsId>{CsId{kFirstCsId}});
    e.U32(1);  // cs: id, host_id, tier, addr, dropped, releasing[, created_ms]
    e.U64(kFirstCsId);
    e.Str("h1");
    e.U32(0);
    e.Str("127.0.0.1:7000");
    e.Bool(false);
    e.Bool(false);
    if (format == 3) e.I64(1700000000000);
    proto::Put(e, std::map<std::string, std::string>{{"mds.recovery.parallel", "4"}});
    e.U32(1);  // events
    e.I64(1700000000000);
    e.Str("MDS");
    e.Str("INF");
    e.Str("hello");
    MdsState check;
    VSFUZZ_CHECK(check.Decode(img).ok(), "format %u seed does not load", format);
    Seed("snapshot_fuzz", "format" + std::to_string(format), img);
  }
}

// ---- chunk_fuzz: [u8 mode] + container ----
void ChunkSeeds() {
  vsfuzz::TempDir repo("vstorage-fuzz-seeds-");
  std::string file_a, file_b;
  ChunkId a{0x1234}, b{0x99};
  {
    auto s = cs::ChunkStore::Open(repo.path(), true, cs::DiskIoMode::kPwrite);
    VSFUZZ_CHECK(s.ok(), "open chunk store");
    std::string data(6000, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
    VSFUZZ_CHECK((*s)->Write(a, 3, 1 << 20, 0, data.data(), data.size()).ok(), "write a");
    VSFUZZ_CHECK((*s)->Write(b, 1, 64 << 10, 8192, data.data(), 100).ok(), "write b");
    VSFUZZ_CHECK((*s)->Sync(a).ok() && (*s)->Sync(b).ok(), "sync");
  }
  char name[32];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(a.v));
  file_a = Slurp(repo.path() + "/chunks/" + name);
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(b.v));
  file_b = Slurp(repo.path() + "/chunks/" + name);
  std::string intents = Slurp(repo.path() + "/intents");

  std::string s1(1, '\0');
  vsfuzz::AppendEntry(&s1, 0, file_a);
  Seed("chunk_fuzz", "chunk_file", s1);
  std::string s2(1, '\0');
  vsfuzz::AppendEntry(&s2, 0, file_b);
  vsfuzz::AppendEntry(&s2, 1, intents);
  Seed("chunk_fuzz", "chunk_and_intents", s2);
  // Compact form: header | u16 table bytes | table | data, CRC of the header set by the harness.
  auto compact = [](const std::string& file, size_t table_bytes, size_t data_off, size_t data_bytes) {
    std::string e = file.substr(0, 40);
    uint16_t tl = static_cast<uint16_t>(table_bytes);
    e.append(reinterpret_cast<const char*>(&tl), 2);
    e += file.substr(4096, table_bytes);
    e += file.substr(data_off, data_bytes);
    return e;
  };
  std::string s3(1, '\0');
  vsfuzz::AppendEntry(&s3, 0x30, compact(file_a, 8, 8192, 6000));
  std::string recs;
  for (uint64_t id : {a.v, b.v}) {
    uint32_t op = 1;
    recs.append(reinterpret_cast<const char*>(&id), 8);
    recs.append(reinterpret_cast<const char*>(&op), 4);
  }
  vsfuzz::AppendEntry(&s3, 0x11, recs);  // another boot: both suspect
  Seed("chunk_fuzz", "compact_suspect", s3);
  std::string s4(1, '\x01');  // checksums off
  vsfuzz::AppendEntry(&s4, 0x30, compact(file_b, 64, 8192, 8292));
  vsfuzz::AppendEntry(&s4, 2, std::string("\x55\0\0\0\0\0\0\0", 8) + "damaged");
  vsfuzz::AppendEntry(&s4, 0x40, "not a chunk");
  Seed("chunk_fuzz", "nocsum_quarantine_stray", s4);
}

// ---- config_fuzz: [u8 parser] + text ----
void ConfigSeeds() {
  auto c = [](int which, const char* name, const std::string& text) {
    Seed("config_fuzz", name, std::string(1, static_cast<char>(which)) + text);
  };
  c(0, "hostport", "mds1.example.com:2510");
  c(0, "hostport_v6", "[::1]:2510");
  c(1, "hex", "00ff7Fa0");
  c(2, "cluster_key", HexEncode(std::string(kClusterKeyBytes, '\x5a')) + "\n");
  PasswordDigest d;
  d.salt = std::string(16, 's');
  d.iterations = 200000;
  d.verifier = srp::ComputeVerifier(std::string(32, 'h'));
  c(3, "digest", d.Serialize() + "\n");
  c(3, "digest_pbkdf2", "pbkdf2-sha256$200000$" + HexEncode(d.salt) + "$" + HexEncode(std::string(32, 'h')) + "\n");
  c(4, "cs_conf", "# cs.conf\nid=1025\ncluster=stor1\nrepo=/vstorage/stor1-cs1\nchecksums=1\n");
  c(5, "bs_list", "# MDS\n127.0.0.1:2510\n  mds2:2512  \n\nmds3\n");
  c(6, "services", "stor1 mds 1 /vstorage/stor1-mds\nstor1 cs 1025 /vstorage/stor1-cs1\n");
  c(7, "chunk_size", "256M");
  c(7, "replicas", "3:2");
  c(7, "config", "mds.wd.offline_tout=300000");
}

// ---- acl_fuzz: [u32 mode] + xattr value ----
void AclSeeds() {
  auto put = [](const char* name, uint32_t mode, const acl::Acl& a) {
    Seed("acl_fuzz", name, std::string(reinterpret_cast<const char*>(&mode), 4) + acl::Serialize(a));
  };
  acl::Acl minimal;
  minimal.entries = {{acl::kUserObj, 7, acl::kUndefinedId}, {acl::kGroupObj, 5, acl::kUndefinedId},
                     {acl::kOther, 5, acl::kUndefinedId}};
  put("minimal", 0100755, minimal);
  acl::Acl named;
  named.entries = {{acl::kUserObj, 6, acl::kUndefinedId}, {acl::kUser, 4, 1001}, {acl::kGroupObj, 4, acl::kUndefinedId},
                   {acl::kGroup, 6, 2000}, {acl::kMask, 6, acl::kUndefinedId}, {acl::kOther, 0, acl::kUndefinedId}};
  put("named", 040750, named);
  put("empty", 0100644, acl::Acl{});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR SOURCE_DIR (e.g. fuzz/corpus .)\n", argv[0]);
    return 2;
  }
  vsfuzz::Init();
  g_out = argv[1];
  g_src = argv[2];
  MessageSeeds();
  FrameSeeds();
  CommandSeeds();
  LogSeeds();
  ChunkSeeds();
  ConfigSeeds();
  AclSeeds();
  std::printf("seeds written to %s\n", g_out.c_str());
  return 0;
}
