// Strong ids: distinct types, not bare integers.
#pragma once
#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace vstorage {

template <typename Tag>
struct StrongId {
  uint64_t v = 0;
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t x) : v(x) {}
  auto operator<=>(const StrongId&) const = default;
  std::string str() const { return std::to_string(v); }
};

using InodeId = StrongId<struct InodeTag>;
using ChunkId = StrongId<struct ChunkTag>;
using CsId = StrongId<struct CsTag>;
using MdsId = StrongId<struct MdsTag>;
using ClientId = StrongId<struct ClientTag>;
using Term = StrongId<struct TermTag>;
using LogIndex = StrongId<struct LogIndexTag>;

inline constexpr InodeId kRootInode{1};
inline constexpr uint64_t kFirstCsId = 1025;
inline constexpr uint64_t kFirstClientId = 2049;

}  // namespace vstorage

template <typename Tag>
struct std::hash<vstorage::StrongId<Tag>> {
  size_t operator()(const vstorage::StrongId<Tag>& id) const noexcept {
    return std::hash<uint64_t>()(id.v);
  }
};
