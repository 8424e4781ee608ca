// Filesystem helpers shared by the commands that create repositories.
#pragma once
#include <initializer_list>
#include <string>

#include "common/config.h"
#include "common/status.h"

namespace vstorage::cli {

// OK when dir does not exist or is an empty directory ("lost+found" alone counts as empty:
// a freshly formatted disk mounted there has it). Otherwise kExists / kNotDir with a message
// telling the user to choose another -r.
Status CheckRepoDirUsable(const std::string& dir);

// dir made absolute against the working directory (no symlink resolution), without a
// trailing slash.
std::string AbsolutePath(const std::string& dir);

// Creates dir (and parents) when missing; *created says whether the leaf was made here, so a
// failing command can take it back with RemoveCreatedRepo.
Status CreateRepoDir(const std::string& dir, bool* created);
// Removes the files named and then dir itself when *created; best effort.
void RemoveCreatedRepo(const std::string& dir, bool created,
                       std::initializer_list<const char*> files);

// OK when a service of this host can listen on addr (port 0: any port), as the daemon will:
// a dotted-decimal host must be a valid IPv4 address, a name must resolve, and the address
// must belong to this host with the port free. Otherwise the cause, without advice.
Status CheckServiceAddress(const HostPort& addr);

// True when a daemon holds the lock of repository dir (LockRepository); read from
// /proc/locks, so asking never takes the lock a starting daemon might want.
bool RepositoryInUse(const std::string& dir);

// For set-attr / get-attr / file-info: PATH is on a filesystem that does not carry the
// vstorage.* attributes.
std::string NotInMountMessage(const std::string& path);
// The message for an errno from setxattr/getxattr/listxattr on path (not EINVAL, which
// depends on the attribute).
std::string XattrErrnoMessage(const std::string& path, int err);

}  // namespace vstorage::cli
