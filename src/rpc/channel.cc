#include "rpc/channel.h"

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <future>
#include <optional>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>

#include "common/config.h"
#include "common/limits.h"
#include "rpc/socket.h"
#include "rpc/tls.h"

namespace vstorage::rpc {

using asio::ip::tcp;

namespace {
thread_local bool tls_io_thread = false;
}

bool OnIoThread() { return tls_io_thread; }

struct IoLoop::Impl {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
};

IoLoop::IoLoop(int threads) : impl_(std::make_unique<Impl>()) {
  impl_->work.emplace(impl_->io.get_executor());
  for (int i = 0; i < std::max(threads, 1); ++i) impl_->threads.emplace_back([io = &impl_->io] {
      tls_io_thread = true;
      io->run();
    });
}

IoLoop& IoLoop::Default() {
  static IoLoop* loop = new IoLoop(kDefaultIoThreads);  // never destroyed: channels may outlive statics
  return *loop;
}

IoLoop::~IoLoop() {
  impl_->work.reset();
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
}

using PendingCall = Channel::Ticket;

struct Channel::Impl : std::enable_shared_from_this<Impl> {
  Impl(IoLoop& loop, tcp::socket s, std::string a, int max_inflight)
      : strand(asio::make_strand(loop.impl()->io)),
        stream(std::move(s)),
        fd(stream.socket().native_handle()),
        addr(std::move(a)),
        max_inflight(max_inflight) {}

  asio::strand<asio::io_context::executor_type> strand;
  Stream stream;     // the socket or TLS over it (rpc/tls.h); touched on the strand only
  const int fd;      // for IdleButStale's poll
  const std::string addr;
  const int max_inflight;

  std::mutex mu;  // guards what follows
  // Each waiter has its own condition variable (a call's Ticket::cv, a write's Out::cv), so a
  // reply wakes the one thread that waits for it, not every caller of the channel.
  std::condition_variable slot_cv;  // a slot freed, the channel broke
  std::map<uint64_t, PendingCall*> pending;
  uint64_t next_id = 1;
  int inflight = 0;
  bool broken = false;
  Status broken_st;

  struct AsyncCall;
  // Writes: queued on the strand, written in order by one write loop.
  struct Out {
    std::array<char, kFrameHeaderBytes> header;
    const std::string* body;
    const char* payload;
    size_t payload_len;
    bool done = false;
    Status st;
    AsyncCall* owner = nullptr;  // set for a CallAsync's frame
    // Set for Call's frame: its caller waits once, on the ticket's cv, for the write and
    // the reply together (one wake-up per call instead of two).
    Ticket* joint = nullptr;
    std::condition_variable cv;  // done (a synchronous caller waits in Write)
  };
  // A CallAsync's state. It ends (done runs, then it is deleted) once its reply came or it
  // failed, and its frame is off the write queue: until then the caller's payload may still
  // be read by a write.
  struct AsyncCall : PendingCall {
    Frame frame;
    std::string body;
    size_t got_len = 0;
    int64_t deadline_ms = 0;
    int timeout_ms = 0;
    AsyncDone done;
    Out out;
    bool written = false;  // under mu
    bool replied = false;  // under mu
  };
  std::deque<AsyncCall*> waiting;  // beyond the window; at most kMaxQueuedPerChannel
  int async_pending = 0;           // async calls in `pending`
  bool watchdog = false;           // the timeout check runs
  static constexpr size_t kMaxWritesPerBatch = 64;  // frames gathered into one write
  std::deque<Out*> out_queue;  // strand only; bounded by max_inflight (a caller waits for its write)
  bool writing = false;        // strand only
  std::array<char, kFrameHeaderBytes> hdr;  // the reader's
  std::string scratch;                      // the writer's, over TLS (CoalesceForTls)

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Under mu, for an async call whose reply came or failed (st set) and, if `written`, whose
  // frame is off the write queue: runs its done on the loop, then frees it.
  void FireIfOverLocked(AsyncCall* a) {
    if (!a->written || !a->replied) return;
    asio::post(strand.get_inner_executor(), [a] {
      a->done(a->st, &a->frame, a->got_len);
      delete a;
    });
  }

