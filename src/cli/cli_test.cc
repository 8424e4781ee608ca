#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/password.h"
#include "cli/top_view.h"
#include "common/auth.h"
#include "common/srp.h"
#include "common/config.h"
#include "rpc/server.h"

namespace vstorage::cli {
namespace {

namespace fs = std::filesystem;

// ---------- argument parsing ----------

std::vector<OptSpec> Specs() {
  return {{'I', "init", false, "", "x"},
          {'p', "password", false, "", "x"},
          {'r', "repo", true, "DIR", "x"},
          {0, "json", false, "", "x"}};
}

TEST(ParseOptions, ShortLongGroupedAndInline) {
  auto r = ParseOptions({"-Ip", "-r", "/a", "pos", "--json"}, Specs());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->Has("init"));
  EXPECT_TRUE(r->Has("password"));
  EXPECT_TRUE(r->Has("json"));
  EXPECT_EQ(r->Get("repo"), "/a");
  EXPECT_EQ(r->positional, std::vector<std::string>{"pos"});

  r = ParseOptions({"-r/b", "--repo=/c", "--", "-I"}, Specs());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Get("repo"), "/c");
  EXPECT_FALSE(r->Has("init"));
  EXPECT_EQ(r->positional, std::vector<std::string>{"-I"});

  r = ParseOptions({"--repo", "/d", "-"}, Specs());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Get("repo"), "/d");
  EXPECT_EQ(r->positional, std::vector<std::string>{"-"});
}

TEST(ParseOptions, Errors) {
  EXPECT_EQ(ParseOptions({"-x"}, Specs()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseOptions({"--nope"}, Specs()).status().code(), Code::kInvalidArgument);
  auto r = ParseOptions({"-r"}, Specs());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("needs a value"), std::string::npos);
  EXPECT_FALSE(ParseOptions({"--json=1"}, Specs()).ok());
}

// ---------- the tool, with a temp config root ----------

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vs_cli_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    conf_ = root_ + "/etc";
    ::setenv("VSTORAGE_CONF_DIR", conf_.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
    ::unsetenv("VSTORAGE_CONF_DIR");
  }
  // Runs vstorage with ARGS, feeding `stdin_text` as non-terminal stdin.
  int Run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    out_.str("");
    err_.str("");
    std::istringstream in(stdin_text);
    std::ostringstream prompt;
    StreamPasswordReader reader(in, prompt, -1);
    return RunCliArgs(args, out_, err_, reader);
  }
  std::string Slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  bool ConfEmpty() { return !fs::exists(conf_) || fs::is_empty(conf_); }

  std::string root_, conf_;
  std::ostringstream out_, err_;
};

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_NE(err_.str().find("usage: vstorage"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "frobnicate"}), kExitUsage);
  EXPECT_NE(err_.str().find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(Run({"make-mds", "-I", "-a", "127.0.0.1", "-r", root_ + "/m"}), kExitUsage);
  EXPECT_NE(err_.str().find("needs the cluster name"), std::string::npos);
  EXPECT_NE(err_.str().find("usage: vstorage -c NAME make-mds"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1"}), kExitUsage);
  EXPECT_NE(err_.str().find("-r DIR"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-r", root_ + "/m"}), kExitUsage);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "h:99999", "-r", root_ + "/m"}),
            kExitUsage);
  EXPECT_EQ(Run({"-c", "stor1", "make-cs", "-r", root_ + "/c", "-t", "4"}), kExitUsage);
  EXPECT_NE(err_.str().find("invalid tier '4'"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "stat", "--bogus"}), kExitUsage);
  EXPECT_EQ(Run({"-c", "stor1", "stat", "extra"}), kExitUsage);
  EXPECT_EQ(Run({"-c", "a", "stat", "-c", "b"}), kExitUsage);
  EXPECT_EQ(Run({"-c", "bad name", "stat"}), kExitUsage);
  EXPECT_NE(err_.str().find("invalid cluster name 'bad name'"), std::string::npos);
  EXPECT_EQ(Run({"get-attr"}), kExitUsage);
  EXPECT_EQ(Run({"set-attr", "/x"}), kExitUsage);
  EXPECT_TRUE(ConfEmpty());
}

TEST_F(CliTest, HelpExitsZero) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  for (const char* c : {"make-mds", "make-cs", "auth-node", "list-services", "stat", "set-attr",
                        "get-attr", "file-info", "set-config", "get-config"})
    EXPECT_NE(out_.str().find(c), std::string::npos) << c;
  EXPECT_EQ(Run({"make-mds", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("-r, --repo DIR"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "stat", "-h"}), kExitOk);
  EXPECT_NE(out_.str().find("--json"), std::string::npos);
}

TEST_F(CliTest, MakeMdsCreatesRepositoryAndHostConfig) {
  std::string repo = root_ + "/stor1-mds";
  ASSERT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1", "-r", repo, "-p"},
                "s3cret\n"),
            kExitOk)
      << err_.str();
  EXPECT_NE(out_.str().find("vstorage-mdsd -r " + repo), std::string::npos);

  auto conf = ReadKeyValueFile(repo + "/mds.conf");
  ASSERT_TRUE(conf.ok());
  EXPECT_EQ(conf.value(), (std::map<std::string, std::string>{
                              {"cluster", "stor1"}, {"id", "1"}, {"addr", "127.0.0.1:2510"}}));

  std::string key_hex = Slurp(repo + "/cluster.key");
  ASSERT_EQ(key_hex.size(), 65u);  // 32 bytes hex + newline
  struct stat sb;
  ASSERT_EQ(::stat((repo + "/cluster.key").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  auto key = ReadClusterKey("stor1");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(HexEncode(key.value()) + "\n", key_hex);
  ASSERT_EQ(::stat((ClusterDir("stor1") + "/cluster.key").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);

  std::string digest_text = Slurp(repo + "/auth_digest.key");
  EXPECT_EQ(digest_text, Slurp(ClusterDir("stor1") + "/auth_digest.key"));
  EXPECT_EQ(digest_text.rfind("srp6a-3072-sha256$", 0), 0u);
  auto digest = PasswordDigest::Parse(digest_text.substr(0, digest_text.size() - 1));
  ASSERT_TRUE(digest.ok()) << digest.status().message();
  // Only the verifier is stored, never the password hash itself (it would prove the password).
  std::string x = Pbkdf2("s3cret", digest->salt, digest->iterations);
  EXPECT_EQ(srp::ComputeVerifier(x), digest->verifier);
  EXPECT_EQ(digest_text.find(HexEncode(x)), std::string::npos);

  auto bs = ReadBsList("stor1");
  ASSERT_TRUE(bs.ok());
  ASSERT_EQ(bs->size(), 1u);
  EXPECT_EQ(bs.value()[0].str(), "127.0.0.1:2510");
  EXPECT_TRUE(fs::exists(conf_ + "/host_id"));

  EXPECT_EQ(Run({"-c", "stor1", "list-services"}), kExitOk);
  EXPECT_NE(out_.str().find("TYPE"), std::string::npos);
  EXPECT_NE(out_.str().find("REPOSITORY"), std::string::npos);
  EXPECT_NE(out_.str().find("mds"), std::string::npos);
  EXPECT_NE(out_.str().find(repo), std::string::npos);
  EXPECT_EQ(Run({"-c", "other", "list-services"}), kExitOk);
  EXPECT_EQ(out_.str().find(repo), std::string::npos);

  // A second make-mds of the same cluster on this host is refused.
  std::string repo2 = root_ + "/stor1-mds2";
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.2:4110", "-r", repo2},
                "s3cret\n"),
            kExitError);
  EXPECT_NE(err_.str().find("cluster 'stor1' already exists on this host"), std::string::npos)
      << err_.str();
  EXPECT_FALSE(fs::exists(repo2));
}

TEST_F(CliTest, MakeMdsCustomPort) {
  std::string repo = root_ + "/m";
  ASSERT_EQ(Run({"-c", "c_2-x", "make-mds", "-I", "-a", "10.0.0.1:4110", "-r", repo}, "pw\n"),
            kExitOk)
      << err_.str();
  EXPECT_EQ(Slurp(ClusterDir("c_2-x") + "/bs.list"), "10.0.0.1:4110\n");
}

TEST_F(CliTest, MakeMdsRefusalsWriteNothing) {
  std::string repo = root_ + "/busy";
  fs::create_directories(repo);
  std::ofstream(repo + "/junk") << "x";
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1", "-r", repo}, "pw\n"),
            kExitError);
  EXPECT_EQ(err_.str(), "vstorage: repository " + repo +
                            " is not empty; choose another -r or remove it\n");
  EXPECT_TRUE(ConfEmpty());

  std::string fresh = root_ + "/fresh";
  EXPECT_EQ(Run({"-c", "bad/name", "make-mds", "-I", "-a", "127.0.0.1", "-r", fresh}, "pw\n"),
            kExitUsage);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-a", "127.0.0.1", "-r", fresh}, "pw\n"),
            kExitError);
  EXPECT_NE(err_.str().find("adding MDS to an existing cluster is not supported yet"),
            std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1", "-r", fresh}, "\n"),
            kExitError);
  EXPECT_NE(err_.str().find("empty password"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1", "-r", fresh}, ""),
            kExitError);
  EXPECT_NE(err_.str().find("no password given"), std::string::npos);
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_TRUE(ConfEmpty());

  // An existing empty directory (and lost+found alone) is fine.
  fs::create_directories(fresh + "/lost+found");
  EXPECT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", "127.0.0.1", "-r", fresh}, "pw\n"),
            kExitOk)
      << err_.str();
}

