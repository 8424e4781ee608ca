// A linearizability checker for a key-value register history (issue 12 item 2,
// docs/design/consensus.md "Linearizability").
//
// The model: a map of string keys to optional string values, every key absent at first, with
//   put(k, v)            sets k to v, answers ok;
//   get(k)               answers k's value (or "absent");
//   cas(k, expected, v)  if k holds `expected`, sets it to v and answers true; else answers
//                        false and changes nothing (an absent key never matches).
// Every operation touches one key, so the history is linearizable exactly when each key's
// sub-history is (Herlihy & Wing's locality): the check runs per key.
//
// Per key it runs the Wing & Gong search with Lowe's memoization (WGL, as in Knossos and
// Porcupine): operations are call and return events in time order; the search linearizes a
// call whose model step matches its observed result, backtracks at a return whose operation is
// not yet linearized, and never revisits a (set of linearized operations, model state) pair.
// Operation a precedes b only when a completed strictly before b was invoked (equal times are
// concurrent). An operation that never completed (its outcome unknown to its client: timed
// out, abandoned) may take effect at any point after its invocation, or not at all; a pending
// get constrains nothing and is ignored.
//
// Bounds: at most `max_states_per_key` search states per key (kMaxLinStatesPerKey by
// default). A key whose search hits the bound is reported INCONCLUSIVE, neither a pass nor a
// violation; the caller must say so. A violating key is shrunk to a small sub-history that is
// still not linearizable (see `minimal`), within kMaxMinimizeChecks re-checks.
//
// THREAD-SAFETY: pure functions over their arguments.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/status.h"

namespace vstorage::sim {

// Limits (CONVENTIONS item 7).
inline constexpr uint64_t kMaxLinStatesPerKey = 1u << 18;   // search states per key
inline constexpr size_t kMaxLinOpsPerKey = 1u << 16;        // longer key histories: refused
inline constexpr uint64_t kMaxMinimizeChecks = 4096;        // re-checks spent shrinking a violation
inline constexpr uint64_t kMaxMinimizeStatesPerCheck = 1u << 14;
inline constexpr int64_t kNeverUs = std::numeric_limits<int64_t>::max();

enum class OpKind : uint8_t { kPut, kGet, kCas };

struct LinOp {
  uint32_t client = 0;
  uint64_t seq = 0;
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;     // put: the value written; cas: the new value
  std::string expected;  // cas: the value it expects
  int64_t invoke_us = 0;
  int64_t complete_us = kNeverUs;  // kNeverUs: never completed, outcome unknown
  // What the client observed (only meaningful when completed):
  bool found = false;       // get: the key had a value
  std::string observed;     // get: that value
  bool cas_ok = false;      // cas: it swapped
  bool completed() const { return complete_us != kNeverUs; }
};

// One line, e.g. "c2#14 cas k1 v0.3->v2.14 [12.300ms, 15.020ms] = true".
std::string DescribeOp(const LinOp& op);

enum class LinVerdict : uint8_t { kOk, kViolation, kInconclusive };
const char* LinVerdictName(LinVerdict v);

struct KeyResult {
  std::string key;
  LinVerdict verdict = LinVerdict::kOk;
  uint64_t states = 0;        // search states explored
  size_t ops = 0;             // operations considered (pending gets excluded)
  std::vector<LinOp> minimal; // violation: a small non-linearizable sub-history, by invocation
};

struct LinReport {
  LinVerdict verdict = LinVerdict::kOk;  // a violation anywhere wins over inconclusive
  std::vector<KeyResult> keys;           // by key
  uint64_t states = 0;
  size_t inconclusive_keys = 0;
  const KeyResult* FirstViolation() const;
};

// Checks one key's operations (all must carry that key). kInvalidArgument for a malformed
// history: an operation completing before its invocation, mixed keys, more than
// kMaxLinOpsPerKey operations. `minimize`: shrink a violation into `minimal`.
Result<KeyResult> CheckKeyHistory(const std::vector<LinOp>& ops, uint64_t max_states, bool minimize);

// Checks a whole history, key by key.
Result<LinReport> CheckHistory(const std::vector<LinOp>& history, uint64_t max_states_per_key = kMaxLinStatesPerKey);

}  // namespace vstorage::sim
