// The invalidation hub: which cached names and attributes each mount must drop because
// another client changed them (issue 10 item 7). A mount caches lookups and attributes in
// the kernel for long; it long-polls the MDS (kWatchChanges) and is told of every change
// made by someone else, so it sees a rename, unlink or size change at once rather than at
// the end of a timeout.
//
// Each watching client has its own queue of changes, numbered 1, 2, ... in the order they
// were published. A client acknowledges by asking for the changes after the last one it
// handled, so a reply lost on the way is sent again. The queue is bounded
// (kMaxInvalidationsPerClient): a client that falls that far behind, or that the hub does
// not know although it has handled changes before (the MDS restarted), is told to resync
// (drop its whole cache). A change is not sent back to the client that made it: its own
// kernel saw the operation. Clients that stop watching are forgotten after
// kWatcherIdleMs (their next watch resyncs).
//
// Thread-safe: Publish, Wait and WaitAsync may be called from any thread; Wait blocks
// (without any lock of the caller held) until changes come, the timeout passes or Stop is
// called. WaitAsync parks the poll instead (no thread waits: a server holds hundreds of
// them); its answer runs on the thread that publishes, forgets or stops, or on the hub's one
// timer thread, never under the hub's lock — so it must be quick and not block.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <thread>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "common/ids.h"
#include "proto/messages.h"

namespace vstorage::mds {

inline constexpr size_t kMaxInvalidationsPerClient = 8192;
inline constexpr uint32_t kMaxWatchWaitMs = 10000;      // a long poll is answered within this
inline constexpr int64_t kWatcherIdleMs = 120000;       // no watch for this long: forgotten
inline constexpr size_t kMaxInvalidationsPerReply = 2048;

class InvalidationHub {
 public:
  explicit InvalidationHub(size_t max_queue = kMaxInvalidationsPerClient) : max_queue_(max_queue) {}

  // Queues `changes` for every watching client but `origin` (ClientId{} : nobody is
  // spared). Drops watchers idle since before now_ms - kWatcherIdleMs.
  void Publish(ClientId origin, const std::vector<proto::Invalidation>& changes, int64_t now_ms);
  // The changes for `client` after sequence number after_seq (up to
  // kMaxInvalidationsPerReply of them), waiting up to min(max_wait_ms, kMaxWatchWaitMs)
  // real time for one if there is none. An unknown client starts watching now; if it had
  // handled changes before (after_seq > 0), it is told to resync.
  proto::WatchChangesReply Wait(ClientId client, uint64_t after_seq, uint32_t max_wait_ms, int64_t now_ms);
  // Wait without a waiting thread: `done` gets the same answer Wait would give, at once if
  // there is one. A client has one parked poll: a newer one answers the older with nothing.
  using WaitDone = std::function<void(proto::WatchChangesReply)>;
  void WaitAsync(ClientId client, uint64_t after_seq, uint32_t max_wait_ms, int64_t now_ms, WaitDone done);
  ~InvalidationHub();  // Stop()
  // A client went away (unmount, session expired): its queue goes, and its pending Wait
  // returns with no changes.
  void Forget(ClientId client);
  // Wakes every waiter (they answer with what they have); later Waits do not block.
  void Stop();
  size_t watchers() const;

 private:
  struct Watcher {
    uint64_t next_seq = 1;          // of the next change queued
    std::deque<proto::Invalidation> queue;  // changes next_seq - queue.size() .. next_seq - 1
    bool resync = false;            // the queue overflowed since the last acknowledged reply
    uint64_t resync_seq = 0;        // the sequence number the resync answer carries
    int64_t last_watch_ms = 0;
  };
  struct Parked {
    uint64_t after_seq = 0;
    std::chrono::steady_clock::time_point deadline;
    WaitDone done;
  };
  using Answers = std::vector<std::pair<WaitDone, proto::WatchChangesReply>>;
  // Under mu_: the watcher of `client`, created (and told to resync if it handled changes
  // before) when unknown.
  Watcher& Touch(ClientId client, uint64_t after_seq, int64_t now_ms);
  // Under mu_: moves the parked polls that can be answered (all of them if `all`) to out.
  void TakeReady(bool all, Answers* out);
  void TimerLoop();
  // Under mu_: drops what `after_seq` acknowledges and builds the answer.
  proto::WatchChangesReply Collect(Watcher& w, uint64_t after_seq);
  bool Ready(const Watcher& w, uint64_t after_seq) const;

  const size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<ClientId, Watcher> watchers_;
  std::map<ClientId, Parked> parked_;  // at most one per watcher
  std::condition_variable timer_cv_;
  std::thread timer_;  // started by the first parked poll
};

}  // namespace vstorage::mds