TEST_F(CliTest, CommandsNeedingTheClusterExplainWhatToRun) {
  EXPECT_EQ(Run({"-c", "nosuch", "stat"}), kExitError);
  EXPECT_NE(err_.str().find("vstorage: unknown cluster 'nosuch'"), std::string::npos);
  EXPECT_NE(err_.str().find("make-mds -I"), std::string::npos);
  EXPECT_EQ(Run({"-c", "nosuch", "auth-node"}, "pw\n"), kExitError);
  EXPECT_NE(err_.str().find("unknown cluster 'nosuch'"), std::string::npos);

  // Unknown here: not "not authenticated" but what to create or join.
  std::string cs0 = root_ + "/cs0";
  EXPECT_EQ(Run({"-c", "nosuch", "make-cs", "-r", cs0}), kExitError);
  EXPECT_NE(err_.str().find("unknown cluster 'nosuch': this host has no configuration for it"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("make-mds -I"), std::string::npos);
  EXPECT_NE(err_.str().find("auth-node"), std::string::npos);
  EXPECT_EQ(err_.str().find("not authenticated"), std::string::npos);
  EXPECT_FALSE(fs::exists(cs0));

  // Known cluster, no key: make-cs says to run auth-node and creates nothing.
  ASSERT_TRUE(AddToBsList("c1", HostPort{"127.0.0.1", 1}).ok());
  std::string cs = root_ + "/cs";
  EXPECT_EQ(Run({"-c", "c1", "make-cs", "-r", cs}), kExitError);
  EXPECT_NE(err_.str().find("auth-node"), std::string::npos) << err_.str();
  EXPECT_FALSE(fs::exists(cs));

  // A damaged key file is named, with the fix.
  ASSERT_TRUE(WriteFileAtomic(ClusterDir("c1") + "/cluster.key", "abc\n").ok());
  for (std::vector<std::string> args : {std::vector<std::string>{"-c", "c1", "stat"},
                                        std::vector<std::string>{"-c", "c1", "make-cs", "-r", cs}}) {
    EXPECT_EQ(Run(args), kExitError);
    EXPECT_NE(err_.str().find("cluster key file " + ClusterDir("c1") + "/cluster.key is damaged"),
              std::string::npos)
        << err_.str();
    EXPECT_NE(err_.str().find("run 'vstorage -c c1 auth-node' on this host"), std::string::npos);
  }
  ASSERT_TRUE(WriteFileAtomic(ClusterDir("c1") + "/cluster.key", "abcd\n").ok());
  EXPECT_EQ(Run({"-c", "c1", "stat"}), kExitError);
  EXPECT_NE(err_.str().find("2 bytes instead of 32"), std::string::npos) << err_.str();
  EXPECT_FALSE(fs::exists(cs));

  // With a key but nothing listening: names the addresses tried and the daemon.
  ASSERT_TRUE(WriteClusterKey("c1", std::string(32, 'k')).ok());
  EXPECT_EQ(Run({"-c", "c1", "stat"}), kExitError);
  EXPECT_NE(err_.str().find("cannot reach any MDS of cluster 'c1' (tried 127.0.0.1:2)"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("is vstorage-mdsd running?"), std::string::npos);
  EXPECT_EQ(Run({"-c", "c1", "make-cs", "-r", cs}), kExitError);
  EXPECT_FALSE(fs::exists(cs));
  EXPECT_EQ(Run({"-c", "c1", "auth-node"}, "pw\n"), kExitError);
  EXPECT_NE(err_.str().find("tried 127.0.0.1:2"), std::string::npos);
  EXPECT_NE(err_.str().find("must be running"), std::string::npos);
}

// list-services used to show CS that were removed and every id a repository ever had.
TEST_F(CliTest, ListServicesShowsOnlyWhatExists) {
  auto make_repo = [&](const std::string& dir, const std::string& type, const std::string& cluster,
                       const std::string& id) {
    ASSERT_TRUE(MakeDirs(dir).ok());
    ASSERT_TRUE(WriteKeyValueFile(dir + "/" + type + ".conf", {{"cluster", cluster}, {"id", id}}).ok());
  };
  std::string a = root_ + "/cs-a", b = root_ + "/cs-b", gone = root_ + "/cs-gone";
  make_repo(a, "cs", "c1", "1026");  // made twice: 1025 first, then 1026
  make_repo(b, "cs", "c1", "1027");
  ASSERT_TRUE(MakeDirs(conf_).ok());
  ASSERT_TRUE(WriteFileAtomic(conf_ + "/services.list",
                              "c1 cs 1025 " + a + "\nc1 cs 1026 " + a + "\nc1 cs 1027 " + b +
                                  "\nc1 cs 1027 " + b + "\nc1 cs 1028 " + gone + "\n")
                  .ok());
  auto kept = ExistingServices(ListServices().value());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].id, "1026");
  EXPECT_EQ(kept[1].id, "1027");

  // No MDS to ask: the rows stay, the cluster state is unknown and the reason is given.
  ASSERT_TRUE(AddToBsList("c1", HostPort{"127.0.0.1", 1}).ok());
  ASSERT_TRUE(WriteClusterKey("c1", std::string(32, 'k')).ok());
  auto lock = LockRepository(b);
  ASSERT_TRUE(lock.ok());
  ASSERT_EQ(Run({"-c", "c1", "list-services"}), kExitOk) << err_.str();
  std::string out = out_.str();
  EXPECT_EQ(out.find("1025"), std::string::npos) << out;
  EXPECT_EQ(out.find("1028"), std::string::npos) << out;
  EXPECT_NE(out.find("cs    1026  unknown  stopped  " + a), std::string::npos) << out;
  EXPECT_NE(out.find("cs    1027  unknown  running  " + b), std::string::npos) << out;
  EXPECT_NE(err_.str().find("STATUS of cluster 'c1' is unknown: cannot reach any MDS"),
            std::string::npos)
      << err_.str();
  ::close(lock.value());
  ASSERT_EQ(Run({"-c", "c1", "list-services", "-M"}), kExitOk);
  EXPECT_EQ(out_.str().find("1026"), std::string::npos) << out_.str();

  // Registering a repository again replaces what was registered for it.
  ASSERT_TRUE(RegisterService(ServiceEntry{"c1", "cs", "1029", a}).ok());
  auto listed = ListServices().value();
  EXPECT_EQ(std::count_if(listed.begin(), listed.end(), [&](const ServiceEntry& e) { return e.repo == a; }), 1);
}

