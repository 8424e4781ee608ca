#include "cs/write_order.h"

namespace vstorage::cs {

WriteOrder::Hold::~Hold() {
  if (order_) order_->Release(chunk_, it_);
}

WriteOrder::Hold WriteOrder::Acquire(ChunkId chunk, uint64_t offset, uint64_t len) {
  std::unique_lock<std::mutex> l(mu_);
  auto& list = ranges_[chunk];
  // An empty range still orders against writes that cover its offset (a zero-length write
  // carries nothing, but must not overtake).
  uint64_t end = offset + (len == 0 ? 1 : len);
  auto it = list.insert(list.end(), Entry{offset, end});
  cv_.wait(l, [&] {
    for (auto e = list.begin(); e != it; ++e)
      if (e->begin < end && offset < e->end) return false;
    return true;
  });
  return Hold(this, chunk, it);
}

void WriteOrder::Release(ChunkId chunk, std::list<Entry>::iterator it) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto found = ranges_.find(chunk);
    found->second.erase(it);
    if (found->second.empty()) ranges_.erase(found);
  }
  cv_.notify_all();
}

size_t WriteOrder::pending(ChunkId chunk) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = ranges_.find(chunk);
  return it == ranges_.end() ? 0 : it->second.size();
}

}  // namespace vstorage::cs
