#include "common/status.h"

#include <cstdio>
#include <cstdlib>

namespace vstorage {

const char* CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kExists: return "already exists";
    case Code::kNotDir: return "not a directory";
    case Code::kIsDir: return "is a directory";
    case Code::kNotEmpty: return "directory not empty";
    case Code::kNoSpace: return "no space left";
    case Code::kIoError: return "I/O error";
    case Code::kCorrupt: return "data corrupt";
    case Code::kStaleVersion: return "stale chunk version";
    case Code::kBusy: return "busy";
    case Code::kUnavailable: return "unavailable";
    case Code::kAuthFailed: return "authentication failed";
    case Code::kProtocol: return "protocol error";
    case Code::kTimeout: return "timed out";
    case Code::kPermission: return "permission denied";
    case Code::kNameTooLong: return "name too long";
    case Code::kInternal: return "internal error";
    case Code::kNotMaster: return "not the master MDS";
    case Code::kRange: return "out of range";
    case Code::kTryAgain: return "try again";
    case Code::kNotSupported: return "not supported";
    case Code::kNotEnoughHosts: return "not enough hosts";
    case Code::kNoData: return "no such attribute";
    case Code::kTooBig: return "too big";
    case Code::kTooManyLinks: return "too many links";
    case Code::kBadChecksum: return "checksum mismatch in transit";
  }
  return "unknown";
}

int CodeToErrno(Code c) {
  switch (c) {
    case Code::kOk: return 0;
    case Code::kInvalidArgument: return EINVAL;
    case Code::kNotFound: return ENOENT;
    case Code::kExists: return EEXIST;
    case Code::kNotDir: return ENOTDIR;
    case Code::kIsDir: return EISDIR;
    case Code::kNotEmpty: return ENOTEMPTY;
    case Code::kNoSpace: return ENOSPC;
    case Code::kIoError: return EIO;
    case Code::kCorrupt: return EIO;
    case Code::kStaleVersion: return ESTALE;
    case Code::kBusy: return EBUSY;
    case Code::kUnavailable: return EIO;
    case Code::kAuthFailed: return EACCES;
    case Code::kProtocol: return EPROTO;
    case Code::kTimeout: return ETIMEDOUT;
    case Code::kPermission: return EPERM;
    case Code::kNameTooLong: return ENAMETOOLONG;
    case Code::kInternal: return EIO;
    case Code::kNotMaster: return EAGAIN;
    case Code::kRange: return ERANGE;
    case Code::kTryAgain: return EIO;  // surfaces only after the client's own timeout
    case Code::kNotSupported: return EOPNOTSUPP;
    // Not ENOSPC: there is space, only too few hosts for the replicas (the message says so).
    case Code::kNotEnoughHosts: return EIO;
    case Code::kNoData: return ENODATA;
    case Code::kTooBig: return E2BIG;
    case Code::kTooManyLinks: return EMLINK;
    case Code::kBadChecksum: return EIO;
  }
  return EIO;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + msg_;
}

void CheckFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "CHECK failed at %s:%d: %s\n", file, line, cond);
  std::abort();
}

}  // namespace vstorage
