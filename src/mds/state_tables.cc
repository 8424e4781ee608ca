#include "mds/state_tables.h"

#include <bit>
#include <cstring>

namespace vstorage::mds {

// ---- U64Set ----

void U64Set::Rehash(size_t capacity) {
  std::vector<uint64_t> old = std::move(slots_);
  slots_.assign(capacity, 0);
  for (uint64_t k : old) {
    if (!k) continue;
    size_t i = Home(k);
    while (slots_[i]) i = Next(i);
    slots_[i] = k;
  }
}

bool U64Set::Insert(uint64_t k) {
  if ((size_ + 1) * 5 > slots_.size() * 4) Rehash(slots_.size() < 8 ? 8 : slots_.size() + slots_.size() / 2);
  for (size_t i = Home(k);; i = Next(i)) {
    if (slots_[i] == k) return false;
    if (!slots_[i]) {
      slots_[i] = k;
      ++size_;
      return true;
    }
  }
}

bool U64Set::Contains(uint64_t k) const {
  if (slots_.empty()) return false;
  for (size_t i = Home(k);; i = Next(i)) {
    if (slots_[i] == k) return true;
    if (!slots_[i]) return false;
  }
}

bool U64Set::Erase(uint64_t k) {
  if (slots_.empty()) return false;
  size_t i = Home(k);
  for (;; i = Next(i)) {
    if (slots_[i] == k) break;
    if (!slots_[i]) return false;
  }
  // Backward shift: pull later members of the probe run into the hole when their home
  // allows it, so no tombstones are needed.
  for (size_t j = Next(i);; j = Next(j)) {
    if (!slots_[j]) break;
    // slots_[j] may move to i if i lies (going round) in [home, j).
    if (Dist(Home(slots_[j]), j) >= Dist(i, j)) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = 0;
  --size_;
  if (size_ == 0) {
    slots_.clear();
    slots_.shrink_to_fit();
  } else if (slots_.size() > 64 && size_ * 4 < slots_.size()) {
    Rehash(size_ * 2);  // load 0.5
  }
  return true;
}

std::vector<uint64_t> U64Set::Sorted() const {
  std::vector<uint64_t> out;
  out.reserve(size_);
  ForEach([&](uint64_t k) { out.push_back(k); });
  std::sort(out.begin(), out.end());
  return out;
}

// ---- DirIndex ----

uint64_t DirIndex::Hash(std::string_view name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then a final mix
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

size_t DirIndex::Probe(std::string_view name, uint64_t h) const {
  size_t mask = slots_.size() - 1;
  uint16_t tag = static_cast<uint16_t>(h >> 48);
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (!s.ino) return i;
    if (s.tag == tag && s.len == name.size() && std::memcmp(arena_.data() + s.off, name.data(), name.size()) == 0)
      return i;
  }
}

InodeId DirIndex::Find(std::string_view name) const {
  if (slots_.empty()) return InodeId{};
  return InodeId{slots_[Probe(name, Hash(name))].ino};
}

void DirIndex::Rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  size_t mask = capacity - 1;
  for (const Slot& s : old) {
    if (!s.ino) continue;
    size_t i = Hash(NameOf(s)) & mask;
    while (slots_[i].ino) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void DirIndex::CompactArena() {
  std::string arena;
  arena.reserve(arena_.size() - garbage_bytes_);
  for (Slot& s : slots_) {
    if (!s.ino) continue;
    uint32_t off = static_cast<uint32_t>(arena.size());
    arena.append(arena_, s.off, s.len);
    s.off = off;
  }
  arena_ = std::move(arena);
  garbage_bytes_ = 0;
}

void DirIndex::Set(std::string_view name, InodeId ino) {
  if ((size_ + 1) * 4 > slots_.size() * 3) Rehash(slots_.empty() ? 4 : slots_.size() * 2);
  uint64_t h = Hash(name);
  size_t i = Probe(name, h);
  Slot& s = slots_[i];
  if (s.ino) {  // replace the child, keep the stored name
    s.ino = ino.v;
    return;
  }
  if (garbage_bytes_ > 4096 && garbage_bytes_ * 2 > arena_.size()) CompactArena();
  s.ino = ino.v;
  s.off = static_cast<uint32_t>(arena_.size());
  s.len = static_cast<uint16_t>(name.size());
  s.tag = static_cast<uint16_t>(h >> 48);
  arena_.append(name);
  ++size_;
}

bool DirIndex::Erase(std::string_view name) {
  if (slots_.empty()) return false;
  size_t mask = slots_.size() - 1;
  size_t i = Probe(name, Hash(name));
  if (!slots_[i].ino) return false;
  garbage_bytes_ += slots_[i].len;
  for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
    if (!slots_[j].ino) break;
    size_t home = Hash(NameOf(slots_[j])) & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = Slot{};
  --size_;
  if (size_ == 0) {
    slots_.clear();
    slots_.shrink_to_fit();
    arena_.clear();
    arena_.shrink_to_fit();
    garbage_bytes_ = 0;
  } else if (slots_.size() > 64 && size_ * 6 < slots_.size()) {
    Rehash(slots_.size() / 2);
  }
  return true;
}

std::vector<std::pair<std::string_view, InodeId>> DirIndex::Sorted() const {
  std::vector<std::pair<std::string_view, InodeId>> out;
  out.reserve(size_);
  ForEach([&](std::string_view n, InodeId ino) { out.emplace_back(n, ino); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace vstorage::mds
