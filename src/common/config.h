// Configuration files of a host and of repositories.
//
// Config root: $VSTORAGE_CONF_DIR when set, /etc/vstorage otherwise. Layout:
//   host_id                         32 hex chars, created once per config root
//   services.list                   "CLUSTER TYPE ID REPO" lines for list-services
//   clusters/NAME/bs.list           one MDS base address "HOST:PORT" per line
//   clusters/NAME/auth_digest.key   salted slow digest of the password (MDS hosts)
//   clusters/NAME/cluster.key       the cluster key, written by make-mds/auth-node (0600)
// Repository files (mds.conf, cs.conf) are "key=value" lines.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace vstorage {

struct HostPort {
  std::string host;
  int port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};
// Parses "HOST[:PORT]"; default_port is used when PORT is absent.
Result<HostPort> ParseHostPort(const std::string& s, int default_port);

// The MDS listens on base port (MDS<->MDS) and base+1 (CS and clients), as in the guide.
inline HostPort MdsServiceAddr(const HostPort& base) { return HostPort{base.host, base.port + 1}; }

bool IsValidClusterName(const std::string& name);

std::string ConfRoot();
std::string ClusterDir(const std::string& cluster);

Result<std::string> ReadFile(const std::string& path);
// Writes via a temp file + fsync + rename + fsync(dir): the file is either old or new.
Status WriteFileAtomic(const std::string& path, const std::string& data, int mode = 0644);
// mkdir -p; each directory it creates is made durable (its parent is fsynced).
Status MakeDirs(const std::string& path);
bool PathExists(const std::string& path);

Result<std::map<std::string, std::string>> ReadKeyValueFile(const std::string& path);
Status WriteKeyValueFile(const std::string& path, const std::map<std::string, std::string>& kv);

// Returns the host id, creating it on first use.
Result<std::string> GetOrCreateHostId();

// bs.list of a cluster. Missing file: kNotFound with a message that says what to do.
Result<std::vector<HostPort>> ReadBsList(const std::string& cluster);
Status AddToBsList(const std::string& cluster, const HostPort& addr);

// The cluster key stored on this host by make-mds or auth-node. A missing key is kAuthFailed
// telling the user to run auth-node, or kNotFound "unknown cluster" when the host has no
// bs.list for it either; a damaged file is kCorrupt naming it.
Result<std::string> ReadClusterKey(const std::string& cluster);
// The key in the text of key file `path`; a damaged file is kCorrupt naming the file, the
// damage and then `fix` (what to run).
Result<std::string> ParseClusterKey(const std::string& path, const std::string& text,
                                    const std::string& fix);
Status WriteClusterKey(const std::string& cluster, const std::string& key);

struct ServiceEntry {
  std::string cluster, type, id, repo;
};
Status RegisterService(const ServiceEntry& e);
Result<std::vector<ServiceEntry>> ListServices();

std::string HexEncode(const std::string& bin);
Result<std::string> HexDecode(const std::string& hex);
std::string RandomBytes(size_t n);

// Takes an exclusive flock on DIR/LOCK for the life of the process; kBusy if another process
// holds it.
Result<int> LockRepository(const std::string& dir);

}  // namespace vstorage