TEST_F(CliTest, SetAttrValidatesBeforeTouchingAnything) {
  EXPECT_EQ(Run({"set-attr", root_, "color=red"}), kExitUsage);
  EXPECT_NE(err_.str().find("known attributes: replicas, chunk-size"), std::string::npos);
  EXPECT_EQ(Run({"set-attr", root_, "replicas=3:4"}), kExitUsage);
  EXPECT_NE(err_.str().find("vstorage: invalid value '3:4' for attribute 'replicas': expected N "
                            "or N:M with 1 <= M <= N <= 15"),
            std::string::npos);
  EXPECT_EQ(Run({"set-attr", root_, "chunk-size=3M"}), kExitUsage);
  EXPECT_NE(err_.str().find("a power of two between 1M and 1G"), std::string::npos);
  EXPECT_EQ(Run({"set-attr", root_, "replicas"}), kExitUsage);
}

TEST_F(CliTest, AttrsOutsideAMountAreRefused) {
  // A temp directory is not a vstorage mount: vstorage.* xattrs are not supported there.
  EXPECT_EQ(Run({"set-attr", "-R", root_, "replicas=3"}), kExitError);
  EXPECT_NE(err_.str().find(root_ + " is not inside a vstorage mount"), std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"-c", "stor1", "get-attr", root_}), kExitError);
  EXPECT_NE(err_.str().find(root_ + " is not inside a vstorage mount"), std::string::npos)
      << err_.str();
  EXPECT_EQ(Run({"get-attr", root_ + "/missing"}), kExitError);
  EXPECT_NE(err_.str().find("no such file"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "file-info", root_}), kExitError);
  EXPECT_NE(err_.str().find("is not inside a vstorage mount"), std::string::npos);
}

TEST(AttrValues, Replicas) {
  for (const char* ok : {"1", "3", "3:2", "15", "15:15", "2:1"})
    EXPECT_TRUE(ValidReplicas(ok)) << ok;
  for (const char* bad : {"", "0", "16", "3:0", "3:4", "a", "3:", ":2", "3:2:1", "-1", "003"})
    EXPECT_FALSE(ValidReplicas(bad)) << bad;
}

TEST(AttrValues, ChunkSize) {
  EXPECT_EQ(ParseChunkSize("1M").value(), 1u << 20);
  EXPECT_EQ(ParseChunkSize("256m").value(), 256u << 20);
  EXPECT_EQ(ParseChunkSize("1G").value(), 1u << 30);
  EXPECT_EQ(ParseChunkSize("64MB").value(), 64u << 20);
  EXPECT_EQ(ParseChunkSize("4096K").value(), 4u << 20);
  EXPECT_EQ(ParseChunkSize("268435456").value(), 256u << 20);
  for (const char* bad : {"", "M", "512K", "2G", "3M", "1T", "1MiB", "99999999999999999999M"})
    EXPECT_FALSE(ParseChunkSize(bad).ok()) << bad;
}

// ---------- password reader ----------

TEST(PasswordReader, OneLineFromAPipe) {
  std::istringstream in("secret\r\nsecond\n");
  std::ostringstream prompt;
  StreamPasswordReader r(in, prompt, -1);
  auto pw = r.Read(PasswordPrompt{.confirm = true});
  ASSERT_TRUE(pw.ok());
  EXPECT_EQ(pw.value(), "secret");
  EXPECT_EQ(prompt.str(), "");  // not a terminal: no prompt, no confirmation
  std::istringstream no_newline("abc");
  StreamPasswordReader r2(no_newline, prompt, -1);
  EXPECT_EQ(r2.Read({}).value(), "abc");
  std::istringstream empty("");
  StreamPasswordReader r3(empty, prompt, -1);
  EXPECT_FALSE(r3.Read({}).ok());
}

// ---------- formatting ----------

TEST(Format, Sizes) {
  const std::pair<uint64_t, const char*> cases[] = {
      {0, "0B"},
      {1, "1B"},
      {1023, "1023B"},
      {1024, "1KB"},
      {1536, "1.5KB"},
      {10 * 1024, "10KB"},
      {10 * 1024 - 1, "10KB"},
      {1024 * 1024 - 1, "1MB"},
      {119ull << 30, "119GB"},
      {250ull << 30, "250GB"},
      {(16ull << 40) / 10, "1.6TB"},
      {(17ull << 40) / 10, "1.7TB"},
      {1ull << 30, "1GB"},
  };
  for (const auto& [bytes, text] : cases) EXPECT_EQ(FormatSize(bytes), text) << bytes;
}

TEST(Format, Durations) {
  EXPECT_EQ(FormatDuration(5000), "5 sec");
  EXPECT_EQ(FormatDuration(33 * 60000 + 5000), "33 min");
  EXPECT_EQ(FormatDuration((5 * 60 + 12) * 60000ll), "5h 12m");
  EXPECT_EQ(FormatDuration((52 * 60 + 3) * 60000ll), "2d 4h");
}

TEST(Format, TableAlignsColumns) {
  Table t({{"ID", true}, {"NAME", false}, {"X", false}});
  t.AddRow({"1025", "a"});
  t.AddRow({"7", "longer", "z"});
  std::ostringstream os;
  t.Render(os);
  EXPECT_EQ(os.str(),
            "  ID  NAME    X\n"
            "1025  a\n"
            "   7  longer  z\n");
}

