#include "cli/format.h"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <ctime>

namespace vstorage::cli {

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  constexpr size_t kNumUnits = sizeof(kUnits) / sizeof(kUnits[0]);
  if (bytes < 1024) return std::to_string(bytes) + "B";
  size_t u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && u + 1 < kNumUnits) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (v < 10.0) {
    double r = std::round(v * 10.0) / 10.0;
    if (r >= 10.0) {
      std::snprintf(buf, sizeof buf, "10%s", kUnits[u]);
    } else if (r == std::floor(r)) {
      std::snprintf(buf, sizeof buf, "%.0f%s", r, kUnits[u]);
    } else {
      std::snprintf(buf, sizeof buf, "%.1f%s", r, kUnits[u]);
    }
    return buf;
  }
  double r = std::round(v);
  if (r >= 1024.0 && u + 1 < kNumUnits) {
    // Rounding carried into the next unit: 1023.7KB is shown as 1MB.
    std::snprintf(buf, sizeof buf, "1%s", kUnits[u + 1]);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.0f%s", r, kUnits[u]);
  return buf;
}

std::string FormatDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  int64_t s = ms / 1000;
  if (s < 60) return std::to_string(s) + " sec";
  int64_t m = s / 60;
  if (m < 60) return std::to_string(m) + " min";
  int64_t h = m / 60;
  if (h < 24) return std::to_string(h) + "h " + std::to_string(m % 60) + "m";
  return std::to_string(h / 24) + "d " + std::to_string(h % 24) + "h";
}

std::string FormatEventTime(int64_t time_ms) {
  time_t t = static_cast<time_t>(time_ms / 1000);
  struct tm tm {};
  if (!localtime_r(&t, &tm)) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%d-%m-%y %H:%M:%S", &tm);
  return buf;
}

std::string Percent(uint64_t part, uint64_t total) {
  if (total == 0) return "0%";
  double p = static_cast<double>(part) * 100.0 / static_cast<double>(total);
  return std::to_string(static_cast<uint64_t>(std::llround(p))) + "%";
}

std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string PadRight(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(cols_.size());
  rows_.push_back(std::move(cells));
}

void Table::Render(std::ostream& os) const {
  std::vector<size_t> w(cols_.size());
  for (size_t i = 0; i < cols_.size(); ++i) {
    w[i] = cols_[i].header.size();
    for (const auto& r : rows_) w[i] = std::max(w[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cols_.size(); ++i) {
      if (i) s += "  ";
      s += cols_[i].right_align ? PadLeft(cells[i], w[i]) : PadRight(cells[i], w[i]);
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    os << s << "\n";
  };
  std::vector<std::string> hdr;
  for (const auto& c : cols_) hdr.push_back(c.header);
  line(hdr);
  for (const auto& r : rows_) line(r);
}

}  // namespace vstorage::cli
