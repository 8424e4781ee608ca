// The linearizability checker by itself, on small hand-made histories.
#include "sim/lin_check.h"

#include <gtest/gtest.h>

#include <optional>

namespace vstorage::sim {
namespace {

LinOp Put(uint32_t c, const std::string& k, const std::string& v, int64_t a, int64_t b) {
  LinOp o;
  o.client = c;
  o.kind = OpKind::kPut;
  o.key = k;
  o.value = v;
  o.invoke_us = a;
  o.complete_us = b;
  return o;
}
LinOp Get(uint32_t c, const std::string& k, std::optional<std::string> seen, int64_t a, int64_t b) {
  LinOp o;
  o.client = c;
  o.kind = OpKind::kGet;
  o.key = k;
  o.found = seen.has_value();
  o.observed = seen.value_or("");
  o.invoke_us = a;
  o.complete_us = b;
  return o;
}
LinOp Cas(uint32_t c, const std::string& k, const std::string& exp, const std::string& v, bool ok, int64_t a,
          int64_t b) {
  LinOp o;
  o.client = c;
  o.kind = OpKind::kCas;
  o.key = k;
  o.expected = exp;
  o.value = v;
  o.cas_ok = ok;
  o.invoke_us = a;
  o.complete_us = b;
  return o;
}

LinVerdict Verdict(const std::vector<LinOp>& h, uint64_t max_states = kMaxLinStatesPerKey) {
  auto r = CheckHistory(h, max_states);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->verdict : LinVerdict::kInconclusive;
}

TEST(LinCheck, EmptyAndSequential) {
  EXPECT_EQ(Verdict({}), LinVerdict::kOk);
  EXPECT_EQ(Verdict({Get(1, "k", std::nullopt, 0, 1)}), LinVerdict::kOk);
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Get(1, "k", "a", 2, 3), Cas(1, "k", "a", "b", true, 4, 5),
                     Get(2, "k", "b", 6, 7), Cas(2, "k", "a", "c", false, 8, 9)}),
            LinVerdict::kOk);
}

TEST(LinCheck, ReadOfAbsentAfterWriteIsAViolation) {
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Get(2, "k", std::nullopt, 2, 3)}), LinVerdict::kViolation);
}

TEST(LinCheck, StaleReadAfterCompletedWrite) {
  std::vector<LinOp> h = {Put(1, "k", "a", 0, 10), Put(1, "k", "b", 20, 30), Get(2, "k", "a", 40, 50)};
  EXPECT_EQ(Verdict(h), LinVerdict::kViolation);
  // Concurrent with the second write, the same read is fine.
  h[2].invoke_us = 25;
  EXPECT_EQ(Verdict(h), LinVerdict::kOk);
}

TEST(LinCheck, ConcurrentWritesSeenInImpossibleOrders) {
  // Two concurrent writes; one reader sees a then b, the other b then a: no single order.
  std::vector<LinOp> h = {Put(1, "k", "a", 0, 100), Put(2, "k", "b", 0, 100),
                          Get(3, "k", "a", 10, 20), Get(3, "k", "b", 30, 40),
                          Get(4, "k", "b", 10, 20), Get(4, "k", "a", 30, 40)};
  EXPECT_EQ(Verdict(h), LinVerdict::kViolation);
  // Both readers seeing a then b is fine.
  h[4].observed = "a";
  h[5].observed = "b";
  EXPECT_EQ(Verdict(h), LinVerdict::kOk);
}

TEST(LinCheck, CasSuccessContradictingHistory) {
  // The key held b (read after the write completed), yet a later CAS expecting a succeeded.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Put(1, "k", "b", 2, 3), Get(2, "k", "b", 4, 5),
                     Cas(2, "k", "a", "c", true, 6, 7)}),
            LinVerdict::kViolation);
  // A CAS on an absent key cannot succeed.
  EXPECT_EQ(Verdict({Cas(1, "k", "a", "c", true, 0, 1)}), LinVerdict::kViolation);
  // Two CASes from the same value cannot both succeed.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Cas(2, "k", "a", "b", true, 2, 10), Cas(3, "k", "a", "c", true, 2, 10)}),
            LinVerdict::kViolation);
  // One of them failing is fine, and so is a failed CAS that saw the other's value.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Cas(2, "k", "a", "b", true, 2, 10), Cas(3, "k", "a", "c", false, 2, 10),
                     Get(1, "k", "b", 11, 12)}),
            LinVerdict::kOk);
}

