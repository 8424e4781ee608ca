// The MDS commit pipeline (issue 10, docs/design/mds.md): every mutation goes
//   propose -> append to the log -> durable -> apply -> result to the proposer
// in that order. Group commit: commands proposed while a batch is being made durable form
// the next batch, so one fdatasync covers many commands. The proposer at the head of the
// queue leads a batch (no dedicated thread, no hand-off when the MDS is idle); the others
// wait and wake with their result. Asynchronous proposals (events, and CommitAsync: requests
// answered from a continuation, with no thread waiting for them) are led by whichever
// synchronous proposer comes next, or by the pipeline's own flusher thread, which then
// commits every queued command in one batch: one hand-off per batch, not per command.
//
// Ordering: batches are appended and applied one at a time, in queue order, so apply order
// is log order. The append and apply callbacks run without any pipeline lock held; the
// apply callback takes the service's state lock itself. Nothing here holds a lock across
// the append (disk I/O).
//
// Thread-safe: Commit, Post, Drain, WaitForRoom and Stats may be called from any thread, but
// never with a lock held that the apply callback takes (the caller would wait for its own
// apply). CommitAsync never blocks and may be called with such a lock held.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "mds/commands.h"
#include "mds/state.h"

namespace vstorage::mds {

inline constexpr size_t kMaxBatchCommands = 1024;        // commands per append + sync
inline constexpr size_t kMaxBatchBytes = 4u << 20;       // encoded bytes per batch
inline constexpr size_t kMaxQueuedCommands = 16384;      // proposers beyond this wait
inline constexpr size_t kMaxPostedCommands = 4096;       // async proposals; more are dropped
inline constexpr int64_t kInlineLeadMaxAppendNs = 100000;  // LeadOrKick(only_if_fast): "fast"
inline constexpr size_t kAppendTimesKept = 8;             // appends that decide "recent"

class CommitPipeline {
 public:
  // Makes the batch durable at the next log indices (records are the encoded commands).
  // Must not return before they would survive a power cut. On error nothing of the batch
  // may be left in the log.
  using AppendFn = std::function<Status(const std::vector<Command>& batch)>;
  // Applies the batch in order; (*results)[i] is the outcome of batch[i].
  using ApplyFn = std::function<void(const std::vector<Command>& batch, std::vector<Result<ApplyResult>>* results)>;
  // Wall-clock time in ns, stamped into each command when its batch is formed.
  using ClockFn = std::function<int64_t()>;

  CommitPipeline(AppendFn append, ApplyFn apply, ClockFn clock);
  ~CommitPipeline();  // waits for the flusher; every queued command is finished first
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Proposes and waits: returns Apply's result once the command is durable and applied, or
  // the append error (then the command is in neither the log nor the state).
  Result<ApplyResult> Commit(CommandType type, std::string body);
  // Proposes without waiting (events: nobody is acknowledged). Dropped, with a count in
  // Stats, when kMaxPostedCommands are already waiting.
  void Post(CommandType type, std::string body);
  // Proposes without waiting; then(result) runs once the command is durable and applied
  // (or its append failed), on the thread that led its batch, with no pipeline lock held
  // and in log order. It must not block on the pipeline (no Commit, Drain or WaitForRoom).
  // Never blocks and never drops: the queue may pass kMaxQueuedCommands by as many
  // commands as callers propose concurrently, so callers that can wait call WaitForRoom
  // first (an event-loop thread checks HasRoom instead).
  // defer_lead: the flusher is not woken; the caller calls LeadOrKick once it holds no lock
  // the apply callback takes (a thread already awake may lead the batch itself).
  using Then = std::function<void(Result<ApplyResult>)>;
  void CommitAsync(CommandType type, std::string body, Then then, bool defer_lead = false);
  // After CommitAsync(..., defer_lead): leads the waiting batch on this thread unless
  // someone else leads already, or, when only_if_fast and the recent appends were not all
  // fast (kInlineLeadMaxAppendNs), wakes the flusher to lead it. An event-loop thread passes
  // only_if_fast: it may spend a fast sync (tmpfs, a disk with a write cache) but never a slow
  // one, during which nothing else it serves would move.
  void LeadOrKick(bool only_if_fast);
  bool HasRoom() const;
  void WaitForRoom();
  // Returns when everything proposed before the call is applied.
  void Drain();

  struct Stats {
    uint64_t commands = 0;  // applied
    uint64_t batches = 0;   // appends (= syncs)
    uint64_t dropped_posts = 0;
  };
  Stats stats() const;

  // Test-only (the simulator's deliberate bug): apply before the append is durable.
  void set_apply_before_durable_for_test(bool on) { apply_first_ = on; }

 private:
  struct Waiter {
    Command cmd;
    bool async = false;  // no thread waits: a Post (then empty) or a CommitAsync
    Then then;
    bool done = false;
    Result<ApplyResult> result{ApplyResult{}};
    std::condition_variable cv;
  };
  void Enqueue(std::unique_lock<std::mutex>& l, Waiter* w);
  // Runs one batch from the head of the queue; called with l held and the head's turn.
  void Lead(std::unique_lock<std::mutex>& l);
  void WakeHead();
  void FlusherLoop();

  AppendFn append_;
  ApplyFn apply_;
  ClockFn clock_;
  bool apply_first_ = false;

  mutable std::mutex mu_;
  std::condition_variable space_cv_, flusher_cv_, drained_cv_;
  std::deque<Waiter*> queue_;
  size_t posted_ = 0;  // async waiters in queue_
  bool leading_ = false;
  bool stop_ = false;
  int64_t last_time_ns_ = 0;
  int64_t append_ns_[kAppendTimesKept] = {};  // durations of the last appends (ring)
  size_t append_next_ = 0;
  bool RecentAppendsFast() const;
  uint64_t proposed_ = 0, finished_ = 0;  // sequence numbers, for Drain
  Stats stats_;
  std::thread flusher_;
};

}  // namespace vstorage::mds
