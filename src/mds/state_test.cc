#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/posix_acl.h"
#include "mds/journal.h"
#include "mds/state.h"

namespace vstorage::mds {
namespace {

template <typename T>
Command Cmd(CommandType t, const T& body, int64_t time_ms = 1000) {
  return Command{t, time_ms, proto::EncodeToString(body)};
}

class StateTest : public ::testing::Test {
 protected:
  proto::Attr Create(InodeId parent, const std::string& name,
                     proto::NodeType type = proto::NodeType::kFile) {
    auto r = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{parent, name, type, 0644, "", true}));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->attr : proto::Attr{};
  }
  CsId AddCs(const std::string& host) {
    auto r = s.Apply(Cmd(CommandType::kCreateCs, CreateCsCmd{host, 0}));
    EXPECT_TRUE(r.ok());
    return r->cs;
  }
  MdsState s;
};

TEST_F(StateTest, FreshClusterHasRootWithOneReplicaAnd256MiBChunks) {
  auto a = s.GetAttr(kRootInode);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->type, proto::NodeType::kDir);
  EXPECT_EQ(a->chunk_size, 256ull << 20);
  auto r = s.ReplicasOf(kRootInode);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 1u);
  EXPECT_EQ(r->second, 1u);
}

TEST_F(StateTest, CreateLookupReaddirUnlink) {
  auto d = Create(kRootInode, "dir", proto::NodeType::kDir);
  auto f = Create(d.ino, "file");
  EXPECT_NE(d.ino, f.ino);
  auto l = s.Lookup(d.ino, "file");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->ino, f.ino);
  auto dup = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{d.ino, "file", proto::NodeType::kFile, 0644, "", true}));
  EXPECT_EQ(dup.status().code(), Code::kExists);
  auto rd = s.Readdir(d.ino);
  ASSERT_TRUE(rd.ok());
  ASSERT_EQ(rd->size(), 1u);
  EXPECT_EQ((*rd)[0].name, "file");
  auto rmdir = s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "dir", true}));
  EXPECT_EQ(rmdir.status().code(), Code::kNotEmpty);
  auto unlink_dir = s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "dir", false}));
  EXPECT_EQ(unlink_dir.status().code(), Code::kIsDir);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{d.ino, "file", false})).ok());
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "dir", true})).ok());
  EXPECT_EQ(s.Lookup(kRootInode, "dir").status().code(), Code::kNotFound);
  EXPECT_EQ(s.GetAttr(f.ino).status().code(), Code::kNotFound);
}

TEST_F(StateTest, ANameOver255BytesIsTooLongOnLookupToo) {
  std::string n(256, 'x');
  EXPECT_EQ(s.Lookup(kRootInode, n).status().code(), Code::kNameTooLong);
  EXPECT_EQ(s.Lookup(kRootInode, std::string(255, 'x')).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, n, false})).status().code(), Code::kNameTooLong);
}

TEST_F(StateTest, BadNamesAreRefused) {
  for (std::string n : std::vector<std::string>{"", ".", "..", "a/b", std::string(256, 'x')}) {
    auto r = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, n, proto::NodeType::kFile, 0644, "", true}));
    EXPECT_FALSE(r.ok()) << n;
  }
  EXPECT_EQ(s.Counts().inodes, 1u);
}

TEST_F(StateTest, ReplicasValidationAndInheritance) {
  EXPECT_TRUE(ParseReplicas("3").ok());
  EXPECT_EQ(ParseReplicas("3")->second, 2u);
  EXPECT_EQ(ParseReplicas("4")->second, 2u);
  EXPECT_EQ(ParseReplicas("1")->second, 1u);
  EXPECT_EQ(ParseReplicas("5:3")->second, 3u);
  for (std::string bad : std::vector<std::string>{"0", "16", "3:4", "abc", "3:0", "", ":", "3:", "-1"})
    EXPECT_EQ(ParseReplicas(bad).status().code(), Code::kInvalidArgument) << bad;
  auto d = Create(kRootInode, "d", proto::NodeType::kDir);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "replicas", "3"})).ok());
  auto bad = s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "replicas", "3:4"}));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "chunk-size", "64M"})).ok());
  auto f = Create(d.ino, "f");
  EXPECT_EQ(f.chunk_size, 64ull << 20);
  auto r = s.ReplicasOf(f.ino);
  EXPECT_EQ(r->first, 3u);
  EXPECT_EQ(r->second, 2u);
  EXPECT_EQ((*s.GetXattrs(f.ino))["replicas"], "3:2");
  EXPECT_FALSE(ParseChunkSizeValue("3M").ok());
  EXPECT_FALSE(ParseChunkSizeValue("512K").ok());
  EXPECT_EQ(*ParseChunkSizeValue("1G"), 1ull << 30);
}

TEST_F(StateTest, ChunksAllocatedFreedOnTruncateAndUnlink) {
  CsId a = AddCs("h1"), b = AddCs("h2");
  EXPECT_EQ(a.v, kFirstCsId);
  auto f = Create(kRootInode, "f");
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, i, 1, {a, b}})).ok());
  auto again = s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 1, 1, {a}}));
  EXPECT_EQ(again.status().code(), Code::kExists);
  auto unknown_cs = s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 9, 1, {CsId{9}}}));
  EXPECT_EQ(unknown_cs.status().code(), Code::kNotFound);
  uint64_t cs = f.chunk_size;
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{f.ino, proto::kSetSize, 3 * cs, 0, 0})).ok());
  EXPECT_EQ(s.Counts().chunk_replicas, 6u);
  // Shrinking into chunk 1 frees chunk 2 only.
  auto t = s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{f.ino, proto::kSetSize, cs + 10, 0, 0}));
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->freed.size(), 1u);
  EXPECT_EQ(t->freed[0].replicas.size(), 2u);
  EXPECT_FALSE(s.GetChunk(f.ino, 2).has_value());
  EXPECT_TRUE(s.GetChunk(f.ino, 1).has_value());
  auto c0 = s.GetChunk(f.ino, 0);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kUpdateChunk, UpdateChunkCmd{c0->id, 2, {b}})).ok());
  EXPECT_EQ(s.ChunkById(c0->id)->version, 2u);
  auto back = s.Apply(Cmd(CommandType::kUpdateChunk, UpdateChunkCmd{c0->id, 1, {b}}));
  EXPECT_EQ(back.status().code(), Code::kStaleVersion);
  auto u = s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "f", false}));
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->freed.size(), 2u);
  EXPECT_EQ(s.Counts().chunks, 0u);
}

