// Helpers shared by the libFuzzer harnesses (fuzz/README.md).
//
//  * Check(): a failed property of the code under test aborts, so libFuzzer keeps the input.
//  * AllocGuard: the rule of limits.h ("a length read from untrusted bytes never sizes an
//    allocation before it is checked against a named limit") made visible on small inputs:
//    while a guard lives, no single allocation may exceed its bound (by default
//    kMaxAllocPerInputByte per input byte plus kAllocSlackBytes). A decoder that trusts a
//    count and allocates count * sizeof(T) before reading the elements trips it long before
//    -malloc_limit_mb would on a 16 MiB input.
//  * Container: several files (or records) packed into one input as [u8 kind][u32 len][bytes].
//  * TempDir: a fresh directory under /dev/shm (tmpfs: fsync costs nothing) or $TMPDIR.
//
// Harnesses are single-threaded; the hooks below are not meant for concurrent guards.
#pragma once
#include <sanitizer/allocator_interface.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "proto/codec.h"

namespace vsfuzz {

// What a decoder that grows with what it has decoded needs: a vector of strings (4 bytes on
// the wire, 32 in memory) at twice its size while it grows is the worst case; the slack
// covers a reserve of vstorage::kMaxDecodeReserveBytes and fixed buffers.
inline constexpr size_t kMaxAllocPerInputByte = 16;
inline constexpr size_t kAllocSlackBytes = 256u << 10;

#define VSFUZZ_CHECK(cond, ...)                                                        \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "FUZZ CHECK FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                               \
      std::fprintf(stderr, "\n");                                                      \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace internal {
inline std::atomic<size_t> g_limit{0};  // 0: no guard active
inline void MallocHook(const volatile void*, size_t n) {
  size_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit && n > limit) {
    // No allocation here: report with write(2) and stop where the allocation is made, so
    // the stack (printed by the sanitizer on abort) shows the decoder that asked for it.
    char msg[160];
    int len = std::snprintf(msg, sizeof msg,
                            "\nFUZZ CHECK FAILED: allocation of %zu bytes while decoding; the guard allows %zu "
                            "(a length from the input sized an allocation unchecked)\n",
                            n, limit);
    if (len > 0) (void)!::write(2, msg, static_cast<size_t>(len));
    g_limit.store(0);
    std::abort();
  }
}
inline void FreeHook(const volatile void*) {}
}  // namespace internal

// Installs the allocation hooks and silences the project's logging. Call once, from
// LLVMFuzzerInitialize.
inline void Init() {
  __sanitizer_install_malloc_and_free_hooks(internal::MallocHook, internal::FreeHook);
  vstorage::SetLogLevel(static_cast<vstorage::LogLevel>(static_cast<int>(vstorage::LogLevel::kError) + 1));
}

class AllocGuard {
 public:
  // Bound from the size of the untrusted input being decoded.
  explicit AllocGuard(size_t input_bytes)
      : AllocGuard(Absolute{input_bytes * kMaxAllocPerInputByte + kAllocSlackBytes}) {}
  struct Absolute {
    size_t bytes;
  };
  explicit AllocGuard(Absolute limit) { internal::g_limit.store(limit.bytes); }
  ~AllocGuard() { internal::g_limit.store(0); }
  AllocGuard(const AllocGuard&) = delete;
  AllocGuard& operator=(const AllocGuard&) = delete;
};

// Reads the [u8 kind][u32 len][bytes] entries of an input; a short last entry takes what is
// left, so every input means something.
struct Entry {
  uint8_t kind;
  std::string_view bytes;
};
inline std::vector<Entry> SplitEntries(std::string_view in, size_t max_entries = 64) {
  std::vector<Entry> out;
  size_t off = 0;
  while (off < in.size() && out.size() < max_entries) {
    uint8_t kind = static_cast<uint8_t>(in[off++]);
    uint32_t len = 0;
    size_t n = std::min<size_t>(4, in.size() - off);
    std::memcpy(&len, in.data() + off, n);
    off += n;
    len = static_cast<uint32_t>(std::min<size_t>(len, in.size() - off));
    out.push_back({kind, in.substr(off, len)});
    off += len;
  }
  return out;
}
inline void AppendEntry(std::string* out, uint8_t kind, std::string_view bytes) {
  out->push_back(static_cast<char>(kind));
  uint32_t len = static_cast<uint32_t>(bytes.size());
  out->append(reinterpret_cast<const char*>(&len), 4);
  out->append(bytes);
}

// A directory made at construction and removed (with its contents) at destruction.
class TempDir {
 public:
  explicit TempDir(const char* prefix) {
    std::string base = "/dev/shm";
    if (::access(base.c_str(), W_OK) != 0) {
      const char* t = std::getenv("TMPDIR");
      base = t && *t ? t : "/tmp";
    }
    std::string tmpl = base + "/" + prefix + "XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    VSFUZZ_CHECK(::mkdtemp(buf.data()) != nullptr, "mkdtemp %s", tmpl.c_str());
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // Empties the directory, keeping it.
  void Clear() const {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path_, ec)) std::filesystem::remove_all(e.path(), ec);
  }

 private:
  std::string path_;
};

// The round trip every field-list codec must keep: what decodes re-encodes to bytes that
// decode again (strictly, as a peer would read them) and re-encode to the same bytes.
template <typename T>
void CheckRoundTrip(const T& m, const char* name) {
  std::string e1 = vstorage::proto::EncodeToString(m);
  T m2;
  vstorage::Status st = vstorage::proto::DecodeFromString(e1, &m2, name);
  VSFUZZ_CHECK(st.ok(), "%s: re-encoded message does not decode: %s", name, st.ToString().c_str());
  vstorage::Decoder d(e1);
  T m3;
  VSFUZZ_CHECK(m3.Decode(d) && d.done(), "%s: re-encoded message is not consumed exactly", name);
  std::string e2 = vstorage::proto::EncodeToString(m2);
  VSFUZZ_CHECK(e1 == e2, "%s: encode(decode(encode(m))) != encode(m) (%zu vs %zu bytes)", name, e1.size(),
               e2.size());
}

// Decodes `in` as T both ways a peer or the journal does (DecodeFromString: strict, trailing
// bytes allowed; DecodeStoredRecord: missing trailing fields take defaults) under an
// AllocGuard, and checks the round trip of whatever decodes.
template <typename T>
void DecodeAndRoundTrip(std::string_view in, const char* name) {
  {
    T m;
    vstorage::Status st;
    {
      AllocGuard g(in.size());
      st = vstorage::proto::DecodeFromString(in, &m, name);
    }
    if (st.ok()) CheckRoundTrip(m, name);
  }
  {
    T m;
    vstorage::Status st;
    {
      AllocGuard g(in.size());
      st = vstorage::proto::DecodeStoredRecord(in, &m, name);
    }
    if (st.ok()) CheckRoundTrip(m, name);
  }
}

}  // namespace vsfuzz
