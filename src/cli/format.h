// Text formatting shared by the commands: sizes and durations the way the guide prints them,
// and column-aligned tables.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace vstorage::cli {

// 1024-based, units B KB MB GB TB PB EB: below 10 of a unit one decimal ("1.6TB", "1.5KB"),
// otherwise whole units ("250GB"); a trailing ".0" is dropped ("1GB"). 0 -> "0B".
std::string FormatSize(uint64_t bytes);
// "12 sec", "33 min", "5h 12m", "2d 4h".
std::string FormatDuration(int64_t ms);
// Local time as "dd-mm-yy HH:MM:SS".
std::string FormatEventTime(int64_t time_ms);
// Rounded integer percentage of part in total, "0%" when total is 0.
std::string Percent(uint64_t part, uint64_t total);
std::string PadLeft(const std::string& s, size_t width);   // right-aligns s
std::string PadRight(const std::string& s, size_t width);  // left-aligns s

class Table {
 public:
  struct Column {
    std::string header;
    bool right_align = false;
  };
  explicit Table(std::vector<Column> cols) : cols_(std::move(cols)) {}
  // Missing cells are empty; extra cells are ignored.
  void AddRow(std::vector<std::string> cells);
  // Header and rows, columns separated by two spaces, no trailing blanks.
  void Render(std::ostream& os) const;

 private:
  std::vector<Column> cols_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace vstorage::cli
