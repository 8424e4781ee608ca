#include "rpc/worker_pool.h"

#include <chrono>
#include <thread>

namespace vstorage::rpc {

struct WorkerPool::State {
  size_t max_threads;
  std::mutex mu;
  std::condition_variable cv;       // work or stop
  std::condition_variable done_cv;  // a thread exited
  std::deque<std::function<void()>> queue;
  size_t threads = 0;
  size_t idle = 0;
  bool stop = false;
};

static thread_local const void* tls_pool_state = nullptr;

WorkerPool::WorkerPool(size_t max_threads) : st_(std::make_shared<State>()) {
  st_->max_threads = max_threads == 0 ? 1 : max_threads;
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Submit(std::function<void()> fn) {
  std::lock_guard<std::mutex> l(st_->mu);
  if (st_->stop) return false;
  st_->queue.push_back(std::move(fn));
  // An idle thread takes it; only when every thread is busy does another start, so a burst
  // of quick requests does not leave a crowd of threads behind.
  if (st_->idle < st_->queue.size() && st_->threads < st_->max_threads) {
    ++st_->threads;
    std::thread([st = st_] { Run(st); }).detach();
  } else {
    st_->cv.notify_one();
  }
  return true;
}

void WorkerPool::Run(std::shared_ptr<State> st) {
  tls_pool_state = st.get();
  std::unique_lock<std::mutex> l(st->mu);
  for (;;) {
    while (st->queue.empty() && !st->stop) {
      ++st->idle;
      st->cv.wait(l);
      --st->idle;
    }
    if (st->queue.empty()) break;  // stopping and drained
    auto fn = std::move(st->queue.front());
    st->queue.pop_front();
    l.unlock();
    fn();
    fn = nullptr;  // what the work captured is released outside the lock
    l.lock();
  }
  --st->threads;
  st->done_cv.notify_all();
}

bool WorkerPool::Stop(int wait_ms) {
  std::unique_lock<std::mutex> l(st_->mu);
  st_->stop = true;
  st_->cv.notify_all();
  size_t self = tls_pool_state == st_.get() ? 1 : 0;
  return st_->done_cv.wait_for(l, std::chrono::milliseconds(wait_ms),
                               [&] { return st_->threads <= self; });
}

bool WorkerPool::OnWorker() const { return tls_pool_state == st_.get(); }

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> l(st_->mu);
  return st_->threads;
}

}  // namespace vstorage::rpc
