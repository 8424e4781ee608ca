// A bounded pool of reusable byte buffers. Thread-safe.
#pragma once
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace vstorage::rpc {

// Payload buffers, reused (the server's request payloads, the FUSE mount's read replies):
// a CS receives a 256 KiB - 1 MiB payload per write, and a
// fresh string per request would cost an allocation (often an mmap) and a zero-fill of the
// whole buffer before the socket overwrites it. A pooled string keeps its size, so taking
// one at least as large and cutting it to the payload's length touches no byte.
// Thread-safe. Bounded: at most kMaxPooledPayloadBytes of capacity are kept.
class PayloadPool {
 public:
  static constexpr size_t kMaxPooledPayloadBytes = 32u << 20;
  static constexpr size_t kMaxPooledPayloads = 64;
  void Take(std::string* out, size_t n) {
    if (n == 0) {
      out->clear();
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); ++i)
        if (free_[i].size() >= n && (best == free_.size() || free_[i].size() < free_[best].size())) best = i;
      if (best == free_.size())  // none large enough: the largest at least saves its bytes
        for (size_t i = 0; i < free_.size(); ++i)
          if (free_[i].capacity() >= n) best = i;
      if (best != free_.size()) {
        bytes_ -= free_[best].capacity();
        *out = std::move(free_[best]);
        free_[best] = std::move(free_.back());
        free_.pop_back();
      }
    }
    out->resize(n);
  }
  size_t pooled() {
    std::lock_guard<std::mutex> l(mu_);
    return free_.size();
  }
  void Give(std::string&& s) {
    if (s.capacity() < 4096) return;
    std::lock_guard<std::mutex> l(mu_);
    if (free_.size() >= kMaxPooledPayloads || bytes_ + s.capacity() > kMaxPooledPayloadBytes) return;
    bytes_ += s.capacity();
    free_.push_back(std::move(s));
  }

 private:
  std::mutex mu_;
  std::vector<std::string> free_;
  size_t bytes_ = 0;
};

}  // namespace vstorage::rpc
