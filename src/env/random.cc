#include "env/random.h"

#include "common/status.h"

namespace vstorage::env {

namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

uint64_t Random::Uniform(uint64_t n) {
  VS_CHECK(n > 0);
  // Values below 2^64 mod n would be drawn once more often than the rest.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t r = Next();
    if (r >= threshold) return r % n;
  }
}

int64_t Random::Range(int64_t lo, int64_t hi) {
  VS_CHECK(lo <= hi);
  uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  uint64_t off = span == UINT64_MAX ? Next() : Uniform(span + 1);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + off);
}

double Random::UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

bool Random::Bernoulli(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return UniformDouble() < p;
}

SeededRandom::SeededRandom(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = SplitMix64(&x);
}

uint64_t SeededRandom::Next() {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

std::unique_ptr<SeededRandom> SeededRandom::Fork() { return std::make_unique<SeededRandom>(Next()); }

std::unique_ptr<SeededRandom> NewRealSeededRandom() { return std::make_unique<SeededRandom>(RealSeed()); }

}  // namespace vstorage::env