TEST_F(StateTest, UpdateChunkCompareAndSetAppliesOnlyToWhatWasRead) {
  CsId a = AddCs("h1"), b = AddCs("h2"), c = AddCs("h3");
  auto f = Create(kRootInode, "f");
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 0, 1, {a, b, c}})).ok());
  ChunkInfo read = *s.GetChunk(f.ino, 0);
  auto cas = [&](const ChunkInfo& from, uint64_t v, std::vector<CsId> reps) {
    UpdateChunkCmd u{from.id, v, std::move(reps), true, from.version, from.replicas};
    return s.Apply(Cmd(CommandType::kUpdateChunk, u));
  };
  // Two decisions made from the same read: the first wins, the second changes nothing.
  ASSERT_TRUE(cas(read, 2, {a, b}).ok());
  auto second = cas(read, 2, {b, c});
  EXPECT_EQ(second.status().code(), Code::kStaleVersion);
  EXPECT_EQ(s.ChunkById(read.id)->replicas, (std::vector<CsId>{a, b}));
  // Same version, other list (a replica dropped without a bump) is a change too.
  ChunkInfo now = *s.ChunkById(read.id);
  ASSERT_TRUE(cas(now, 2, {a}).ok());
  EXPECT_EQ(cas(now, 2, {b}).status().code(), Code::kStaleVersion);
  EXPECT_EQ(s.ChunkById(read.id)->replicas, std::vector<CsId>{a});
}

TEST_F(StateTest, RemoveCsReplicasIsOneCommandAndKeepsLastCopies) {
  CsId a = AddCs("h1"), b = AddCs("h2");
  auto f = Create(kRootInode, "f");
  for (uint64_t i = 0; i < 100; ++i)
    ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, i, 1, {a, b}})).ok());
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 100, 1, {a}})).ok());
  EXPECT_EQ(s.Counts().chunk_replicas, 201u);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kRemoveCsReplicas, RemoveCsReplicasCmd{a})).ok());
  EXPECT_EQ(s.Counts().chunk_replicas, 101u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(s.GetChunk(f.ino, i)->replicas, std::vector<CsId>{b});
  EXPECT_EQ(s.GetChunk(f.ino, 100)->replicas, std::vector<CsId>{a});  // the only copy waits for it
  auto unknown = s.Apply(Cmd(CommandType::kRemoveCsReplicas, RemoveCsReplicasCmd{CsId{7}}));
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
}

TEST_F(StateTest, GrowSizeNeverShrinksAndSetSizeFreesPastAnyOldSize) {
  CsId a = AddCs("h1");
  auto f = Create(kRootInode, "f");
  uint64_t cs = f.chunk_size;
  // Three chunks written while the size the MDS knows is still 0 (a writer that has not
  // reported yet).
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, i, 1, {a}})).ok());
  // Two handles report out of order: the late, smaller report changes nothing.
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{f.ino, proto::kGrowSize, 3 * cs, 0, 0})).ok());
  auto late = s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{f.ino, proto::kGrowSize, cs, 0, 0}));
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(late->freed.empty());
  EXPECT_EQ(s.GetAttr(f.ino)->size, 3 * cs);
  // A truncate frees what lies past the new size even when the MDS knew a smaller size.
  auto g = Create(kRootInode, "g");
  for (uint64_t i = 0; i < 3; ++i)
    ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{g.ino, i, 1, {a}})).ok());
  auto t = s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{g.ino, proto::kSetSize, 10, 0, 0}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->freed.size(), 2u);
  EXPECT_TRUE(s.GetChunk(g.ino, 0).has_value());
  EXPECT_FALSE(s.GetChunk(g.ino, 1).has_value());
}

TEST_F(StateTest, AnUnlinkedOpenFileIsAnOrphanUntilFreedAndSurvivesASnapshot) {
  CsId a = AddCs("h1");
  auto f = Create(kRootInode, "f");
  auto g = Create(kRootInode, "g");
  auto h = Create(kRootInode, "h");
  for (auto ino : {f.ino, g.ino})
    ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{ino, 0, 1, {a}})).ok());
  // f is open: unlinking keeps its inode and chunk, without a name and with nlink 0.
  auto u = s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "f", false, true}));
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->freed.empty());
  EXPECT_EQ(s.Lookup(kRootInode, "f").status().code(), Code::kNotFound);
  ASSERT_TRUE(s.GetAttr(f.ino).ok());
  EXPECT_EQ(s.GetAttr(f.ino)->nlink, 0u);
  EXPECT_TRUE(s.GetChunk(f.ino, 0).has_value());
  // g is open and renamed over: the same.
  auto r = s.Apply(Cmd(CommandType::kRename, RenameCmd{kRootInode, "h", kRootInode, "g", true}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->freed.empty());
  EXPECT_EQ(s.Lookup(kRootInode, "g")->ino, h.ino);
  EXPECT_EQ(s.Orphans(), (std::set<InodeId>{f.ino, g.ino}));
  // A snapshot (an MDS restart) keeps them.
  MdsState t;
  ASSERT_TRUE(t.Decode(s.Encode()).ok());
  EXPECT_EQ(t.Orphans(), (std::set<InodeId>{f.ino, g.ino}));
  EXPECT_EQ(t.Readdir(kRootInode)->size(), 1u);
  // The last close: freed with its chunk; a second free is a no-op.
  auto fr = t.Apply(Cmd(CommandType::kFreeOrphan, FreeOrphanCmd{f.ino}));
  ASSERT_TRUE(fr.ok());
  EXPECT_EQ(fr->freed.size(), 1u);
  EXPECT_FALSE(t.GetAttr(f.ino).ok());
  EXPECT_TRUE(t.Apply(Cmd(CommandType::kFreeOrphan, FreeOrphanCmd{f.ino}))->freed.empty());
  EXPECT_EQ(t.Orphans(), (std::set<InodeId>{g.ino}));
  // Not open: an unlink frees at once, as before.
  auto gone = t.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "g", false, false}));
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(t.GetAttr(h.ino).ok());
}