// ---------- stat ----------

proto::ClusterStatReply SampleStat() {
  proto::ClusterStatReply st;
  st.cluster = "stor1";
  st.status = "healthy";
  st.epoch_uptime_ms = 33 * 60000;
  st.replicas_norm = 1;
  st.replicas_min = 1;
  st.total_bytes = 250ull << 30;
  st.free_bytes = 250ull << 30;
  st.allocatable_bytes = 238ull << 30;
  st.files = 51;
  st.inodes = 51;
  st.chunks = 38;
  st.chunk_replicas = 76;
  st.fs_bytes = 1ull << 30;
  st.chunk_states.healthy = 38;
  proto::MdsInfo m;
  m.id = MdsId{1};
  m.master = true;
  m.status = "avail";
  m.addr = "10.30.24.73:2510";
  m.uptime_ms = 33 * 60000;
  m.mem_bytes = 10 << 20;
  m.ctime_x10 = 20;
  m.commits_per_s = 3;
  m.cpu_x10 = 5;
  st.mds.push_back(m);
  for (uint64_t id : {1025, 1026}) {
    proto::CsInfo c;
    c.id = CsId{id};
    c.status = "active";
    c.addr = "10.30.24.73:" + std::to_string(id + 40000);
    c.total_bytes = 125ull << 30;
    c.free_bytes = 119ull << 30;
    c.flags = "C";
    if (id == 1026) {
      c.iowait_pct = 37;
      c.lat_avg_ms = 2;
      c.lat_max_ms = 15;
      c.qdepth_x10 = 14;
    }
    st.cs.push_back(c);
  }
  proto::ClientInfo cl;
  cl.id = ClientId{2053};
  cl.host = "dhcp-10";
  cl.open_write = 1;
  cl.read_bps = 1536;
  cl.read_ops = 3;
  cl.lat_avg_ms = 4;
  cl.lat_max_ms = 120;
  st.clients.push_back(cl);
  proto::EventInfo e;
  e.time_ms = 1392998120000;  // 21-02-14 15:55:20 UTC
  e.sys = "MDS";
  e.sev = "INF";
  e.message = "The cluster physical free space: 250GB (100%)";
  st.events.push_back(e);
  return st;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}

TEST(Stat, TextLayoutFollowsTheGuide) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  std::ostringstream os;
  RenderStatText(SampleStat(), os);
  auto l = Lines(os.str());
  ASSERT_GE(l.size(), 20u) << os.str();
  EXPECT_EQ(l[0], "Cluster 'stor1': healthy");
  EXPECT_EQ(l[1], "Space: [OK] allocatable 238GB of 250GB, free 250GB of 250GB");
  EXPECT_EQ(l[2], "MDS nodes: 1 of 1, epoch uptime: 33 min");
  EXPECT_EQ(l[3], "CS nodes: 2 of 2 (2 avail, 0 inactive, 0 offline)");
  EXPECT_EQ(l[4], "Replication: 1 norm, 1 limit");
  EXPECT_EQ(l[5], "Chunks: [OK] 38 (100%) healthy, 0 (0%) degraded, 0 (0%) urgent,");
  EXPECT_EQ(l[6], "         0 (0%) blocked, 0 (0%) pending, 0 (0%) offline, 0 (0%) replicating,");
  EXPECT_EQ(l[7], "         0 (0%) overcommitted, 0 (0%) deleting, 0 (0%) void");
  EXPECT_EQ(l[8], "FS: 1GB in 51 files, 51 inodes, 38 chunks, 76 chunk replicas");
  EXPECT_EQ(l[9], "IO:      read   1.5KB/s ( 3ops/s), write      0B/s ( 0ops/s)");
  EXPECT_EQ(l[10], "");
  EXPECT_EQ(l[11].rfind("MDSID  STATUS  %CTIME  COMMITS  %CPU   MEM", 0), 0u) << l[11];
  EXPECT_NE(l[11].find("UPTIME  HOST"), std::string::npos);
  EXPECT_EQ(l[12].rfind("  M 1  avail", 0), 0u) << l[12];
  EXPECT_NE(l[12].find("10MB"), std::string::npos);
  EXPECT_NE(l[12].find("avail     2.0%      3/s  0.5%"), std::string::npos) << l[12];
  EXPECT_NE(l[12].find("33 min  10.30.24.73:2510"), std::string::npos);
  EXPECT_EQ(l[13], "");
  EXPECT_EQ(l[14].rfind("CSID  STATUS  SPACE  AVAIL  REPLICAS  UNIQUE  IOWAIT  IOLAT(ms)  QDEPTH  "
                        "HOST",
                        0),
            0u)
      << l[14];
  EXPECT_NE(l[14].find("FLAGS"), std::string::npos);
  EXPECT_EQ(l[15].rfind("1025  active  125GB  119GB", 0), 0u) << l[15];
  EXPECT_NE(l[15].find("0%        0/0     0.0  10.30.24.73:41025  C"), std::string::npos) << l[15];
  EXPECT_EQ(l[16].rfind("1026  active", 0), 0u);
  EXPECT_NE(l[16].find("37%       2/15     1.4  10.30.24.73:41026  C"), std::string::npos) << l[16];
  EXPECT_EQ(l[17], "");
  EXPECT_EQ(l[18].rfind("CLID  LEASES", 0), 0u) << l[18];
  EXPECT_NE(l[18].find("READ  WRITE  RD_OPS  WR_OPS  FSYNCS  IOLAT(ms)  HOST"), std::string::npos);
  EXPECT_NE(l[19].find("2053     0/1  1.5KB/s   0B/s  3ops/s"), std::string::npos) << l[19];
  EXPECT_NE(l[19].find("0ops/s      4/120  dhcp-10"), std::string::npos) << l[19];
  EXPECT_EQ(l[20], "");
  EXPECT_EQ(l[21], "TIME               SYS  SEV  MESSAGE");
  EXPECT_EQ(l[22], "21-02-14 15:55:20  MDS  INF  The cluster physical free space: 250GB (100%)");
}

TEST(Stat, DegradedChunksAndConnectedMds) {
  auto st = SampleStat();
  st.status = "degraded";
  st.chunk_states.healthy = 30;
  st.chunk_states.degraded = 8;
  st.cs[1].status = "offline";
  std::ostringstream os;
  RenderStatText(st, os);
  auto l = Lines(os.str());
  EXPECT_EQ(l[0], "Cluster 'stor1': degraded");
  EXPECT_EQ(l[3], "CS nodes: 1 of 2 (1 avail, 0 inactive, 1 offline)");
  // What an offline CS last measured is not shown as if current.
  EXPECT_NE(l[16].find("offline"), std::string::npos) << l[16];
  EXPECT_NE(l[16].find("      -          -     1.4"), std::string::npos) << l[16];
  EXPECT_EQ(l[5].rfind("Chunks: [WARN] 30 (79%) healthy, 8 (21%) degraded,", 0), 0u) << l[5];
  EXPECT_EQ(ConnectedMdsId(st, HostPort{"10.30.24.73", 2510}), 1u);
  EXPECT_EQ(ConnectedMdsId(st, HostPort{"other", 1}), 1u);  // falls back to the master
  st.mds[0].master = false;
  EXPECT_EQ(ConnectedMdsId(st, HostPort{"other", 1}), 0u);
}

