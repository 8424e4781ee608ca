// Field-list codec: a message is a plain struct that lists its fields once with VS_FIELDS(...);
// Encode/Decode follow from the list. Stored records read with DecodeStoredRecord keep
// decoding after a field is appended (the new field takes its default). Supported field types: bool, unsigned/signed integers,
// std::string, StrongId, std::vector<T>, std::map<std::string,std::string>, and nested structs
// that use VS_FIELDS themselves. Appending a field at the end of a struct is the only
// compatible change; anything else bumps kProtocolVersion (rpc/frame.h).
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "common/limits.h"
#include "common/serde.h"

namespace vstorage::proto {

template <typename T>
concept HasFields = requires(const T& t, T& m, Encoder& e, Decoder& d) {
  t.Encode(e);
  m.Decode(d);
};

inline void Put(Encoder& e, bool v) { e.Bool(v); }
inline void Put(Encoder& e, const std::string& v) { e.Str(v); }
template <typename T>
  requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
void Put(Encoder& e, T v) {
  if constexpr (sizeof(T) == 1) e.U8(static_cast<uint8_t>(v));
  else if constexpr (sizeof(T) == 2) e.U16(static_cast<uint16_t>(v));
  else if constexpr (sizeof(T) == 4) e.U32(static_cast<uint32_t>(v));
  else e.U64(static_cast<uint64_t>(v));
}
template <typename T>
  requires std::is_enum_v<T>
void Put(Encoder& e, T v) { Put(e, static_cast<std::underlying_type_t<T>>(v)); }
template <typename Tag>
void Put(Encoder& e, StrongId<Tag> v) { e.U64(v.v); }
template <HasFields T>
void Put(Encoder& e, const T& v) { v.Encode(e); }
template <typename T>
void Put(Encoder& e, const std::vector<T>& v) {
  e.U32(static_cast<uint32_t>(v.size()));
  for (const auto& x : v) Put(e, x);
}
inline void Put(Encoder& e, const std::map<std::string, std::string>& m) {
  e.U32(static_cast<uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    e.Str(k);
    e.Str(v);
  }
}

inline bool Get(Decoder& d, bool* v) { return d.Bool(v); }
inline bool Get(Decoder& d, std::string* v) { return d.Str(v); }
template <typename T>
  requires std::is_integral_v<T> && (!std::is_same_v<T, bool>)
bool Get(Decoder& d, T* v) {
  if constexpr (sizeof(T) == 1) { uint8_t x; if (!d.U8(&x)) return false; *v = static_cast<T>(x); }
  else if constexpr (sizeof(T) == 2) { uint16_t x; if (!d.U16(&x)) return false; *v = static_cast<T>(x); }
  else if constexpr (sizeof(T) == 4) { uint32_t x; if (!d.U32(&x)) return false; *v = static_cast<T>(x); }
  else { uint64_t x; if (!d.U64(&x)) return false; *v = static_cast<T>(x); }
  return true;
}
template <typename T>
  requires std::is_enum_v<T>
bool Get(Decoder& d, T* v) {
  std::underlying_type_t<T> x;
  if (!Get(d, &x)) return false;
  *v = static_cast<T>(x);
  return true;
}
template <typename Tag>
bool Get(Decoder& d, StrongId<Tag>* v) { return d.U64(&v->v); }
template <HasFields T>
bool Get(Decoder& d, T* v) { return v->Decode(d); }
template <typename T>
bool Get(Decoder& d, std::vector<T>* v) {
  uint32_t n;
  if (!d.Count(&n)) return false;
  v->clear();
  // n <= the bytes left, but an element takes more memory than its one byte on the wire:
  // allocating n of them up front would let a 16 MiB message ask for gigabytes.
  v->reserve(std::min<size_t>(n, kMaxDecodeReserveBytes / sizeof(T)));
  for (uint32_t i = 0; i < n; ++i)
    if (!Get(d, &v->emplace_back())) return false;
  return true;
}
inline bool Get(Decoder& d, std::map<std::string, std::string>* m) {
  uint32_t n;
  if (!d.Count(&n, 8)) return false;
  m->clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!d.Str(&k) || !d.Str(&v)) return false;
    (*m)[k] = v;
  }
  return true;
}

template <typename... T>
void PutAll(Encoder& e, const T&... v) { (Put(e, v), ...); }
template <typename... T>
bool GetAll(Decoder& d, T&... v) { return (Get(d, &v) && ...); }
// For a whole message: fields missing at the end (written before they were appended) keep
// their defaults, so old journal records and older peers still decode.
template <typename... T>
bool GetAllOrDefault(Decoder& d, T&... v) {
  bool ok = true;
  ((ok = ok && (d.done() || Get(d, &v))), ...);
  return ok;
}

// Encodes a message into a fresh string.
template <HasFields T>
std::string EncodeToString(const T& m) {
  std::string s;
  Encoder e(&s);
  m.Encode(e);
  return s;
}
// Decodes a whole buffer; trailing bytes are accepted (newer peers may append fields).
template <HasFields T>
Status DecodeFromString(std::string_view s, T* m, const char* what) {
  Decoder d(s);
  if (!m->Decode(d)) return Err(Code::kProtocol, std::string("malformed ") + what);
  return Status::Ok();
}
// The same, for records stored before fields were appended (journal commands): fields
// missing at the end keep their defaults. Only the outermost message can tell (a nested
// struct is read in full), and a record cut short at a field boundary is not detected here:
// the journal's own CRC does that.
template <HasFields T>
Status DecodeStoredRecord(std::string_view s, T* m, const char* what) {
  Decoder d(s);
  if (!m->DecodeOrDefault(d)) return Err(Code::kProtocol, std::string("malformed ") + what);
  return Status::Ok();
}

}  // namespace vstorage::proto

#define VS_FIELDS(...)                                                                  \
  void Encode(::vstorage::Encoder& e) const { ::vstorage::proto::PutAll(e, __VA_ARGS__); } \
  bool Decode(::vstorage::Decoder& d) { return ::vstorage::proto::GetAll(d, __VA_ARGS__); } \
  bool DecodeOrDefault(::vstorage::Decoder& d) { return ::vstorage::proto::GetAllOrDefault(d, __VA_ARGS__); }
