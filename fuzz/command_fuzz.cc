// Journal commands (mds/commands.h) and the records of mds/state.h.
//
// Selector byte < number of record types: the rest is that record, decoded both ways and
// round-tripped (fuzz_util.h). Otherwise the rest is a sequence of commands, each
// [u8 CommandType][u16 body length][body], applied to a small cluster (fuzz_mds.h) the way
// a replayed journal applies them. Checked: a command that fails changes nothing (the
// contract of MdsState::Apply), and every state reached loads back from its own snapshot
// image.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_mds.h"

namespace {

using DecodeFn = void (*)(std::string_view);
#define VSFUZZ_TYPE(T) +[](std::string_view in) { vsfuzz::DecodeAndRoundTrip<vstorage::mds::T>(in, #T); },
constexpr DecodeFn kTypes[] = {
#include "command_types.inc"
#include "state_types.inc"
};
#undef VSFUZZ_TYPE
constexpr size_t kNumTypes = sizeof(kTypes) / sizeof(kTypes[0]);
static_assert(kNumTypes < 128, "selectors must reach every record type and leave room for the apply mode");

const vstorage::mds::MdsState* g_base = nullptr;

void ApplySequence(std::string_view in) {
  using namespace vstorage::mds;
  MdsState s = *g_base;
  int64_t t = vsfuzz::kBaseTimeMs + 1000;
  size_t off = 0;
  for (int i = 0; i < 32 && off + 3 <= in.size(); ++i) {
    Command c;
    c.type = static_cast<CommandType>(static_cast<uint8_t>(in[off]));
    uint16_t len;
    std::memcpy(&len, in.data() + off + 1, 2);
    off += 3;
    len = static_cast<uint16_t>(std::min<size_t>(len, in.size() - off));
    c.body.assign(in.data() + off, len);
    off += len;
    c.time_ms = ++t;
    c.time_ns = (i & 1) ? t * 1000000 : 0;  // records written before time_ns carry 0
    std::string before = s.Encode();
    auto r = s.Apply(c);
    if (!r.ok()) {
      VSFUZZ_CHECK(s.Encode() == before, "command %d failed (%s) but changed the state", static_cast<int>(c.type),
                   r.status().ToString().c_str());
    }
  }
  vsfuzz::CheckSnapshotRoundTrip(s, "state after fuzzed commands");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vsfuzz::Init();
  g_base = new vstorage::mds::MdsState(vsfuzz::BaseState());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] < kNumTypes) kTypes[data[0]](rest);
  else ApplySequence(rest);
  return 0;
}
