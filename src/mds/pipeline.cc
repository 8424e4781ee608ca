#include "mds/pipeline.h"

#include "common/log.h"
#include "proto/codec.h"

namespace vstorage::mds {

CommitPipeline::CommitPipeline(AppendFn append, ApplyFn apply, ClockFn clock)
    : append_(std::move(append)), apply_(std::move(apply)), clock_(std::move(clock)) {
  flusher_ = std::thread([this] { FlusherLoop(); });
}

CommitPipeline::~CommitPipeline() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  flusher_cv_.notify_all();
  flusher_.join();
}

void CommitPipeline::Enqueue(std::unique_lock<std::mutex>& l, Waiter* w) {
  space_cv_.wait(l, [&] { return queue_.size() < kMaxQueuedCommands; });
  queue_.push_back(w);
  ++proposed_;
}

Result<ApplyResult> CommitPipeline::Commit(CommandType type, std::string body) {
  Waiter w;
  w.cmd.type = type;
  w.cmd.body = std::move(body);
  std::unique_lock<std::mutex> l(mu_);
  Enqueue(l, &w);
  w.cv.wait(l, [&] { return w.done || (!leading_ && queue_.front() == &w); });
  if (!w.done) Lead(l);
  return std::move(w.result);
}

void CommitPipeline::Post(CommandType type, std::string body) {
  std::unique_lock<std::mutex> l(mu_);
  if (posted_ >= kMaxPostedCommands || queue_.size() >= kMaxQueuedCommands) {
    ++stats_.dropped_posts;
    return;
  }
  auto* w = new Waiter;
  w->async = true;
  w->cmd.type = type;
  w->cmd.body = std::move(body);
  queue_.push_back(w);
  ++proposed_;
  ++posted_;
  if (!leading_ && queue_.front() == w) flusher_cv_.notify_one();
}

void CommitPipeline::CommitAsync(CommandType type, std::string body, Then then, bool defer_lead) {
  auto* w = new Waiter;
  w->async = true;
  w->then = std::move(then);
  w->cmd.type = type;
  w->cmd.body = std::move(body);
  std::lock_guard<std::mutex> l(mu_);
  queue_.push_back(w);
  ++proposed_;
  if (!defer_lead && !leading_ && queue_.front() == w) flusher_cv_.notify_one();
}

bool CommitPipeline::RecentAppendsFast() const {
  for (int64_t ns : append_ns_)
    if (ns > kInlineLeadMaxAppendNs) return false;
  return true;
}

void CommitPipeline::LeadOrKick(bool only_if_fast) {
  std::unique_lock<std::mutex> l(mu_);
  if (leading_ || queue_.empty() || !queue_.front()->async) return;  // led, or its leader is awake
  if (only_if_fast && !RecentAppendsFast()) {
    flusher_cv_.notify_one();
    return;
  }
  Lead(l);
}

bool CommitPipeline::HasRoom() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_.size() < kMaxQueuedCommands;
}

void CommitPipeline::WaitForRoom() {
  std::unique_lock<std::mutex> l(mu_);
  space_cv_.wait(l, [&] { return queue_.size() < kMaxQueuedCommands; });
}

void CommitPipeline::Drain() {
  std::unique_lock<std::mutex> l(mu_);
  uint64_t target = proposed_;
  drained_cv_.wait(l, [&] { return finished_ >= target; });
}

CommitPipeline::Stats CommitPipeline::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void CommitPipeline::WakeHead() {
  if (queue_.empty() || leading_) return;
  Waiter* head = queue_.front();
  if (head->async) flusher_cv_.notify_one();
  else head->cv.notify_one();
}

void CommitPipeline::Lead(std::unique_lock<std::mutex>& l) {
  leading_ = true;
  std::vector<Command> batch;
  size_t bytes = 0;
  for (size_t i = 0; i < queue_.size() && batch.size() < kMaxBatchCommands; ++i) {
    Waiter* w = queue_[i];
    if (!batch.empty() && bytes + w->cmd.body.size() > kMaxBatchBytes) break;
    // The master's clock, strictly increasing along the log.
    int64_t t = std::max(clock_(), last_time_ns_ + 1);
    last_time_ns_ = t;
    w->cmd.time_ns = t;
    w->cmd.time_ms = t / 1000000;
    bytes += w->cmd.body.size();
    batch.push_back(w->cmd);
  }
  l.unlock();

  std::vector<Result<ApplyResult>> results;
  results.reserve(batch.size());
  Status st;
  int64_t append_ns = 0;
  if (apply_first_) {
    apply_(batch, &results);
    st = append_(batch);
  } else {
    int64_t t0 = clock_();
    st = append_(batch);
    append_ns = clock_() - t0;
    if (st.ok()) apply_(batch, &results);
  }
  if (!st.ok()) {
    LOG_ERROR("MDS journal append of %zu command(s) failed: %s", batch.size(), st.ToString().c_str());
    results.clear();
    for (size_t i = 0; i < batch.size(); ++i)
      results.push_back(st.Annotate("the change was not made: the MDS journal could not be written"));
  }
  VS_CHECK(results.size() == batch.size());

  // Continuations run before the batch counts as finished (Drain waits for them too),
  // without the pipeline's lock. The queue's head entries are this batch's: nobody else
  // removes them while leading_ is set.
  l.lock();
  append_ns_[append_next_++ % kAppendTimesKept] = append_ns;
  std::vector<Waiter*> mine(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
  l.unlock();
  for (size_t i = 0; i < batch.size(); ++i)
    if (mine[i]->then) mine[i]->then(std::move(results[i]));
  l.lock();
  for (size_t i = 0; i < batch.size(); ++i) {
    Waiter* w = queue_.front();
    queue_.pop_front();
    ++finished_;
    if (w->async) {
      if (!w->then) {
        --posted_;
        if (!results[i].ok() && st.ok())
          LOG_WARN("posted command %d: %s", static_cast<int>(w->cmd.type), results[i].status().ToString().c_str());
      }
      delete w;
      continue;
    }
    w->result = std::move(results[i]);
    w->done = true;
    w->cv.notify_one();
  }
  if (st.ok()) {
    stats_.commands += batch.size();
    ++stats_.batches;
  }
  leading_ = false;
  space_cv_.notify_all();
  drained_cv_.notify_all();
  WakeHead();
}

void CommitPipeline::FlusherLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    flusher_cv_.wait(l, [&] { return (stop_ && queue_.empty()) || (!leading_ && !queue_.empty() && queue_.front()->async); });
    if (queue_.empty()) return;  // stop_
    Lead(l);
  }
}

}  // namespace vstorage::mds