// A journal written before keep_open / keep_replaced were appended still replays.
TEST_F(StateTest, CommandsRecordedBeforeFieldsWereAppendedStillApply) {
  Create(kRootInode, "a");
  Create(kRootInode, "b");
  std::string old_unlink;
  {
    Encoder e(&old_unlink);
    proto::PutAll(e, kRootInode, std::string("a"), false);  // UnlinkCmd as first written
  }
  ASSERT_TRUE(s.Apply(Command{CommandType::kUnlink, 1000, old_unlink}).ok());
  EXPECT_EQ(s.Lookup(kRootInode, "a").status().code(), Code::kNotFound);
  EXPECT_TRUE(s.Orphans().empty());
  std::string old_rename;
  {
    Encoder e(&old_rename);
    proto::PutAll(e, kRootInode, std::string("b"), kRootInode, std::string("c"));
  }
  ASSERT_TRUE(s.Apply(Command{CommandType::kRename, 1000, old_rename}).ok());
  EXPECT_TRUE(s.Lookup(kRootInode, "c").ok());
  // A record cut inside a field is still refused.
  EXPECT_FALSE(s.Apply(Command{CommandType::kRename, 1000, old_rename.substr(0, 5)}).ok());
}

TEST_F(StateTest, HardLinksCountNamesAndTheLastNameFreesTheFile) {
  CsId a = AddCs("h1");
  auto f = Create(kRootInode, "f");
  auto d = Create(kRootInode, "d", proto::NodeType::kDir);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 0, 1, {a}})).ok());
  auto l = s.Apply(Cmd(CommandType::kLink, LinkCmd{f.ino, d.ino, "g"}));
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->attr.nlink, 2u);
  EXPECT_EQ(s.Lookup(d.ino, "g")->ino, f.ino);
  EXPECT_EQ(s.Apply(Cmd(CommandType::kLink, LinkCmd{d.ino, kRootInode, "x"})).status().code(), Code::kPermission);
  EXPECT_EQ(s.Apply(Cmd(CommandType::kLink, LinkCmd{f.ino, d.ino, "g"})).status().code(), Code::kExists);
  // Dropping one name keeps the data; a rename over the other name drops the last one.
  auto u = s.Apply(Cmd(CommandType::kUnlink, UnlinkCmd{kRootInode, "f", false, false}));
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->freed.empty());
  EXPECT_EQ(s.GetAttr(f.ino)->nlink, 1u);
  // Survives a snapshot with its name in d.
  MdsState t;
  ASSERT_TRUE(t.Decode(s.Encode()).ok());
  EXPECT_EQ(t.Lookup(d.ino, "g")->nlink, 1u);
  auto r = t.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "h", proto::NodeType::kFile, 0644, "", true}));
  ASSERT_TRUE(r.ok());
  auto over = t.Apply(Cmd(CommandType::kRename, RenameCmd{kRootInode, "h", d.ino, "g", false}));
  ASSERT_TRUE(over.ok());
  EXPECT_EQ(over->freed.size(), 1u);
  EXPECT_FALSE(t.GetAttr(f.ino).ok());
}

TEST_F(StateTest, OwnersComeFromTheCreatorOrASetgidDirectory) {
  auto r = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "d", proto::NodeType::kDir, 02775, "", true, 10, 20}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attr.uid, 10u);
  EXPECT_EQ(r->attr.gid, 20u);
  auto f = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{r->attr.ino, "f", proto::NodeType::kFile, 0644, "", true, 30, 40}));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->attr.uid, 30u);
  EXPECT_EQ(f->attr.gid, 20u);  // the set-group-ID directory's group
  auto sub = s.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{r->attr.ino, "sub", proto::NodeType::kDir, 0755, "", true, 30, 40}));
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->attr.gid, 20u);
  EXPECT_TRUE(sub->attr.mode & 02000);  // and its bit
}

TEST_F(StateTest, ExtendedAttributesHaveAPerInodeLimit) {
  auto f = Create(kRootInode, "f");
  std::string v(40000, 'v');
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, "user.a", v})).ok());
  auto second = s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, "user.b", v}));
  EXPECT_EQ(second.status().code(), Code::kNoSpace);
  // Replacing the same attribute counts its old value out.
  EXPECT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, "user.a", v + "w"})).ok());
  EXPECT_EQ(s.GetXattrs(f.ino)->at("user.a").size(), 40001u);
  EXPECT_FALSE(s.GetXattrs(f.ino)->count("user.b"));
}

