// Text the daemons and the CLI read from configuration files or the command line: addresses
// (HostPort), hex (HexDecode), the cluster key file, the password digest file, key=value
// files (mds.conf, cs.conf), bs.list, services.list, and the values an xattr or set-config
// carries (replicas, chunk-size, cluster parameters). The first byte picks the parser.
// Checked: what parses round-trips through its writer, and the numeric parsers agree with an
// exact 128-bit reference (a value that wraps around must not be accepted).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/auth.h"
#include "common/srp.h"
#include "common/config.h"
#include "common/limits.h"
#include "fuzz_util.h"
#include "mds/state.h"

namespace {

using namespace vstorage;

const vsfuzz::TempDir* g_conf = nullptr;

void Write(const std::string& path, std::string_view data) {
  Status st = WriteFileAtomic(path, std::string(data));
  VSFUZZ_CHECK(st.ok(), "write %s: %s", path.c_str(), st.ToString().c_str());
}

void HostPortCase(const std::string& s) {
  auto hp = ParseHostPort(s, kDefaultMdsPort);
  if (!hp.ok()) return;
  VSFUZZ_CHECK(!hp->host.empty() && hp->port >= 1 && hp->port <= 65534, "ParseHostPort(%s) gave %s", s.c_str(),
               hp->str().c_str());
  auto again = ParseHostPort(hp->str(), 1);
  VSFUZZ_CHECK(again.ok() && again->host == hp->host && again->port == hp->port, "%s does not parse back",
               hp->str().c_str());
}

void HexCase(const std::string& s) {
  auto bin = HexDecode(s);
  if (bin.ok()) {
    std::string lower = s;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    VSFUZZ_CHECK(HexEncode(*bin) == lower, "HexEncode(HexDecode(x)) != x");
  }
  auto back = HexDecode(HexEncode(s));
  VSFUZZ_CHECK(back.ok() && *back == s, "HexDecode(HexEncode(x)) != x");
}

void KeyCase(const std::string& s) {
  auto key = ParseClusterKey("cluster.key", s, "fix it");
  if (key.ok()) VSFUZZ_CHECK(key->size() == kClusterKeyBytes, "a cluster key of %zu bytes", key->size());
}

void DigestCase(const std::string& s) {
  auto d = PasswordDigest::Parse(s);
  if (!d.ok()) return;
  auto again = PasswordDigest::Parse(d->Serialize());
  // The old form comes back as the new one (a verifier), which parses as itself.
  VSFUZZ_CHECK(again.ok() && !again->upgraded && again->salt == d->salt && again->verifier == d->verifier &&
                   again->iterations == d->iterations,
               "a password digest does not parse back");
  VSFUZZ_CHECK(d->verifier.size() == srp::kSrpGroupBytes, "a verifier of %zu bytes", d->verifier.size());
}

void KeyValueCase(const std::string& s) {
  std::string path = g_conf->path() + "/repo.conf";
  Write(path, s);
  auto kv = ReadKeyValueFile(path);
  if (!kv.ok()) return;
  VSFUZZ_CHECK(WriteKeyValueFile(path, *kv).ok(), "WriteKeyValueFile");
  auto again = ReadKeyValueFile(path);
  VSFUZZ_CHECK(again.ok() && *again == *kv, "a key=value file does not read back as written");
}

void BsListCase(const std::string& s) {
  std::string dir = g_conf->path() + "/clusters/c";
  VSFUZZ_CHECK(MakeDirs(dir).ok(), "mkdir");
  Write(dir + "/bs.list", s);
  auto list = ReadBsList("c");
  if (list.ok())
    for (const HostPort& hp : *list) VSFUZZ_CHECK(!hp.host.empty() && hp.port > 0, "bs.list entry %s", hp.str().c_str());
  (void)ReadClusterKey("c");
  Write(dir + "/cluster.key", s);
  (void)ReadClusterKey("c");
}

void ServicesCase(const std::string& s) {
  Write(g_conf->path() + "/services.list", s);
  auto l = ListServices();
  VSFUZZ_CHECK(l.ok(), "ListServices: %s", l.status().ToString().c_str());
}

// The value of decimal digits with a K/M/G (and optional B) suffix, exactly; -1 if it is
// not of that form or does not fit 64 bits.
__int128 ExactSize(std::string s) {
  if (!s.empty() && (s.back() == 'B' || s.back() == 'b')) s.pop_back();
  __int128 mult = 1;
  if (!s.empty()) {
    char c = s.back();
    if (c == 'K' || c == 'k') mult = 1 << 10;
    else if (c == 'M' || c == 'm') mult = 1 << 20;
    else if (c == 'G' || c == 'g') mult = 1 << 30;
    if (mult != 1) s.pop_back();
  }
  if (s.empty() || s.size() > 19) return -1;
  __int128 n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n * mult;
}

void ValueCase(const std::string& s) {
  auto cs = mds::ParseChunkSizeValue(s);
  __int128 want = ExactSize(s);
  bool valid = want >= static_cast<__int128>(kMinChunkSizeBytes) && want <= (1 << 30) && (want & (want - 1)) == 0;
  VSFUZZ_CHECK(cs.ok() == valid, "chunk-size '%s': parsed %s", s.c_str(),
               cs.ok() ? std::to_string(*cs).c_str() : cs.status().ToString().c_str());
  if (cs.ok()) VSFUZZ_CHECK(static_cast<__int128>(*cs) == want, "chunk-size '%s' read as %llu", s.c_str(),
                            static_cast<unsigned long long>(*cs));
  auto r = mds::ParseReplicas(s);
  if (r.ok())
    VSFUZZ_CHECK(r->second >= 1 && r->second <= r->first && r->first <= kMaxReplicas, "replicas '%s' -> %u:%u",
                 s.c_str(), r->first, r->second);
  auto eq = s.find('=');
  if (eq != std::string::npos) (void)mds::MdsState::CheckConfig(s.substr(0, eq), s.substr(eq + 1));
  (void)IsValidClusterName(s);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  g_conf = new vsfuzz::TempDir("vstorage-config-fuzz-");
  ::setenv("VSTORAGE_CONF_DIR", g_conf->path().c_str(), 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string s(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0: HostPortCase(s); break;
    case 1: HexCase(s); break;
    case 2: KeyCase(s); break;
    case 3: DigestCase(s); break;
    case 4: KeyValueCase(s); break;
    case 5: BsListCase(s); break;
    case 6: ServicesCase(s); break;
    case 7: ValueCase(s); break;
  }
  return 0;
}
