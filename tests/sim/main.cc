// vstorage-mds-sim: runs the MDS simulation (tests/sim/mds_sim.h) over a range of seeds.
//   vstorage-mds-sim [--seeds N] [--first S] [--seed S] [--duration-ms T] [--verbose]
//                    [--apply-before-durable --expect-violation]
// Exit 0 when every seed holds its invariants (or, with --expect-violation, when the checker
// catches the deliberate bug in at least one seed); a failing seed prints itself and the
// command that reruns it.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"
#include "sim/mds_sim.h"

int main(int argc, char** argv) {
  vstorage::sim::SimOptions o;
  uint64_t first = 1, seeds = 20;
  bool expect_violation = false, check_determinism = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seeds") seeds = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--first") first = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--seed") first = std::strtoull(next().c_str(), nullptr, 10), seeds = 1;
    else if (a == "--duration-ms") o.duration_ms = std::strtoll(next().c_str(), nullptr, 10);
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--apply-before-durable") o.apply_before_durable = true;
    else if (a == "--expect-violation") expect_violation = true;
    else if (a == "--no-determinism-check") check_determinism = false;
    else {
      std::fprintf(stderr,
                   "usage: %s [--seeds N] [--first S] [--seed S] [--duration-ms T] [--verbose]\n"
                   "          [--apply-before-durable --expect-violation] [--no-determinism-check]\n",
                   argv[0]);
      return 2;
    }
  }
  vstorage::SetLogLevel(vstorage::LogLevel::kError);
  uint64_t violations = 0, failed_seed = 0;
  for (uint64_t s = first; s < first + seeds; ++s) {
    o.seed = s;
    vstorage::sim::SimResult r = vstorage::sim::RunMdsSim(o);
    std::printf("seed %llu: %s requests %llu acked %llu observations %llu crashes %llu io-errors %llu dropped %llu "
                "trace %016llx\n",
                static_cast<unsigned long long>(s), r.ok ? "ok" : "VIOLATION", static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.observations),
                static_cast<unsigned long long>(r.crashes), static_cast<unsigned long long>(r.io_errors),
                static_cast<unsigned long long>(r.dropped), static_cast<unsigned long long>(r.trace_hash));
    if (!r.ok) {
      ++violations;
      if (!failed_seed) failed_seed = s;
      std::printf("  %s\n  rerun: %s --seed %llu --verbose%s\n", r.violation.c_str(), argv[0],
                  static_cast<unsigned long long>(s), o.apply_before_durable ? " --apply-before-durable" : "");
    }
    if (!expect_violation && r.ok && r.crashes < 3) {
      std::printf("  seed %llu did too little (%llu crashes): the simulation is not exercising recovery\n",
                  static_cast<unsigned long long>(s), static_cast<unsigned long long>(r.crashes));
      return 1;
    }
    if (check_determinism && s == first) {
      vstorage::sim::SimResult again = vstorage::sim::RunMdsSim(o);
      if (again.trace_hash != r.trace_hash || again.ok != r.ok) {
        std::printf("  seed %llu is not deterministic: trace %016llx then %016llx\n", static_cast<unsigned long long>(s),
                    static_cast<unsigned long long>(r.trace_hash), static_cast<unsigned long long>(again.trace_hash));
        return 1;
      }
    }
  }
  if (expect_violation) {
    if (violations == 0) {
      std::printf("FAIL: the deliberate bug went unnoticed in %llu seeds\n", static_cast<unsigned long long>(seeds));
      return 1;
    }
    std::printf("caught: %llu of %llu seeds found the deliberate bug (first: seed %llu)\n",
                static_cast<unsigned long long>(violations), static_cast<unsigned long long>(seeds),
                static_cast<unsigned long long>(failed_seed));
    return 0;
  }
  std::printf("%s: %llu seed(s), %llu violation(s)\n", violations ? "FAIL" : "ok", static_cast<unsigned long long>(seeds),
              static_cast<unsigned long long>(violations));
  return violations ? 1 : 0;
}
