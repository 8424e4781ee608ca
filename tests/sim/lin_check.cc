#include "sim/lin_check.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace vstorage::sim {
namespace {

// The model state of one key: an interned value, kAbsent for none, kUnobserved for any value
// no operation can tell apart from another (see CheckPrepared).
constexpr int kAbsent = -1;
constexpr int kUnobserved = -2;

struct Interner {
  std::unordered_map<std::string, int> ids;
  int Id(const std::string& s) {
    auto [it, fresh] = ids.emplace(s, static_cast<int>(ids.size()));
    return it->second;
  }
};

// One operation prepared for the search.
struct Prepared {
  OpKind kind;
  bool completed;
  int value, expected, observed;  // interned; observed kAbsent when !found
  bool cas_ok;
  int cls = -1;  // pending: its class of interchangeable pending operations (-1: none)
};

// The model step: whether `op` can take effect in `state` with the result its client saw, and
// the state after it. A pending operation's result is unconstrained.
bool Step(const Prepared& op, int state, int* next) {
  switch (op.kind) {
    case OpKind::kPut:
      *next = op.value;
      return true;
    case OpKind::kGet:
      *next = state;
      return !op.completed || op.observed == state;
    case OpKind::kCas: {
      bool match = state != kAbsent && state == op.expected;
      *next = match ? op.value : state;
      return !op.completed || op.cas_ok == match;
    }
  }
  return false;
}

struct CacheKey {
  std::vector<uint64_t> bits;
  int state;
  bool operator==(const CacheKey&) const = default;
};
struct CacheHash {
  size_t operator()(const CacheKey& k) const noexcept {
    uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(static_cast<int64_t>(k.state));
    for (uint64_t w : k.bits) h = (h ^ w) * 1099511628211ull, h ^= h >> 29;
    return static_cast<size_t>(h);
  }
};

// The doubly linked event list of the WGL search.
struct Event {
  int op;
  bool call;
  int64_t t;
  int match = -1;          // the call's return event (or -1: pending) / the return's call
  int prev = -1, next = -1;
};

// WGL over prepared operations. Returns the verdict and counts states.
LinVerdict Search(const std::vector<Prepared>& ops, const std::vector<int64_t>& inv,
                  const std::vector<int64_t>& done, uint64_t max_states, uint64_t* states_out) {
  const int n = static_cast<int>(ops.size());
  // Pending operations of one class have the same effect and no deadline, so of those already
  // invoked only the earliest not yet linearized is worth trying: any linearization using a
  // later one can use the earlier one there instead (and the later one where the earlier was).
  // Without this, k pending writes nobody saw cost 2^k subsets.
  int classes = 0;
  for (const Prepared& p : ops) classes = std::max(classes, p.cls + 1);
  std::vector<std::vector<int>> members(classes);
  std::vector<Event> ev;
  ev.reserve(2 * n + 1);
  ev.push_back(Event{-1, false, 0});  // head sentinel at index 0
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    ev.push_back(Event{i, true, inv[i]});
    if (ops[i].completed) ev.push_back(Event{i, false, done[i]});
  }
  // Time order; at equal times calls first, so touching operations count as concurrent.
  for (int i = 1; i < static_cast<int>(ev.size()); ++i) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (ev[a].t != ev[b].t) return ev[a].t < ev[b].t;
    return ev[a].call && !ev[b].call;
  });
  std::vector<int> call_of(n, -1);
  for (int i = 1; i < static_cast<int>(ev.size()); ++i) {
    if (ev[i].call) call_of[ev[i].op] = i;
  }
  for (int i = 1; i < static_cast<int>(ev.size()); ++i) {
    if (!ev[i].call) {
      ev[i].match = call_of[ev[i].op];
      ev[call_of[ev[i].op]].match = i;
    }
  }
  for (int e : order) {
    if (ev[e].call && ops[ev[e].op].cls >= 0) members[ops[ev[e].op].cls].push_back(ev[e].op);
  }
  int prev = 0;
  for (int e : order) {
    ev[prev].next = e;
    ev[e].prev = prev;
    prev = e;
  }
  auto unlink = [&](int e) {
    ev[ev[e].prev].next = ev[e].next;
    if (ev[e].next >= 0) ev[ev[e].next].prev = ev[e].prev;
  };
  auto relink = [&](int e) {
    ev[ev[e].prev].next = e;
    if (ev[e].next >= 0) ev[ev[e].next].prev = e;
  };
  auto lift = [&](int call) {
    unlink(call);
    if (ev[call].match >= 0) unlink(ev[call].match);
  };
  auto unlift = [&](int call) {  // the reverse of lift
    if (ev[call].match >= 0) relink(ev[call].match);
    relink(call);
  };

  int total_completed = 0;
  for (const Prepared& p : ops) total_completed += p.completed;
  std::vector<uint64_t> bits((n + 63) / 64, 0);
  auto linearized = [&](int op) { return (bits[op / 64] >> (op % 64)) & 1; };
  auto earliest_of_class = [&](int op) {
    for (int m : members[ops[op].cls]) {
      if (!linearized(m)) return m == op;
    }
    return false;
  };
  std::unordered_set<CacheKey, CacheHash> cache;
  struct Frame {
    int call;
    int state;
  };
  std::vector<Frame> stack;
  int state = kAbsent, linearized_completed = 0;
  uint64_t states = 0;
  int e = ev[0].next;
  while (linearized_completed < total_completed) {
    if (e < 0 || !ev[e].call) {
      // A return whose operation is not linearized yet (or the end with pending calls only):
      // undo the most recent choice and try the next candidate after it.
      if (stack.empty()) {
        *states_out = states;
        return LinVerdict::kViolation;
      }
      Frame f = stack.back();
      stack.pop_back();
      int op = ev[f.call].op;
      state = f.state;
      bits[op / 64] &= ~(1ull << (op % 64));
      if (ops[op].completed) --linearized_completed;
      unlift(f.call);
      e = ev[f.call].next;
      continue;
    }
    int op = ev[e].op;
    int next_state;
    if ((ops[op].cls < 0 || earliest_of_class(op)) && Step(ops[op], state, &next_state)) {
      bits[op / 64] |= 1ull << (op % 64);
      if (cache.insert(CacheKey{bits, next_state}).second) {
        if (++states > max_states) {
          *states_out = states;
          return LinVerdict::kInconclusive;
        }
        stack.push_back(Frame{e, state});
        state = next_state;
        if (ops[op].completed) ++linearized_completed;
        lift(e);
        e = ev[0].next;
        continue;
      }
      bits[op / 64] &= ~(1ull << (op % 64));
    }
    e = ev[e].next;
  }
  *states_out = states;
  return LinVerdict::kOk;
}

