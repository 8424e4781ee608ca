#include "cli/args.h"

#include "cli/format.h"

namespace vstorage::cli {

namespace {

const OptSpec* FindShort(const std::vector<OptSpec>& specs, char c) {
  for (const auto& s : specs)
    if (s.short_name == c) return &s;
  return nullptr;
}

const OptSpec* FindLong(const std::vector<OptSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.long_name == name) return &s;
  return nullptr;
}

std::string OptLabel(const OptSpec& s) {
  return s.short_name ? std::string("-") + s.short_name : "--" + s.long_name;
}

}  // namespace

Result<ParsedArgs> ParseOptions(const std::vector<std::string>& args,
                                const std::vector<OptSpec>& specs) {
  ParsedArgs out;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a[1] == '-') {
      std::string name = a.substr(2);
      std::string value;
      bool inline_value = false;
      auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const OptSpec* s = FindLong(specs, name);
      if (!s) return Err(Code::kInvalidArgument, "unknown option '--" + name + "'");
      if (!s->has_value) {
        if (inline_value)
          return Err(Code::kInvalidArgument, "option '--" + name + "' takes no value");
        out.flags.insert(s->long_name);
        continue;
      }
      if (!inline_value) {
        if (i + 1 >= args.size())
          return Err(Code::kInvalidArgument, "option '--" + name + "' needs a value (" +
                                                 s->value_name + ")");
        value = args[++i];
      }
      out.values[s->long_name] = value;
      continue;
    }
    // Short options, possibly grouped; a value-taking one consumes the rest or the next arg.
    for (size_t j = 1; j < a.size(); ++j) {
      const OptSpec* s = FindShort(specs, a[j]);
      if (!s) return Err(Code::kInvalidArgument, std::string("unknown option '-") + a[j] + "'");
      if (!s->has_value) {
        out.flags.insert(s->long_name);
        continue;
      }
      std::string value;
      if (j + 1 < a.size()) {
        value = a.substr(j + 1);
      } else {
        if (i + 1 >= args.size())
          return Err(Code::kInvalidArgument, "option '" + OptLabel(*s) + "' needs a value (" +
                                                 s->value_name + ")");
        value = args[++i];
      }
      out.values[s->long_name] = value;
      break;
    }
  }
  return out;
}

int Fail(Context& ctx, const std::string& msg) {
  ctx.err << "vstorage: " << msg << "\n";
  return kExitError;
}

int Fail(Context& ctx, const Status& st) { return Fail(ctx, st.message()); }

void PrintCommandUsage(std::ostream& os, const CommandDef& cmd) {
  os << "usage: vstorage " << (cmd.needs_cluster ? "-c NAME " : "[-c NAME] ") << cmd.name;
  if (!cmd.synopsis.empty()) os << " " << cmd.synopsis;
  os << "\n  " << cmd.description << "\n";
  bool any = false;
  for (const auto& s : cmd.options) {
    if (s.help.empty()) continue;  // implicit options (-c, --help) are not listed per command
    if (!any) os << "options:\n";
    any = true;
    std::string label = s.short_name ? std::string("-") + s.short_name : "";
    if (!s.long_name.empty()) label += (label.empty() ? "--" : ", --") + s.long_name;
    if (s.has_value) label += " " + s.value_name;
    os << "  " << PadRight(label, 26) << " " << s.help << "\n";
  }
}

int UsageFail(std::ostream& err, const CommandDef& cmd, const std::string& msg) {
  err << "vstorage: " << msg << "\n";
  PrintCommandUsage(err, cmd);
  return kExitUsage;
}

}  // namespace vstorage::cli