// POSIX ACLs (acl(5)): the access ACL and the mode move together, a directory's default
// ACL is handed down, and the umask applies only where there is none.
TEST_F(StateTest, PosixAclsSetTheModeFollowChmodAndAreInherited) {
  using acl::Entry;
  auto set = [&](InodeId ino, const char* name, const acl::Acl& a) {
    return s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{ino, name, acl::Serialize(a)}));
  };
  auto stored = [&](InodeId ino, const char* name) -> std::optional<acl::Acl> {
    auto x = s.GetXattrs(ino);
    if (!x.ok() || !x->count(name)) return std::nullopt;
    auto a = acl::Parse(x->at(name));
    EXPECT_TRUE(a.ok());
    return *a;
  };
  auto f = Create(kRootInode, "f");  // 0644
  // user::rw- user:1000:rwx group::r-- mask::rwx other::---
  acl::Acl named{{{acl::kUserObj, 6}, {acl::kUser, 7, 1000}, {acl::kGroupObj, 4}, {acl::kMask, 7}, {acl::kOther, 0}}};
  ASSERT_TRUE(set(f.ino, acl::kAccessXattr, named).ok());
  EXPECT_EQ(s.GetAttr(f.ino)->mode & 0777, 0670u);  // the group bits are the mask
  EXPECT_EQ(stored(f.ino, acl::kAccessXattr), named);
  // chmod narrows the mask, not the named entry.
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetAttr, SetAttrCmd{f.ino, proto::kSetMode, 0, 0, 0640})).ok());
  EXPECT_EQ(stored(f.ino, acl::kAccessXattr)->entries[3], (Entry{acl::kMask, 4}));
  EXPECT_EQ(stored(f.ino, acl::kAccessXattr)->entries[1], (Entry{acl::kUser, 7, 1000}));
  // An ACL the mode says all of is not kept; a malformed one is refused and changes nothing.
  ASSERT_TRUE(set(f.ino, acl::kAccessXattr, acl::Acl{{{acl::kUserObj, 7}, {acl::kGroupObj, 0}, {acl::kOther, 4}}}).ok());
  EXPECT_EQ(s.GetAttr(f.ino)->mode & 0777, 0704u);
  EXPECT_FALSE(stored(f.ino, acl::kAccessXattr));
  auto bad = s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, acl::kAccessXattr, "\x02\x00\x00\x00\x01"}));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.GetAttr(f.ino)->mode & 0777, 0704u);
  // Removing an ACL that is not there is no error (setfacl -b); a default ACL needs a directory.
  EXPECT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, acl::kAccessXattr, "", 0, true})).ok());
  EXPECT_EQ(set(f.ino, acl::kDefaultXattr, named).status().code(), Code::kNotDir);
  // An ACL counts toward the inode's attribute space like any attribute, and a refused one
  // leaves the mode alone.
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{f.ino, "user.big", std::string(65500, 'v')})).ok());
  EXPECT_EQ(set(f.ino, acl::kAccessXattr, named).status().code(), Code::kNoSpace);
  EXPECT_EQ(s.GetAttr(f.ino)->mode & 0777, 0704u);
  EXPECT_FALSE(stored(f.ino, acl::kAccessXattr));

  // Without a default ACL the umask applies; with one it does not, and the new node takes it.
  auto mk = [&](InodeId parent, const std::string& name, proto::NodeType t, uint32_t mode) {
    CreateNodeCmd c{parent, name, t, mode, "", true};
    c.umask = 027;
    auto r = s.Apply(Cmd(CommandType::kCreateNode, c));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r->attr;
  };
  auto d = mk(kRootInode, "d", proto::NodeType::kDir, 0777);
  EXPECT_EQ(d.mode & 0777, 0750u);
  // default: user::rwx user:1000:rwx group::r-x mask::rwx other::r-x
  acl::Acl dflt{{{acl::kUserObj, 7}, {acl::kUser, 7, 1000}, {acl::kGroupObj, 5}, {acl::kMask, 7}, {acl::kOther, 5}}};
  ASSERT_TRUE(set(d.ino, acl::kDefaultXattr, dflt).ok());
  EXPECT_EQ(s.GetAttr(d.ino)->mode & 0777, 0750u);  // a default ACL leaves the mode alone
  auto g = mk(d.ino, "g", proto::NodeType::kFile, 0666);
  EXPECT_EQ(g.mode & 0777, 0664u);  // narrowed by the ACL, not by the umask
  EXPECT_EQ(stored(g.ino, acl::kAccessXattr),
            (acl::Acl{{{acl::kUserObj, 6}, {acl::kUser, 7, 1000}, {acl::kGroupObj, 5}, {acl::kMask, 6}, {acl::kOther, 4}}}));
  EXPECT_FALSE(stored(g.ino, acl::kDefaultXattr));
  auto sub = mk(d.ino, "sub", proto::NodeType::kDir, 0777);
  EXPECT_EQ(sub.mode & 0777, 0775u);
  EXPECT_EQ(stored(sub.ino, acl::kDefaultXattr), dflt);  // and handed further down
  EXPECT_TRUE(stored(sub.ino, acl::kAccessXattr));
  // Removing the default ACL brings the umask back.
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, acl::kDefaultXattr, "", 0, true})).ok());
  EXPECT_EQ(mk(d.ino, "h", proto::NodeType::kFile, 0666).mode & 0777, 0640u);
  // They are part of the state: a snapshot keeps them.
  MdsState t;
  ASSERT_TRUE(t.Decode(s.Encode()).ok());
  EXPECT_TRUE(t == s);
  EXPECT_EQ(t.GetXattrs(sub.ino)->at(acl::kDefaultXattr), acl::Serialize(dflt));
}

TEST_F(StateTest, RenameReplacesAndRefusesCycles) {
  auto a = Create(kRootInode, "a", proto::NodeType::kDir);
  auto b = Create(a.ino, "b", proto::NodeType::kDir);
  auto cyc = s.Apply(Cmd(CommandType::kRename, RenameCmd{kRootInode, "a", b.ino, "x"}));
  EXPECT_FALSE(cyc.ok());
  auto f1 = Create(kRootInode, "f1");
  auto f2 = Create(kRootInode, "f2");
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kRename, RenameCmd{kRootInode, "f1", kRootInode, "f2"})).ok());
  EXPECT_EQ(s.Lookup(kRootInode, "f2")->ino, f1.ino);
  EXPECT_EQ(s.GetAttr(f2.ino).status().code(), Code::kNotFound);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kRename, RenameCmd{kRootInode, "f2", b.ino, "g"})).ok());
  EXPECT_EQ(s.Lookup(b.ino, "g")->ino, f1.ino);
  auto onto_dir = s.Apply(Cmd(CommandType::kRename, RenameCmd{b.ino, "g", kRootInode, "a"}));
  EXPECT_EQ(onto_dir.status().code(), Code::kIsDir);
}

