#include "common/posix_acl.h"

#include <cstring>

namespace vstorage::acl {
namespace {

constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderBytes = 4;
constexpr size_t kEntryBytes = 8;

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
}
uint16_t Get16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
void Put32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void Put16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v & 0xff));
  s->push_back(static_cast<char>(v >> 8));
}

Status Invalid(const std::string& why) { return Err(Code::kInvalidArgument, "invalid POSIX ACL: " + why); }

// The kernel's order check (posix_acl_valid): one owner, named users, one owning group,
// named groups, a mask (required when there is a named entry), one other.
Status Check(const Acl& acl) {
  enum { kWantOwner, kInUsers, kInGroups, kWantOther, kDone } state = kWantOwner;
  bool named = false;
  for (const Entry& e : acl.entries) {
    if (e.perm & ~7u) return Invalid("permissions other than rwx");
    switch (e.tag) {
      case kUserObj:
        if (state != kWantOwner) return Invalid("the owner entry is not first, or not alone");
        state = kInUsers;
        break;
      case kUser:
        if (state != kInUsers) return Invalid("a named user out of order");
        if (e.id == kUndefinedId) return Invalid("a named user without an id");
        named = true;
        break;
      case kGroupObj:
        if (state != kInUsers) return Invalid("the owning group entry out of order, or repeated");
        state = kInGroups;
        break;
      case kGroup:
        if (state != kInGroups) return Invalid("a named group out of order");
        if (e.id == kUndefinedId) return Invalid("a named group without an id");
        named = true;
        break;
      case kMask:
        if (state != kInGroups) return Invalid("the mask entry out of order, or repeated");
        state = kWantOther;
        break;
      case kOther:
        if (state != kWantOther && !(state == kInGroups && !named))
          return Invalid(state == kInGroups ? "named entries without a mask" : "the other entry out of order");
        state = kDone;
        break;
      default: return Invalid("unknown entry tag " + std::to_string(e.tag));
    }
  }
  if (state != kDone) return Invalid("owner, owning group and other entries are all required");
  return Status::Ok();
}

template <typename A>  // Acl or const Acl
auto* Find(A& acl, uint16_t tag) {
  for (auto& e : acl.entries)
    if (e.tag == tag) return &e;
  return static_cast<decltype(&acl.entries[0])>(nullptr);
}

// The entry behind the mode's group bits: the mask, or the owning group without one.
template <typename A>
auto* GroupClass(A& acl) {
  auto* e = Find(acl, kMask);
  return e ? e : Find(acl, kGroupObj);
}

}  // namespace

bool IsAclXattr(std::string_view name) { return name == kAccessXattr || name == kDefaultXattr; }

Result<Acl> Parse(std::string_view value) {
  if (value.size() < kHeaderBytes || (value.size() - kHeaderBytes) % kEntryBytes != 0)
    return Invalid("size " + std::to_string(value.size()) + " is not a header and whole entries");
  if (Get32(value.data()) != kVersion) return Invalid("version " + std::to_string(Get32(value.data())) + ", not 2");
  size_t n = (value.size() - kHeaderBytes) / kEntryBytes;
  if (n > kMaxEntries) return Invalid("more than " + std::to_string(kMaxEntries) + " entries");
  Acl acl;
  acl.entries.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const char* p = value.data() + kHeaderBytes + i * kEntryBytes;
    Entry e{Get16(p), Get16(p + 2), Get32(p + 4)};
    if (e.tag != kUser && e.tag != kGroup) e.id = kUndefinedId;
    acl.entries.push_back(e);
  }
  if (n == 0) return acl;
  RETURN_IF_ERROR(Check(acl));
  return acl;
}

std::string Serialize(const Acl& acl) {
  std::string s;
  s.reserve(kHeaderBytes + kEntryBytes * acl.entries.size());
  Put32(&s, kVersion);
  for (const Entry& e : acl.entries) {
    Put16(&s, e.tag);
    Put16(&s, e.perm);
    Put32(&s, e.id);
  }
  return s;
}

bool IsMinimal(const Acl& acl) {
  for (const Entry& e : acl.entries)
    if (e.tag != kUserObj && e.tag != kGroupObj && e.tag != kOther) return false;
  return true;
}

uint32_t ModeOf(const Acl& acl, uint32_t mode) {
  const Entry* owner = Find(acl, kUserObj);
  const Entry* group = GroupClass(acl);
  const Entry* other = Find(acl, kOther);
  mode &= ~0777u;
  if (owner) mode |= (owner->perm & 7u) << 6;
  if (group) mode |= (group->perm & 7u) << 3;
  if (other) mode |= other->perm & 7u;
  return mode;
}

void Chmod(Acl* acl, uint32_t mode) {
  if (Entry* e = Find(*acl, kUserObj)) e->perm = (mode >> 6) & 7;
  if (Entry* e = GroupClass(*acl)) e->perm = (mode >> 3) & 7;
  if (Entry* e = Find(*acl, kOther)) e->perm = mode & 7;
}

Acl Inherit(const Acl& dflt, uint32_t* mode) {
  Acl a = dflt;
  uint32_t m = *mode & 0777;
  if (Entry* e = Find(a, kUserObj)) {
    e->perm &= (m >> 6) & 7;
    m &= (e->perm << 6) | ~0700u;
  }
  if (Entry* e = Find(a, kOther)) {
    e->perm &= m & 7;
    m &= e->perm | ~07u;
  }
  if (Entry* group = GroupClass(a)) {
    group->perm &= (m >> 3) & 7;
    m &= (group->perm << 3) | ~070u;
  }
  *mode = (*mode & ~0777u) | m;
  if (IsMinimal(a)) a.entries.clear();
  return a;
}

}  // namespace vstorage::acl
