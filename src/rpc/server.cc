#include "rpc/server.h"
#include "rpc/tls.h"

// GCC 12 flags asio's coroutine frame allocator as mismatched new/delete (a false positive:
// awaitable_frame_base defines both operators); clang does not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <sys/resource.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "common/limits.h"
#include "common/log.h"
#include "rpc/payload_pool.h"
#include "rpc/worker_pool.h"

namespace vstorage::rpc {

using asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace detail {

// Set on the server's I/O threads: a blocking reply from one would wait for itself.
thread_local bool tls_server_io_thread = false;

struct ServerCore {
  explicit ServerCore(ServerLimits l) : limits(l), workers(l.max_workers) {}
  ServerLimits limits;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> io_threads;
  WorkerPool workers;
  ServerAuth auth;
  Server::Handler handler;
  Server::AuthNodeHook hook;
  Server::InlineFilter run_inline;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> refused{0}, failed{0}, paused{0};
  PayloadPool payloads;

  std::mutex mu;  // guards what follows
  std::map<std::string, int> pending_by_source;
  int pending = 0;
  int conns = 0;
  std::list<std::weak_ptr<Connection>> live;
};

// A reply waiting to be written: owned by the thread that waits for it (ServerConn::Send), or,
// when `owned`, by the connection (deleted once written or failed).
struct PendingWrite {
  std::array<char, kFrameHeaderBytes> header;
  std::string body;
  std::string payload_copy;  // an owned write's small payload (payload points here)
  const char* payload = nullptr;
  size_t payload_len = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool owned = false;  // nobody waits: Finish deletes it
  Status st;
  void Finish(Status s) {
    if (owned) {
      delete this;
      return;
    }
    std::lock_guard<std::mutex> l(mu);
    st = std::move(s);
    done = true;
    cv.notify_one();
  }
};

// Everything below runs on the connection's strand, except Write() and Post(), which post.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, tcp::socket s, std::string source)
      : core_(std::move(core)),
        strand_(asio::make_strand(core_->io)),
        stream_(std::move(s)),
        source_(std::move(source)),
        deadline_(strand_),
        resume_(strand_),
        write_timer_(strand_) {
    asio::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  const Strand& strand() const { return strand_; }
  const std::string& peer() const { return peer_; }

  asio::awaitable<void> Run();
  // From any thread: queue w, and wait until it is written or has failed.
  Status Write(PendingWrite* w);
  // From any thread: queue an owned w (w->owned) and return.
  void Post(PendingWrite* w);
  // From any thread.
  void Close() {
    asio::post(strand_, [self = shared_from_this()] { self->CloseNow(); });
  }

 private:
  asio::awaitable<Status> ReadFrame(Frame* f, size_t cap);
  asio::awaitable<bool> Handshake(proto::PeerKind* kind);
  asio::awaitable<void> WriteLoop();
  void CloseNow();
  void Dispatch(Frame f, proto::PeerKind kind);
  // On the strand: w is written or failed. An owned reply no longer counts against the
  // connection's limit, which may let a waiting reader go on.
  void Done(PendingWrite* w, Status st) {
    bool owned = w->owned;
    w->Finish(std::move(st));
    if (owned) {
      owned_queued_.fetch_sub(1);
      if (reader_waiting_.load()) resume_.cancel();
    }
  }
  bool AtLimit() const { return inflight_.load() + owned_queued_.load() >= core_->limits.max_inflight_per_conn; }

  std::shared_ptr<ServerCore> core_;
  Strand strand_;
  Stream stream_;  // the socket, or TLS over it (rpc/tls.h)
  std::string source_, peer_;
  asio::steady_timer deadline_;     // the handshake's
  asio::steady_timer resume_;       // the reader waits here while the connection is at its limit
  asio::steady_timer write_timer_;  // a reply the peer does not take
  uint64_t write_gen_ = 0;
  std::array<char, kFrameHeaderBytes> hdr_;
  std::string scratch_;  // the writer's, over TLS (CoalesceForTls)
  // Requests handed to workers and not finished. Atomic so that a finishing handler need not
  // post to the strand (a wakeup of the I/O thread per request) unless the reader waits.
  std::atomic<int> inflight_{0};
  std::atomic<bool> reader_waiting_{false};
  // Owned replies (ServerConn::Send without waiting) queued and not yet written: they count
  // with inflight_ against max_inflight_per_conn, so a peer that sends requests and never
  // reads the replies stops being read from instead of growing the queue.
  std::atomic<int> owned_queued_{0};
  bool closed_ = false;
  bool writing_ = false;
  std::deque<PendingWrite*> queue_;
};

void Connection::CloseNow() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  deadline_.cancel();
  resume_.cancel();
  write_timer_.cancel();
  // Writes not yet started fail now; the one being written fails when its write returns.
  if (!writing_) {
    for (auto* w : queue_) Done(w, Err(Code::kUnavailable, "connection to " + peer_ + " closed"));
    queue_.clear();
  }
}

Status Connection::Write(PendingWrite* w) {
  Post(w);
  std::unique_lock<std::mutex> l(w->mu);
  w->cv.wait(l, [&] { return w->done; });
  return w->st;
}

void Connection::Post(PendingWrite* w) {
  if (w->owned) owned_queued_.fetch_add(1);
  asio::post(strand_, [self = shared_from_this(), w] {
    if (self->closed_) {
      self->Done(w, Err(Code::kUnavailable, "connection to " + self->peer_ + " closed"));
      return;
    }
    self->queue_.push_back(w);
    if (!self->writing_) {
      self->writing_ = true;
      asio::co_spawn(self->strand_, self->WriteLoop(), asio::detached);
    }
  });
}

// Replies queued while one is written go out together, in one gathered write.
asio::awaitable<void> Connection::WriteLoop() {
  auto self = shared_from_this();
  static constexpr size_t kMaxWritesPerBatch = 64;
  std::vector<PendingWrite*> batch;
  std::vector<asio::const_buffer> bufs;
  while (!queue_.empty() && !closed_) {
    batch.clear();
    bufs.clear();
    while (!queue_.empty() && batch.size() < kMaxWritesPerBatch) {
      PendingWrite* w = queue_.front();
      queue_.pop_front();
      batch.push_back(w);
      bufs.emplace_back(w->header.data(), w->header.size());
      if (!w->body.empty()) bufs.emplace_back(w->body.data(), w->body.size());
      if (w->payload_len) bufs.emplace_back(w->payload, w->payload_len);
    }
    uint64_t gen = ++write_gen_;
    write_timer_.expires_after(std::chrono::milliseconds(kReplyWriteTimeoutMs));
    write_timer_.async_wait([this, self, gen](asio::error_code ec) {
      if (!ec && gen == write_gen_ && writing_) {
        LOG_WARN("%s took no reply for %d ms: closing the connection", peer_.c_str(), kReplyWriteTimeoutMs);
        CloseNow();
      }
    });
    asio::error_code ec;
    if (stream_.tls())
      co_await asio::async_write(stream_, CoalesceForTls(bufs, &scratch_), asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await asio::async_write(stream_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    ++write_gen_;
    write_timer_.cancel();
    Status st = ec ? Err(Code::kUnavailable, "write to " + peer_ + ": " + ec.message()) : Status::Ok();
    for (auto* w : batch) Done(w, st);
    if (ec) CloseNow();
  }
  writing_ = false;
  for (auto* w : queue_) Done(w, Err(Code::kUnavailable, "connection to " + peer_ + " closed"));
  queue_.clear();
}

asio::awaitable<Status> Connection::ReadFrame(Frame* f, size_t cap) {
  asio::error_code ec;
  co_await asio::async_read(stream_, asio::buffer(hdr_), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Code::kUnavailable, peer_ + ": " + ec.message());
  auto h = DecodeFrameHeader(hdr_.data());
  if (!h.ok()) co_return h.status();
  if (static_cast<size_t>(h->body_len) + h->payload_len > cap)
    co_return Err(Code::kProtocol, "frame of " + std::to_string(h->body_len + uint64_t{h->payload_len}) +
                                       " bytes before authentication (limit " + std::to_string(cap) + ")");
  f->type = h->type;
  f->req_id = h->req_id;
  f->flags = h->flags;
  f->body.resize(h->body_len);
  core_->payloads.Take(&f->payload, h->payload_len);
  std::array<asio::mutable_buffer, 2> bufs{asio::buffer(f->body), asio::buffer(f->payload)};
  co_await asio::async_read(stream_, bufs, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Err(Code::kUnavailable, peer_ + ": " + ec.message());
  co_return Status::Ok();
}

asio::awaitable<bool> Connection::Handshake(proto::PeerKind* kind) {
  deadline_.expires_after(std::chrono::milliseconds(core_->limits.handshake_timeout_ms));
  deadline_.async_wait([this, self = shared_from_this()](asio::error_code ec) {
    if (!ec) {
      LOG_DEBUG("%s: no handshake within %d ms", peer_.c_str(), core_->limits.handshake_timeout_ms);
      CloseNow();
    }
  });
  auto send = [&](const Frame& f) -> asio::awaitable<asio::error_code> {
    std::array<char, kFrameHeaderBytes> h;
    EncodeFrameHeader(f, f.body.size(), 0, h.data());
    std::array<asio::const_buffer, 2> bufs{asio::buffer(h), asio::buffer(f.body)};
    asio::error_code ec;
    co_await asio::async_write(stream_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  };
  bool ok = false;
  Frame f;
  Status st = Status::Ok();
  // The client speaks first (rpc/tls.h): a TLS ClientHello, or a plaintext Hello frame.
  bool plaintext_refused = false;
  {
    unsigned char first = 0;
    asio::error_code ec;
    co_await stream_.socket().async_receive(asio::buffer(&first, 1), tcp::socket::message_peek,
                                            asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      st = Err(Code::kUnavailable, peer_ + ": " + ec.message());
    } else if (first == kTlsHandshakeRecord) {
      stream_.UseTls(TlsContext(core_->auth.cluster, core_->auth.key, true));
      co_await stream_.tls()->async_handshake(asio::ssl::stream_base::server,
                                              asio::redirect_error(asio::use_awaitable, ec));
      if (ec) st = Err(Code::kAuthFailed, "TLS handshake with " + peer_ + " (not a host of this cluster?): " + ec.message());
    } else {
      Frame hello;
      st = co_await ReadFrame(&hello, kMaxHandshakeFrameBytes);
      if (st.ok() && hello.type != static_cast<uint16_t>(proto::MsgType::kHello))
        st = Err(Code::kProtocol, "expected a TLS ClientHello or a Hello frame first");
      plaintext_refused = EncryptionOn();
    }
  }
  ServerHandshaker hs(core_->auth, plaintext_refused);
  if (st.ok())
    if (auto ec = co_await send(hs.challenge())) st = Err(Code::kUnavailable, ec.message());
  if (st.ok()) st = co_await ReadFrame(&f, kMaxHandshakeFrameBytes);
  while (st.ok()) {
    auto step = hs.OnFrame(f);
    if (step.reply) {
      if (auto ec = co_await send(*step.reply); ec && step.outcome.ok()) step.outcome = Err(Code::kUnavailable, ec.message());
    }
    st = step.outcome.status();
    if (st.ok() && step.more) {  // auth-node's next message, within the same deadline
      st = co_await ReadFrame(&f, kMaxHandshakeFrameBytes);
      continue;
    }
    if (step.outcome.ok() && step.outcome->password_auth) {
      if (core_->hook) core_->workers.Submit([core = core_, peer = peer_] { core->hook(peer); });
    } else if (step.outcome.ok()) {
      *kind = step.outcome->kind;
      ok = !closed_;
    }
    break;
  }
  deadline_.cancel();
  if (!st.ok()) {
    ++core_->failed;
    LOG_DEBUG("handshake with %s failed: %s", peer_.c_str(), st.ToString().c_str());
  }
  {
    std::lock_guard<std::mutex> l(core_->mu);
    --core_->pending;
    if (--core_->pending_by_source[source_] == 0) core_->pending_by_source.erase(source_);
  }
  co_return ok;
}

void Connection::Dispatch(Frame f, proto::PeerKind kind) {
  auto self = shared_from_this();
  if (core_->run_inline && core_->run_inline(f)) {
    ServerConn conn(self, kind);
    core_->handler(conn, f);
    core_->payloads.Give(std::move(f.payload));
    return;
  }
  ++inflight_;
  bool queued = core_->workers.Submit([self, kind, f = std::move(f)]() mutable {
    ServerConn conn(self, kind);
    self->core_->handler(conn, f);
    self->core_->payloads.Give(std::move(f.payload));
    // The reader sets reader_waiting_ and then looks at inflight_ again before it waits
    // (both on its strand, seq_cst): either it sees this decrement or this sees its flag.
    self->inflight_.fetch_sub(1);
    if (self->reader_waiting_.load()) asio::post(self->strand_, [self] { self->resume_.cancel(); });
  });
  if (!queued) {
    --inflight_;
    CloseNow();
  }
}

asio::awaitable<void> Connection::Run() {
  auto self = shared_from_this();
  proto::PeerKind kind = proto::PeerKind::kClient;
  if (co_await Handshake(&kind)) {
    const size_t cap = size_t{kMaxMessageBytes} + kMaxPayloadBytes;
    while (!closed_) {
      while (AtLimit() && !closed_) {
        ++core_->paused;
        reader_waiting_ = true;
        if (!AtLimit()) {  // a handler finished meanwhile
          reader_waiting_ = false;
          break;
        }
        resume_.expires_at(asio::steady_timer::time_point::max());
        asio::error_code ec;
        co_await resume_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        reader_waiting_ = false;
      }
      if (closed_) break;
      Frame f;
      Status st = co_await ReadFrame(&f, cap);
      if (!st.ok()) {
        if (st.code() == Code::kProtocol) LOG_WARN("%s: %s; closing the connection", peer_.c_str(), st.ToString().c_str());
        break;
      }
      Dispatch(std::move(f), kind);
    }
  }
  CloseNow();
  std::lock_guard<std::mutex> l(core_->mu);
  --core_->conns;
}

}  // namespace detail

using detail::Connection;
using detail::PendingWrite;
using detail::ServerCore;

ServerConn::ServerConn(std::shared_ptr<Connection> c, proto::PeerKind kind) : conn_(std::move(c)), kind_(kind) {}

std::string ServerConn::peer() const { return conn_->peer(); }

Status ServerConn::ReplyError(const Frame& req, const Status& st) {
  return Send(req, kFlagResponse | kFlagError,
              proto::EncodeToString(proto::ErrorReply{static_cast<uint16_t>(st.code()), st.message()}), nullptr, 0);
}

Status ServerConn::Send(const Frame& req, uint32_t flags, std::string body, const char* payload, size_t payload_len) {
  if (body.size() > kMaxMessageBytes || payload_len > kMaxPayloadBytes)
    return Err(Code::kInternal, "reply too large for a frame");
  Frame h;
  h.type = req.type;
  h.req_id = req.req_id;
  h.flags = flags;
  if (payload_len <= kMaxCopiedReplyPayloadBytes) {
    // Queued and left: the handler's thread does not wait for the I/O thread to write it
    // (two thread switches per request saved). A small payload is copied for that.
    auto* w = new PendingWrite;
    w->owned = true;
    EncodeFrameHeader(h, body.size(), payload_len, w->header.data());
    w->body = std::move(body);
    if (payload_len > 0) {
      w->payload_copy.assign(payload, payload_len);
      w->payload = w->payload_copy.data();
      w->payload_len = payload_len;
    }
    conn_->Post(w);
    return Status::Ok();
  }
  VS_CHECK(!detail::tls_server_io_thread);  // it would wait for its own thread
  PendingWrite w;
  EncodeFrameHeader(h, body.size(), payload_len, w.header.data());
  w.body = std::move(body);
  w.payload = payload;
  w.payload_len = payload_len;
  return conn_->Write(&w);
}

void ServerConn::PostEncoded(const Frame& req, std::string body) {
  (void)Send(req, kFlagResponse, std::move(body), nullptr, 0);  // no payload: queued, never waits
}

Server::Server() : Server(ServerLimits{}) {}
Server::Server(ServerLimits limits) : core_(std::make_shared<ServerCore>(limits)) {}
Server::~Server() { Stop(); }

Status Server::Listen(const HostPort& addr) {
  // Every connection is a descriptor: the default soft limit (often 1024) would cap the
  // server far below kMaxServerConnections, so take what the hard limit allows.
  rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
  asio::error_code ec;
  tcp::resolver resolver(core_->io);
  auto results = resolver.resolve(addr.host.empty() ? "0.0.0.0" : addr.host, std::to_string(addr.port),
                                  tcp::resolver::passive, ec);
  if (ec || results.empty())
    return Err(Code::kInvalidArgument, "cannot resolve " + addr.host + ": " + ec.message());
  tcp::endpoint ep = results.begin()->endpoint();
  tcp::acceptor acc(core_->io);
  acc.open(ep.protocol(), ec);
  if (ec) return Err(Code::kIoError, "socket: " + ec.message());
  acc.set_option(tcp::acceptor::reuse_address(true), ec);
  acc.bind(ep, ec);
  if (ec) {
    bool in_use = ec == asio::error::address_in_use;
    return Err(in_use ? Code::kBusy : Code::kIoError,
               "cannot listen on " + addr.str() + ": " + ec.message() +
                   (in_use ? " (another service uses this port; pick another with -a)" : ""));
  }
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Err(Code::kIoError, "listen: " + ec.message());
  port_ = acc.local_endpoint().port();
  core_->acceptor.emplace(std::move(acc));
  return Status::Ok();
}

static asio::awaitable<void> AcceptLoop(std::shared_ptr<ServerCore> core) {
  asio::steady_timer backoff(core->io);
  for (;;) {
    asio::error_code ec;
    tcp::socket s = co_await core->acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (core->stopping) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      continue;
    }
    s.set_option(tcp::no_delay(true), ec);
    auto remote = s.remote_endpoint(ec);
    std::string source = ec ? "?" : remote.address().to_string();
    std::shared_ptr<Connection> c;
    {
      std::lock_guard<std::mutex> l(core->mu);
      auto& per_source = core->pending_by_source[source];
      if (core->conns >= core->limits.max_connections || core->pending >= core->limits.max_pending_handshakes ||
          per_source >= core->limits.max_pending_handshakes_per_source) {
        if (per_source == 0) core->pending_by_source.erase(source);
        ++core->refused;
        LOG_DEBUG("refusing a connection from %s: %d connections, %d handshakes pending", source.c_str(),
                  core->conns, core->pending);
        s.close(ec);
        continue;
      }
      ++per_source;
      ++core->pending;
      ++core->conns;
      for (auto it = core->live.begin(); it != core->live.end();)
        it = it->expired() ? core->live.erase(it) : std::next(it);
      c = std::make_shared<Connection>(core, std::move(s), source);
      core->live.push_back(c);
    }
    asio::co_spawn(c->strand(), c->Run(), asio::detached);
  }
}

bool Server::OnIoThread() { return detail::tls_server_io_thread; }

void Server::Start(ServerAuth auth, Handler handler, AuthNodeHook hook, InlineFilter run_inline) {
  core_->auth = std::move(auth);
  core_->handler = std::move(handler);
  core_->hook = std::move(hook);
  core_->run_inline = std::move(run_inline);
  core_->work.emplace(core_->io.get_executor());
  asio::co_spawn(core_->io, AcceptLoop(core_), asio::detached);
  for (int i = 0; i < kServerIoThreads; ++i)
    core_->io_threads.emplace_back([core = core_.get()] {
      detail::tls_server_io_thread = true;
      core->io.run();
    });
  started_ = true;
}

void Server::Stop() {
  if (core_->stopping.exchange(true)) return;
  if (!started_) return;
  asio::post(core_->io, [core = core_] {
    asio::error_code ec;
    if (core->acceptor) core->acceptor->close(ec);
  });
  {
    std::lock_guard<std::mutex> l(core_->mu);
    for (auto& w : core_->live)
      if (auto c = w.lock()) c->Close();
  }
  // Handlers still running reply into closed connections and return; one stuck on a dead
  // peer is left to finish on its own (it holds the core alive).
  core_->workers.Stop();
  core_->work.reset();
  // Every coroutine and timer ends once its socket is closed, and the I/O threads return
  // when no work is left. Stopping the loop before that would leave coroutine frames in it,
  // each holding its connection and through it the core that owns the loop: a cycle never
  // freed. So wait for the loop to run dry; stop it only if it will not (bounded).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!core_->io.stopped() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (!core_->io.stopped()) LOG_WARN("RPC server: connections still busy after 5 s; stopping the loop");
  core_->io.stop();
  for (auto& t : core_->io_threads) t.join();
  core_->io_threads.clear();
}

Server::Stats Server::stats() const {
  Stats s;
  {
    std::lock_guard<std::mutex> l(core_->mu);
    s.connections = core_->conns;
    s.pending_handshakes = core_->pending;
  }
  s.refused_handshakes = core_->refused;
  s.failed_handshakes = core_->failed;
  s.paused_reads = core_->paused;
  s.pooled_payloads = core_->payloads.pooled();
  s.worker_threads = core_->workers.threads();
  return s;
}

}  // namespace vstorage::rpc