TEST_F(StateTest, ConfigDefaultsAndValidation) {
  EXPECT_EQ(s.ConfigValue("mds.wd.offline_tout"), 300000);
  EXPECT_EQ(s.Config().count("mds.wd.verify_chunks"), 1u);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetConfig, SetConfigCmd{"mds.wd.offline_tout", "5000"})).ok());
  EXPECT_EQ(s.ConfigValue("mds.wd.offline_tout"), 5000);
  EXPECT_FALSE(s.Apply(Cmd(CommandType::kSetConfig, SetConfigCmd{"no.such", "1"})).ok());
  EXPECT_FALSE(s.Apply(Cmd(CommandType::kSetConfig, SetConfigCmd{"mds.wd.offline_tout", "abc"})).ok());
  EXPECT_EQ(s.ConfigValue("mds.wd.offline_tout"), 5000);
}

// set-config good=1 bad=1 used to apply `good` and then fail on `bad`.
TEST_F(StateTest, SetConfigManyAppliesEveryPairOrNone) {
  SetConfigManyCmd mixed{{{"mds.wd.offline_tout", "7000"}, {"no.such", "1"}, {"mds.wd.max_offline_cs", "x"}}};
  auto r = s.Apply(Cmd(CommandType::kSetConfigMany, mixed));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("2 of 3 parameters are invalid, so none was changed"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown parameter 'no.such'"), std::string::npos) << m;
  EXPECT_NE(m.find("invalid value 'x' for mds.wd.max_offline_cs"), std::string::npos) << m;
  EXPECT_EQ(s.ConfigValue("mds.wd.offline_tout"), 300000);
  EXPECT_EQ(s.ConfigValue("mds.wd.max_offline_cs"), 2);

  SetConfigManyCmd good{{{"mds.wd.offline_tout", "7000"}, {"mds.wd.max_offline_cs", "5"}}};
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetConfigMany, good)).ok());
  EXPECT_EQ(s.ConfigValue("mds.wd.offline_tout"), 7000);
  EXPECT_EQ(s.ConfigValue("mds.wd.max_offline_cs"), 5);
  EXPECT_FALSE(s.Apply(Cmd(CommandType::kSetConfigMany, SetConfigManyCmd{})).ok());
  EXPECT_TRUE(MdsState::CheckConfig("mds.wd.offline_tout", "1000").ok());
  EXPECT_FALSE(MdsState::CheckConfig("mds.wd.offline_tout", "999").ok());
}

// The journal keeps this command: its number and encoding must never change.
TEST(Commands, GoldenSetConfigMany) {
  EXPECT_EQ(static_cast<int>(CommandType::kSetConfigMany), 14);
  std::string b = proto::EncodeToString(SetConfigManyCmd{{{"a", "1"}}});
  EXPECT_EQ(b, std::string("\x01\0\0\0\x01\0\0\0a\x01\0\0\0" "1", 14));
}

TEST(Commands, GoldenSetCsLocation) {
  EXPECT_EQ(static_cast<int>(CommandType::kSetCsLocation), 19);
  std::string b = proto::EncodeToString(SetCsLocationCmd{CsId{1025}, "a.b.c"});
  EXPECT_EQ(b, std::string("\x01\x04\0\0\0\0\0\0\x05\0\0\0" "a.b.c", 17));
}

TEST_F(StateTest, SnapshotImageRoundTrips) {
  AddCs("h1");
  auto d = Create(kRootInode, "d", proto::NodeType::kDir);
  auto f = Create(d.ino, "f");
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kAllocChunk, AllocChunkCmd{f.ino, 0, 1, {CsId{kFirstCsId}}})).ok());
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kAddEvent, AddEventCmd{"MDS", "INF", "hello"})).ok());
  MdsState t;
  ASSERT_TRUE(t.Decode(s.Encode()).ok());
  EXPECT_TRUE(t == s);
  EXPECT_EQ(t.Lookup(d.ino, "f")->ino, f.ino);
  EXPECT_EQ(t.Events().back().message, "hello");
  // The next ids continue where they were.
  auto g = t.Apply(Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, "g", proto::NodeType::kFile, 0644, "", true}));
  EXPECT_GT(g->attr.ino.v, f.ino.v);
  EXPECT_FALSE(t.Decode("garbage").ok());
}

// Issue 9.1: the watchdog gives a CS that never registered offline_tout from its creation,
// so the creation time must be journaled and survive a snapshot.
// A format-2 image (times in ms, no owners) of these inodes, built field by field: how the
// tests below make images no encoder of ours would write.
struct V2Inode {
  uint64_t ino = 0, parent = 1;
  bool dir = false;
  uint32_t nlink = 1;
  uint64_t chunk_size = 1 << 20;
  int64_t mtime_ms = 1000;
  std::vector<proto::DirEntry> children;
};
std::string Format2Image(const std::vector<V2Inode>& inodes, uint64_t next_ino, const std::vector<ChunkInfo>& chunks = {}) {
  std::string img;
  Encoder e(&img);
  e.U32(2);
  e.U64(next_ino);
  e.U64(100);             // next_chunk
  e.U64(kFirstCsId);      // next_cs
  e.U32(static_cast<uint32_t>(inodes.size()));
  for (const V2Inode& n : inodes) {
    e.U64(n.ino);
    e.U8(static_cast<uint8_t>(n.dir ? proto::NodeType::kDir : proto::NodeType::kFile));
    e.U32(n.dir ? 0755 : 0644);
    e.U64(0);             // size
    e.I64(n.mtime_ms);
    e.I64(n.mtime_ms);    // ctime
    e.U32(n.nlink);
    e.U64(n.chunk_size);
    e.U64(n.parent);
    e.Str("");            // symlink
    e.U32(1);             // norm
    e.U32(1);             // min
    e.U32(static_cast<uint32_t>(n.children.size()));
    for (const auto& c : n.children) c.Encode(e);
  }
  e.U32(static_cast<uint32_t>(chunks.size()));
  for (const auto& c : chunks) c.Encode(e);
  e.U32(0);  // cs
  e.U32(0);  // config
  e.U32(0);  // events
  return img;
}
proto::DirEntry Entry(const std::string& name, uint64_t ino, bool dir) {
  return {name, InodeId{ino}, dir ? proto::NodeType::kDir : proto::NodeType::kFile};
}
V2Inode Dir(uint64_t ino, uint64_t parent, std::vector<proto::DirEntry> children = {}) {
  return {ino, parent, true, 2, 1 << 20, 1000, std::move(children)};
}
V2Inode File(uint64_t ino, uint64_t parent, uint32_t nlink = 1) { return {ino, parent, false, nlink}; }

