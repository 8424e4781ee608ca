// Randomness behind an interface. A simulation or test that draws everything from one
// SeededRandom reproduces bit for bit from its seed; a daemon uses one seeded from the OS and
// logs the seed.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

namespace vstorage::env {

class Random {
 public:
  virtual ~Random() = default;
  // 64 uniformly distributed bits.
  virtual uint64_t Next() = 0;

  // Uniform in [0, n); n > 0 (checked). Unbiased (rejection), so a simulator's choices do not
  // favour low values.
  uint64_t Uniform(uint64_t n);
  // Uniform in [lo, hi]; lo <= hi (checked).
  int64_t Range(int64_t lo, int64_t hi);
  // True with probability p: p <= 0 is never, p >= 1 always (neither draws a number).
  bool Bernoulli(double p);
  // Uniform in [0, 1) with 53 bits of precision.
  double UniformDouble();
};

// xoshiro256** (Blackman and Vigna), its state filled from the seed by splitmix64. The
// stream for a given seed is part of the contract (golden test): a seed printed by a failing
// simulation must replay the same run after an upgrade.
//
// Thread-safe (a mutex around the state); the sequence is deterministic only when the calls
// come in a deterministic order, so a simulation draws from one thread.
class SeededRandom : public Random {
 public:
  explicit SeededRandom(uint64_t seed);
  uint64_t Next() override;
  uint64_t seed() const { return seed_; }
  // A new generator seeded from this one's next output: gives a component its own stream
  // without coupling its draws to everyone else's. The caller owns it.
  std::unique_ptr<SeededRandom> Fork();

 private:
  const uint64_t seed_;
  std::mutex mu_;
  uint64_t s_[4];
};

// A seed from the OS (getrandom, env/posix.cc).
uint64_t RealSeed();
// A SeededRandom seeded with RealSeed(); log its seed() to make a run reproducible.
std::unique_ptr<SeededRandom> NewRealSeededRandom();

}  // namespace vstorage::env