// ---------- top ----------

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool AnyLineHas(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

std::string LineWith(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines)
    if (l.find(text) != std::string::npos) return l;
  return "";
}

TEST(Top, ScreenFitsTheTerminalAndTruncatesInsteadOfWrapping) {
  auto st = SampleStat();
  proto::EventInfo e;
  e.time_ms = 1392998120000;
  e.sys = "MDS";
  e.sev = "WRN";
  e.message = "long\tmessage " + std::string(100, 'x') + "END";
  st.events.push_back(e);
  TopFrame f{&st, "connected to MDS#1", "", 2};
  TopView v;
  auto l = RenderTopLines(f, &v, 80, 24);
  ASSERT_EQ(l.size(), 24u);
  for (const auto& x : l) EXPECT_LE(CodePoints(x), 80u) << x;
  EXPECT_EQ(l[0], "connected to MDS#1");
  EXPECT_EQ(l[1], "Cluster 'stor1': healthy");
  EXPECT_EQ(l[5], "Replication: 1 norm, 1 limit");
  // The guide's default top header (5.1) has no Chunks and FS lines: those are verbose.
  EXPECT_EQ(l[6].rfind("IO:      read", 0), 0u) << l[6];
  EXPECT_FALSE(AnyLineHas(l, "Chunks:"));
  std::string cs_head = LineWith(l, "CSID");
  EXPECT_EQ(cs_head.rfind("CSID  STATUS  SPACE  AVAIL  REPLICAS  UNIQUE  IOWAIT", 0), 0u);
  EXPECT_EQ(cs_head.find("FLAGS"), std::string::npos) << cs_head;
  // The long event is cut at 80 columns; its tab became a blank; "END" is beyond the edge.
  std::string ev = LineWith(l, "WRN");
  EXPECT_EQ(CodePoints(ev), 80u) << ev;
  EXPECT_NE(ev.find("long message xxx"), std::string::npos) << ev;
  EXPECT_EQ(ev.find("END"), std::string::npos);
  // The wide one shows it all.
  auto wide = RenderTopLines(f, &v, 200, 24);
  EXPECT_NE(LineWith(wide, "WRN").find("xEND"), std::string::npos);
  // The last line is the key hint, shortened to the width too.
  EXPECT_EQ(l[23].rfind("q quit  v verbose  i columns(default)  w topology  d disks", 0), 0u)
      << l[23];
  auto narrow = RenderTopLines(f, &v, 20, 1);
  ASSERT_EQ(narrow.size(), 1u);
  EXPECT_EQ(narrow[0], "q quit  v verbose  i");
  EXPECT_TRUE(RenderTopLines(f, &v, 80, 0).empty());
}

TEST(Top, TheNewestEventsFitOnTheScreen) {
  auto st = SampleStat();
  for (int i = 0; i < 30; ++i) {
    proto::EventInfo e;
    e.time_ms = 1392998120000 + i * 1000;
    e.sys = "MDS";
    e.sev = "INF";
    e.message = "event " + std::to_string(i);
    st.events.push_back(e);
  }
  TopFrame f{&st, "connected to MDS#1", "", 2};
  TopView v;
  auto l = RenderTopLines(f, &v, 80, 24);
  // The newest event is on the row above the status line; older ones above it.
  EXPECT_NE(l[22].find("event 29"), std::string::npos) << l[22];
  EXPECT_NE(l[21].find("event 28"), std::string::npos) << l[21];
  EXPECT_EQ(l[1 + 6 + 1 + 3 + 3 + 1 + 2 + 1], "TIME               SYS  SEV  MESSAGE");
  // A tall screen shows kStatEvents of them, no more.
  l = RenderTopLines(f, &v, 80, 100);
  size_t shown = 0;
  for (const auto& x : l) shown += x.find("  event ") != std::string::npos;
  EXPECT_EQ(shown, kStatEvents);
  // A short one still shows 3 (the rest of the screen is a scroll away).
  v.scroll = 1000;
  l = RenderTopLines(f, &v, 80, 10);
  EXPECT_NE(l[8].find("event 29"), std::string::npos) << l[8];
  EXPECT_NE(l[6].find("event 27"), std::string::npos) << l[6];
  EXPECT_EQ(l[5].rfind("TIME", 0), 0u) << l[5];
}