  // Under mu: a pending call left; calls waiting for a slot take it.
  void ReleaseSlotLocked() {
    --inflight;
    while (!broken && inflight < max_inflight && !waiting.empty()) {
      AsyncCall* a = waiting.front();
      waiting.pop_front();
      DispatchLocked(a);
    }
    slot_cv.notify_all();
  }

  // Under mu: the async call takes a slot and its frame goes to the write queue.
  void DispatchLocked(AsyncCall* a) {
    ++inflight;
    ++async_pending;
    a->id = next_id++;
    pending[a->id] = a;
    Frame h;
    h.type = a->frame.type;
    h.req_id = a->id;
    EncodeFrameHeader(h, a->body.size(), a->out.payload_len, a->out.header.data());
    a->out.body = &a->body;
    a->out.owner = a;
    Enqueue(&a->out);
  }

  // Fails the async calls that wait for a slot past their deadline, and breaks the channel
  // when a sent one has had no reply by its deadline.
  asio::awaitable<void> Watchdog() {
    auto self = shared_from_this();
    asio::steady_timer timer(strand);
    for (;;) {
      timer.expires_after(std::chrono::milliseconds(kAsyncTimeoutCheckMs));
      asio::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::lock_guard<std::mutex> l(mu);
      int64_t now = NowMs();
      for (auto it = waiting.begin(); it != waiting.end();) {
        AsyncCall* a = *it;
        if (a->deadline_ms > now) {
          ++it;
          continue;
        }
        it = waiting.erase(it);
        a->st = Err(Code::kTimeout, "no free request slot on the connection to " + addr);
        a->written = a->replied = true;
        FireIfOverLocked(a);
      }
      int overdue_ms = -1;  // the timeout of a sent call that has had no reply in time
      for (auto& [id, p] : pending)
        if (p->async && !p->done && static_cast<AsyncCall*>(p)->deadline_ms <= now)
          overdue_ms = static_cast<AsyncCall*>(p)->timeout_ms;
      // No answer in time: the peer is hung or gone; the connection goes, as in Finish.
      if (overdue_ms >= 0 && !broken)
        BreakLocked(Err(Code::kTimeout, addr + ": no reply within " + std::to_string(overdue_ms) + " ms"));
      if (async_pending == 0 && waiting.empty()) {
        watchdog = false;
        co_return;
      }
    }
  }

  // Under mu: fails every pending call; the reader and writers stop.
  void BreakLocked(const Status& st) {
    if (!broken) {
      broken = true;
      broken_st = st;
      asio::post(strand, [self = shared_from_this()] {
        asio::error_code ec;
        self->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream.socket().close(ec);
      });
    }
    for (auto it = pending.begin(); it != pending.end();) {
      PendingCall* p = it->second;
      if (p->reading || p->done) {  // the reader finishes it (its read fails soon)
        ++it;
        continue;
      }
      p->st = broken_st;
      p->done = true;
      if (!p->async) {
        ++it;
        continue;
      }
      auto* a = static_cast<AsyncCall*>(p);
      it = pending.erase(it);
      --async_pending;
      --inflight;
      a->replied = true;
      FireIfOverLocked(a);
    }
    while (!waiting.empty()) {
      AsyncCall* a = waiting.front();
      waiting.pop_front();
      a->st = broken_st;
      a->written = a->replied = true;
      FireIfOverLocked(a);
    }
    for (auto& [id, p] : pending)
      if (!p->async) p->cv.notify_all();
    slot_cv.notify_all();
  }
  void Break(const Status& st) {
    std::lock_guard<std::mutex> l(mu);
    BreakLocked(st);
  }

