// A bounded pool of threads for work that may block (disk I/O, a commit waiting for its
// fsync, a call to another server), so the event loop's I/O threads never block.
//
// Threads are started on demand, one more whenever work arrives and none is idle, up to
// `max_threads`; beyond that work waits in the queue. The queue is not bounded here: the
// server bounds it (requests in flight per connection × connections). Thread-safe.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace vstorage::rpc {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs fn on a pool thread. After Stop() the work is dropped (false).
  bool Submit(std::function<void()> fn);
  // Refuses new work, lets the threads run what is queued and waits up to wait_ms for them
  // to finish. A thread still busy then (a handler stuck on a dead peer) finishes on its
  // own later: the pool's state lives as long as its last thread, so nothing dangles.
  // Returns true if every thread is gone. Idempotent; may be called from a pool thread
  // (then it does not wait for itself).
  bool Stop(int wait_ms = 5000);
  size_t threads() const;
  // True on one of this pool's threads (work that must not wait for the pool itself).
  bool OnWorker() const;

 private:
  struct State;
  static void Run(std::shared_ptr<State> st);
  std::shared_ptr<State> st_;
};

}  // namespace vstorage::rpc
