// vstorage-raft-sim: runs the Raft simulation (tests/sim/raft_sim.h) over a range of seeds.
//   vstorage-raft-sim [--seeds N] [--first S] [--seed S] [--nodes 3|5] [--fault-ms T]
//                     [--heal-ms T] [--lin-max-states N] [--verbose] [--quiet]
//                     [--break-vote-check | --break-commit-rule | --break-durability |
//                      --break-stale-reads | --break-dedup] [--expect-violation]
// Exit 0 when every seed holds the safety and liveness properties and its client history is
// linearizable (or, with --expect-violation, when the checkers catch the deliberate bug in at
// least one seed; for --break-stale-reads and --break-dedup it must be the linearizability
// checker, and no other check may fire); a failing seed prints itself and the command that reruns it. The first seed
// runs twice and must give the same trace hash (bit-for-bit reproduction). A key whose
// linearizability search hit its bound is printed as INCONCLUSIVE and counted in the summary;
// it does not fail the run (it is not a pass either).
#include <csignal>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "sim/raft_sim.h"

namespace {
// A failed VS_CHECK inside the core aborts: say which seed did it before dying.
char g_abort_note[256];
void OnAbort(int) {
  ssize_t n = write(2, g_abort_note, strlen(g_abort_note));
  (void)n;
  std::signal(SIGABRT, SIG_DFL);
  std::abort();
}
}  // namespace