  asio::awaitable<void> WriteLoop() {
    auto self = shared_from_this();
    std::vector<Out*> batch;
    std::vector<asio::const_buffer> bufs;
    while (!out_queue.empty()) {
      batch.clear();
      bufs.clear();
      while (!out_queue.empty() && batch.size() < kMaxWritesPerBatch) {
        Out* o = out_queue.front();
        out_queue.pop_front();
        batch.push_back(o);
        bufs.emplace_back(o->header.data(), o->header.size());
        if (!o->body->empty()) bufs.emplace_back(o->body->data(), o->body->size());
        if (o->payload_len) bufs.emplace_back(o->payload, o->payload_len);
      }
      asio::error_code ec;
      if (stream.tls())
        co_await asio::async_write(stream, CoalesceForTls(bufs, &scratch), asio::redirect_error(asio::use_awaitable, ec));
      else
        co_await asio::async_write(stream, bufs, asio::redirect_error(asio::use_awaitable, ec));
      Status st = Status::Ok();
      // EFAULT and EINVAL name this process's own buffers, not the peer; part of a frame may
      // have gone out, so the connection is unusable either way.
      if (ec == asio::error::fault || ec == asio::error::invalid_argument)
        st = Err(Code::kInternal, "send to " + addr + " failed: " + ec.message() +
                                      " (a buffer of this process, not a fault of the peer)");
      else if (ec)
        st = Err(Code::kUnavailable, addr + ": " + ec.message());
      std::lock_guard<std::mutex> l(mu);
      for (Out* o : batch) {
        o->st = st;
        o->done = true;
        if (AsyncCall* a = o->owner) {  // o belongs to a; a may end now
          a->written = true;
          FireIfOverLocked(a);
        } else if (Ticket* t = o->joint) {
          // The reply came first, or an Abandon waits for the write alone; otherwise the
          // reply's arrival wakes the caller (once, for both).
          if (t->done || t->abandoned) t->cv.notify_all();
        } else {
          o->cv.notify_one();
        }
      }
      if (ec) BreakLocked(st);
    }
    writing = false;
  }

  // Queues o for the write loop; o, its body and payload stay alive until o->done.
  void Enqueue(Out* o) {
    asio::post(strand, [self = shared_from_this(), o] {
      self->out_queue.push_back(o);
      if (!self->writing) {
        self->writing = true;
        asio::co_spawn(self->strand, self->WriteLoop(), asio::detached);
      }
    });
  }

  // Blocks until o is written (or failed). The caller keeps o, its body and payload alive.
  Status Write(Out* o) {
    Enqueue(o);
    std::unique_lock<std::mutex> l(mu);
    o->cv.wait(l, [&] { return o->done; });
    return o->st;
  }

  // The connection's opening (rpc/tls.h, rpc/auth.h), within kHandshakeTimeoutMs.
  asio::awaitable<void> Open(Credentials cred, bool tls, std::shared_ptr<std::promise<Status>> done) {
    auto self = shared_from_this();
    asio::steady_timer deadline(strand);
    deadline.expires_after(std::chrono::milliseconds(kHandshakeTimeoutMs));
    deadline.async_wait([self](asio::error_code ec) {
      if (ec) return;
      asio::error_code e;
      self->stream.socket().close(e);  // the step in progress fails
    });
    Status st = co_await OpenSteps(cred, tls);
    deadline.cancel();
    done->set_value(st);
  }

