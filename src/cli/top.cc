// vstorage -c NAME top [-b] [-d SECONDS] [--json]: the guide's interactive monitor
// (chapter 5). On a terminal it redraws every interval with ncurses and takes the guide's
// keys (top_view.h); with -b, --json or without a terminal it prints once, like `stat`.
#include <curses.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <clocale>
#include <cstdlib>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/mds_session.h"
#include "cli/top_view.h"

namespace vstorage::cli {

namespace {

inline constexpr int kDefaultIntervalS = 2;
inline constexpr int kMaxIntervalS = 3600;
// A status request to a hung MDS gives up after this; the next one dials again.
inline constexpr int kTopCallTimeoutMs = 5000;
inline constexpr int kKeyPollMs = 100;

volatile sig_atomic_t g_stop = 0;
void OnStopSignal(int) { g_stop = 1; }

// Fetches the cluster status every interval on its own thread, so that a slow or vanished
// MDS never holds up the keys or the redraw. The session is used by that thread only.
class Fetcher {
 public:
  Fetcher(std::string cluster, std::unique_ptr<MdsSession> session, int interval_s)
      : cluster_(std::move(cluster)), session_(std::move(session)), interval_s_(interval_s),
        thread_([this] { Loop(); }) {}
  ~Fetcher() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void RefreshNow() {
    {
      std::lock_guard<std::mutex> l(mu_);
      now_ = true;
    }
    cv_.notify_all();
  }

  // When a request finished since generation *seen: copies its outcome, updates *seen and
  // returns true. stat keeps the last good reply across failures.
  bool Latest(uint64_t* seen, std::optional<proto::ClusterStatReply>* stat,
              std::string* connected, std::string* error) {
    std::lock_guard<std::mutex> l(mu_);
    if (gen_ == *seen) return false;
    *seen = gen_;
    if (stat_) *stat = *stat_;
    *connected = connected_;
    *error = error_;
    return true;
  }

 private:
  void Loop() {
    for (;;) {
      proto::ClusterStatReply st;
      Status s;
      if (!session_) {
        auto opened = MdsSession::Open(cluster_);
        if (opened.ok())
          session_ = std::move(opened).value();
        else
          s = opened.status();
      }
      std::string connected;
      if (session_) {
        s = session_->Call(proto::MsgType::kClusterStat, proto::Empty{}, &st, kTopCallTimeoutMs);
        if (s.ok()) {
          uint64_t id = ConnectedMdsId(st, session_->mds_addr());
          connected = id ? "connected to MDS#" + std::to_string(id)
                         : "connected to MDS at " + session_->mds_addr().str();
        } else {
          // Dial again next time: the MDS may be back, or another one may be master.
          session_.reset();
        }
      }
      std::unique_lock<std::mutex> l(mu_);
      if (s.ok()) {
        stat_ = std::move(st);
        connected_ = connected;
        error_.clear();
      } else {
        error_ = s.message();
      }
      ++gen_;
      cv_.wait_for(l, std::chrono::seconds(interval_s_), [this] { return stop_ || now_; });
      if (stop_) return;
      now_ = false;
    }
  }

