// vstorage-mount: the cluster as a FUSE3 file system (low-level API) over libvstorage.
#pragma once

namespace vstorage::fuse {
// vstorage-mount -c NAME [-f] [-l LOGFILE] [-o OPTS] DIR
int MountMain(int argc, char** argv);
}  // namespace vstorage::fuse