TEST(LinCheck, PendingOperations) {
  // A write that never completed may have taken effect (once, at any time after its call)...
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, kNeverUs), Get(2, "k", "a", 5, 6)}), LinVerdict::kOk);
  // ...or not at all...
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, kNeverUs), Get(2, "k", std::nullopt, 5, 6)}), LinVerdict::kOk);
  // ...but not before it was invoked.
  EXPECT_EQ(Verdict({Get(2, "k", "a", 0, 1), Put(1, "k", "a", 5, kNeverUs)}), LinVerdict::kViolation);
  // And once: a then b then a again needs two effects of the one pending write.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, kNeverUs), Get(2, "k", "a", 5, 6), Put(2, "k", "b", 7, 8),
                     Get(2, "k", "a", 9, 10)}),
            LinVerdict::kViolation);
  // A pending CAS may have swapped.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Cas(2, "k", "a", "b", false, 2, kNeverUs), Get(1, "k", "b", 5, 6)}),
            LinVerdict::kOk);
  // A pending get constrains nothing, even with an impossible "result".
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Get(2, "k", "zzz", 2, kNeverUs)}), LinVerdict::kOk);
}

TEST(LinCheck, TouchingIntervalsAreConcurrent) {
  // The read's invocation equals the write's completion: either order is allowed.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 10), Get(2, "k", std::nullopt, 10, 12)}), LinVerdict::kOk);
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 10), Get(2, "k", std::nullopt, 11, 12)}), LinVerdict::kViolation);
}

TEST(LinCheck, KeysAreIndependent) {
  auto r = CheckHistory({Put(1, "x", "a", 0, 1), Get(2, "y", "a", 2, 3), Get(2, "x", "a", 4, 5)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, LinVerdict::kViolation);
  ASSERT_NE(r->FirstViolation(), nullptr);
  EXPECT_EQ(r->FirstViolation()->key, "y");
  ASSERT_EQ(r->keys.size(), 2u);
  EXPECT_EQ(r->keys[0].verdict, LinVerdict::kOk);
}

TEST(LinCheck, ViolationIsShrunkToTheInvolvedOperations) {
  // Many harmless operations around a stale read of "a" after "b" completed.
  std::vector<LinOp> h;
  int64_t t = 0;
  for (int i = 0; i < 20; ++i, t += 10) h.push_back(Put(1, "k", "x" + std::to_string(i), t, t + 5));
  h.push_back(Put(1, "k", "a", t, t + 5));
  t += 10;
  h.push_back(Put(2, "k", "b", t, t + 5));
  t += 10;
  for (int i = 0; i < 5; ++i, t += 10) h.push_back(Get(3, "k", "b", t, t + 5));
  h.push_back(Get(4, "k", "a", t, t + 5));
  t += 10;
  for (int i = 0; i < 10; ++i, t += 10) h.push_back(Put(1, "k", "y" + std::to_string(i), t, t + 5));
  auto r = CheckHistory(h);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->verdict, LinVerdict::kViolation);
  const KeyResult* k = r->FirstViolation();
  ASSERT_NE(k, nullptr);
  // Kept: the write of a (the stale read saw it), one later completed write or read of b, the read.
  ASSERT_EQ(k->minimal.size(), 3u) << DescribeOp(k->minimal[0]);
  EXPECT_EQ(k->minimal.back().kind, OpKind::kGet);
  EXPECT_EQ(k->minimal.back().observed, "a");
  bool has_a = false;
  for (const LinOp& o : k->minimal) has_a |= o.kind == OpKind::kPut && o.value == "a";
  EXPECT_TRUE(has_a);
}

