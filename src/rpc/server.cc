#include "rpc/server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace vstorage::rpc {

Status ServerConn::ReplyError(const Frame& req, const Status& st) {
  Frame f;
  f.type = req.type;
  f.req_id = req.req_id;
  f.flags = kFlagResponse | kFlagError;
  f.body = proto::EncodeToString(
      proto::ErrorReply{static_cast<uint16_t>(st.code()), st.message()});
  return sock_.Send(f);
}

Server::~Server() { Stop(); }

Status Server::Listen(const HostPort& addr) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(addr.host.empty() ? nullptr : addr.host.c_str(),
                         std::to_string(addr.port).c_str(), &hints, &res);
  if (rc != 0) return Err(Code::kInvalidArgument, "cannot resolve " + addr.host + ": " + gai_strerror(rc));
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return Err(Code::kIoError, std::string("socket: ") + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int e = errno;
    ::close(fd);
    ::freeaddrinfo(res);
    return Err(e == EADDRINUSE ? Code::kBusy : Code::kIoError,
               "cannot listen on " + addr.str() + ": " + std::strerror(e) +
                   (e == EADDRINUSE ? " (another service uses this port; pick another with -a)" : ""));
  }
  ::freeaddrinfo(res);
  if (::listen(fd, 128) != 0) {
    ::close(fd);
    return Err(Code::kIoError, std::string("listen: ") + std::strerror(errno));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  listen_fd_ = fd;
  return Status::Ok();
}

void Server::Start(ServerAuth auth, Handler handler, AuthNodeHook hook) {
  auth_ = std::move(auth);
  handler_ = std::move(handler);
  hook_ = std::move(hook);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

void Server::Stop() {
  if (stop_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& w : live_)
      if (auto s = w.lock()) s->Shutdown();
  }
  // Connection threads are detached; wait until they are gone so handlers never outlive us.
  for (int i = 0; i < 500 && conns_.load() > 0; ++i) ::usleep(10000);
}

void Server::AcceptLoop() {
  while (!stop_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stop_) break;
      if (errno == EMFILE || errno == ENFILE) {
        ::usleep(100000);
        continue;
      }
      break;
    }
    if (conns_.load() >= kMaxServerConnections) {
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto s = std::make_shared<Socket>(fd);
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto it = live_.begin(); it != live_.end();)
        it = it->expired() ? live_.erase(it) : std::next(it);
      live_.push_back(s);
    }
    ++conns_;
    std::thread([this, s] {
      Serve(s);
      --conns_;
    }).detach();
  }
}

void Server::Serve(std::shared_ptr<Socket> s) {
  auto hs = ServerHandshake(*s, auth_);
  if (!hs.ok()) {
    LOG_DEBUG("handshake with %s failed: %s", s->PeerAddress().c_str(),
              hs.status().ToString().c_str());
    return;
  }
  if (hs->password_auth) {
    if (hook_) hook_(s->PeerAddress());
    return;
  }
  ServerConn conn(*s, hs->kind);
  Frame req;
  while (!stop_) {
    Status st = conn.socket().Recv(&req, -1);
    if (!st.ok()) break;
    handler_(conn, req);
  }
}

}  // namespace vstorage::rpc
