// Deterministic simulation of the Raft core (issue 12 item 2, docs/design/consensus.md).
//
// One seeded event queue runs 3 or 5 real consensus::Raft nodes on a simulated clock, over a
// simulated network that loses, duplicates, delays and reorders messages and is partitioned
// (symmetric splits and one-way link cuts). Each node has a simulated disk that completes
// writes in order after a delay (now and then a slow fsync); a node crashes at random, and
// sometimes right after it hands a new vote to its disk, and restarts from what its disk
// holds (any suffix of the writes not yet reported durable may be lost). Nodes tick at
// different rates (clock skew). A client proposes entries to whoever is leader; the leader
// occasionally hands leadership over and removes or adds back a voter (one at a time; after
// the faults every node is added back); nodes take snapshots and compact their logs, so
// restarted or partitioned nodes catch up from snapshots.
//
// Checked continuously:
//  * election safety: at most one leader per term;
//  * log matching: two logs' entries with the same index and term carry the same data and
//    follow an entry of the same term (so, inductively, identical prefixes);
//  * leader completeness: a new leader's log holds every entry applied anywhere so far;
//  * state-machine safety: every node applies the same entry at each index (a hash chain of
//    the applied prefix, also carried in snapshot images);
// and at the end, after a heal period with every node up and the network reliable: every
// entry whose commit the client observed is applied on every node (liveness after healing).
//
// A key-value workload on top (issue 12 item 2): every node applies the committed client
// commands (put, get, compare-and-set, each tagged with a client id and sequence number) to
// its own map, deduplicated by (client, seq); the map and the deduplication table travel in
// snapshot images. kSimClients simulated clients, each with one operation outstanding, send it
// to the node they believe leads, follow redirects, and on a timeout retry another node (the
// same client and seq, so a retry is applied at most once), abandoning the operation after
// kMaxClientAttempts (its outcome is then unknown). A node answers a client only when it
// applies that command. Reads are commands too, so they go through the log. Each run records
// the history (invocation, completion or never, result observed) and checks it with the
// linearizability checker (sim/lin_check.h); a violation names the key and the few operations
// involved; a key whose search hits kMaxLinStatesPerKey counts as inconclusive. Liveness for
// the clients: every operation invoked a second (kHealSettleMs) into the heal period completes.
//
// Same seed and options: the same run, event for event (trace_hash says so).
#pragma once
#include <cstdint>
#include <string>

namespace vstorage::sim {

struct RaftSimOptions {
  uint64_t seed = 1;
  int nodes = 3;                 // 3 or 5
  int64_t fault_ms = 8000;       // simulated time with faults
  int64_t heal_ms = 6000;        // then everything up and reliable
  bool verbose = false;          // print every event
  bool break_vote_check = false; // the deliberate bug: votes without the up-to-date check
  bool break_commit_rule = false;  // the deliberate bug: old-term entries committed by counting
  bool break_durability = false;   // the deliberate bug: entries acknowledged before durable
  // The deliberate bug only the linearizability checker sees: a node that believes it leads
  // answers a get from its applied state at once, without going through the log.
  bool break_stale_reads = false;
  // Another: the state machine forgets its deduplication, so a retried command applies again.
  bool break_dedup = false;
  uint64_t lin_max_states_per_key = 0;  // the checker's search bound (0: kMaxLinStatesPerKey)
};

struct RaftSimResult {
  bool ok = true;
  std::string violation;  // the first broken property, with the simulated time
  uint64_t trace_hash = 0;
  uint64_t proposals = 0, acked = 0, leaders = 0, crashes = 0, dropped = 0, duplicated = 0,
           snapshots_sent = 0, transfers = 0, config_changes = 0, messages = 0;
  // The client workload and its linearizability check.
  bool lin_violation = false;     // `violation` is the checker's
  uint64_t ops = 0, ops_completed = 0, ops_unknown = 0, client_retries = 0;
  uint64_t lin_states = 0, lin_inconclusive_keys = 0;
  std::string lin_note;           // the inconclusive keys, if any (not a pass, not a failure)
};

RaftSimResult RunRaftSim(const RaftSimOptions& options);

}  // namespace vstorage::sim
