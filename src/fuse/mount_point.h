// Checks on a vstorage-mount mount point, done before connecting or mounting anything.
#pragma once
#include <string>

#include "common/status.h"

namespace vstorage::fuse {

// True when `mountinfo` (the text of /proc/self/mountinfo) has a vstorage mount of `cluster`
// (source "vstorage://CLUSTER", type fuse.vstorage) on the absolute path `dir`.
bool IsVstorageMountOf(const std::string& mountinfo, const std::string& dir,
                       const std::string& cluster);

// OK when `dir` (absolute, symlinks resolved) is a directory on which `cluster` is not
// mounted yet. kNotDir for anything else than a directory (FUSE would mount on a file, and
// the file would then fail every access with EIO); kExists when the cluster is already
// mounted there (a second mount would stack on the first). The message says what to do.
Status CheckMountPoint(const std::string& dir, const std::string& cluster,
                       const std::string& mountinfo);

}  // namespace vstorage::fuse
