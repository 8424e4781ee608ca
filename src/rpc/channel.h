// Client side of the event-driven RPC layer (docs/design/rpc.md): one authenticated
// connection to a peer, shared by every caller of the process, requests multiplexed by id and
// answered in any order. A reader coroutine on an I/O thread (IoLoop) matches each reply to
// its caller and reads a reply's payload straight into the caller's buffer when it gave one.
//
// Bounds: at most max_inflight requests wait for a reply at once; a caller beyond that
// waits for a slot (backpressure). A request not answered within its timeout closes the
// channel and fails every request on it (as a dead peer would), so no caller waits forever
// and no reply can land in a buffer its caller has given up.
//
// Thread-safety: IoLoop and Channel are thread-safe; Call, Start and Finish may be made from
// any thread but not from an IoLoop thread (they block). CallAsync never blocks and may be
// made from anywhere, an IoLoop thread included.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proto/messages.h"
#include "rpc/auth.h"
#include "rpc/frame.h"

namespace vstorage::rpc {

inline constexpr int kMaxInflightPerChannel = 64;
// One I/O thread per loop: it only moves bytes (handlers and callbacks that block run
// elsewhere). With two, every post to a strand could wake the other thread: on the 2-core
// bench machine that doubled the context switches per 4 KiB write of the mount (9.9 -> 4.3).
inline constexpr int kDefaultIoThreads = 1;
// Asynchronous calls beyond the in-flight window wait in the channel's queue, at most this
// many (then CallAsync fails with kTryAgain); callers bound themselves well below it
// (libvstorage: kMaxAsyncOps × kAsyncOpWindow).
inline constexpr size_t kMaxQueuedPerChannel = 16384;

// True on a thread of an IoLoop (where nothing may block).
bool OnIoThread();

// The I/O threads of a process's outgoing connections.
class IoLoop {
 public:
  explicit IoLoop(int threads = 1);
  ~IoLoop();  // stops and joins
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;
  // The process's shared loop (kDefaultIoThreads threads), made on first use and never
  // destroyed: connections made without an explicit loop run here.
  static IoLoop& Default();
  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

class Channel {
 public:
  // Connects (within timeout_ms) and authenticates; the channel runs on `loop`, which must
  // outlive it.
  static Result<std::shared_ptr<Channel>> Dial(IoLoop& loop, const std::string& addr, const Credentials& cred,
                                               int timeout_ms, int max_inflight = kMaxInflightPerChannel);
  ~Channel();  // closes; pending calls fail

  // Sends a request and waits for its reply, like Conn::CallRaw: an error reply becomes its
  // Status; the reply payload goes into payload_out when it fits payload_cap (then
  // *payload_len_out is set and reply->payload stays empty), else into reply->payload.
  Status Call(proto::MsgType type, const std::string& body, const char* payload, size_t payload_len, Frame* reply,
              int timeout_ms, char* payload_out = nullptr, size_t payload_cap = 0,
              size_t* payload_len_out = nullptr);
  // Call in two halves, for callers that overlap their own work with the peer's: Start
  // queues the request and returns (the body is copied; the payload must live until
  // Finish or Abandon returns), Finish waits for it to be written and for its reply (into
  // *reply, which must live until Finish) within timeout_ms, and is woken once for both.
  // A failed write is Finish's error. Every successful Start must be Finished or Abandoned.
  struct Ticket {  // opaque to callers; the reader touches it only under the channel's lock
    Frame* reply = nullptr;
    char* payload_out = nullptr;
    size_t payload_cap = 0;
    size_t* payload_len_out = nullptr;
    bool reading = false;  // the reader is filling reply/payload_out right now (without the lock)
    bool done = false;
    bool async = false;  // a CallAsync (then this is part of its state)
    bool abandoned = false;  // Abandon waits for the frame's write
    Status st;
    uint64_t id = 0;
    std::condition_variable cv;  // with the channel's lock: done or reading changed (sync calls)
    // Start's frame (Impl::Out) and its body, kept until written; null for Call's.
    std::string body;
    std::shared_ptr<void> frame;
  };
  Result<std::unique_ptr<Ticket>> Start(proto::MsgType type, const std::string& body, const char* payload,
                                        size_t payload_len, Frame* reply, int timeout_ms, char* payload_out = nullptr,
                                        size_t payload_cap = 0, size_t* payload_len_out = nullptr);
  Status Finish(std::unique_ptr<Ticket> t, int timeout_ms);
  // Gives up on a started call without waiting for its reply (which is dropped when it comes).
  void Abandon(std::unique_ptr<Ticket> t);

  // Sends a request without waiting for anything and calls done(st, reply, payload_len)
  // exactly once: with the reply (its payload went into payload_out when it fit
  // payload_cap, with payload_len set; else it is in reply->payload), an error reply's
  // Status, or the transport's failure. `payload` and `payload_out` stay the caller's and
  // must live until done ran. Beyond the in-flight window the call waits in the channel's
  // queue (kMaxQueuedPerChannel). No reply within timeout_ms closes the channel (checked
  // every kAsyncTimeoutCheckMs). `done` runs on a thread of the channel's IoLoop and must
  // not block; it may start further calls.
  using AsyncDone = std::function<void(Status st, Frame* reply, size_t payload_len)>;
  static constexpr int kAsyncTimeoutCheckMs = 100;
  void CallAsync(proto::MsgType type, std::string body, const char* payload, size_t payload_len, int timeout_ms,
                 AsyncDone done, char* payload_out = nullptr, size_t payload_cap = 0);

  template <typename Req, typename Rep>
  Status Call(proto::MsgType type, const Req& req, Rep* rep, int timeout_ms) {
    Frame f;
    RETURN_IF_ERROR(Call(type, proto::EncodeToString(req), nullptr, 0, &f, timeout_ms));
    return proto::DecodeFromString(f.body, rep, "reply");
  }
  // False once the connection failed or was closed: dial a new one.
  bool healthy() const;
  // For a channel with nothing in flight: true if the peer closed it meanwhile (a restarted
  // server) although the reader has not noticed yet. Never blocks.
  bool IdleButStale() const;
  const std::string& addr() const;
  void Close();

  struct Impl;

 private:
  explicit Channel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace vstorage::rpc
