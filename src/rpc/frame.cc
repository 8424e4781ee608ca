#include "rpc/frame.h"

#include <cstring>

#include "common/limits.h"

namespace vstorage::rpc {

template <typename T>
static void PutLe(char*& p, T v) {
  std::memcpy(p, &v, sizeof v);
  p += sizeof v;
}
template <typename T>
static T GetLe(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

void EncodeFrameHeader(const Frame& f, size_t body_len, size_t payload_len, char* out) {
  char* p = out;
  PutLe<uint32_t>(p, kFrameMagic);
  PutLe<uint16_t>(p, kProtocolVersion);
  PutLe<uint16_t>(p, f.type);
  PutLe<uint64_t>(p, f.req_id);
  PutLe<uint32_t>(p, f.flags);
  PutLe<uint32_t>(p, static_cast<uint32_t>(body_len));
  PutLe<uint32_t>(p, static_cast<uint32_t>(payload_len));
  PutLe<uint32_t>(p, 0);
}

Result<FrameHeader> DecodeFrameHeader(const char* in) {
  const char* p = in;
  if (GetLe<uint32_t>(p) != kFrameMagic)
    return Err(Code::kProtocol, "bad frame magic: peer is not a vstorage service");
  uint16_t version = GetLe<uint16_t>(p);
  if (version != kProtocolVersion)
    return Err(Code::kProtocol, "unsupported protocol version " + std::to_string(version));
  FrameHeader h;
  h.type = GetLe<uint16_t>(p);
  h.req_id = GetLe<uint64_t>(p);
  h.flags = GetLe<uint32_t>(p);
  h.body_len = GetLe<uint32_t>(p);
  h.payload_len = GetLe<uint32_t>(p);
  if (h.body_len > kMaxMessageBytes) return Err(Code::kProtocol, "message body too large");
  if (h.payload_len > kMaxPayloadBytes) return Err(Code::kProtocol, "payload too large");
  return h;
}

}  // namespace vstorage::rpc