// Found by fuzz/snapshot_fuzz: images whose CRC is right but whose content the MDS cannot
// live with loaded, and a later rename, unlink or create crashed, hung (a cycle of
// directories) or overwrote an inode in use. Each is refused as corrupt, naming why.
TEST_F(StateTest, ASnapshotThatBreaksTheTreeIsRefused) {
  auto refused = [](const std::string& img, const std::string& why) {
    MdsState t;
    Status st = t.Decode(img);
    EXPECT_EQ(st.code(), Code::kCorrupt) << why << ": " << st.ToString();
    EXPECT_NE(st.message().find(why), std::string::npos) << st.ToString();
  };
  // The good one first: the harness below is right.
  MdsState ok;
  ASSERT_TRUE(ok.Decode(Format2Image({Dir(1, 1, {Entry("d", 2, true), Entry("f", 3, false)}), Dir(2, 1), File(3, 1)}, 4)).ok());
  EXPECT_TRUE(ok.Lookup(kRootInode, "f").ok());
  refused(Format2Image({Dir(1, 1, {Entry("f", 3, false)}), File(3, 1)}, 3), "next inode");
  refused(Format2Image({Dir(1, 1, {Entry("f", 7, false)})}, 8), "names inode 7");
  refused(Format2Image({Dir(1, 1, {Entry("f", 2, false), Entry("g", 2, false)}), File(2, 1, 1)}, 3),
          "link count of inode 2");
  // Two directories in each other, not reached from the root: a rename below either
  // walked up their parents forever.
  refused(Format2Image({Dir(1, 1), Dir(2, 3, {Entry("b", 3, true)}), Dir(3, 2, {Entry("a", 2, true)})}, 4),
          "reached from the root");
  refused(Format2Image({Dir(1, 1, {Entry("d", 2, true)}), Dir(2, 5)}, 3), "has parent 5");
  refused(Format2Image({Dir(1, 1, {Entry("f", 2, false)}), {2, 1, false, 1, 0}}, 3), "chunk size 0");
  refused(Format2Image({Dir(1, 1, {Entry("f", 2, false)}), {2, 1, false, 1, 1 << 20, INT64_MAX / 1000}}, 3),
          "out of range");
  refused(Format2Image({File(1, 1)}, 2), "root is not a directory");
  // Chunks (found by snapshot_fuzz in CI: FileChunks followed a list to a chunk that was not
  // there). One id twice: the second replaced the first, whose file still listed it.
  auto chunk = [](uint64_t id, uint64_t ino, uint64_t index) { return ChunkInfo{ChunkId{id}, InodeId{ino}, index, 1, {}}; };
  auto two_files = [](std::vector<proto::DirEntry> more = {}) {
    std::vector<proto::DirEntry> e{Entry("f", 2, false), Entry("g", 3, false)};
    e.insert(e.end(), more.begin(), more.end());
    return std::vector<V2Inode>{Dir(1, 1, e), File(2, 1), File(3, 1)};
  };
  MdsState good;
  ASSERT_TRUE(good.Decode(Format2Image(two_files(), 4, {chunk(5, 2, 0), chunk(6, 3, 0), chunk(7, 2, 1)})).ok());
  EXPECT_EQ(good.FileChunks(InodeId{2}).size(), 2u);
  refused(Format2Image(two_files(), 4, {chunk(5, 2, 0), chunk(5, 3, 0)}), "which is not its own");
  refused(Format2Image({Dir(1, 1, {Entry("d", 2, true)}), Dir(2, 1)}, 3, {chunk(5, 2, 0)}), "which is not its own");
  refused(Format2Image(two_files(), 4, {chunk(5, 2, 0), chunk(6, 2, 0)}), "listed by their files");
}

TEST_F(StateTest, CsCreationTimeIsTheCommandTimeAndSurvivesSnapshot) {
  auto r = s.Apply(Cmd(CommandType::kCreateCs, CreateCsCmd{"h1", 0}, 123456));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s.Cs(r->cs)->created_ms, 123456);
  EXPECT_TRUE(s.Cs(r->cs)->addr.empty());  // never registered
  MdsState t;
  ASSERT_TRUE(t.Decode(s.Encode()).ok());
  EXPECT_EQ(t.Cs(r->cs)->created_ms, 123456);
}

