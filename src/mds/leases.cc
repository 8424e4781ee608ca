#include "mds/leases.h"

namespace vstorage::mds {

ClientId LeaseTable::Register(ClientId want, const std::string& host, int64_t now_ms) {
  ClientId id = want;
  if (id.v == 0) id = ClientId{next_id_++};
  if (id.v >= next_id_) next_id_ = id.v + 1;
  auto& s = sessions_[id];
  s.id = id;
  s.host = host;
  s.last_seen_ms = now_ms;
  return id;
}

ClientSession& LeaseTable::Touch(ClientId id, int64_t now_ms) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    Register(id, "?", now_ms);
    it = sessions_.find(id);
  }
  it->second.last_seen_ms = now_ms;
  return it->second;
}

Status LeaseTable::Acquire(InodeId ino, ClientId c, bool write, int64_t now_ms) {
  Touch(c, now_ms);
  auto& f = files_[ino];
  auto holder = [&](ClientId other) {
    auto it = sessions_.find(other);
    return "client " + other.str() + (it != sessions_.end() ? " on host " + it->second.host : "");
  };
  if (f.writer.v != 0 && f.writer != c)
    return Err(Code::kBusy, "file is open for writing by " + holder(f.writer) +
                                "; a file has one writer at a time (close it there first)");
  if (write) {
    for (auto& [r, n] : f.readers)
      if (r != c && n > 0)
        return Err(Code::kBusy, "file is open for reading by " + holder(r) +
                                    "; it cannot be opened for writing until it is closed there");
    f.writer = c;
    ++f.writer_opens;
  } else {
    ++f.readers[c];
  }
  return Status::Ok();
}

void LeaseTable::Release(InodeId ino, ClientId c, bool write) {
  auto it = files_.find(ino);
  if (it == files_.end()) return;
  auto& f = it->second;
  if (write) {
    if (f.writer == c && f.writer_opens > 0 && --f.writer_opens == 0) f.writer = ClientId{};
  } else {
    auto r = f.readers.find(c);
    if (r != f.readers.end() && --r->second == 0) f.readers.erase(r);
  }
  if (f.writer.v == 0 && f.readers.empty()) files_.erase(it);
}

bool LeaseTable::HoldsWrite(InodeId ino, ClientId c) const {
  auto it = files_.find(ino);
  return it != files_.end() && it->second.writer == c;
}

size_t LeaseTable::open_count(ClientId c, bool write) const {
  size_t n = 0;
  for (auto& [ino, f] : files_) {
    if (write && f.writer == c) n += f.writer_opens;
    if (!write) {
      auto r = f.readers.find(c);
      if (r != f.readers.end()) n += r->second;
    }
  }
  return n;
}

std::vector<ClientId> LeaseTable::Expire(int64_t now_ms) {
  std::vector<ClientId> gone;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms - it->second.last_seen_ms > timeout_ms_) {
      gone.push_back(it->first);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  for (ClientId c : gone) DropLeases(c);
  return gone;
}

void LeaseTable::Unregister(ClientId c) {
  sessions_.erase(c);
  DropLeases(c);
}

void LeaseTable::DropLeases(ClientId c) {
  for (auto it = files_.begin(); it != files_.end();) {
    auto& f = it->second;
    f.readers.erase(c);
    if (f.writer == c) {
      f.writer = ClientId{};
      f.writer_opens = 0;
    }
    it = (f.writer.v == 0 && f.readers.empty()) ? files_.erase(it) : std::next(it);
  }
}

}  // namespace vstorage::mds
