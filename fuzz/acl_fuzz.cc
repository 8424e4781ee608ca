// POSIX ACLs as the kernel passes them in system.posix_acl_access / _default xattr values
// (common/posix_acl.h): client-supplied bytes the MDS parses and keeps. The first 4 bytes are
// a mode, the rest the attribute. Checked: an ACL that parses serializes to bytes that parse
// to the same ACL, and chmod and inheritance of a valid ACL give valid ACLs again.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/posix_acl.h"
#include "fuzz_util.h"

namespace {

using namespace vstorage;

void CheckValid(const acl::Acl& a, const char* what) {
  if (a.entries.empty()) return;
  auto again = acl::Parse(acl::Serialize(a));
  VSFUZZ_CHECK(again.ok(), "%s: %s", what, again.status().ToString().c_str());
  VSFUZZ_CHECK(*again == a, "%s: does not parse back to itself", what);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t mode;
  std::memcpy(&mode, data, 4);
  std::string_view value(reinterpret_cast<const char*>(data) + 4, size - 4);
  Result<acl::Acl> a = Err(Code::kInternal, "");
  {
    vsfuzz::AllocGuard g(value.size());
    a = acl::Parse(value);
  }
  if (!a.ok()) return 0;
  CheckValid(*a, "parsed ACL");
  (void)acl::IsMinimal(*a);
  uint32_t m = acl::ModeOf(*a, mode);
  VSFUZZ_CHECK((m & ~0777u) == (mode & ~0777u), "ModeOf changed bits other than the permissions");
  acl::Acl c = *a;
  acl::Chmod(&c, mode);
  CheckValid(c, "ACL after chmod");
  if (!c.entries.empty())
    VSFUZZ_CHECK(acl::ModeOf(c, mode) == mode, "chmod to %o then ModeOf gives %o", mode, acl::ModeOf(c, mode));
  uint32_t create_mode = mode & 07777;
  acl::Acl inh = acl::Inherit(*a, &create_mode);
  CheckValid(inh, "inherited ACL");
  VSFUZZ_CHECK((create_mode & ~07777u) == 0, "Inherit gave mode %o", create_mode);
  return 0;
}