  asio::awaitable<Status> WriteFrame(const Frame& f) {
    std::array<char, kFrameHeaderBytes> h;
    EncodeFrameHeader(f, f.body.size(), 0, h.data());
    std::string bytes = std::string(h.data(), h.size()) + f.body;
    asio::error_code ec;
    co_await asio::async_write(stream, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
    co_return ec ? Err(Code::kUnavailable, addr + ": " + ec.message()) : Status::Ok();
  }

  asio::awaitable<Status> ReadFrame(Frame* f) {
    asio::error_code ec;
    co_await asio::async_read(stream, asio::buffer(hdr), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Err(Code::kUnavailable, addr + ": " + (ec == asio::error::eof ? "connection closed by the peer" : ec.message()));
    auto h = DecodeFrameHeader(hdr.data());
    if (!h.ok()) co_return h.status();
    if (static_cast<size_t>(h->body_len) + h->payload_len > kMaxHandshakeFrameBytes)
      co_return Err(Code::kProtocol, addr + ": a handshake frame of " + std::to_string(h->body_len) + " bytes");
    f->type = h->type;
    f->flags = h->flags;
    f->req_id = h->req_id;
    f->body.resize(h->body_len);
    f->payload.resize(h->payload_len);
    std::array<asio::mutable_buffer, 2> bufs{asio::buffer(f->body), asio::buffer(f->payload)};
    co_await asio::async_read(stream, bufs, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec ? Err(Code::kUnavailable, addr + ": " + ec.message()) : Status::Ok();
  }

  asio::awaitable<Status> OpenSteps(const Credentials& cred, bool tls) {
    if (tls) {
      asio::error_code ec;
      stream.UseTls(TlsContext(cred.cluster, cred.key, false));
      co_await stream.tls()->async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return Err(Code::kAuthFailed, "TLS handshake: " + ec.message());
    } else {
      Status st = co_await WriteFrame(HelloFrame());
      if (!st.ok()) co_return st;
    }
    ClientHandshaker hs(cred.cluster, cred.key, cred.kind);
    Frame f;
    Status st = co_await ReadFrame(&f);
    if (!st.ok()) co_return st;
    auto resp = hs.OnChallenge(f);
    if (!resp.ok()) co_return resp.status();
    st = co_await WriteFrame(*resp);
    if (st.ok()) st = co_await ReadFrame(&f);
    if (!st.ok()) co_return st;
    co_return hs.OnResult(f);
  }

  asio::awaitable<void> ReadLoop() {
    auto self = shared_from_this();
    for (;;) {
      asio::error_code ec;
      co_await asio::async_read(stream, asio::buffer(hdr), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        Break(Err(Code::kUnavailable, addr + ": " + (ec == asio::error::eof ? "connection closed by the peer" : ec.message())));
        co_return;
      }
      auto h = DecodeFrameHeader(hdr.data());
      if (!h.ok()) {
        Break(h.status().Annotate(addr));
        co_return;
      }
      PendingCall* p = nullptr;
      {
        std::lock_guard<std::mutex> l(mu);
        auto it = pending.find(h->req_id);
        if (it != pending.end() && !it->second->done) {
          p = it->second;
          p->reading = true;
        }
      }
      // A reply nobody waits for (its caller timed out and broke the channel) is read and
      // dropped.
      Frame scratch;
      Frame* f = p ? p->reply : &scratch;
      f->type = h->type;
      f->req_id = h->req_id;
      f->flags = h->flags;
      f->body.resize(h->body_len);
      bool direct = p && p->payload_out && h->payload_len <= p->payload_cap && !(h->flags & kFlagError);
      f->payload.clear();
      if (!direct) f->payload.resize(h->payload_len);
      std::array<asio::mutable_buffer, 2> bufs{
          asio::buffer(f->body), direct ? asio::buffer(p->payload_out, h->payload_len) : asio::buffer(f->payload)};
      co_await asio::async_read(stream, bufs, asio::redirect_error(asio::use_awaitable, ec));
      std::lock_guard<std::mutex> l(mu);
      if (p) {
        p->reading = false;
        p->done = true;
        if (p->async) {
          auto* a = static_cast<AsyncCall*>(p);
          if (ec) {
            a->st = Err(Code::kUnavailable, addr + ": " + ec.message());
          } else if (f->flags & kFlagError) {
            proto::ErrorReply er;
            Status dst = proto::DecodeFromString(f->body, &er, "error reply");
            a->st = dst.ok() ? Err(static_cast<Code>(er.code), er.message) : dst;
          } else {
            a->st = Status::Ok();
            a->got_len = direct ? h->payload_len : 0;
          }
          pending.erase(a->id);
          --async_pending;
          a->replied = true;
          ReleaseSlotLocked();
          FireIfOverLocked(a);
          if (ec) {
            BreakLocked(Err(Code::kUnavailable, addr + ": " + ec.message()));
            co_return;
          }
          continue;
        }
        if (ec) {
          p->st = Err(Code::kUnavailable, addr + ": " + ec.message());
        } else if (f->flags & kFlagError) {
          proto::ErrorReply er;
          Status dst = proto::DecodeFromString(f->body, &er, "error reply");
          p->st = dst.ok() ? Err(static_cast<Code>(er.code), er.message) : dst;
        } else {
          p->st = Status::Ok();
          if (direct && p->payload_len_out) *p->payload_len_out = h->payload_len;
        }
        p->cv.notify_all();
      }
      if (ec) {
        BreakLocked(Err(Code::kUnavailable, addr + ": " + ec.message()));
        co_return;
      }
    }
  }
};

namespace {

// A TLS handshake that failed: the server does not know this host's key, or is another
// cluster's. Its plaintext challenge names its cluster, which tells the two apart.
Status ExplainTlsRefusal(const HostPort& hp, const Credentials& cred, const Status& st) {
  std::string why = "the server refused this host's key for cluster '" + cred.cluster +
                    "' (TLS: " + st.message() + "): the key this host keeps does not match the cluster's (the fault "
                    "is on this host, not on the server); run 'vstorage -c " + cred.cluster +
                    " auth-node' on this host to fetch the key again";
  auto s = Socket::Connect(hp, kHandshakeTimeoutMs);
  if (!s.ok() || !s->Send(HelloFrame()).ok()) return Err(Code::kAuthFailed, why);
  Frame f;
  proto::Challenge ch;
  if (s->Recv(&f, kHandshakeTimeoutMs).ok() && !(f.flags & kFlagError) &&
      f.type == static_cast<uint16_t>(proto::MsgType::kChallenge) &&
      proto::DecodeFromString(f.body, &ch, "challenge").ok() && ch.cluster != cred.cluster)
    return Err(Code::kAuthFailed, "server belongs to cluster '" + ch.cluster + "', not '" + cred.cluster +
                                      "': check bs.list");
  return Err(Code::kAuthFailed, why);
}

}  // namespace

Result<std::shared_ptr<Channel>> Channel::Dial(IoLoop& loop, const std::string& addr, const Credentials& cred,
                                               int timeout_ms, int max_inflight) {
  ASSIGN_OR_RETURN(HostPort hp, ParseHostPort(addr, 0));
  bool tls = EncryptionOn();
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(Socket s, Socket::Connect(hp, timeout_ms));
    // The loop owns the socket from here on.
    asio::error_code ec;
    int fd = ::dup(s.fd());
    if (fd < 0) return Err(Code::kIoError, std::string("dup: ") + std::strerror(errno));
    s.Close();
    tcp::socket sock(loop.impl()->io);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    sock.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return Err(Code::kIoError, "cannot use the connection to " + addr + ": " + ec.message());
    }
    auto impl = std::make_shared<Impl>(loop, std::move(sock), addr, max_inflight > 0 ? max_inflight : 1);
    auto done = std::make_shared<std::promise<Status>>();
    auto opened = done->get_future();
    asio::co_spawn(impl->strand, impl->Open(cred, tls, done), asio::detached);
    // Open ends by its own deadline; waiting longer means the loop does not run (a Dial made
    // on that loop's own thread, which must never happen): fail rather than hang.
    Status st = opened.wait_for(std::chrono::milliseconds(kHandshakeTimeoutMs + 5000)) == std::future_status::ready
                    ? opened.get()
                    : Err(Code::kInternal, "the connection's I/O loop did not run its handshake (dialled from the "
                                           "loop's own thread?)");
    if (st.ok()) {
      asio::co_spawn(impl->strand, impl->ReadLoop(), asio::detached);
      return std::shared_ptr<Channel>(new Channel(impl));
    }
    impl->Break(st);
    // A server that has not heard of gen.encryption=0 yet still wants TLS: use it.
    if (!tls && attempt == 0 && st.code() == Code::kPermission) {
      tls = true;
      continue;
    }
    if (tls && st.code() == Code::kAuthFailed && st.message().rfind("TLS handshake", 0) == 0)
      st = ExplainTlsRefusal(hp, cred, st);
    return st.Annotate(addr);
  }
}

Channel::~Channel() { Close(); }

void Channel::Close() { impl_->Break(Err(Code::kUnavailable, "connection to " + impl_->addr + " was closed")); }

bool Channel::healthy() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return !impl_->broken;
}

const std::string& Channel::addr() const { return impl_->addr; }

bool Channel::IdleButStale() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  if (impl_->broken) return true;
  if (impl_->inflight > 0) return false;
  pollfd pf{impl_->fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&pf, 1, 0) != 0;  // readable (EOF or a stray byte), hung up, or an error
}

