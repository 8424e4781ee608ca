// Deterministic simulation of the MDS core (issue 10 item 6, docs/design/simulation.md).
//
// One seeded scheduler runs, on a simulated clock, the MDS's real state machine
// (mds/state.h), its real log and journal (mds/log.h, mds/journal.h) on the in-memory file
// system with fault injection and power cuts (env/), and its real commit pipeline
// (mds/pipeline.h), with simulated clients sending namespace and chunk-version requests over
// a network that delays and drops messages. The MDS crashes at random (losing everything
// not fsynced, with torn tails), restarts from its repository, and sees injected append and
// sync failures, as the real service does (it answers the error and carries on).
//
// Checked, on every reply and on the recovered state after every restart:
//  * no acknowledged metadata change is lost, and nothing a client observed is undone
//    (a read sees only durable state);
//  * a chunk's version never goes backwards and a bump never reuses a version.
// Not yet in the simulation: the service's RPC and thread glue (MdsService) and chunk
// servers (replica versions, recovery to the replica count): see the design note.
//
// Same seed, same options: the same run, event for event (trace_hash says so).
#pragma once
#include <cstdint>
#include <string>

namespace vstorage::sim {

struct SimOptions {
  uint64_t seed = 1;
  int64_t duration_ms = 30000;  // simulated time
  int clients = 3;
  bool apply_before_durable = false;  // the deliberate bug the checker must catch
  bool verbose = false;               // print every event
};

struct SimResult {
  bool ok = true;
  std::string violation;  // the first broken invariant, with the simulated time
  uint64_t trace_hash = 0;
  uint64_t requests = 0, acked = 0, observations = 0, crashes = 0, io_errors = 0, dropped = 0;
};

SimResult RunMdsSim(const SimOptions& options);

}  // namespace vstorage::sim
