// Entry point of the `vstorage` admin tool: `vstorage [-c NAME] COMMAND [options]`.
// Exit status: 0 success, 1 operational error, 2 usage error. Errors go to `err` as
// "vstorage: <cause>; <what to do>".
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "cli/password.h"

namespace vstorage::cli {

// Reads passwords from stdin (a terminal gets prompts and no echo).
int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err);

// Same with the arguments after argv[0] and an injected password source (tests).
int RunCliArgs(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
               PasswordReader& passwords);

void PrintUsage(std::ostream& os);

}  // namespace vstorage::cli