// Interns and checks a key's operations (pending gets already removed).
//
// A value is observed when a completed get returned it or some CAS expects it. No operation
// can tell two unobserved values apart (a get never returns one, a CAS never matches one), so
// they all become one state, kUnobserved: exact, and it makes pending writes of such values
// interchangeable (their classes, for Search).
LinVerdict CheckPrepared(const std::vector<LinOp>& ops, uint64_t max_states, uint64_t* states) {
  Interner in;
  std::set<std::string> observed;
  for (const LinOp& o : ops) {
    if (o.kind == OpKind::kGet && o.completed() && o.found) observed.insert(o.observed);
    if (o.kind == OpKind::kCas) observed.insert(o.expected);
  }
  auto written = [&](const std::string& v) { return observed.count(v) ? in.Id(v) : kUnobserved; };
  std::map<int, int> cas_class;  // expected value -> class of pending CASes writing kUnobserved
  int put_class = -1, classes = 0;
  std::vector<Prepared> p;
  std::vector<int64_t> inv, done;
  p.reserve(ops.size());
  for (const LinOp& o : ops) {
    Prepared x{o.kind, o.completed(), kAbsent, kAbsent, kAbsent, o.cas_ok};
    if (o.kind != OpKind::kGet) x.value = written(o.value);
    if (o.kind == OpKind::kCas) x.expected = in.Id(o.expected);
    if (o.kind == OpKind::kGet && o.found) x.observed = in.Id(o.observed);
    if (!o.completed() && x.value == kUnobserved) {
      if (o.kind == OpKind::kPut) {
        if (put_class < 0) put_class = classes++;
        x.cls = put_class;
      } else {
        auto [it, fresh] = cas_class.emplace(x.expected, classes);
        if (fresh) ++classes;
        x.cls = it->second;
      }
    }
    p.push_back(x);
    inv.push_back(o.invoke_us);
    done.push_back(o.complete_us);
  }
  return Search(p, inv, done, max_states, states);
}