namespace {

// Registers a call and queues its frame (out, which the caller keeps alive until it is
// written). joint: the caller waits for the write and the reply together (Call).
Result<std::unique_ptr<Channel::Ticket>> Begin(Channel::Impl& m, proto::MsgType type, const std::string& body,
                                               const char* payload, size_t payload_len, Frame* reply, int timeout_ms,
                                               char* payload_out, size_t payload_cap, size_t* payload_len_out,
                                               Channel::Impl::Out* out, bool joint, bool own_body = false) {
  if (body.size() > kMaxMessageBytes || payload_len > kMaxPayloadBytes)
    return Err(Code::kInternal, "request too large for a frame");
  auto t = std::make_unique<Channel::Ticket>();
  t->reply = reply;
  t->payload_out = payload_out;
  t->payload_cap = payload_cap;
  t->payload_len_out = payload_len_out;
  {
    std::unique_lock<std::mutex> l(m.mu);
    // Backpressure: wait for a slot.
    if (!m.slot_cv.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return m.broken || m.inflight < m.max_inflight; }))
      return Err(Code::kTimeout, "no free request slot on the connection to " + m.addr);
    if (m.broken) return Err(Code::kUnavailable, "connection to " + m.addr + " is broken: " + m.broken_st.message());
    ++m.inflight;
    t->id = m.next_id++;
    m.pending[t->id] = t.get();
  }
  Frame h;
  h.type = static_cast<uint16_t>(type);
  h.req_id = t->id;
  EncodeFrameHeader(h, body.size(), payload_len, out->header.data());
  if (own_body) t->body = body;
  out->body = own_body ? &t->body : &body;
  out->payload = payload;
  out->payload_len = payload_len;
  if (joint) out->joint = t.get();
  m.Enqueue(out);
  return t;
}

}  // namespace

