// vstorage -c NAME make-report [-f FILE.tgz]   (guide 8.1.1)
//
// A tarball for a support request: what `stat` (text and JSON), `get-event`, `get-config`
// and `list-services` print, this host's configuration of the cluster and the configuration
// files and logs of its services, and the host's versions. Secrets never go in: the cluster
// key and the password verifier are left out by name, and every file is checked against the
// key before it is added. The guide's version also gathers the other hosts over ssh; this
// one reports the host it runs on (run it on each host you want in the report).
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/config.h"

namespace vstorage::cli {

namespace {

namespace fs = std::filesystem;

// Files of a cluster's configuration that hold secrets.
bool Secret(const std::string& name) { return name == "cluster.key" || name == "auth_digest.key"; }

constexpr uintmax_t kMaxLogBytes = 8 << 20;  // the tail of a log that goes in

std::string Stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

Status WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  out.close();
  if (!out) return Err(Code::kIoError, "cannot write " + p.string());
  return Status::Ok();
}

// Copies `from` (its last kMaxLogBytes) unless it holds the cluster key.
Status CopyChecked(const fs::path& from, const fs::path& to, const std::string& key_hex, std::string* skipped) {
  std::error_code ec;
  uintmax_t size = fs::file_size(from, ec);
  if (ec) return Status::Ok();  // gone meanwhile
  std::ifstream in(from, std::ios::binary);
  if (size > kMaxLogBytes) in.seekg(static_cast<std::streamoff>(size - kMaxLogBytes));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!key_hex.empty() && data.find(key_hex) != std::string::npos) {
    *skipped += from.string() + " (holds the cluster key)\n";
    return Status::Ok();
  }
  fs::create_directories(to.parent_path(), ec);
  return WriteText(to, data);
}

// What a subcommand prints, or its error.
std::string Capture(Context& ctx, const CommandDef& cmd, const ParsedArgs& pa) {
  std::ostringstream out, err;
  Context sub{ctx.cluster, out, err, ctx.passwords};
  int rc = cmd.run(sub, pa);
  std::string text = out.str();
  if (rc != kExitOk) text += "\n# vstorage " + cmd.name + " failed (exit " + std::to_string(rc) + "): " + err.str();
  return text;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  std::string stamp = Stamp();
  std::string file = pa.Get("file", "vstorage-report-" + stamp + ".tgz");
  if (file.size() < 5 || file.compare(file.size() - 4, 4, ".tgz") != 0)
    return Fail(ctx, "the report file must end in .tgz: '" + file + "'");
  char tmpl[] = "/tmp/vstorage-report-XXXXXX";
  if (!::mkdtemp(tmpl)) return Fail(ctx, Err(Code::kIoError, "cannot make a temporary directory in /tmp"));
  const fs::path tmp = tmpl, top = tmp / ("vstorage-report-" + stamp);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  std::error_code ec;
  fs::create_directories(top / "cluster", ec);
  std::string key_hex;
  if (auto key = ReadClusterKey(ctx.cluster); key.ok()) key_hex = HexEncode(key.value());

  // The cluster as the MDS sees it (an unreachable MDS is in the report as its error).
  ParsedArgs none, json;
  json.flags.insert("json");
  Status st;
  for (const auto& [name, cmd, args] : {std::tuple{"stat.txt", StatCommand(), none},
                                        std::tuple{"stat.json", StatCommand(), json},
                                        std::tuple{"events.txt", GetEventCommand(), none},
                                        std::tuple{"config.txt", GetConfigCommand(), none},
                                        std::tuple{"services.txt", ListServicesCommand(), none}})
    if (st.ok()) st = WriteText(top / "cluster" / name, Capture(ctx, cmd, args));

  // This host: versions, its configuration of the cluster, its services' files.
  utsname u{};
  ::uname(&u);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string about = std::string("hostname: ") + host + "\nkernel: " + u.sysname + " " + u.release + " " +
                      u.version + " " + u.machine + "\nvstorage: built " __DATE__ " " __TIME__ "\nreport: " + stamp +
                      "\ncluster: " + ctx.cluster + "\nconfiguration root: " + ConfRoot() + "\n";
  if (st.ok()) st = WriteText(top / "host.txt", about);
  std::string skipped;
  if (st.ok() && fs::exists("/etc/os-release")) st = CopyChecked("/etc/os-release", top / "os-release", key_hex, &skipped);
  for (const std::string& f : {std::string("host_id"), std::string("services.list")})
    if (st.ok() && fs::exists(fs::path(ConfRoot()) / f))
      st = CopyChecked(fs::path(ConfRoot()) / f, top / "conf" / f, key_hex, &skipped);
  if (st.ok() && fs::is_directory(ClusterDir(ctx.cluster), ec))
    for (const auto& e : fs::directory_iterator(ClusterDir(ctx.cluster), ec)) {
      if (!st.ok()) break;
      std::string n = e.path().filename().string();
      if (Secret(n)) {
        skipped += e.path().string() + " (a secret)\n";
        continue;
      }
      if (e.is_regular_file()) st = CopyChecked(e.path(), top / "conf" / "clusters" / ctx.cluster / n, key_hex, &skipped);
    }
  if (auto services = ListServices(); st.ok() && services.ok())
    for (const auto& s : ExistingServices(services.value())) {
      if (s.cluster != ctx.cluster) continue;
      fs::path dest = top / "services" / (s.type + "-" + s.id);
      for (const auto& e : fs::directory_iterator(s.repo, ec)) {
        std::string n = e.path().filename().string();
        bool wanted = e.is_regular_file() && !Secret(n) &&
                      (e.path().extension() == ".conf" || e.path().extension() == ".log");
        if (wanted && st.ok()) st = CopyChecked(e.path(), dest / n, key_hex, &skipped);
      }
      if (st.ok()) st = WriteText(dest / "repository.txt", s.repo + "\n");
    }
  if (st.ok()) st = WriteText(top / "left-out.txt", skipped.empty() ? "nothing\n" : skipped);
  if (!st.ok()) return Fail(ctx, st.Annotate("cannot compile the report"));

  // tar from Debian's base system packs it.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("tar", "tar", "-czf", file.c_str(), "-C", tmp.c_str(), top.filename().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Fail(ctx, "cannot write the report to '" + file + "' (tar failed: is the directory writable and tar installed?)");
  ctx.out << "The report is created and saved to " << file << "\n";
  return kExitOk;
}

}  // namespace

CommandDef MakeReportCommand() {
  CommandDef c;
  c.name = "make-report";
  c.synopsis = "[-f FILE.tgz]";
  c.description = "compile a report of the cluster and this host for technical support (no secrets)";
  c.options = {{'f', "file", true, "FILE", "where to save it (default vstorage-report-DATE-TIME.tgz here)"}};
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