// Whether every value the kept operations observed was written by a kept operation. Shrinking
// keeps to such sub-histories: without the write a read saw, the read alone "violates", which
// explains nothing. A value only a pending CAS may have written needs that CAS's expected value
// too, and so on.
bool Supported(const std::vector<LinOp>& ops) {
  std::set<std::string> sure;                        // written by a put or a CAS that swapped
  std::multimap<std::string, std::string> maybe;     // value -> expected, of pending CASes
  std::vector<std::string> need;
  for (const LinOp& o : ops) {
    if (o.kind == OpKind::kPut || (o.kind == OpKind::kCas && o.completed() && o.cas_ok)) sure.insert(o.value);
    if (o.kind == OpKind::kCas && !o.completed()) maybe.emplace(o.value, o.expected);
    if (!o.completed()) continue;
    if (o.kind == OpKind::kGet && o.found) need.push_back(o.observed);
    if (o.kind == OpKind::kCas && o.cas_ok) need.push_back(o.expected);
  }
  std::set<std::string> done;
  while (!need.empty()) {
    std::string v = need.back();
    need.pop_back();
    if (!done.insert(v).second || sure.count(v)) continue;
    auto it = maybe.find(v);
    if (it == maybe.end()) return false;
    need.push_back(it->second);
  }
  return true;
}

// Removing a get or a failed CAS (which change nothing) can only remove violations; removing a
// write can create one: a failed CAS that the removed write explained. So failed CASes go first,
// all at once, when the rest still violates; only a violation that needs one keeps them.
std::vector<LinOp> WithoutFailedCas(const std::vector<LinOp>& ops) {
  std::vector<LinOp> out;
  for (const LinOp& o : ops) {
    if (!(o.kind == OpKind::kCas && o.completed() && !o.cas_ok)) out.push_back(o);
  }
  return out;
}

// Shrinks a violating history: first the failed CASes if they are not needed, then the shortest
// violating prefix (by invocation) a binary search finds, then drops operations one at a
// time while it still violates (1-minimal, not necessarily the smallest). Only definite
// violations count; inconclusive re-checks keep the op.
std::vector<LinOp> Minimize(std::vector<LinOp> ops) {
  uint64_t budget = kMaxMinimizeChecks;
  auto violates = [&](const std::vector<LinOp>& h) {
    if (budget == 0) return false;
    --budget;
    uint64_t st = 0;
    return Supported(h) && CheckPrepared(h, kMaxMinimizeStatesPerCheck, &st) == LinVerdict::kViolation;
  };
  if (std::vector<LinOp> w = WithoutFailedCas(ops); w.size() < ops.size() && !w.empty() && violates(w)) {
    ops = std::move(w);
  }
  size_t lo = 1, hi = ops.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (violates(std::vector<LinOp>(ops.begin(), ops.begin() + mid))) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  ops.resize(hi);
  // Passes until nothing more can go: an operation kept only because a concurrent one read its
  // value can go once that reader has.
  for (bool shrunk = true; shrunk && budget > 0;) {
    shrunk = false;
    for (size_t i = ops.size(); i-- > 0 && budget > 0;) {
      std::vector<LinOp> without = ops;
      without.erase(without.begin() + i);
      if (!without.empty() && violates(without)) {
        ops = std::move(without);
        shrunk = true;
      }
    }
  }
  return ops;
}

}  // namespace

