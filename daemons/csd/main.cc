// vstorage-csd -r DIR: runs the chunk server of a repository made by `vstorage make-cs`.
#include "cs/daemon.h"

int main(int argc, char** argv) { return vstorage::cs::DaemonMain(argc, argv); }
