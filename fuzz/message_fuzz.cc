// Every message of proto/messages.h: the first byte picks the type (every one is reachable:
// the list is generated from the header), the rest is its encoded body. Whatever decodes,
// strictly or as a stored record, must round-trip (fuzz_util.h), and no decode may allocate
// more than the AllocGuard allows.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "proto/messages.h"

namespace {

using DecodeFn = void (*)(std::string_view);
#define VSFUZZ_TYPE(T) +[](std::string_view in) { vsfuzz::DecodeAndRoundTrip<vstorage::proto::T>(in, #T); },
constexpr DecodeFn kTypes[] = {
#include "message_types.inc"
};
#undef VSFUZZ_TYPE
constexpr size_t kNumTypes = sizeof(kTypes) / sizeof(kTypes[0]);
static_assert(kNumTypes <= 256, "one selector byte must reach every message type");

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  kTypes[data[0] % kNumTypes](body);
  return 0;
}
