#include "cli/top_view.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "cli/format.h"

namespace vstorage::cli {

namespace {

void SplitLines(const std::string& text, std::vector<std::string>* out) {
  std::istringstream is(text);
  std::string line;
  while (std::getline(is, line)) out->push_back(line);
}

std::string HostOf(const std::string& addr) {
  if (addr.empty()) return "-";
  auto colon = addr.rfind(':');
  return colon == std::string::npos ? addr : addr.substr(0, colon);
}

void TopologyBody(const proto::ClusterStatReply& st, std::ostream& os) {
  // With host locations set (room.row.rack, beyond the guide), paths grow to
  // room.row.rack.host_ID.cs_ID and each location gets a row of its own.
  bool located = false;
  for (const auto& c : st.cs) located = located || (!c.location.empty() && c.status != "dropped");
  os << (located ? "Services topology (room.row.rack.host_ID.cs_ID) and space per location:\n\n"
                 : "Services topology (host_ID.cs_ID) and space per location:\n\n");
  struct Node {
    uint64_t total = 0, free = 0;
    size_t n_cs = 0;
  };
  struct Host : Node {
    std::vector<const proto::CsInfo*> cs;
  };
  std::map<std::string, Node> locations;
  std::map<std::pair<std::string, std::string>, Host> hosts;  // (location, host) -> its CS
  for (const auto& c : st.cs) {
    if (c.status == "dropped") continue;
    std::string loc = located ? (c.location.empty() ? "default.default.default" : c.location) : "";
    Host& h = hosts[{loc, c.host_id.empty() ? "-" : c.host_id}];
    for (Node* n : {static_cast<Node*>(&h), &locations[loc]}) {
      n->total += c.total_bytes;
      n->free += c.free_bytes;
      ++n->n_cs;
    }
    h.cs.push_back(&c);
  }
  Table t({{"LOCATION", false}, {"STATUS", false}, {"TIER", true}, {"SPACE", true},
           {"AVAIL", true}, {"HOST", false}});
  std::string last_loc = "\n";
  for (const auto& [key, h] : hosts) {
    const auto& [loc, id] = key;
    std::string indent = located ? "  " : "";
    if (located && loc != last_loc) {
      const Node& n = locations[loc];
      t.AddRow({loc, std::to_string(n.n_cs) + " CS", "", FormatSize(n.total), FormatSize(n.free), ""});
      last_loc = loc;
    }
    std::string path = located ? loc + "." + id : id;
    t.AddRow({indent + path, std::to_string(h.cs.size()) + " CS", "", FormatSize(h.total),
              FormatSize(h.free), ""});
    for (const auto* c : h.cs)
      t.AddRow({indent + "  " + path + "." + c->id.str(), c->status, std::to_string(c->tier),
                FormatSize(c->total_bytes), FormatSize(c->free_bytes), HostOf(c->addr)});
  }
  t.Render(os);
  os << "\n";
  Table m({{"MDS", true}, {"STATUS", false}, {"HOST", false}});
  for (const auto& x : st.mds)
    m.AddRow({(x.master ? "M " : "") + x.id.str(), x.status, x.addr});
  m.Render(os);
}

void DisksBody(const proto::ClusterStatReply& st, std::ostream& os) {
  // One disk per CS repository. The CS do not run smartctl (no S.M.A.R.T. poll reaches
  // the MDS), so the figures the guide takes from it are n/a; the capacity is the CS's.
  Table t({{"DISK", false}, {"SMART", false}, {"TEMP", true}, {"CAPACITY", true},
           {"SERIAL", false}, {"MODEL", false}, {"HOST", false}, {"CS", true}});
  for (const auto& c : st.cs) {
    if (c.status == "dropped") continue;
    t.AddRow({"n/a", "n/a", "n/a", FormatSize(c.total_bytes), "n/a", "n/a", HostOf(c.addr),
              c.id.str()});
  }
  t.Render(os);
}

void HelpBody(std::ostream& os) {
  os << "vstorage top keys:\n"
        "  v        verbose: per-tier space, Chunks, FS, IO QDEPTH and Sync rate lines\n"
        "  i        cycle the CS columns: default, FLAGS, RMW/JRMW, BUILD_VERSION\n"
        "  w        services topology and space per location (again: back)\n"
        "  d        disks table (again: back)\n"
        "  h, ?     this help (again: back)\n"
        "  space    refresh now\n"
        "  arrows, j/k, PgUp/PgDn, g   scroll\n"
        "  q        quit\n"
        "\n"
        "Not shown because the cluster does not report them yet:\n"
        "  License line; IO total and Repl IO lines; per-tier allocatable space;\n"
        "  RMW/JRMW counters and BUILD_VERSION (n/a); S.M.A.R.T. disk data (n/a).\n";
}

// Events the main screen shows: the latest that fit below the tables on `rows` lines (the
// newest stays in sight), from kMinTopEvents (more are a scroll away) to kStatEvents.
inline constexpr size_t kMinTopEvents = 3;

void Body(const TopFrame& f, const TopView& v, size_t rows, std::vector<std::string>* out) {
  if (v.screen == TopView::Screen::kHelp) {
    std::ostringstream os;
    HelpBody(os);
    SplitLines(os.str(), out);
    return;
  }
  if (!f.stat) {
    out->push_back(f.error.empty() ? "waiting for the MDS..." : "no cluster status yet");
    return;
  }
  const auto& st = *f.stat;
  std::ostringstream os;
  if (!f.connected.empty()) os << f.connected << "\n";
  RenderStatHeader(st, v.verbose ? StatHeader::kVerbose : StatHeader::kTop, os);
  os << "\n";
  switch (v.screen) {
    case TopView::Screen::kMain:
      RenderMdsTable(st, os);
      os << "\n";
      RenderCsTable(st, v.cs_columns, os);
      os << "\n";
      RenderClientTable(st, os);
      os << "\n";
      {
        std::vector<std::string> above;
        SplitLines(os.str(), &above);
        size_t room = rows > above.size() + 1 ? rows - above.size() - 1 : 0;
        RenderEventTable(st, std::clamp(room, kMinTopEvents, kStatEvents), os);
      }
      break;
    case TopView::Screen::kTopology:
      TopologyBody(st, os);
      break;
    case TopView::Screen::kDisks:
      DisksBody(st, os);
      break;
    case TopView::Screen::kHelp:
      break;
  }
  SplitLines(os.str(), out);
}

std::string StatusLine(const TopFrame& f, const TopView& v) {
  if (!f.error.empty())
    return "ERROR: " + f.error + " (retrying every " + std::to_string(f.interval_s) + "s)";
  std::string s = "q quit  v verbose" + std::string(v.verbose ? "(on)" : "") + "  i columns(" +
                  CsColumnsName(v.cs_columns) + ")  w topology  d disks  h help";
  return s;
}

void Toggle(TopView::Screen s, TopView* v) {
  v->screen = v->screen == s ? TopView::Screen::kMain : s;
  v->scroll = 0;
}

}  // namespace

std::string FitToWidth(const std::string& s, size_t width) {
  std::string out;
  size_t points = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80            ? 1
                 : (c >> 5) == 0x6   ? 2
                 : (c >> 4) == 0xE   ? 3
                 : (c >> 3) == 0x1E  ? 4
                                     : 1;
    if (i + len > s.size()) len = 1;
    if (points == width) break;
    if (len == 1 && (c < 0x20 || c == 0x7f || c >= 0x80))
      out += ' ';  // control character, or a stray byte that is no UTF-8 sequence
    else
      out.append(s, i, len);
    ++points;
    i += len;
  }
  return out;
}