// A format-2 snapshot (before created_ms) is still read; its CS get created_ms 0.
TEST_F(StateTest, Format2SnapshotStillDecodes) {
  std::string img;
  Encoder e(&img);
  e.U32(2);
  e.U64(2);           // next_ino
  e.U64(1);           // next_chunk
  e.U64(kFirstCsId + 1);  // next_cs
  e.U32(1);           // inodes: the root
  struct AttrAsFormat3 {  // times in ms, no owners or atime
    InodeId ino;
    proto::NodeType type = proto::NodeType::kFile;
    uint32_t mode = 0;
    uint64_t size = 0;
    int64_t mtime_ms = 0, ctime_ms = 0;
    uint32_t nlink = 1;
    uint64_t chunk_size = 0;
    VS_FIELDS(ino, type, mode, size, mtime_ms, ctime_ms, nlink, chunk_size)
  } root;
  root.ino = kRootInode;
  root.type = proto::NodeType::kDir;
  root.mode = 0755;
  root.mtime_ms = 1234;
  root.nlink = 2;
  root.chunk_size = 1 << 20;
  root.Encode(e);
  e.U64(kRootInode.v);  // parent
  e.Str("");            // symlink
  e.U32(1);             // norm
  e.U32(1);             // min
  e.U32(0);             // children
  e.U32(0);             // chunks
  e.U32(1);             // cs: id, host_id, tier, addr, dropped, releasing
  e.U64(kFirstCsId);
  e.Str("h1");
  e.U32(0);
  e.Str("127.0.0.1:7000");
  e.Bool(false);
  e.Bool(true);
  e.U32(0);  // config
  e.U32(0);  // events
  MdsState t;
  ASSERT_TRUE(t.Decode(img).ok());
  auto cs = t.Cs(CsId{kFirstCsId});
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(cs->host_id, "h1");
  EXPECT_EQ(cs->addr, "127.0.0.1:7000");
  EXPECT_TRUE(cs->releasing);
  EXPECT_EQ(cs->created_ms, 0);
  EXPECT_EQ(t.GetAttr(kRootInode)->mtime_ns, 1234 * 1000000LL);  // format 4 keeps nanoseconds
  EXPECT_EQ(t.GetAttr(kRootInode)->chunk_size, 1u << 20);
}

// Issue 9.9: a CS that starts on a host with a new host_id moves there (journaled).
TEST_F(StateTest, SetCsHostMovesTheCs) {
  CsId id = AddCs("cloned");
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetCsHost, SetCsHostCmd{id, "fresh"})).ok());
  EXPECT_EQ(s.Cs(id)->host_id, "fresh");
  EXPECT_FALSE(s.Apply(Cmd(CommandType::kSetCsHost, SetCsHostCmd{id, ""})).ok());
  EXPECT_EQ(s.Apply(Cmd(CommandType::kSetCsHost, SetCsHostCmd{CsId{9999}, "x"})).status().code(), Code::kNotFound);
}

// Guide 3.5.4.2 and 3.5.5.2: tier and failure-domain are set like replicas and inherited.
TEST_F(StateTest, TierAndFailureDomainAreSetCheckedAndInherited) {
  auto x = s.GetXattrs(kRootInode);
  EXPECT_EQ((*x)["tier"], "0");
  EXPECT_EQ((*x)["failure-domain"], "host");
  proto::Attr d = Create(kRootInode, "ct", proto::NodeType::kDir);
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "tier", "1"})).ok());
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "failure-domain", "disk"})).ok());
  auto bad_tier = s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "tier", "4"}));
  EXPECT_EQ(bad_tier.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_tier.status().message().find("use 0 to 3"), std::string::npos) << bad_tier.status().message();
  auto bad_domain = s.Apply(Cmd(CommandType::kSetXattr, SetXattrCmd{d.ino, "failure-domain", "chassis"}));
  EXPECT_EQ(bad_domain.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad_domain.status().message().find("disk, host, rack, row or room"), std::string::npos);
  proto::Attr f = Create(d.ino, "disk.img");
  auto pl = s.PlacementOf(f.ino);
  ASSERT_TRUE(pl.ok());
  EXPECT_EQ(pl->tier, 1u);
  EXPECT_EQ(pl->domain, FailureDomain::kDisk);
  EXPECT_EQ((*s.GetXattrs(f.ino))["failure-domain"], "disk");
  EXPECT_EQ(s.PlacementOf(kRootInode)->tier, 0u);  // the parent's change did not go up
}

TEST_F(StateTest, SetCsLocationIsCheckedAndKept) {
  CsId id = AddCs("h");
  EXPECT_EQ(s.Cs(id)->location, "");
  ASSERT_TRUE(s.Apply(Cmd(CommandType::kSetCsLocation, SetCsLocationCmd{id, "r1.w2.k3"})).ok());
  EXPECT_EQ(s.Cs(id)->location, "r1.w2.k3");
  EXPECT_EQ(s.Apply(Cmd(CommandType::kSetCsLocation, SetCsLocationCmd{id, "r1 w2"})).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(s.Apply(Cmd(CommandType::kSetCsLocation, SetCsLocationCmd{CsId{9999}, ""})).status().code(),
            Code::kNotFound);
}

// ---------------- Journal ----------------

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vs_journal_XXXXXX";
    dir = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  // Applies and journals like the service does.
  void Commit(Journal& j, MdsState& st, const Command& c) {
    ASSERT_TRUE(st.Apply(c).ok());
    ASSERT_TRUE(j.Append({proto::EncodeToString(c)}, 1).ok());
  }
  Command MkFile(const std::string& name) {
    return Cmd(CommandType::kCreateNode, CreateNodeCmd{kRootInode, name, proto::NodeType::kFile, 0644, "", true});
  }
  std::string dir;
};

TEST_F(JournalTest, ReplayRebuildsTheSameState) {
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->Recover().ok());
    for (int i = 0; i < 50; ++i) Commit(**j, live, MkFile("f" + std::to_string(i)));
  }
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(*rec == live);
  EXPECT_EQ((*j)->last_index(), 50u);
}

TEST_F(JournalTest, ARecordThatFailedWhenAppliedReplaysAsTheSameFailure) {
  // The pipeline journals before it applies: a create that lost a race for its name is in
  // the journal and must fail again on replay, not stop the MDS from starting.
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE((*j)->Recover().ok());
    Commit(**j, live, MkFile("same"));
    Command dup = MkFile("same");
    ASSERT_FALSE(live.Apply(dup).ok());
    ASSERT_TRUE((*j)->Append({proto::EncodeToString(dup)}, 1).ok());
    Commit(**j, live, MkFile("after"));
  }
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(*rec == live);
  EXPECT_EQ((*j)->last_index(), 3u);
}

