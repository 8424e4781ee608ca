#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/cli.h"

int main(int argc, char** argv) {
  int rc = vstorage::cli::RunCli(argc, argv, std::cout, std::cerr);
  // The process's I/O thread (rpc::IoLoop::Default, never stopped) may still be tearing
  // down the connection the command just closed: leave without running static destructors
  // and atexit handlers (OpenSSL's cleanup among them), which it could race with. A make-cs
  // under CI load ended with SIGSEGV after printing its last line.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(rc);
}
