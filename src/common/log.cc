#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace vstorage {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::string g_tag = "vstorage";
}  // namespace

void SetLogLevel(LogLevel l) { g_level = static_cast<int>(l); }
void SetLogTag(const char* tag) { g_tag = tag; }

void Log(LogLevel l, const char* fmt, ...) {
  if (static_cast<int>(l) < g_level) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  localtime_r(&ts.tv_sec, &t);
  static const char* kNames[] = {"DBG", "INF", "WRN", "ERR"};
  std::fprintf(stderr, "%02d-%02d-%02d %02d:%02d:%02d.%03ld %s %s %s\n", t.tm_mday, t.tm_mon + 1,
               t.tm_year % 100, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000,
               g_tag.c_str(), kNames[static_cast<int>(l)], msg);
}

}  // namespace vstorage