TEST(Top, FitToWidthCountsCodePointsAndBlanksControls) {
  EXPECT_EQ(FitToWidth("abc", 2), "ab");
  EXPECT_EQ(FitToWidth("a\tb\x01", 10), "a b ");
  // "é" is two bytes: four of them fit in 4 columns and are not cut in the middle.
  EXPECT_EQ(FitToWidth("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  EXPECT_EQ(FitToWidth("\xc3", 4), " ");  // a truncated sequence is no character
  EXPECT_EQ(AsciiOnly("a\xc3\xa9" "b \xe2\x80\x94 c"), "a?b ? c");
}

TEST(Top, VerboseToggles) {
  auto st = SampleStat();
  st.cs[1].tier = 1;
  TopFrame f{&st, "connected to MDS#1", "", 2};
  TopView v;
  EXPECT_EQ(HandleTopKey('v', 22, &v), TopAction::kRedraw);
  EXPECT_TRUE(v.verbose);
  auto l = RenderTopLines(f, &v, 80, 40);
  EXPECT_EQ(l[3], "tier 0: 125GB total, 119GB free, 1 CS");
  EXPECT_EQ(l[4], "tier 1: 125GB total, 119GB free, 1 CS");
  EXPECT_TRUE(AnyLineHas(l, "Chunks: [OK] 38 (100%) healthy")) << l[8];
  EXPECT_TRUE(AnyLineHas(l, "FS: 1GB in 51 files, 51 inodes, 38 chunks, 76 chunk replicas"));
  EXPECT_TRUE(AnyLineHas(l, "IO QDEPTH: 0.7 aver, 1.4 max"));
  EXPECT_TRUE(AnyLineHas(l, "Sync rate: 0ops/s"));
  EXPECT_NE(l.back().find("verbose(on)"), std::string::npos) << l.back();
  EXPECT_EQ(HandleTopKey('V', 22, &v), TopAction::kRedraw);  // the guide says "the V key"
  EXPECT_FALSE(v.verbose);
  l = RenderTopLines(f, &v, 80, 40);
  EXPECT_FALSE(AnyLineHas(l, "Chunks:"));
  EXPECT_FALSE(AnyLineHas(l, "tier 0:"));
}

TEST(Top, IKeyCyclesTheCsColumnSets) {
  auto st = SampleStat();
  st.cs[0].flags = "JCc";
  TopFrame f{&st, "", "", 2};
  TopView v;
  auto cs_header = [&] { return LineWith(RenderTopLines(f, &v, 200, 40), "CSID"); };
  auto cs_row = [&] { return LineWith(RenderTopLines(f, &v, 200, 40), "1025 "); };
  EXPECT_EQ(cs_header().find("FLAGS"), std::string::npos);
  HandleTopKey('i', 22, &v);
  EXPECT_EQ(v.cs_columns, CsColumns::kFlags);
  EXPECT_NE(cs_header().find("FLAGS"), std::string::npos) << cs_header();
  EXPECT_NE(cs_row().find("JCc"), std::string::npos) << cs_row();
  HandleTopKey('i', 22, &v);
  EXPECT_NE(cs_header().find("RMW  JRMW"), std::string::npos) << cs_header();
  EXPECT_NE(cs_row().find("n/a   n/a"), std::string::npos) << cs_row();  // not reported
  EXPECT_EQ(cs_header().find("FLAGS"), std::string::npos);
  HandleTopKey('i', 22, &v);
  EXPECT_NE(cs_header().find("BUILD_VERSION"), std::string::npos) << cs_header();
  HandleTopKey('i', 22, &v);
  EXPECT_EQ(v.cs_columns, CsColumns::kDefault);
  EXPECT_EQ(cs_header().rfind("CSID  STATUS  SPACE  AVAIL  REPLICAS  UNIQUE  IOWAIT", 0), 0u);
}

// Host locations (beyond the guide): each location has a row, paths are room.row.rack.host.cs.
TEST(Top, TopologyGroupsHostsByLocation) {
  auto st = SampleStat();
  for (auto& c : st.cs) c.host_id = "h" + c.id.str();
  st.cs[0].location = "r1.w1.k1";
  TopFrame f{&st, "", "", 2};
  TopView v;
  HandleTopKey('w', 22, &v);
  auto l = RenderTopLines(f, &v, 80, 24);
  EXPECT_TRUE(AnyLineHas(l, "Services topology (room.row.rack.host_ID.cs_ID) and space per location:"));
  std::string id0 = st.cs[0].id.str();
  EXPECT_EQ(LineWith(l, "r1.w1.k1 ").rfind("r1.w1.k1", 0), 0u) << LineWith(l, "r1.w1.k1 ");
  EXPECT_TRUE(AnyLineHas(l, "    r1.w1.k1.h" + id0 + "." + id0 + " "));
  EXPECT_TRUE(AnyLineHas(l, "default.default.default "));  // the others
}

TEST(Top, TopologyDisksHelpAndOtherKeys) {
  auto st = SampleStat();
  st.cs[0].host_id = "h0";
  st.cs[1].host_id = "h0";
  TopFrame f{&st, "", "", 2};
  TopView v;
  EXPECT_EQ(HandleTopKey('w', 22, &v), TopAction::kRedraw);
  auto l = RenderTopLines(f, &v, 80, 24);
  EXPECT_TRUE(AnyLineHas(l, "Services topology (host_ID.cs_ID) and space per location:"));
  EXPECT_EQ(LineWith(l, "LOCATION").rfind("LOCATION", 0), 0u);
  EXPECT_EQ(LineWith(l, "2 CS").rfind("h0         2 CS          250GB  238GB", 0), 0u)
      << LineWith(l, "2 CS");
  EXPECT_NE(LineWith(l, "h0.1026").find("active     0  125GB  119GB  10.30.24.73"),
            std::string::npos) << LineWith(l, "h0.1026");
  EXPECT_FALSE(AnyLineHas(l, "CSID"));
  HandleTopKey('w', 22, &v);  // back
  EXPECT_EQ(v.screen, TopView::Screen::kMain);
  HandleTopKey('d', 22, &v);
  l = RenderTopLines(f, &v, 80, 24);
  EXPECT_EQ(LineWith(l, "DISK").rfind("DISK  SMART  TEMP  CAPACITY  SERIAL  MODEL  HOST", 0), 0u)
      << LineWith(l, "DISK");
  EXPECT_EQ(LineWith(l, "1026").rfind("n/a   n/a     n/a     125GB  n/a     n/a    10.30.24.73  1026", 0), 0u)
      << LineWith(l, "1026");
  HandleTopKey('h', 22, &v);
  l = RenderTopLines(f, &v, 80, 24);
  EXPECT_EQ(l[0], "vstorage top keys:");
  HandleTopKey('?', 22, &v);
  EXPECT_EQ(v.screen, TopView::Screen::kMain);
  TopView before = v;
  EXPECT_EQ(HandleTopKey('x', 22, &v), TopAction::kIgnored);
  EXPECT_EQ(HandleTopKey(0x1b, 22, &v), TopAction::kIgnored);
  EXPECT_EQ(v.screen, before.screen);
  EXPECT_EQ(v.verbose, before.verbose);
  EXPECT_EQ(v.cs_columns, before.cs_columns);
  EXPECT_EQ(HandleTopKey(' ', 22, &v), TopAction::kRefresh);
  EXPECT_EQ(HandleTopKey('q', 22, &v), TopAction::kQuit);
}

TEST(Top, ScrollsWithinTheBody) {
  auto st = SampleStat();
  TopFrame f{&st, "connected to MDS#1", "", 2};
  TopView v;
  auto full = RenderTopLines(f, &v, 80, 100);
  size_t body = 0;  // non-blank body lines end with the last event
  for (size_t i = 0; i + 1 < full.size(); ++i)
    if (!full[i].empty()) body = i + 1;
  ASSERT_GT(body, 10u);
  HandleTopKey(kTopKeyDown, 9, &v);
  auto l = RenderTopLines(f, &v, 80, 10);
  EXPECT_EQ(l[0], full[1]);
  HandleTopKey(kTopKeyPageDown, 9, &v);
  HandleTopKey(kTopKeyPageDown, 9, &v);
  HandleTopKey(kTopKeyPageDown, 9, &v);
  l = RenderTopLines(f, &v, 80, 10);
  EXPECT_EQ(v.scroll, body - 9);  // clamped: the last body line is on the last row
  EXPECT_EQ(l[8], full[body - 1]);
  HandleTopKey(kTopKeyHome, 9, &v);
  EXPECT_EQ(RenderTopLines(f, &v, 80, 10)[0], "connected to MDS#1");
}

TEST(Top, UnreachableMdsShowsInTheStatusLineOverTheLastReply) {
  auto st = SampleStat();
  TopFrame f{&st, "connected to MDS#1", "cannot reach any MDS of cluster 'stor1'", 3};
  TopView v;
  auto l = RenderTopLines(f, &v, 80, 24);
  EXPECT_EQ(l[1], "Cluster 'stor1': healthy");  // the last reply stays on screen
  EXPECT_EQ(l[23], "ERROR: cannot reach any MDS of cluster 'stor1' (retrying every 3s)");
  TopFrame none{nullptr, "", "cannot reach any MDS", 2};
  l = RenderTopLines(none, &v, 80, 24);
  EXPECT_EQ(l[0], "no cluster status yet");
  EXPECT_EQ(l[23].rfind("ERROR: cannot reach any MDS", 0), 0u);
}

TEST(Stat, JsonCarriesTheSameData) {
  auto j = StatToJson(SampleStat());
  for (const char* k : {"cluster", "status", "space", "replication", "chunks", "fs", "mds", "cs",
                        "clients", "events", "io"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["cluster"], "stor1");
  EXPECT_EQ(j["status"], "healthy");
  EXPECT_EQ(j["space"]["total"], 250ull << 30);
  EXPECT_EQ(j["space"]["free"], 250ull << 30);
  EXPECT_EQ(j["space"]["allocatable"], 238ull << 30);
  EXPECT_EQ(j["replication"]["norm"], 1);
  EXPECT_EQ(j["replication"]["min"], 1);
  EXPECT_EQ(j["chunks"]["healthy"], 38);
  EXPECT_EQ(j["chunks"]["void"], 0);
  EXPECT_EQ(j["chunks"]["total"], 38);
  EXPECT_EQ(j["fs"]["files"], 51);
  ASSERT_EQ(j["mds"].size(), 1u);
  EXPECT_EQ(j["mds"][0]["id"], 1);
  EXPECT_EQ(j["mds"][0]["master"], true);
  EXPECT_EQ(j["mds"][0]["status"], "avail");
  EXPECT_EQ(j["mds"][0]["host"], "10.30.24.73:2510");
  EXPECT_EQ(j["mds"][0]["uptime_ms"], 33 * 60000);
  ASSERT_EQ(j["cs"].size(), 2u);
  EXPECT_EQ(j["cs"][0]["id"], 1025);
  EXPECT_EQ(j["cs"][0]["status"], "active");
  EXPECT_EQ(j["cs"][0]["space"], 125ull << 30);
  EXPECT_EQ(j["cs"][0]["avail"], 119ull << 30);
  EXPECT_EQ(j["cs"][0]["tier"], 0);
  EXPECT_EQ(j["cs"][0]["flags"], "C");
  EXPECT_TRUE(j["cs"][0].contains("replicas"));
  EXPECT_TRUE(j["cs"][0].contains("host"));
  EXPECT_EQ(j["clients"][0]["id"], 2053);
  EXPECT_EQ(j["clients"][0]["host"], "dhcp-10");
  EXPECT_EQ(j["cs"][1]["iowait_pct"], 37);
  EXPECT_EQ(j["cs"][1]["iolat_avg_ms"], 2);
  EXPECT_EQ(j["cs"][1]["iolat_max_ms"], 15);
  EXPECT_EQ(j["clients"][0]["iolat_avg_ms"], 4);
  EXPECT_EQ(j["clients"][0]["iolat_max_ms"], 120);
  EXPECT_EQ(j["io"]["read_bps"], 1536);
  EXPECT_EQ(j["events"][0]["time_ms"], 1392998120000);
  EXPECT_EQ(j["events"][0]["sys"], "MDS");
  EXPECT_EQ(j["events"][0]["sev"], "INF");
  // One line without blanks (scripts grep it), round trip, and bad UTF-8 does not throw.
  std::string compact = DumpJson(j);
  EXPECT_EQ(compact.find('\n'), std::string::npos);
  EXPECT_NE(compact.find("\"status\":\"active\""), std::string::npos);
  auto st = SampleStat();
  st.events[0].message = "bad \xff byte";
  std::string text = DumpJson(StatToJson(st));
  EXPECT_EQ(nlohmann::json::parse(text)["cluster"], "stor1");
}


// ---------- against an in-process fake MDS on loopback ----------

// Answers the admin requests the CLI sends with canned data, behind the real handshake.
class FakeMds {
 public:
  Status Listen() { return server_.Listen(HostPort{"127.0.0.1", 0}); }
  int base_port() const { return server_.port() - 1; }
  void Start(const std::string& cluster, const std::string& key, const PasswordDigest& pw) {
    rpc::ServerAuth auth{cluster, key, pw};
    server_.Start(auth, [this](rpc::ServerConn& c, rpc::Frame& f) { Handle(c, f); });
  }
  std::vector<proto::CsCreateReq> CsCreates() {
    std::lock_guard<std::mutex> l(mu_);
    return cs_creates_;
  }
  proto::ClusterStatReply stat;  // set before Start

 private:
  void Handle(rpc::ServerConn& c, rpc::Frame& f) {
    std::lock_guard<std::mutex> l(mu_);
    switch (static_cast<proto::MsgType>(f.type)) {
      case proto::MsgType::kCsCreate: {
        proto::CsCreateReq req;
        (void)proto::DecodeFromString(f.body, &req, "req");
        cs_creates_.push_back(req);
        (void)c.Reply(f, proto::CsCreateReply{CsId{1024 + cs_creates_.size()}});
        return;
      }
      case proto::MsgType::kClusterStat:
        (void)c.Reply(f, stat);
        return;
      case proto::MsgType::kSetConfigMany: {
        // As the MDS: a key starting with "bad" refuses the whole request.
        proto::SetConfigManyReq req;
        (void)proto::DecodeFromString(f.body, &req, "req");
        for (const auto& [k, v] : req.values)
          if (k.rfind("bad", 0) == 0) {
            (void)c.ReplyError(f, Err(Code::kInvalidArgument, "unknown parameter '" + k + "'"));
            return;
          }
        for (const auto& [k, v] : req.values) config_[k] = v;
        (void)c.Reply(f, proto::Empty{});
        return;
      }
      case proto::MsgType::kGetConfig:
        (void)c.Reply(f, proto::ConfigReply{config_});
        return;
      default:
        (void)c.ReplyError(f, Err(Code::kInvalidArgument, "unexpected request"));
    }
  }
  std::mutex mu_;
  std::vector<proto::CsCreateReq> cs_creates_;
  std::map<std::string, std::string> config_;
  rpc::Server server_;  // last: stopped (threads joined) before the state above goes
};

TEST_F(CliTest, AgainstAFakeMds) {
  FakeMds mds;
  ASSERT_TRUE(mds.Listen().ok());
  std::string addr = "127.0.0.1:" + std::to_string(mds.base_port());
  std::string repo = root_ + "/mds";
  ASSERT_EQ(Run({"-c", "stor1", "make-mds", "-I", "-a", addr, "-r", repo}, "pw1\n"), kExitOk)
      << err_.str();
  auto key = HexDecode(Slurp(repo + "/cluster.key").substr(0, 64));
  std::string digest_text = Slurp(repo + "/auth_digest.key");
  auto digest = PasswordDigest::Parse(digest_text.substr(0, digest_text.size() - 1));
  ASSERT_TRUE(key.ok() && digest.ok());
  mds.stat = SampleStat();
  mds.stat.mds[0].addr = addr;
  mds.Start("stor1", key.value(), digest.value());

  // auth-node on "another host" (another config root) that only has bs.list.
  std::string conf2 = root_ + "/etc2";
  ::setenv("VSTORAGE_CONF_DIR", conf2.c_str(), 1);
  ASSERT_TRUE(AddToBsList("stor1", HostPort{"127.0.0.1", mds.base_port()}).ok());
  EXPECT_EQ(Run({"-c", "stor1", "auth-node"}, "wrong\n"), kExitError);
  EXPECT_EQ(err_.str().rfind("vstorage: wrong password for cluster 'stor1'", 0), 0u) << err_.str();
  EXPECT_FALSE(fs::exists(ClusterDir("stor1") + "/cluster.key"));
  EXPECT_EQ(Run({"-c", "stor1", "auth-node", "-P"}, "pw1\n"), kExitOk) << err_.str();
  auto got = ReadClusterKey("stor1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value(), key.value());

  // make-cs: id from the MDS, repository files, service registered.
  std::string cs = root_ + "/cs1";
  // An address the CS could never serve on is refused before the MDS is asked.
  for (std::string bad : {"999.1.1.1", "127.0.0.1:99999", "127.0.0.1:0x10", "192.0.2.1",
                          "no-such-host.invalid"}) {
    EXPECT_EQ(Run({"-c", "stor1", "make-cs", "-r", cs, "-a", bad}), bad.find(':') == std::string::npos ? kExitError : kExitUsage) << bad;
    EXPECT_NE(err_.str().find(bad), std::string::npos) << err_.str();
    EXPECT_FALSE(fs::exists(cs)) << bad;
    EXPECT_TRUE(mds.CsCreates().empty()) << bad;
  }
  EXPECT_NE((Run({"-c", "stor1", "make-cs", "-r", cs, "-a", "999.1.1.1"}), err_.str())
                .find("'999.1.1.1' is not a valid IPv4 address"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("nothing was created"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"-c", "stor1", "make-cs", "-r", cs, "-a", "127.0.0.1:99999"}), kExitUsage);
  EXPECT_NE(err_.str().find("give a port from 1 to 65534"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"-c", "stor1", "list-services"}), kExitOk);
  EXPECT_EQ(out_.str().find("cs "), std::string::npos) << out_.str();

  ASSERT_EQ(Run({"-c", "stor1", "make-cs", "-r", cs, "-t", "2", "-a", "127.0.0.1"}), kExitOk)
      << err_.str();
  EXPECT_NE(out_.str().find("CS#1025"), std::string::npos);
  auto creates = mds.CsCreates();
  ASSERT_EQ(creates.size(), 1u);
  EXPECT_EQ(creates[0].tier, 2u);
  auto host_id = GetOrCreateHostId();
  ASSERT_TRUE(host_id.ok());
  EXPECT_EQ(creates[0].host_id, host_id.value());
  auto csconf = ReadKeyValueFile(cs + "/cs.conf");
  ASSERT_TRUE(csconf.ok());
  EXPECT_EQ(csconf.value(), (std::map<std::string, std::string>{{"cluster", "stor1"},
                                                                {"id", "1025"},
                                                                {"tier", "2"},
                                                                {"host_id", host_id.value()},
                                                                {"addr", "127.0.0.1"},
                                                                {"checksums", "1"}}));
  EXPECT_EQ(HexDecode(Slurp(cs + "/cluster.key").substr(0, 64)).value(), key.value());
  EXPECT_EQ(Run({"-c", "stor1", "list-services"}), kExitOk);
  EXPECT_NE(out_.str().find("1025"), std::string::npos);
  EXPECT_EQ(Run({"-c", "stor1", "make-cs", "-r", cs}), kExitError);  // not empty any more
  EXPECT_EQ(mds.CsCreates().size(), 1u);

  // stat, text and JSON.
  ASSERT_EQ(Run({"-c", "stor1", "stat"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str().rfind("connected to MDS#1\nCluster 'stor1': healthy\n", 0), 0u)
      << out_.str();
  ASSERT_EQ(Run({"-c", "stor1", "stat", "--json"}), kExitOk) << err_.str();
  auto j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["cluster"], "stor1");
  EXPECT_EQ(j["cs"].size(), 2u);

  // set-config / get-config.
  ASSERT_EQ(Run({"-c", "stor1", "set-config", "b.key=2", "a.key=1"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "Set a.key=1\nSet b.key=2\n");
  ASSERT_EQ(Run({"-c", "stor1", "get-config"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "a.key = 1\nb.key = 2\n");
  // One bad pair: one request, refused whole; the CLI says nothing was set.
  EXPECT_EQ(Run({"-c", "stor1", "set-config", "a.key=7", "bad.key=1"}), kExitError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_NE(err_.str().find("unknown parameter 'bad.key'"), std::string::npos) << err_.str();
  EXPECT_NE(err_.str().find("get-config"), std::string::npos) << err_.str();
  ASSERT_EQ(Run({"-c", "stor1", "get-config"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "a.key = 1\nb.key = 2\n");
  EXPECT_EQ(Run({"-c", "stor1", "set-config", "a.key=1", "a.key=2"}), kExitUsage);
  EXPECT_EQ(Run({"-c", "stor1", "set-config", "novalue"}), kExitUsage);
}

// ---------- file-info ----------

TEST(FileInfo, TextAndJson) {
  proto::FileInfoReply fi;
  fi.attr.ino = InodeId{42};
  fi.attr.size = 1536;
  fi.attr.chunk_size = 256ull << 20;
  fi.replicas_norm = 3;
  fi.replicas_min = 2;
  proto::FileChunkInfo c;
  c.index = 0;
  c.id = ChunkId{5};
  c.version = 1;
  c.state = "healthy";
  c.replicas = {CsId{1025}, CsId{1026}, CsId{1027}};
  fi.chunks.push_back(c);
  std::ostringstream os;
  RenderFileInfoText("/vstorage/stor1/f", fi, os);
  std::string t = os.str();
  EXPECT_NE(t.find("File: '/vstorage/stor1/f'"), std::string::npos);
  EXPECT_NE(t.find("Size: 1.5KB (1536 bytes)"), std::string::npos);
  EXPECT_NE(t.find("Replicas: 3:2"), std::string::npos);
  EXPECT_NE(t.find("Chunk size: 256MB (268435456 bytes)"), std::string::npos);
  EXPECT_NE(t.find("INDEX  CHUNK_ID  VERSION  STATE    REPLICAS"), std::string::npos) << t;
  EXPECT_NE(t.find("    0         5        1  healthy  1025,1026,1027"), std::string::npos) << t;

  auto j = FileInfoToJson("/vstorage/stor1/f", fi);
  EXPECT_EQ(j["path"], "/vstorage/stor1/f");
  EXPECT_EQ(j["size"], 1536);
  EXPECT_EQ(j["replicas"], "3:2");
  EXPECT_EQ(j["chunk_size"], 256ull << 20);
  ASSERT_EQ(j["chunks"].size(), 1u);
  EXPECT_EQ(j["chunks"][0]["index"], 0);
  EXPECT_EQ(j["chunks"][0]["id"], 5);
  EXPECT_EQ(j["chunks"][0]["version"], 1);
  EXPECT_EQ(j["chunks"][0]["state"], "healthy");
  EXPECT_EQ(j["chunks"][0]["replicas"], nlohmann::json({1025, 1026, 1027}));
}

}  // namespace
}  // namespace vstorage::cli
