// Command-line model of the vstorage tool: option specs, parsed arguments, the context a
// command runs in, and the exit-code contract (0 ok, 1 operational error, 2 usage error).
#pragma once
#include <functional>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace vstorage::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

class PasswordReader;

struct OptSpec {
  char short_name = 0;       // 0: long form only
  std::string long_name;     // key in ParsedArgs
  bool has_value = false;
  std::string value_name;    // for usage text, e.g. "DIR"
  std::string help;
};

struct ParsedArgs {
  std::map<std::string, std::string> values;  // long name -> value (last wins)
  std::set<std::string> flags;                // long names of given valueless options
  std::vector<std::string> positional;
  bool Has(const std::string& long_name) const {
    return flags.count(long_name) || values.count(long_name);
  }
  std::string Get(const std::string& long_name, const std::string& def = "") const {
    auto it = values.find(long_name);
    return it == values.end() ? def : it->second;
  }
};

// Parses options and positionals: "-r DIR", "-rDIR", "--repo DIR", "--repo=DIR", grouped
// flags "-Ip", "--" ends options. A lone "-" is a positional. kInvalidArgument names the
// offending argument.
Result<ParsedArgs> ParseOptions(const std::vector<std::string>& args,
                                const std::vector<OptSpec>& specs);

// What a command runs with. Streams and the password source are injected so tests can drive
// commands without a terminal.
struct Context {
  std::string cluster;  // empty when -c was not given
  std::ostream& out;
  std::ostream& err;
  PasswordReader& passwords;
};

struct CommandDef {
  std::string name;
  std::string synopsis;     // after "vstorage -c NAME <name> "
  std::string description;  // one line
  std::vector<OptSpec> options;
  bool needs_cluster = true;
  size_t min_positional = 0;
  size_t max_positional = 0;
  std::function<int(Context&, const ParsedArgs&)> run;
};

// Writes "vstorage: MSG" on err and returns kExitError.
int Fail(Context& ctx, const std::string& msg);
int Fail(Context& ctx, const Status& st);
// Writes "vstorage: MSG" and the command's usage on err and returns kExitUsage.
int UsageFail(std::ostream& err, const CommandDef& cmd, const std::string& msg);
void PrintCommandUsage(std::ostream& os, const CommandDef& cmd);

}  // namespace vstorage::cli
