#include "cs/daemon.h"

#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "common/log.h"
#include "cs/service.h"

namespace vstorage::cs {

int DaemonMain(int argc, char** argv) {
  std::string repo;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-r" && i + 1 < argc) {
      repo = argv[++i];
    } else if (a == "-v") {
      SetLogLevel(LogLevel::kDebug);
    } else {
      std::fprintf(stderr, "usage: vstorage-csd -r DIR [-v]\n");
      return 2;
    }
  }
  if (repo.empty()) {
    std::fprintf(stderr, "usage: vstorage-csd -r DIR [-v]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  SetLogTag("csd");
  auto svc = CsService::Start(repo);
  if (!svc.ok()) {
    std::fprintf(stderr, "vstorage-csd: %s\n", svc.status().ToString().c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  LOG_INFO("signal %d: stopping", sig);
  (*svc)->Stop();
  return 0;
}

}  // namespace vstorage::cs
