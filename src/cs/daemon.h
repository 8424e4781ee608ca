#pragma once
namespace vstorage::cs {
// Parses `-r DIR [-v]`, runs the CS in the foreground until SIGTERM/SIGINT. Exit 1 with the
// reason on stderr when the repository cannot be served.
int DaemonMain(int argc, char** argv);
}  // namespace vstorage::cs
