// Little-endian binary encoding used for every wire message and on-disk record.
// Encoder appends to a std::string; Decoder reads with bounds checks and reports
// malformed input as Code::kProtocol instead of crashing.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace vstorage {

class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void I64(int64_t v) { Raw(&v, 8); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }
  template <typename Tag>
  void Id(StrongId<Tag> id) { U64(id.v); }
  template <typename Tag>
  void Ids(const std::vector<StrongId<Tag>>& ids) {
    U32(static_cast<uint32_t>(ids.size()));
    for (auto id : ids) U64(id.v);
  }
  void Raw(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }
  std::string* out() { return out_; }

 private:
  std::string* out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) { return Raw(v, 1); }
  bool U16(uint16_t* v) { return Raw(v, 2); }
  bool U32(uint32_t* v) { return Raw(v, 4); }
  bool U64(uint64_t* v) { return Raw(v, 8); }
  bool I64(int64_t* v) { return Raw(v, 8); }
  bool Bool(bool* v) {
    uint8_t b;
    if (!U8(&b) || b > 1) return Fail();
    *v = b;
    return true;
  }
  bool Str(std::string* s, uint32_t max_bytes = 1u << 24) {
    uint32_t n;
    if (!U32(&n) || n > max_bytes || n > in_.size() - pos_) return Fail();
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename Tag>
  bool Id(StrongId<Tag>* id) { return U64(&id->v); }
  template <typename Tag>
  bool Ids(std::vector<StrongId<Tag>>* ids, uint32_t max_count = 1u << 20) {
    uint32_t n;
    if (!U32(&n) || n > max_count || uint64_t(n) * 8 > in_.size() - pos_) return Fail();
    ids->resize(n);
    for (auto& id : *ids) U64(&id.v);
    return true;
  }
  // Reads a count that prefixes a sequence of elements of at least min_elem_bytes each.
  bool Count(uint32_t* n, uint32_t min_elem_bytes = 1) {
    if (!U32(n)) return false;
    if (uint64_t(*n) * min_elem_bytes > in_.size() - pos_) return Fail();
    return true;
  }
  bool Raw(void* p, size_t n) {
    if (failed_ || n > in_.size() - pos_) return Fail();
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Fail() {
    failed_ = true;
    return false;
  }
  bool failed() const { return failed_; }
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  // Ok when every read succeeded; what names the thing being decoded.
  Status Finish(const char* what) const {
    if (failed_) return Err(Code::kProtocol, std::string("malformed ") + what);
    return Status::Ok();
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace vstorage
