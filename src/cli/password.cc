#include "cli/password.h"

#include <termios.h>
#include <unistd.h>

namespace vstorage::cli {

namespace {

// Restores the terminal mode when reading ends, however it ends.
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (fd_ >= 0 && ::tcgetattr(fd_, &saved_) == 0) {
      struct termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      t.c_lflag |= ECHONL;
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

}  // namespace

Result<std::string> StreamPasswordReader::ReadLine(bool echo_off) {
  std::string line;
  bool got;
  {
    EchoOff guard(echo_off ? tty_fd_ : -1);
    got = static_cast<bool>(std::getline(in_, line));
  }
  if (!got && line.empty())
    return Err(Code::kInvalidArgument,
               "no password given: standard input ended; type it at the prompt or pipe it "
               "in as one line (echo PASSWORD | vstorage ...)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> StreamPasswordReader::Read(const PasswordPrompt& p) {
  bool interactive = tty_fd_ >= 0 && !p.no_prompt;
  if (interactive) {
    prompt_ << "Please enter password for cluster:" << std::flush;
  }
  ASSIGN_OR_RETURN(std::string pw, ReadLine(interactive));
  if (pw.empty())
    return Err(Code::kInvalidArgument, "empty password refused; give a non-empty password");
  if (interactive && p.confirm) {
    prompt_ << "Please re-enter password:" << std::flush;
    ASSIGN_OR_RETURN(std::string again, ReadLine(true));
    if (again != pw)
      return Err(Code::kInvalidArgument, "the passwords do not match; run the command again");
  }
  return pw;
}

}  // namespace vstorage::cli
