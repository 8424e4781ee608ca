// A blocking TCP socket carrying frames. Not thread-safe: one user at a time.
#pragma once
#include <string>

#include "common/config.h"
#include "rpc/frame.h"

namespace vstorage::rpc {

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Connects with a timeout. kUnavailable names the address when nothing answers.
  static Result<Socket> Connect(const HostPort& addr, int timeout_ms);

  // Sends header + body + payload with one writev (payload may be null/0). kUnavailable when
  // the peer or the network failed; kInternal (and the socket closed) when the fault is this
  // process's (EFAULT: a bad buffer), which must never be blamed on the peer.
  Status Send(const Frame& f, const char* payload = nullptr, size_t payload_len = 0);
  // Receives one frame. timeout_ms < 0 waits forever. Payload goes into f->payload unless
  // payload_out is given and large enough, in which case it is read there directly
  // (f->payload stays empty and *payload_len is set).
  Status Recv(Frame* f, int timeout_ms, char* payload_out = nullptr, size_t payload_cap = 0,
              size_t* payload_len = nullptr);
  void Close();
  void Shutdown();
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  std::string PeerAddress() const;

 private:
  Status ReadFull(char* p, size_t n, int timeout_ms);
  int fd_ = -1;
};

}  // namespace vstorage::rpc
