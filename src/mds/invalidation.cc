#include "mds/invalidation.h"

#include <algorithm>
#include <chrono>

namespace vstorage::mds {

void InvalidationHub::Publish(ClientId origin, const std::vector<proto::Invalidation>& changes, int64_t now_ms) {
  if (changes.empty()) return;
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
  }
  cv_.notify_all();
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

proto::WatchChangesReply InvalidationHub::Wait(ClientId client, uint64_t after_seq, uint32_t max_wait_ms,
                                               int64_t now_ms) {
  std::unique_lock<std::mutex> l(mu_);
  auto find = [&]() -> Watcher& {
    auto it = watchers_.find(client);
    if (it == watchers_.end()) {
      it = watchers_.emplace(client, Watcher{}).first;
      // It handled changes of an earlier MDS (or of its queue that was dropped while it was
      // idle): what it caches since is unknown.
      if (after_seq > 0) it->second.resync = true;
    }
    it->second.last_watch_ms = std::max(it->second.last_watch_ms, now_ms);
    return it->second;
  };
  find();
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
  return Collect(find(), after_seq);
}

void InvalidationHub::Forget(ClientId client) {
  {
    std::lock_guard<std::mutex> l(mu_);
    watchers_.erase(client);
  }
  cv_.notify_all();
}

void InvalidationHub::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

size_t InvalidationHub::watchers() const {
  std::lock_guard<std::mutex> l(mu_);
  return watchers_.size();
}

}  // namespace vstorage::mds
