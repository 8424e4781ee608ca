// The Env: everything a component reaches the outside world through (time, randomness,
// files), injected instead of reached through globals, so that the same code runs on a real
// machine, in a unit test and inside the deterministic simulator.
//
//   PosixEnv real;                       // in a daemon's main
//   mds::Service service(real.env(), ...);
//
//   SimEnv sim(seed);                    // in a test or the simulator
//   mds::Service service(sim.env(), ...);
//   ...; sim.mem().PowerCut(); ...       // restart on what a disk would still hold
#pragma once
#include <cstdint>
#include <memory>

#include "env/clock.h"
#include "env/fault_file_system.h"
#include "env/file_system.h"
#include "env/mem_file_system.h"
#include "env/random.h"

namespace vstorage::env {

// Non-owning: whoever builds an Env keeps its pieces alive longer than every user. Each
// piece is thread-safe (see its header).
struct Env {
  Clock* clock = nullptr;
  Random* random = nullptr;
  FileSystem* fs = nullptr;
};

// Owns the real clock, a generator seeded from the OS and the POSIX file system.
class PosixEnv {
 public:
  PosixEnv();
  const Env& env() const { return env_; }
  uint64_t seed() const { return random_->seed(); }  // log it: reruns can reuse it

 private:
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<SeededRandom> random_;
  std::unique_ptr<FileSystem> fs_;
  Env env_;
};

// Owns a whole simulated world: a ManualClock, a SeededRandom(seed), a MemFileSystem and a
// FaultFileSystem over it (with its own stream forked from the seed). env().fs is the fault
// wrapper, so tests inject faults through faults() and cut the power through mem().
class SimEnv {
 public:
  explicit SimEnv(uint64_t seed);
  const Env& env() const { return env_; }
  ManualClock& clock() { return clock_; }
  SeededRandom& random() { return random_; }
  MemFileSystem& mem() { return mem_; }
  FaultFileSystem& faults() { return faults_; }

 private:
  ManualClock clock_;
  SeededRandom random_;
  std::unique_ptr<SeededRandom> fault_random_;
  MemFileSystem mem_;
  FaultFileSystem faults_;
  Env env_;
};

}  // namespace vstorage::env
