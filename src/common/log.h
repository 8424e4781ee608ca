// Minimal leveled logging to stderr with a timestamp; thread-safe (one fprintf per line).
#pragma once
#include <cstdarg>

namespace vstorage {
enum class LogLevel { kDebug, kInfo, kWarn, kError };
void SetLogLevel(LogLevel l);
void SetLogTag(const char* tag);  // e.g. "mds", "cs1025"
void Log(LogLevel l, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
}  // namespace vstorage

#define LOG_DEBUG(...) ::vstorage::Log(::vstorage::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) ::vstorage::Log(::vstorage::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) ::vstorage::Log(::vstorage::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) ::vstorage::Log(::vstorage::LogLevel::kError, __VA_ARGS__)