std::string AsciiOnly(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80)
      out += static_cast<char>(c);
    else if ((c & 0xC0) != 0x80)
      out += '?';  // a lead byte; its continuation bytes add nothing
  }
  return out;
}

TopAction HandleTopKey(int key, size_t page_lines, TopView* v) {
  page_lines = std::max<size_t>(1, page_lines);
  switch (key) {
    case 'q':
    case 'Q':
      return TopAction::kQuit;
    case 'v':
    case 'V':
      v->verbose = !v->verbose;
      return TopAction::kRedraw;
    case 'i':
    case 'I': {
      int next = static_cast<int>(v->cs_columns) + 1;
      if (next > static_cast<int>(CsColumns::kVersion))
        next = static_cast<int>(CsColumns::kDefault);
      v->cs_columns = static_cast<CsColumns>(next);
      v->screen = TopView::Screen::kMain;
      return TopAction::kRedraw;
    }
    case 'w':
    case 'W':
      Toggle(TopView::Screen::kTopology, v);
      return TopAction::kRedraw;
    case 'd':
    case 'D':
      Toggle(TopView::Screen::kDisks, v);
      return TopAction::kRedraw;
    case 'h':
    case 'H':
    case '?':
      Toggle(TopView::Screen::kHelp, v);
      return TopAction::kRedraw;
    case ' ':
      return TopAction::kRefresh;
    case kTopKeyUp:
    case 'k':
      if (v->scroll) --v->scroll;
      return TopAction::kRedraw;
    case kTopKeyDown:
    case 'j':
      ++v->scroll;
      return TopAction::kRedraw;
    case kTopKeyPageUp:
      v->scroll -= std::min(v->scroll, page_lines);
      return TopAction::kRedraw;
    case kTopKeyPageDown:
      v->scroll += page_lines;
      return TopAction::kRedraw;
    case kTopKeyHome:
    case 'g':
      v->scroll = 0;
      return TopAction::kRedraw;
    default:
      return TopAction::kIgnored;
  }
}

std::vector<std::string> RenderTopLines(const TopFrame& frame, TopView* view, size_t width,
                                        size_t height) {
  std::vector<std::string> lines;
  if (height == 0) return lines;
  size_t rows = height - 1;  // the last line is the status line
  std::vector<std::string> body;
  Body(frame, *view, rows, &body);
  size_t max_scroll = body.size() > rows ? body.size() - rows : 0;
  view->scroll = std::min(view->scroll, max_scroll);
  for (size_t i = 0; i < rows; ++i) {
    size_t b = view->scroll + i;
    lines.push_back(b < body.size() ? FitToWidth(body[b], width) : "");
  }
  lines.push_back(FitToWidth(StatusLine(frame, *view), width));
  return lines;
}

}  // namespace vstorage::cli
