// Framing: every message is a 32-byte header, an encoded body (proto/messages.h) and an
// optional raw payload (chunk data), so data is never copied into a message.
//
// Header (little-endian): u32 magic "VSTG" | u16 protocol version | u16 MsgType |
//   u64 request id | u32 flags | u32 body length | u32 payload length | u32 reserved (0).
#pragma once
#include <cstdint>
#include <string>

#include "common/status.h"

namespace vstorage::rpc {

inline constexpr uint32_t kFrameMagic = 0x47545356;  // "VSTG" on the wire
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 32;
enum FrameFlags : uint32_t { kFlagResponse = 1, kFlagError = 2 };

struct Frame {
  uint16_t type = 0;
  uint64_t req_id = 0;
  uint32_t flags = 0;
  std::string body;
  std::string payload;
};

// Encodes a header for a frame with the given body/payload sizes into out[32].
void EncodeFrameHeader(const Frame& f, size_t body_len, size_t payload_len, char* out);
struct FrameHeader {
  uint16_t type;
  uint64_t req_id;
  uint32_t flags;
  uint32_t body_len;
  uint32_t payload_len;
};
// Validates magic, version and the size limits of limits.h.
Result<FrameHeader> DecodeFrameHeader(const char* in);

}  // namespace vstorage::rpc
