#include "cli/cli.h"

#include <unistd.h>

#include <exception>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/config.h"

namespace vstorage::cli {

namespace {

const std::vector<CommandDef>& Commands() {
  static const std::vector<CommandDef> kCommands = {
      MakeMdsCommand(),  AuthNodeCommand(),  MakeCsCommand(),   ListServicesCommand(),
      StatCommand(),     TopCommand(),       SetAttrCommand(),  GetAttrCommand(),
      FileInfoCommand(), SetConfigCommand(), GetConfigCommand(), GetEventCommand(),
      RmCsCommand(),     MakeReportCommand(),
  };
  return kCommands;
}

const CommandDef* FindCommand(const std::string& name) {
  for (const auto& c : Commands())
    if (c.name == name) return &c;
  return nullptr;
}

int GlobalUsageFail(std::ostream& err, const std::string& msg) {
  err << "vstorage: " << msg << "\n";
  PrintUsage(err);
  return kExitUsage;
}

std::string BadClusterName(const std::string& name) {
  return "invalid cluster name '" + name +
         "': use 1-63 characters from a-z, A-Z, 0-9, '-' and '_'";
}

int Dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             PasswordReader& passwords) {
  // Global options come before the command: -c NAME and --help.
  std::string cluster;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      PrintUsage(out);
      return kExitOk;
    }
    if (a == "-c" || a == "--cluster") {
      if (i + 1 >= args.size()) return GlobalUsageFail(err, "option '" + a + "' needs a NAME");
      cluster = args[++i];
    } else if (a.rfind("--cluster=", 0) == 0) {
      cluster = a.substr(10);
    } else if (a.size() > 2 && a.rfind("-c", 0) == 0) {
      cluster = a.substr(2);
    } else if (!a.empty() && a[0] == '-') {
      return GlobalUsageFail(err, "unknown option '" + a + "'");
    } else {
      break;
    }
  }
  if (i >= args.size()) return GlobalUsageFail(err, "no command given");
  const CommandDef* cmd = FindCommand(args[i]);
  if (!cmd)
    return GlobalUsageFail(err, "unknown command '" + args[i] +
                                    "'; run 'vstorage --help' for the list of commands");

  std::vector<OptSpec> specs = cmd->options;
  specs.push_back(OptSpec{'c', "cluster", true, "NAME", ""});
  specs.push_back(OptSpec{'h', "help", false, "", ""});
  auto parsed = ParseOptions(std::vector<std::string>(args.begin() + static_cast<long>(i) + 1,
                                                      args.end()),
                             specs);
  if (!parsed.ok()) return UsageFail(err, *cmd, parsed.status().message());
  ParsedArgs& pa = parsed.value();
  if (pa.Has("help")) {
    PrintCommandUsage(out, *cmd);
    return kExitOk;
  }
  if (pa.values.count("cluster")) {
    std::string c2 = pa.Get("cluster");
    if (!cluster.empty() && cluster != c2)
      return UsageFail(err, *cmd, "two different cluster names given ('" + cluster + "' and '" +
                                      c2 + "'); give -c once");
    cluster = c2;
  }
  if (!cluster.empty() && !IsValidClusterName(cluster))
    return UsageFail(err, *cmd, BadClusterName(cluster));
  if (cmd->needs_cluster && cluster.empty())
    return UsageFail(err, *cmd, "'" + cmd->name + "' needs the cluster name: vstorage -c NAME " +
                                    cmd->name + " ...");
  if (pa.positional.size() < cmd->min_positional)
    return UsageFail(err, *cmd, "missing arguments for '" + cmd->name + "'");
  if (pa.positional.size() > cmd->max_positional)
    return UsageFail(err, *cmd, "unexpected argument '" + pa.positional[cmd->max_positional] +
                                    "'");
  Context ctx{cluster, out, err, passwords};
  return cmd->run(ctx, pa);
}

}  // namespace

void PrintUsage(std::ostream& os) {
  os << "usage: vstorage -c NAME COMMAND [options]\n"
        "       vstorage COMMAND --help\n\n"
        "Commands:\n";
  for (const auto& c : Commands()) {
    os << "  " << c.name << (c.synopsis.empty() ? "" : " " + c.synopsis) << "\n      "
       << c.description << "\n";
  }
  os << "\nNAME is the cluster name (a-z, A-Z, 0-9, '-', '_'). Configuration lives in\n"
        "$VSTORAGE_CONF_DIR, or /etc/vstorage when it is not set.\n";
}

int RunCliArgs(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
               PasswordReader& passwords) {
  // Commands report errors as Status; this only keeps an unexpected exception (allocation
  // failure, library bug) from ending the process without a message.
  try {
    int rc = Dispatch(args, out, err, passwords);
    out.flush();
    return rc;
  } catch (const std::exception& e) {
    err << "vstorage: internal error: " << e.what() << "; please report it\n";
    return kExitError;
  }
}

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  StreamPasswordReader reader(std::cin, err, ::isatty(STDIN_FILENO) ? STDIN_FILENO : -1);
  return RunCliArgs(args, out, err, reader);
}

}  // namespace vstorage::cli