Result<std::unique_ptr<Channel::Ticket>> Channel::Start(proto::MsgType type, const std::string& body,
                                                        const char* payload, size_t payload_len, Frame* reply,
                                                        int timeout_ms, char* payload_out, size_t payload_cap,
                                                        size_t* payload_len_out) {
  Impl& m = *impl_;
  auto out = std::make_shared<Impl::Out>();
  ASSIGN_OR_RETURN(auto t, Begin(m, type, body, payload, payload_len, reply, timeout_ms, payload_out, payload_cap,
                                 payload_len_out, out.get(), /*joint=*/true, /*own_body=*/true));
  t->frame = std::move(out);
  return t;
}

namespace {
// Under the channel's lock: Start's frame of t (if any) is off the write queue.
bool Written(const Channel::Ticket& t) {
  return !t.frame || static_cast<const Channel::Impl::Out*>(t.frame.get())->done;
}
}  // namespace

Status Channel::Finish(std::unique_ptr<Ticket> t, int timeout_ms) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  if (!t->cv.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return t->done && Written(*t); })) {
    // No answer in time: the peer is hung or gone. The connection goes (a late reply must
    // not land in a buffer we give back now); wait until the reader and the writer have
    // let go of ours (a write still queued fails once the socket is closed).
    m.BreakLocked(Err(Code::kTimeout, m.addr + ": no reply within " + std::to_string(timeout_ms) + " ms"));
    t->cv.wait(l, [&] { return t->done && Written(*t); });
  }
  m.pending.erase(t->id);
  m.ReleaseSlotLocked();
  return t->st;
}