TEST_F(JournalTest, SnapshotThenMoreRecords) {
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE((*j)->Recover().ok());
    for (int i = 0; i < 10; ++i) Commit(**j, live, MkFile("a" + std::to_string(i)));
    ASSERT_TRUE((*j)->WriteSnapshot(live).ok());
    EXPECT_EQ((*j)->RecordsSinceSnapshot(), 0u);
    for (int i = 0; i < 5; ++i) Commit(**j, live, MkFile("b" + std::to_string(i)));
  }
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(*rec == live);
  EXPECT_EQ((*j)->last_index(), 15u);
  EXPECT_EQ(rec->Counts().files, 15u);
}

TEST_F(JournalTest, TornTailIsCutAndAppendsContinue) {
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE((*j)->Recover().ok());
    for (int i = 0; i < 3; ++i) Commit(**j, live, MkFile("f" + std::to_string(i)));
  }
  // A crash in the middle of the 4th append: half a record.
  std::string path = dir + "/log/00000000000000000001.seg";
  auto size = std::filesystem::file_size(path);
  {
    auto j = Journal::Open(dir);
    MdsState tmp;
    ASSERT_TRUE((*j)->Recover().ok());
    tmp = live;
    Commit(**j, tmp, MkFile("torn"));
  }
  auto full = std::filesystem::file_size(path);
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(size + (full - size) / 2)), 0);
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(*rec == live);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  MdsState st = *rec;
  Commit(**j, st, MkFile("after"));
  auto j2 = Journal::Open(dir);
  auto rec2 = (*j2)->Recover();
  ASSERT_TRUE(rec2.ok());
  EXPECT_TRUE(rec2->Lookup(kRootInode, "after").ok());
}

TEST_F(JournalTest, CorruptionInTheMiddleIsRefused) {
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE((*j)->Recover().ok());
    for (int i = 0; i < 5; ++i) Commit(**j, live, MkFile("f" + std::to_string(i)));
  }
  std::string path = dir + "/log/00000000000000000001.seg";
  int fd = ::open(path.c_str(), O_RDWR);
  char c;
  ASSERT_EQ(::pread(fd, &c, 1, 64), 1);  // inside the first record's data
  c ^= 0x55;
  ASSERT_EQ(::pwrite(fd, &c, 1, 64), 1);
  ::close(fd);
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  EXPECT_EQ(rec.status().code(), Code::kCorrupt);
  EXPECT_NE(rec.status().message().find("backup"), std::string::npos);
}

TEST_F(JournalTest, CorruptSnapshotIsRefused) {
  MdsState live;
  {
    auto j = Journal::Open(dir);
    ASSERT_TRUE((*j)->Recover().ok());
    Commit(**j, live, MkFile("x"));
    ASSERT_TRUE((*j)->WriteSnapshot(live).ok());
  }
  std::string path = dir + "/snapshot";
  int fd = ::open(path.c_str(), O_RDWR);
  char c = 0x7f;
  ASSERT_EQ(::pwrite(fd, &c, 1, 40), 1);
  ::close(fd);
  auto j = Journal::Open(dir);
  EXPECT_EQ((*j)->Recover().status().code(), Code::kCorrupt);
}

// A repository written by the v1 journal (a "VSSNAP01" snapshot at index 6 and a "journal"
// with records 7..11, made by the code before the log): it still loads, into exactly the
// state that code had, and is converted to the log format on the way.
TEST_F(JournalTest, AV1JournalStillReplays) {
  std::string src = std::string(VSTORAGE_SOURCE_DIR) + "/src/mds/testdata/journal_v1";
  for (const char* f : {"snapshot", "journal"})
    std::filesystem::copy_file(src + "/" + f, dir + "/" + f);
  auto expected_image = ReadFile(src + "/expected_state");
  ASSERT_TRUE(expected_image.ok());
  MdsState expected;
  ASSERT_TRUE(expected.Decode(*expected_image).ok());
  {
    auto j = Journal::Open(dir);
    auto rec = (*j)->Recover();
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_TRUE(*rec == expected);
    EXPECT_EQ((*j)->last_index(), 11u);
    EXPECT_EQ((*j)->log().snapshot().index, 6u);
    EXPECT_EQ((*j)->log().TermAt(11).value(), 1u);
    EXPECT_TRUE(rec->Lookup(InodeId{2}, "file").ok());
    EXPECT_FALSE(rec->Lookup(kRootInode, "link").ok());
    EXPECT_EQ(rec->GetXattrs(InodeId{3})->at("user.k"), "v");
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/journal"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/log/00000000000000000007.seg"));
  // Converted once: it opens again as a log, to the same state, and takes appends.
  auto j = Journal::Open(dir);
  auto rec = (*j)->Recover();
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(*rec == expected);
  MdsState st = *rec;
  Commit(**j, st, MkFile("new"));
  EXPECT_EQ((*j)->last_index(), 12u);
}

TEST_F(JournalTest, BuildSnapshotFromTheLogEqualsTheLiveState) {
  MdsState live;
  auto j = Journal::Open(dir);
  ASSERT_TRUE((*j)->Recover().ok());
  for (int i = 0; i < 30; ++i) Commit(**j, live, MkFile("a" + std::to_string(i)));
  ASSERT_TRUE((*j)->WriteSnapshot(live).ok());
  for (int i = 0; i < 20; ++i) Commit(**j, live, MkFile("b" + std::to_string(i)));
  // Built by the background path from the log alone, without the live state.
  ASSERT_TRUE(BuildSnapshot((*j)->log()).ok());
  EXPECT_EQ((*j)->log().snapshot().index, 50u);
  auto image = (*j)->log().ReadSnapshotImage();
  ASSERT_TRUE(image.ok());
  MdsState from_snapshot;
  ASSERT_TRUE(from_snapshot.Decode(*image).ok());
  EXPECT_TRUE(from_snapshot == live);
  Commit(**j, live, MkFile("c"));
  j->reset();
  auto j2 = Journal::Open(dir);
  auto rec = (*j2)->Recover();
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(*rec == live);
}

}  // namespace
}  // namespace vstorage::mds
