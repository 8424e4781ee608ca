// Errors are values: Status / Result<T>. One table of codes (Code), translated to errno only at
// the edges (FUSE, CLI). No exception crosses a module boundary.
#pragma once
#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vstorage {

enum class Code : uint16_t {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kExists = 3,
  kNotDir = 4,
  kIsDir = 5,
  kNotEmpty = 6,
  kNoSpace = 7,
  kIoError = 8,
  kCorrupt = 9,      // checksum mismatch or malformed on-disk data
  kStaleVersion = 10,  // chunk version older than the one the CS holds
  kBusy = 11,          // lease conflict, repository in use
  kUnavailable = 12,   // server unreachable / connection lost
  kAuthFailed = 13,
  kProtocol = 14,      // malformed message
  kTimeout = 15,
  kPermission = 16,
  kNameTooLong = 17,
  kInternal = 18,
  kNotMaster = 19,
  kRange = 20,
  kTryAgain = 21,      // the MDS asks to retry later: chunk blocked or being replicated
  kNotSupported = 22,  // EOPNOTSUPP: e.g. punch hole while gen.do_punch_hole=0
  kNotEnoughHosts = 23,
  kNoData = 24,        // ENODATA: no such extended attribute
  kTooBig = 25,        // E2BIG: an extended attribute value over the limit
  kTooManyLinks = 26,  // EMLINK
  // Data arrived with an end-to-end checksum its bytes do not match: corrupted between the
  // sender and here (wire, memory). Nothing was stored; the sender retries (EIO if it keeps).
  kBadChecksum = 27,  // fewer failure domains (hosts) than the replicas asked for: not space
};

const char* CodeName(Code c);
int CodeToErrno(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const;
  // Adds context in front of the message, keeping the code.
  Status Annotate(const std::string& what) const {
    return ok() ? *this : Status(code_, what + ": " + msg_);
  }

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

inline Status Err(Code c, std::string msg) { return Status(c, std::move(msg)); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}  // NOLINT
  Result(Status s) : v_(std::move(s)) {}  // NOLINT: must not be ok
  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vstorage

#define VS_CONCAT_(a, b) a##b
#define VS_CONCAT(a, b) VS_CONCAT_(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::vstorage::Status _st = (expr);           \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) ASSIGN_OR_RETURN_IMPL(VS_CONCAT(_res_, __LINE__), lhs, expr)

// Programmer errors: always on, abort with location.
#define VS_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond)) ::vstorage::CheckFailed(__FILE__, __LINE__, #cond);                    \
  } while (0)

namespace vstorage {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}
