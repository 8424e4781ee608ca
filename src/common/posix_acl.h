// POSIX access control lists (setfacl/getfacl), in the form the Linux kernel passes them
// through extended attributes: "system.posix_acl_access" (checked against on access) and
// "system.posix_acl_default" (a directory's, handed to what is created in it).
//
// The MDS keeps an ACL as the attribute's bytes and applies the rules below when one is set,
// when the mode changes, and when a node is created; the kernel enforces it on access (FUSE
// with FUSE_CAP_POSIX_ACL). The rules are those of POSIX.1e draft 17 as Linux implements
// them (acl(5)): the mode's group bits are the mask entry when there is one.
//
// Pure functions of their arguments: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vstorage::acl {

inline constexpr const char* kAccessXattr = "system.posix_acl_access";
inline constexpr const char* kDefaultXattr = "system.posix_acl_default";
// At most this many entries in one ACL (ext4 allows about as many in a 4 KiB block).
inline constexpr size_t kMaxEntries = 1024;

enum Tag : uint16_t {
  kUserObj = 0x01,
  kUser = 0x02,
  kGroupObj = 0x04,
  kGroup = 0x08,
  kMask = 0x10,
  kOther = 0x20,
};
inline constexpr uint32_t kUndefinedId = 0xffffffffu;

struct Entry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx as 4|2|1
  uint32_t id = kUndefinedId;
  bool operator==(const Entry&) const = default;
};

// Entries in the kernel's order: the owner, named users, the owning group, named groups,
// the mask, others.
struct Acl {
  std::vector<Entry> entries;
  bool operator==(const Acl&) const = default;
};

bool IsAclXattr(std::string_view name);

// The attribute's bytes (version 2 header, then 8 bytes per entry, little-endian) to an
// ACL, checked as the kernel checks one (posix_acl_valid): kInvalidArgument otherwise.
// An attribute with no entries is an empty ACL (the kernel's "remove").
Result<Acl> Parse(std::string_view value);
std::string Serialize(const Acl& acl);

// True when the ACL says no more than the mode bits do (owner, group and other only): such
// an access ACL is not stored, the mode alone says it.
bool IsMinimal(const Acl& acl);

// The mode an access ACL gives: owner from the owner entry, group from the mask (or the
// owning group without one), other from others. File type and set-ID/sticky bits of
// `mode` are kept.
uint32_t ModeOf(const Acl& acl, uint32_t mode);

// chmod of a node with an access ACL: the owner, mask (or owning group) and other entries
// take the new permission bits.
void Chmod(Acl* acl, uint32_t mode);

// A node made with `*mode` (umask not applied) in a directory whose default ACL is `dflt`:
// returns its access ACL and narrows *mode (posix_acl_create_masq). The access ACL is
// empty when it would be minimal.
Acl Inherit(const Acl& dflt, uint32_t* mode);

}  // namespace vstorage::acl
