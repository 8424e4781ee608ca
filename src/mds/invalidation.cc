#include "mds/invalidation.h"

#include <algorithm>
#include <chrono>

namespace vstorage::mds {

void InvalidationHub::Publish(ClientId origin, const std::vector<proto::Invalidation>& changes, int64_t now_ms) {
  if (changes.empty()) return;
  Answers answers;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      Watcher& w = it->second;
      if (w.last_watch_ms < now_ms - kWatcherIdleMs) {
        it = watchers_.erase(it);  // a client that died without a goodbye
        continue;
      }
      if (it->first != origin || origin.v == 0) {
        // A resync not answered yet covers these changes too; one answered (awaiting its
        // acknowledgement) does not: they come after the client dropped its cache.
        bool unanswered_resync = w.resync && w.resync_seq == 0;
        if (unanswered_resync || w.queue.size() + changes.size() > max_queue_) {
          // Too far behind: it will drop everything, so the changes themselves need not wait.
          w.queue.clear();
          if (!w.resync) w.resync_seq = 0;
          w.resync = true;
        } else {
          w.queue.insert(w.queue.end(), changes.begin(), changes.end());
        }
        w.next_seq += changes.size();
      }
      ++it;
    }
    TakeReady(false, &answers);
  }
  cv_.notify_all();
  for (auto& [done, rep] : answers) done(std::move(rep));
}

bool InvalidationHub::Ready(const Watcher& w, uint64_t after_seq) const {
  if (after_seq >= w.next_seq) return true;  // ahead of us: numbers of an earlier MDS
  if (w.resync && (w.resync_seq == 0 || after_seq < w.resync_seq)) return true;
  return after_seq + 1 < w.next_seq;
}

proto::WatchChangesReply InvalidationHub::Collect(Watcher& w, uint64_t after_seq) {
  proto::WatchChangesReply rep;
  if (after_seq >= w.next_seq) {
    w.resync = true;
    w.resync_seq = 0;
  }
  if (w.resync && w.resync_seq != 0 && after_seq >= w.resync_seq) {
    w.resync = false;  // the client acknowledged the resync
    uint64_t first = w.next_seq - w.queue.size();
    while (!w.queue.empty() && first <= after_seq) {
      w.queue.pop_front();
      ++first;
    }
  }
  if (w.resync) {
    w.queue.clear();
    // The resync gets a number the client has not acknowledged yet, so that its next
    // request says whether this answer arrived.
    if (w.next_seq <= after_seq + 1) w.next_seq = after_seq + 2;
    w.resync_seq = w.next_seq - 1;
    rep.resync = true;
    rep.seq = w.resync_seq;
    return rep;
  }
  uint64_t first = w.next_seq - w.queue.size();
  while (!w.queue.empty() && first <= after_seq) {
    w.queue.pop_front();
    ++first;
  }
  size_t n = std::min(w.queue.size(), kMaxInvalidationsPerReply);
  rep.changes.assign(w.queue.begin(), w.queue.begin() + static_cast<std::ptrdiff_t>(n));
  rep.seq = n > 0 ? first + n - 1 : w.next_seq - 1;
  return rep;
}

InvalidationHub::Watcher& InvalidationHub::Touch(ClientId client, uint64_t after_seq, int64_t now_ms) {
  auto it = watchers_.find(client);
  if (it == watchers_.end()) {
    it = watchers_.emplace(client, Watcher{}).first;
    // It handled changes of an earlier MDS (or of its queue that was dropped while it was
    // idle): what it caches since is unknown.
    if (after_seq > 0) it->second.resync = true;
  }
  it->second.last_watch_ms = std::max(it->second.last_watch_ms, now_ms);
  return it->second;
}

proto::WatchChangesReply InvalidationHub::Wait(ClientId client, uint64_t after_seq, uint32_t max_wait_ms,
                                               int64_t now_ms) {
  std::unique_lock<std::mutex> l(mu_);
  Touch(client, after_seq, now_ms);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min(max_wait_ms, kMaxWatchWaitMs));
  for (;;) {
    auto it = watchers_.find(client);
    if (it == watchers_.end()) {
      // Forgotten while waiting (the client said goodbye): nothing more for it.
      proto::WatchChangesReply rep;
      rep.seq = after_seq;
      return rep;
    }
    if (stop_ || Ready(it->second, after_seq)) break;
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout) break;
  }
  return Collect(Touch(client, after_seq, now_ms), after_seq);
}

void InvalidationHub::WaitAsync(ClientId client, uint64_t after_seq, uint32_t max_wait_ms, int64_t now_ms,
                                WaitDone done) {
  Answers answers;
  {
    std::lock_guard<std::mutex> l(mu_);
    Watcher& w = Touch(client, after_seq, now_ms);
    if (auto old = parked_.find(client); old != parked_.end()) {
      proto::WatchChangesReply nothing;
      nothing.seq = old->second.after_seq;
      answers.emplace_back(std::move(old->second.done), nothing);
      parked_.erase(old);
    }
    if (stop_ || max_wait_ms == 0 || Ready(w, after_seq)) {
      answers.emplace_back(std::move(done), Collect(w, after_seq));
    } else {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min(max_wait_ms, kMaxWatchWaitMs));
      parked_[client] = Parked{after_seq, deadline, std::move(done)};
      if (!timer_.joinable()) timer_ = std::thread([this] { TimerLoop(); });
      timer_cv_.notify_one();
    }
  }
  for (auto& [d, rep] : answers) d(std::move(rep));
}

void InvalidationHub::TakeReady(bool all, Answers* out) {
  auto now = std::chrono::steady_clock::now();
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto w = watchers_.find(it->first);
    if (w == watchers_.end()) {  // forgotten: nothing more for it
      proto::WatchChangesReply rep;
      rep.seq = it->second.after_seq;
      out->emplace_back(std::move(it->second.done), rep);
    } else if (all || it->second.deadline <= now || Ready(w->second, it->second.after_seq)) {
      out->emplace_back(std::move(it->second.done), Collect(w->second, it->second.after_seq));
    } else {
      ++it;
      continue;
    }
    it = parked_.erase(it);
  }
}

void InvalidationHub::TimerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, p] : parked_) next = std::min(next, p.deadline);
    if (next == std::chrono::steady_clock::time_point::max()) timer_cv_.wait(l);
    else timer_cv_.wait_until(l, next);
    Answers answers;
    TakeReady(false, &answers);
    if (answers.empty()) continue;
    l.unlock();
    for (auto& [d, rep] : answers) d(std::move(rep));
    l.lock();
  }
}

void InvalidationHub::Forget(ClientId client) {
  Answers answers;
  {
    std::lock_guard<std::mutex> l(mu_);
    watchers_.erase(client);
    TakeReady(false, &answers);
  }
  cv_.notify_all();
  for (auto& [d, rep] : answers) d(std::move(rep));
}

void InvalidationHub::Stop() {
  Answers answers;
  std::thread timer;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    TakeReady(true, &answers);
    timer.swap(timer_);
  }
  cv_.notify_all();
  timer_cv_.notify_all();
  for (auto& [d, rep] : answers) d(std::move(rep));
  if (timer.joinable()) timer.join();
}

InvalidationHub::~InvalidationHub() { Stop(); }

size_t InvalidationHub::watchers() const {
  std::lock_guard<std::mutex> l(mu_);
  return watchers_.size();
}

}  // namespace vstorage::mds