TEST(LinCheck, ShrinkingDoesNotBlameAFailedCasItsWriteExplained) {
  // The stale read is the violation. Dropping the write of x would make the failed CAS look
  // wrong instead; the shrunk history must be the write of a, the write of x and the read.
  std::vector<LinOp> h = {Put(1, "k", "a", 0, 1), Cas(2, "k", "a", "b", false, 2, 10), Put(3, "k", "x", 3, 4),
                          Get(4, "k", "a", 20, 21)};
  auto r = CheckHistory(h);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->verdict, LinVerdict::kViolation);
  const KeyResult* k = r->FirstViolation();
  ASSERT_EQ(k->minimal.size(), 3u);
  for (const LinOp& o : k->minimal) EXPECT_NE(o.kind, OpKind::kCas) << DescribeOp(o);
  // A pending CAS that may have written the value read needs the write of its expected value.
  h = {Put(1, "k", "a", 0, 1), Cas(2, "k", "a", "b", false, 2, kNeverUs), Put(3, "k", "x", 3, 4),
       Get(4, "k", "b", 20, 21)};
  r = CheckHistory(h);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->verdict, LinVerdict::kViolation);
  bool has_a = false;
  for (const LinOp& o : r->FirstViolation()->minimal) has_a |= o.kind == OpKind::kPut && o.value == "a";
  EXPECT_TRUE(has_a);
}

TEST(LinCheck, BoundedSearchIsInconclusiveNotAPass) {
  // Concurrent pending writes of values some CAS expects (so they are told apart) and a read
  // of a value nobody wrote: the search tries subsets of the writes before giving up; with a
  // tiny bound it cannot finish.
  std::vector<LinOp> h;
  for (int i = 0; i < 10; ++i) h.push_back(Put(1 + i, "k", "p" + std::to_string(i), 0, kNeverUs));
  h.push_back(Get(40, "k", "nobody", 1, 2));
  for (int i = 0; i < 10; ++i) h.push_back(Cas(41, "k", "p" + std::to_string(i), "q", false, 10 + 2 * i, 11 + 2 * i));
  EXPECT_EQ(Verdict(h, 8), LinVerdict::kInconclusive);
  EXPECT_EQ(Verdict(h), LinVerdict::kViolation);
  auto r = CheckHistory(h, 8);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->inconclusive_keys, 1u);
}

TEST(LinCheck, ManyPendingWritesNobodySawStayCheap) {
  // Forty writes that never completed and whose values nobody read: interchangeable, so the
  // search does not try their 2^40 subsets. One of them must have happened (the failed CAS).
  std::vector<LinOp> h = {Put(1, "k", "a", 0, 1)};
  for (int i = 0; i < 40; ++i) h.push_back(Put(2 + i, "k", "p" + std::to_string(i), 2 + i, kNeverUs));
  h.push_back(Cas(50, "k", "a", "b", false, 100, 101));
  h.push_back(Get(50, "k", "zzz", 102, 103));  // impossible: forces the search to exhaust
  auto r = CheckHistory(h);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, LinVerdict::kViolation);
  EXPECT_LT(r->states, 10000u);
  h.pop_back();
  r = CheckHistory(h);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, LinVerdict::kOk);
  // Without any pending write, the failed CAS contradicts the completed put.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Cas(50, "k", "a", "b", false, 100, 101)}), LinVerdict::kViolation);
  // A pending write invoked only after the CAS completed cannot explain it.
  EXPECT_EQ(Verdict({Put(1, "k", "a", 0, 1), Cas(50, "k", "a", "b", false, 100, 101), Put(2, "k", "p", 102, kNeverUs)}),
            LinVerdict::kViolation);
}

TEST(LinCheck, MalformedHistoriesAreRefused) {
  EXPECT_FALSE(CheckHistory({Put(1, "k", "a", 10, 5)}).ok());
  EXPECT_FALSE(CheckKeyHistory({Put(1, "k", "a", 0, 1), Put(1, "j", "a", 0, 1)}, 100, false).ok());
}

}  // namespace
}  // namespace vstorage::sim
