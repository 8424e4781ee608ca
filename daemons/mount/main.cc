// vstorage-mount -c NAME [-f] [-l LOG] DIR: mounts a cluster with FUSE (src/fuse).
#include "fuse/mount.h"

int main(int argc, char** argv) { return vstorage::fuse::MountMain(argc, argv); }