  const std::string cluster_;
  std::unique_ptr<MdsSession> session_;
  const int interval_s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, now_ = false;
  uint64_t gen_ = 0;
  std::optional<proto::ClusterStatReply> stat_;
  std::string connected_, error_;
  std::thread thread_;  // last: starts after the members it uses
};

int MapKey(int ch) {
  switch (ch) {
    case KEY_UP: return kTopKeyUp;
    case KEY_DOWN: return kTopKeyDown;
    case KEY_PPAGE: return kTopKeyPageUp;
    case KEY_NPAGE: return kTopKeyPageDown;
    case KEY_HOME: return kTopKeyHome;
    default: return ch;
  }
}

void Draw(const TopFrame& frame, TopView* view) {
  int h = 0, w = 0;
  getmaxyx(stdscr, h, w);
  if (h <= 0 || w <= 0) return;
  auto lines = RenderTopLines(frame, view, static_cast<size_t>(w), static_cast<size_t>(h));
  const bool utf8 = MB_CUR_MAX > 1;
  erase();
  for (size_t i = 0; i < lines.size(); ++i) {
    bool status = i + 1 == lines.size();
    if (status) attron(A_REVERSE);
    // The bottom-right cell cannot be written without scrolling: ERR there is expected.
    const std::string text = utf8 ? lines[i] : AsciiOnly(lines[i]);
    (void)mvaddstr(static_cast<int>(i), 0, text.c_str());
    if (status) attroff(A_REVERSE);
  }
  refresh();
}

int RunInteractive(Context& ctx, std::unique_ptr<MdsSession> session, int interval_s) {
  std::setlocale(LC_CTYPE, "");  // UTF-8 event messages through ncursesw
  SCREEN* screen = newterm(nullptr, stdout, stdin);
  if (!screen) return Fail(ctx, "cannot drive this terminal (TERM unknown?); use top -b");
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int, old_term, old_hup;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  timeout(kKeyPollMs);

  // The fetch thread starts with every signal blocked: SIGINT, SIGTERM, SIGHUP and
  // ncurses' SIGWINCH are this thread's to take.
  sigset_t all, old_mask;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old_mask);
  auto fetcher_ptr = std::make_unique<Fetcher>(ctx.cluster, std::move(session), interval_s);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  {
    Fetcher& fetcher = *fetcher_ptr;
    TopView view;
    TopFrame frame;
    frame.interval_s = interval_s;
    std::optional<proto::ClusterStatReply> stat;
    uint64_t seen = 0;
    bool dirty = true;
    while (!g_stop) {
      if (fetcher.Latest(&seen, &stat, &frame.connected, &frame.error)) dirty = true;
      frame.stat = stat ? &*stat : nullptr;
      if (dirty) {
        Draw(frame, &view);
        dirty = false;
      }
      int ch = getch();
      if (ch == ERR) continue;
      if (ch == KEY_RESIZE) {
        dirty = true;
        continue;
      }
      size_t page = LINES > 2 ? static_cast<size_t>(LINES - 2) : 1;
      TopAction a = HandleTopKey(MapKey(ch), page, &view);
      if (a == TopAction::kQuit) break;
      if (a == TopAction::kRedraw) dirty = true;
      if (a == TopAction::kRefresh) fetcher.RefreshNow();
    }
    // The terminal first: the fetcher may still wait out a request to a hung MDS.
    endwin();
  }
  fetcher_ptr.reset();
  delscreen(screen);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  return kExitOk;
}

int Run(Context& ctx, const ParsedArgs& pa) {
  int interval_s = kDefaultIntervalS;
  if (pa.Has("delay")) {
    const std::string v = pa.Get("delay");
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || n < 1 || n > kMaxIntervalS)
      return Fail(ctx, "invalid -d '" + v + "': give whole seconds from 1 to " +
                           std::to_string(kMaxIntervalS));
    interval_s = static_cast<int>(n);
  }
  bool json = pa.Has("json");
  // Only the process's own terminal is driven: tests that pass their own streams, pipes
  // and scripts get the one-shot layout.
  bool tty = &ctx.out == &std::cout && ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  if (pa.Has("batch") || json || !tty) return RunStatOnce(ctx, json);
  // Configuration and key errors will not mend by retrying: report them before the screen.
  auto session = MdsSession::Open(ctx.cluster);
  if (!session.ok() && session.status().code() != Code::kUnavailable)
    return Fail(ctx, session.status());
  std::unique_ptr<MdsSession> s;
  if (session.ok()) s = std::move(session).value();
  return RunInteractive(ctx, std::move(s), interval_s);
}

}  // namespace

CommandDef TopCommand() {
  CommandDef c;
  c.name = "top";
  c.synopsis = "[-b] [-d SECONDS] [--json]";
  c.description = "monitor the cluster: the stat layout, refreshed; keys v i w d h q";
  c.options = {
      {'b', "batch", false, "", "print once and exit (also without a terminal)"},
      {'d', "delay", true, "SECONDS", "refresh interval (default 2)"},
      {0, "json", false, "", "print one JSON object once, as stat --json"}};
  c.run = Run;
  return c;
}

}  // namespace vstorage::cli
