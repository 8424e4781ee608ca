#include "rpc/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace vstorage::rpc {

Socket::~Socket() { Close(); }

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void Socket::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Socket::Shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

static void Tune(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Result<Socket> Socket::Connect(const HostPort& addr, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(addr.host.c_str(), std::to_string(addr.port).c_str(), &hints, &res);
  if (rc != 0)
    return Err(Code::kUnavailable, "cannot resolve " + addr.host + ": " + gai_strerror(rc));
  Status last = Err(Code::kUnavailable, "no address for " + addr.str());
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms);
      if (rc == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err ? -1 : 0;
        errno = err;
      } else {
        rc = -1;
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      Tune(fd);
      ::freeaddrinfo(res);
      return Socket(fd);
    }
    last = Err(Code::kUnavailable, "cannot connect to " + addr.str() + ": " + std::strerror(errno));
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return last;
}

Status Socket::Send(const Frame& f, const char* payload, size_t payload_len) {
  if (fd_ < 0) return Err(Code::kUnavailable, "connection closed");
  if (!payload && !f.payload.empty()) {
    payload = f.payload.data();
    payload_len = f.payload.size();
  }
  char hdr[kFrameHeaderBytes];
  EncodeFrameHeader(f, f.body.size(), payload_len, hdr);
  iovec iov[3] = {{hdr, sizeof hdr},
                  {const_cast<char*>(f.body.data()), f.body.size()},
                  {const_cast<char*>(payload), payload_len}};
  int iovcnt = 3;
  iovec* v = iov;
  while (iovcnt > 0) {
    ssize_t n = ::writev(fd_, v, iovcnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      // EFAULT and EINVAL name this process's own buffers or arguments, not the peer; part of
      // a frame may have gone out, so the connection is unusable either way.
      if (e == EFAULT || e == EINVAL) {
        Close();
        return Err(Code::kInternal, std::string("send failed: ") + std::strerror(e) +
                                        " (a buffer of this process, not a fault of the peer)");
      }
      return Err(Code::kUnavailable, std::string("send failed: ") + std::strerror(e));
    }
    size_t left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --iovcnt;
    }
    if (iovcnt > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return Status::Ok();
}

Status Socket::ReadFull(char* p, size_t n, int timeout_ms) {
  while (n > 0) {
    if (timeout_ms >= 0) {
      pollfd pf{fd_, POLLIN, 0};
      int rc = ::poll(&pf, 1, timeout_ms);
      if (rc == 0) return Err(Code::kTimeout, "no reply within " + std::to_string(timeout_ms) + " ms");
      if (rc < 0 && errno != EINTR) return Err(Code::kUnavailable, std::strerror(errno));
    }
    ssize_t r = ::recv(fd_, p, n, 0);
    if (r == 0) return Err(Code::kUnavailable, "connection closed by peer");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EFAULT) {
        Close();
        return Err(Code::kInternal, "receive failed: Bad address (a buffer of this process, not a fault of the peer)");
      }
      return Err(Code::kUnavailable, std::string("receive failed: ") + std::strerror(errno));
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status Socket::Recv(Frame* f, int timeout_ms, char* payload_out, size_t payload_cap,
                    size_t* payload_len) {
  if (fd_ < 0) return Err(Code::kUnavailable, "connection closed");
  char hdr[kFrameHeaderBytes];
  RETURN_IF_ERROR(ReadFull(hdr, sizeof hdr, timeout_ms));
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(hdr));
  f->type = h.type;
  f->req_id = h.req_id;
  f->flags = h.flags;
  f->body.resize(h.body_len);
  // Once a header arrived the rest follows promptly; a stalled peer still times out.
  int rest_timeout = timeout_ms < 0 ? 60000 : timeout_ms;
  if (h.body_len) RETURN_IF_ERROR(ReadFull(f->body.data(), h.body_len, rest_timeout));
  if (payload_out && h.payload_len <= payload_cap) {
    f->payload.clear();
    if (h.payload_len) RETURN_IF_ERROR(ReadFull(payload_out, h.payload_len, rest_timeout));
    if (payload_len) *payload_len = h.payload_len;
  } else {
    f->payload.resize(h.payload_len);
    if (h.payload_len) RETURN_IF_ERROR(ReadFull(f->payload.data(), h.payload_len, rest_timeout));
    if (payload_len) *payload_len = h.payload_len;
  }
  return Status::Ok();
}

std::string Socket::PeerAddress() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace vstorage::rpc