int main(int argc, char** argv) {
  vstorage::sim::RaftSimOptions o;
  uint64_t first = 1, seeds = 20;
  bool expect_violation = false, quiet = false;
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
    else if (a == "--nodes") o.nodes = std::atoi(next().c_str());
    else if (a == "--fault-ms") o.fault_ms = std::strtoll(next().c_str(), nullptr, 10);
    else if (a == "--heal-ms") o.heal_ms = std::strtoll(next().c_str(), nullptr, 10);
    else if (a == "--lin-max-states") o.lin_max_states_per_key = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--quiet") quiet = true;
    else if (a == "--break-vote-check") o.break_vote_check = true;
    else if (a == "--break-commit-rule") o.break_commit_rule = true;
    else if (a == "--break-durability") o.break_durability = true;
    else if (a == "--break-stale-reads") o.break_stale_reads = true;
    else if (a == "--break-dedup") o.break_dedup = true;
    else if (a == "--expect-violation") expect_violation = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--seeds N] [--first S] [--seed S] [--nodes 3|5] [--fault-ms T] [--heal-ms T]\n"
                   "          [--lin-max-states N]\n"
                   "          [--verbose] [--quiet] [--break-vote-check | --break-commit-rule | --break-durability |\n"
                   "           --break-stale-reads | --break-dedup] [--expect-violation]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.nodes != 3 && o.nodes != 5) {
    std::fprintf(stderr, "--nodes must be 3 or 5\n");
    return 2;
  }
  std::string flags = " --nodes " + std::to_string(o.nodes);
  if (o.break_vote_check) flags += " --break-vote-check";
  if (o.break_commit_rule) flags += " --break-commit-rule";
  if (o.break_durability) flags += " --break-durability";
  if (o.break_stale_reads) flags += " --break-stale-reads";
  if (o.break_dedup) flags += " --break-dedup";
  if (o.lin_max_states_per_key) flags += " --lin-max-states " + std::to_string(o.lin_max_states_per_key);
  std::signal(SIGABRT, OnAbort);
  uint64_t violations = 0, failed_seed = 0, acked = 0, ops = 0, unknown = 0, inconclusive_keys = 0,
           inconclusive_seeds = 0, other_violations = 0, max_states = 0, max_states_seed = 0;
  for (uint64_t s = first; s < first + seeds; ++s) {
    o.seed = s;
    std::snprintf(g_abort_note, sizeof g_abort_note, "aborted in seed %llu: rerun %s --seed %llu%s --verbose\n",
                  (unsigned long long)s, argv[0], (unsigned long long)s, flags.c_str());
    vstorage::sim::RaftSimResult r = vstorage::sim::RunRaftSim(o);
    acked += r.acked;
    ops += r.ops;
    unknown += r.ops_unknown;
    inconclusive_keys += r.lin_inconclusive_keys;
    if (r.lin_states > max_states) max_states = r.lin_states, max_states_seed = s;
    if (!quiet || !r.ok) {
      std::printf("seed %llu: %s proposals %llu acked %llu leaders %llu crashes %llu transfers %llu config-changes %llu snapshots %llu "
                  "messages %llu dropped %llu duplicated %llu client-ops %llu unknown %llu retries %llu lin-states %llu trace %016llx\n",
                  (unsigned long long)s, r.ok ? "ok" : "VIOLATION", (unsigned long long)r.proposals,
                  (unsigned long long)r.acked, (unsigned long long)r.leaders, (unsigned long long)r.crashes,
                  (unsigned long long)r.transfers, (unsigned long long)r.config_changes, (unsigned long long)r.snapshots_sent,
                  (unsigned long long)r.messages, (unsigned long long)r.dropped, (unsigned long long)r.duplicated,
                  (unsigned long long)r.ops, (unsigned long long)r.ops_unknown, (unsigned long long)r.client_retries,
                  (unsigned long long)r.lin_states, (unsigned long long)r.trace_hash);
    }
    if (r.lin_inconclusive_keys) {
      ++inconclusive_seeds;
      std::printf("seed %llu: linearizability INCONCLUSIVE: %s\n  rerun: %s --seed %llu%s\n", (unsigned long long)s,
                  r.lin_note.c_str(), argv[0], (unsigned long long)s, flags.c_str());
    }
    if (!r.ok) {
      ++violations;
      if (!r.lin_violation) ++other_violations;
      if (!failed_seed) failed_seed = s;
      std::printf("  %s\n  rerun: %s --seed %llu%s --verbose\n", r.violation.c_str(), argv[0], (unsigned long long)s,
                  flags.c_str());
      if (!expect_violation) return 1;
    }
    if (!expect_violation && (r.crashes < 1 || r.leaders < 2 || r.acked == 0 || r.ops_completed == 0)) {
      std::printf("  seed %llu did too little (crashes %llu, leaders %llu, acked %llu, client ops completed %llu): "
                  "not exercising faults\n",
                  (unsigned long long)s, (unsigned long long)r.crashes, (unsigned long long)r.leaders,
                  (unsigned long long)r.acked, (unsigned long long)r.ops_completed);
      return 1;
    }
    if (s == first) {
      vstorage::sim::RaftSimResult again = vstorage::sim::RunRaftSim(o);
      if (again.trace_hash != r.trace_hash || again.ok != r.ok) {
        std::printf("  seed %llu is not deterministic: trace %016llx then %016llx\n", (unsigned long long)s,
                    (unsigned long long)r.trace_hash, (unsigned long long)again.trace_hash);
        return 1;
      }
    }
  }
  if (expect_violation) {
    if (violations == 0) {
      std::printf("FAIL: the deliberate bug went unnoticed in %llu seeds\n", (unsigned long long)seeds);
      return 1;
    }
    if ((o.break_stale_reads || o.break_dedup) && other_violations) {
      std::printf("FAIL: %llu seeds broke a Raft-safety check with a bug above Raft, which changes no Raft rule\n",
                  (unsigned long long)other_violations);
      return 1;
    }
    std::printf("caught: %llu of %llu seeds found the deliberate bug (first: seed %llu)\n",
                (unsigned long long)violations, (unsigned long long)seeds, (unsigned long long)failed_seed);
    return 0;
  }
  char stats[256];
  std::snprintf(stats, sizeof stats,
                "%llu entries acknowledged; %llu client operations, %llu with unknown outcome; at most %llu "
                "linearizability search states in a seed, seed %llu",
                (unsigned long long)acked, (unsigned long long)ops, (unsigned long long)unknown,
                (unsigned long long)max_states, (unsigned long long)max_states_seed);
  if (inconclusive_keys == 0) {
    std::printf("all %llu seeds ok, every client history linearizable (%s)\n", (unsigned long long)seeds, stats);
  } else {
    std::printf("no violation in %llu seeds, but %llu keys in %llu seeds INCONCLUSIVE: not shown linearizable (%s)\n",
                (unsigned long long)seeds, (unsigned long long)inconclusive_keys,
                (unsigned long long)inconclusive_seeds, stats);
  }
  return 0;
}
