// Where commands get the cluster password from.
#pragma once
#include <istream>
#include <ostream>
#include <string>

#include "common/status.h"

namespace vstorage::cli {

struct PasswordPrompt {
  bool confirm = false;    // interactive only: ask twice and require a match (make-mds)
  bool no_prompt = false;  // read one line as if stdin were not a terminal (auth-node -P)
};

class PasswordReader {
 public:
  virtual ~PasswordReader() = default;
  // Returns the password; an empty one is kInvalidArgument, end of input without a line is
  // kInvalidArgument too, both with a message saying how to supply it.
  virtual Result<std::string> Read(const PasswordPrompt& p) = 0;
};

// Reads from a stream. When tty_fd >= 0 the stream is that terminal: prompts go to `prompt`
// ("Please enter password for cluster:") and echo is switched off on tty_fd while reading.
// Otherwise exactly one line is read (the trailing newline, and a CR before it, stripped).
class StreamPasswordReader : public PasswordReader {
 public:
  StreamPasswordReader(std::istream& in, std::ostream& prompt, int tty_fd)
      : in_(in), prompt_(prompt), tty_fd_(tty_fd) {}
  Result<std::string> Read(const PasswordPrompt& p) override;

 private:
  Result<std::string> ReadLine(bool echo_off);
  std::istream& in_;
  std::ostream& prompt_;
  int tty_fd_;
};

}  // namespace vstorage::cli
