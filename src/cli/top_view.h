// What `vstorage top` shows (guide chapter 5, 3.5.4.1, 3.5.5.3, 7.7, 8.x): pure functions
// from a cluster status reply, the view the keys selected and the terminal size to the
// lines of one screen, and from a key to the next view. No terminal, no clock, no socket:
// top.cc draws these lines with ncurses; cli_test checks them.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "proto/messages.h"

namespace vstorage::cli {

struct TopView {
  enum class Screen {
    kMain,      // header, MDS, CS, client and event tables (5.1-5.6)
    kTopology,  // `w`: services topology and space per location (3.5.4.1)
    kDisks,     // `d`: the disks table (5.5)
    kHelp,      // `h` / `?`: the keys
  };
  Screen screen = Screen::kMain;
  bool verbose = false;                         // `v`
  CsColumns cs_columns = CsColumns::kDefault;   // `i` cycles kDefault..kVersion
  size_t scroll = 0;                            // first body line shown
};

// Keys beyond ASCII, as top.cc maps them from ncurses (the view knows no ncurses codes).
inline constexpr int kTopKeyUp = 0x10001;
inline constexpr int kTopKeyDown = 0x10002;
inline constexpr int kTopKeyPageUp = 0x10003;
inline constexpr int kTopKeyPageDown = 0x10004;
inline constexpr int kTopKeyHome = 0x10005;

enum class TopAction {
  kIgnored,  // not a key of top: nothing changes
  kRedraw,   // the view changed
  kRefresh,  // fetch the status now
  kQuit,
};

// Applies one key to *view. page_lines is how many body lines a screen shows (PgUp/PgDn).
TopAction HandleTopKey(int key, size_t page_lines, TopView* view);

// What the last status request gave.
struct TopFrame {
  const proto::ClusterStatReply* stat = nullptr;  // the last reply received; null: none yet
  std::string connected;  // "connected to MDS#1"
  std::string error;      // why the last request failed; empty when it succeeded
  int interval_s = 2;
};

// Exactly `height` lines, none longer than `width` characters (UTF-8 code points; tabs and
// control characters become blanks), so nothing wraps: the body of view->screen from line
// view->scroll, then one status line (the error while the MDS cannot be reached, else the
// key hints). The main screen's event table holds the latest events that fit (3 to
// kStatEvents). Clamps view->scroll to the body's length.
std::vector<std::string> RenderTopLines(const TopFrame& frame, TopView* view, size_t width,
                                        size_t height);

// s cut to at most width code points, tabs and control characters replaced by blanks.
std::string FitToWidth(const std::string& s, size_t width);
// Each UTF-8 sequence of s as one '?' (same width): for a terminal whose locale is not
// UTF-8, where ncurses would print the bytes as several-column escapes.
std::string AsciiOnly(const std::string& s);

}  // namespace vstorage::cli
