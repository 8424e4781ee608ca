// vstorage-mdsd -r DIR: runs the metadata server of a repository made by `vstorage make-mds`.
#include "mds/daemon.h"

int main(int argc, char** argv) { return vstorage::mds::DaemonMain(argc, argv); }