std::string DescribeOp(const LinOp& op) {
  char when[96];
  if (op.completed()) {
    std::snprintf(when, sizeof when, "[%.3fms, %.3fms]", op.invoke_us / 1000.0, op.complete_us / 1000.0);
  } else {
    std::snprintf(when, sizeof when, "[%.3fms, never]", op.invoke_us / 1000.0);
  }
  std::string s = "c" + std::to_string(op.client) + "#" + std::to_string(op.seq) + " ";
  switch (op.kind) {
    case OpKind::kPut:
      s += "put " + op.key + "=" + op.value + " " + when + (op.completed() ? " = ok" : " = unknown");
      break;
    case OpKind::kGet:
      s += "get " + op.key + " " + when +
           (op.completed() ? (op.found ? " = " + op.observed : std::string(" = absent")) : " = unknown");
      break;
    case OpKind::kCas:
      s += "cas " + op.key + " " + op.expected + "->" + op.value + " " + when +
           (op.completed() ? (op.cas_ok ? " = true" : " = false") : " = unknown");
      break;
  }
  return s;
}

const char* LinVerdictName(LinVerdict v) {
  switch (v) {
    case LinVerdict::kOk: return "linearizable";
    case LinVerdict::kViolation: return "NOT linearizable";
    case LinVerdict::kInconclusive: return "INCONCLUSIVE";
  }
  return "?";
}

const KeyResult* LinReport::FirstViolation() const {
  for (const KeyResult& k : keys) {
    if (k.verdict == LinVerdict::kViolation) return &k;
  }
  return nullptr;
}

Result<KeyResult> CheckKeyHistory(const std::vector<LinOp>& ops, uint64_t max_states, bool minimize) {
  KeyResult r;
  if (ops.empty()) return r;
  r.key = ops.front().key;
  if (ops.size() > kMaxLinOpsPerKey) {
    return Err(Code::kInvalidArgument, "key " + r.key + ": " + std::to_string(ops.size()) + " operations, over kMaxLinOpsPerKey");
  }
  std::vector<LinOp> kept;
  kept.reserve(ops.size());
  for (const LinOp& o : ops) {
    if (o.key != r.key) return Err(Code::kInvalidArgument, "mixed keys " + r.key + " and " + o.key);
    if (o.complete_us < o.invoke_us) return Err(Code::kInvalidArgument, "completes before invoked: " + DescribeOp(o));
    if (o.kind == OpKind::kGet && !o.completed()) continue;  // constrains nothing
    kept.push_back(o);
  }
  std::stable_sort(kept.begin(), kept.end(), [](const LinOp& a, const LinOp& b) { return a.invoke_us < b.invoke_us; });
  r.ops = kept.size();
  r.verdict = CheckPrepared(kept, max_states, &r.states);
  if (r.verdict == LinVerdict::kViolation && minimize) r.minimal = Minimize(kept);
  return r;
}

Result<LinReport> CheckHistory(const std::vector<LinOp>& history, uint64_t max_states_per_key) {
  std::map<std::string, std::vector<LinOp>> by_key;
  for (const LinOp& o : history) by_key[o.key].push_back(o);
  LinReport rep;
  for (auto& [key, ops] : by_key) {
    ASSIGN_OR_RETURN(KeyResult k, CheckKeyHistory(ops, max_states_per_key, true));
    rep.states += k.states;
    if (k.verdict == LinVerdict::kViolation) rep.verdict = LinVerdict::kViolation;
    if (k.verdict == LinVerdict::kInconclusive) {
      ++rep.inconclusive_keys;
      if (rep.verdict == LinVerdict::kOk) rep.verdict = LinVerdict::kInconclusive;
    }
    rep.keys.push_back(std::move(k));
  }
  return rep;
}

}  // namespace vstorage::sim
