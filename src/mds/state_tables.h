// Compact tables behind MdsState (docs/design/mds.md "State tables and memory"): an id-ordered
// record table for inodes and chunks, an open-addressing set of chunk ids (the per-CS chunk
// index), a directory index that stores each name once in an arena, and a deep-copying
// owning pointer. All are plain values (copyable, movable), deterministic (no addresses or
// random seeds in any order) and not thread-safe; MdsState serialises access.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ids.h"

namespace vstorage::mds {

// Records kept sorted by a uint64 key in one vector: lookups by binary search, in-order
// iteration for free, 0 bytes of per-record overhead. Keys are handed out in increasing
// order (next_ino_, next_chunk_), so an insert is an append; an out-of-order key is inserted
// in place (O(n), only a malformed snapshot does that). Erase marks the record dead; the
// dead are squeezed out by Compact(), which the owner calls only when it holds no pointer
// into the table (MdsState: at the end of Apply). Insert invalidates pointers too.
// Rec needs: uint64_t key() const, bool dead; a default-constructed Rec is not dead.
template <typename Rec>
class IdTable {
 public:
  Rec* Find(uint64_t key) {
    auto it = std::lower_bound(recs_.begin(), recs_.end(), key, [](const Rec& r, uint64_t k) { return r.key() < k; });
    return it != recs_.end() && it->key() == key && !it->dead ? &*it : nullptr;
  }
  const Rec* Find(uint64_t key) const { return const_cast<IdTable*>(this)->Find(key); }
  // Inserts rec, replacing a record with its key (live or dead). Returns the stored record.
  Rec& Insert(Rec rec) {
    uint64_t key = rec.key();
    if (recs_.empty() || recs_.back().key() < key) {
      recs_.push_back(std::move(rec));
      ++live_;
      return recs_.back();
    }
    auto it = std::lower_bound(recs_.begin(), recs_.end(), key, [](const Rec& r, uint64_t k) { return r.key() < k; });
    if (it != recs_.end() && it->key() == key) {
      if (it->dead) {
        --dead_;
        ++live_;
      }
      *it = std::move(rec);
      return *it;
    }
    ++live_;
    return *recs_.insert(it, std::move(rec));
  }
  // Marks the record dead and releases what it owns; false if there is none.
  bool Erase(uint64_t key) {
    Rec* r = Find(key);
    if (!r) return false;
    *r = Rec{};
    r->set_key(key);  // keeps the vector sorted for the binary search
    r->dead = true;
    --live_;
    ++dead_;
    return true;
  }
  // Squeezes out dead records once they are at least half the table (amortised O(1)).
  void MaybeCompact() {
    if (dead_ < 64 || dead_ < live_) return;
    std::erase_if(recs_, [](const Rec& r) { return r.dead; });
    recs_.shrink_to_fit();
    dead_ = 0;
  }
  void Reserve(size_t n) { recs_.reserve(n); }
  // The largest key ever stored and not compacted away (0 if none): a key above it is new.
  uint64_t LastKey() const { return recs_.empty() ? 0 : recs_.back().key(); }
  void Clear() {
    recs_.clear();
    live_ = dead_ = 0;
  }
  size_t size() const { return live_; }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Rec& r : recs_)
      if (!r.dead) fn(r);
  }
  // The live records with key >= from, in key order, at most max of them; returns the key
  // to continue from, or 0 when none is left (keys are never 0).
  template <typename Fn>
  uint64_t ForEachFrom(uint64_t from, size_t max, Fn&& fn) const {
    auto it = std::lower_bound(recs_.begin(), recs_.end(), from, [](const Rec& r, uint64_t k) { return r.key() < k; });
    for (size_t n = 0; it != recs_.end(); ++it) {
      if (it->dead) continue;
      if (n == max) return it->key();
      fn(*it);
      ++n;
    }
    return 0;
  }
  template <typename Fn>
  void ForEachMutable(Fn&& fn) {
    for (Rec& r : recs_)
      if (!r.dead) fn(r);
  }

 private:
  std::vector<Rec> recs_;
  size_t live_ = 0, dead_ = 0;
};

// A set of non-zero uint64 (chunk ids): open addressing, linear probing, backward-shift
// deletion. The capacity grows by 1.5x (any size: slots are addressed by multiply-shift, not
// a mask), so the load stays in about [0.53, 0.8] and a member costs 10 to 15 bytes.
// Iteration order depends on the keys and on the order they came and went.
class U64Set {
 public:
  bool Insert(uint64_t k);  // false if present
  bool Erase(uint64_t k);   // false if absent
  bool Contains(uint64_t k) const;
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (uint64_t k : slots_)
      if (k) fn(k);
  }
  std::vector<uint64_t> Sorted() const;

 private:
  size_t Home(uint64_t k) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(k * 0x9E3779B97F4A7C15ull) * slots_.size()) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
  // How far slot b is after slot a, going round.
  size_t Dist(size_t a, size_t b) const { return b >= a ? b - a : b + slots_.size() - a; }
  void Rehash(size_t capacity);
  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

// The names of one directory: each name once, in an arena; a hash index of 16-byte slots
// (child inode, name offset, length) with linear probing. Names are at most 65535 bytes.
class DirIndex {
 public:
  // The child named name, or InodeId{} (0) if none.
  InodeId Find(std::string_view name) const;
  // Sets name -> ino (replacing an entry of that name). ino must not be 0.
  void Set(std::string_view name, InodeId ino);
  bool Erase(std::string_view name);
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Entries in name order (bytes compared as unsigned char, as std::string does); the views
  // stay valid until the index changes.
  std::vector<std::pair<std::string_view, InodeId>> Sorted() const;
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Slot& s : slots_)
      if (s.ino) fn(std::string_view(arena_.data() + s.off, s.len), InodeId{s.ino});
  }

 private:
  struct Slot {
    uint64_t ino = 0;
    uint32_t off = 0;
    uint16_t len = 0;
    uint16_t tag = 0;  // high bits of the name's hash: most mismatches skip the compare
  };
  static uint64_t Hash(std::string_view name);
  std::string_view NameOf(const Slot& s) const { return {arena_.data() + s.off, s.len}; }
  // The slot holding name, or the empty slot where it would go.
  size_t Probe(std::string_view name, uint64_t h) const;
  void Rehash(size_t capacity);
  void CompactArena();
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0, garbage_bytes_ = 0;
};

// unique_ptr that copies what it points to (so a record holding one stays a value).
template <typename T>
class CopyPtr {
 public:
  CopyPtr() = default;
  CopyPtr(const CopyPtr& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  CopyPtr(CopyPtr&&) noexcept = default;
  CopyPtr& operator=(const CopyPtr& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  CopyPtr& operator=(CopyPtr&&) noexcept = default;
  T* get() const { return p_.get(); }
  T* operator->() const { return p_.get(); }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  T& GetOrCreate() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  void reset() { p_.reset(); }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace vstorage::mds