void Channel::Abandon(std::unique_ptr<Ticket> t) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  t->abandoned = true;
  t->cv.wait(l, [&] { return !t->reading && Written(*t); });  // reader and writer are done with its buffers
  m.pending.erase(t->id);
  m.ReleaseSlotLocked();
}

void Channel::CallAsync(proto::MsgType type, std::string body, const char* payload, size_t payload_len,
                        int timeout_ms, AsyncDone done, char* payload_out, size_t payload_cap) {
  Impl& m = *impl_;
  auto* a = new Impl::AsyncCall;
  a->async = true;
  a->reply = &a->frame;
  a->frame.type = static_cast<uint16_t>(type);
  a->payload_out = payload_out;
  a->payload_cap = payload_out ? payload_cap : 0;
  a->body = std::move(body);
  a->out.payload = payload;
  a->out.payload_len = payload_len;
  a->deadline_ms = Impl::NowMs() + timeout_ms;
  a->timeout_ms = timeout_ms;
  a->done = std::move(done);
  std::lock_guard<std::mutex> l(m.mu);
  if (a->body.size() > kMaxMessageBytes || payload_len > kMaxPayloadBytes) {
    a->st = Err(Code::kInternal, "request too large for a frame");
  } else if (m.broken) {
    a->st = Err(Code::kUnavailable, "connection to " + m.addr + " is broken: " + m.broken_st.message());
  } else if (m.waiting.size() >= kMaxQueuedPerChannel) {
    a->st = Err(Code::kTryAgain, "too many requests queued on the connection to " + m.addr + " (" +
                                     std::to_string(kMaxQueuedPerChannel) + "); retry when some have finished");
  } else {
    if (m.inflight < m.max_inflight && m.waiting.empty()) m.DispatchLocked(a);
    else m.waiting.push_back(a);
    if (!m.watchdog) {
      m.watchdog = true;
      asio::co_spawn(m.strand, m.Watchdog(), asio::detached);
    }
    return;
  }
  a->written = a->replied = true;
  m.FireIfOverLocked(a);
}

Status Channel::Call(proto::MsgType type, const std::string& body, const char* payload, size_t payload_len,
                     Frame* reply, int timeout_ms, char* payload_out, size_t payload_cap, size_t* payload_len_out) {
  // Start + Finish with one wait: the caller sleeps until both its frame is written and its
  // reply came (or the channel broke), and is woken once.
  Impl& m = *impl_;
  Impl::Out out;
  ASSIGN_OR_RETURN(auto t, Begin(m, type, body, payload, payload_len, reply, timeout_ms, payload_out, payload_cap,
                                 payload_len_out, &out, /*joint=*/true));
  std::unique_lock<std::mutex> l(m.mu);
  if (!t->cv.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return t->done && out.done; })) {
    // As in Finish; a write still queued fails once the socket is closed.
    m.BreakLocked(Err(Code::kTimeout, m.addr + ": no reply within " + std::to_string(timeout_ms) + " ms"));
    t->cv.wait(l, [&] { return t->done && out.done; });
  }
  m.pending.erase(t->id);
  m.ReleaseSlotLocked();
  if (!out.st.ok()) {
    m.BreakLocked(out.st);
    return out.st;
  }
  return t->st;
}

}  // namespace vstorage::rpc
