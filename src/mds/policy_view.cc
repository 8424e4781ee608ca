#include "mds/policy_view.h"

namespace vstorage::mds {

const char* CsStatusName(CsStatus s) {
  switch (s) {
    case CsStatus::kActive: return "active";
    case CsStatus::kInactive: return "inactive";
    case CsStatus::kOffline: return "offline";
    case CsStatus::kDropped: return "dropped";
  }
  return "offline";
}

CsStatus ParseCsStatus(const std::string& s) {
  if (s == "active") return CsStatus::kActive;
  if (s == "inactive") return CsStatus::kInactive;
  if (s == "dropped") return CsStatus::kDropped;
  return CsStatus::kOffline;
}

}  // namespace vstorage::mds
