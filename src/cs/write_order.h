// Orders overlapping writes to a chunk (issue 11 item 3). The requests of one connection and
// of different clients run concurrently on a CS (rpc/server.h), and a CS forwards a write
// down the chain before it writes locally: two overlapping writes in flight at once could be
// applied in opposite orders on two replicas, which would then differ for good.
//
// So a write holds its byte range of the chunk from before it is forwarded until the whole
// chain has answered. A later overlapping write waits for it; writes that do not overlap
// commute (the chunk store serialises the CRC update of a block they share) and go on in
// parallel. Waiters are served in arrival order: overlapping writes are applied on every
// replica in the order the head of the chain received them. A CS further down the chain
// never waits here in practice: its head already let only one of them through.
//
// Thread-safe. No mutex is held while a range is held; what waits is the waiting request.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>

#include "common/ids.h"

namespace vstorage::cs {

class WriteOrder {
 public:
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& o) noexcept : order_(o.order_), chunk_(o.chunk_), it_(o.it_) { o.order_ = nullptr; }
    Hold& operator=(Hold&&) = delete;
    ~Hold();

   private:
    friend class WriteOrder;
    struct Entry {
      uint64_t begin, end;
    };
    Hold(WriteOrder* o, ChunkId c, std::list<Entry>::iterator it) : order_(o), chunk_(c), it_(it) {}
    WriteOrder* order_ = nullptr;
    ChunkId chunk_;
    std::list<Entry>::iterator it_;
  };

  // Waits until every range of `chunk` that arrived earlier and overlaps [offset,
  // offset + len) is released, then holds this one until the Hold is destroyed.
  Hold Acquire(ChunkId chunk, uint64_t offset, uint64_t len);
  // Ranges held or waiting (for tests).
  size_t pending(ChunkId chunk);

 private:
  using Entry = Hold::Entry;
  void Release(ChunkId chunk, std::list<Entry>::iterator it);
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<ChunkId, std::list<Entry>> ranges_;  // per chunk, in arrival order
};

}  // namespace vstorage::cs
