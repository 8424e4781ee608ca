#!/usr/bin/python3
"""Power-cut campaign (issue 13; long, not part of `make test`): 5 CS with replicas 3 and
the MDS, every repository on its own power-cut file system (tests/powercut). N rounds of:
a writer process writes 4 KiB blocks of known versions at random places with an fsync every
8 writes; at a moment the first CS's disk holds unsynced writes, the power of every server
goes at once (every other round the disks keep a random half of their cache and tear pages
at sectors); the servers restart. After each round every sector must hold its newest
fsynced version or a later unsynced one (never an error, never other bytes, no write
failing, no fsync failing: the client sends again the acknowledged writes every replica
lost, File::Replay); at the end every chunk is healthy with byte-identical replicas.

    /usr/bin/python3 bench/powercut_campaign.py [--cuts 10] [--seed 1] [--keep]

Prints one line per cut and a summary; exits 1 on the first violation. Needs a build
(make build) and root (FUSE mounts).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from conftest import Cluster, drop_caches  # noqa: E402
from test_powercut import (Writer, cut_while_dirty, new_file, pc_cluster, restart,  # noqa: E402
                           wait_healthy_and_identical)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuts", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="vs-pc-campaign-")
    cluster = Cluster(root)
    t0 = time.time()
    try:
        ids, m, h = pc_cluster(cluster, 5)
        path = new_file(m, "f", 2048)  # 8 MiB: 8 chunks over 5 CS
        w = Writer(cluster.root, path, 2048, seed=a.seed, every=8)
        keys = [f"cs{i}" for i in ids] + ["mds"]
        for n in range(a.cuts):
            opts = "" if n % 2 == 0 else f"keep=0.5 seed={a.seed * 100 + n} tear=1"
            w.start()
            w.wait_progress(300, 10)
            rep = cut_while_dirty(cluster, *keys, opts=opts)
            restart(cluster, *keys)
            w.finish()
            assert not w.errors, f"cut {n + 1}: a write or an fsync failed: {w.errors[:5]}"
            drop_caches()
            w.check(path)
            dropped = sum(int(dict(x.split("=") for x in r.split())["dropped_pages_last"]) for r in rep.values())
            print(f"cut {n + 1:2d}/{a.cuts} ({opts or 'drop all'}): {dropped} unsynced pages dropped, "
                  f"every sector ok, no call failed", flush=True)
        wait_healthy_and_identical(cluster, path, 3)
        w.check(path)
        issued, covered, writes, fsyncs, errors = w.state()
        print(f"ok: {a.cuts} cuts of all 6 servers in {time.time() - t0:.0f} s; {writes} writes, {fsyncs} fsyncs "
              f"returned, none failed (no EIO); every chunk healthy, replicas identical")
    finally:
        cluster.shutdown()
        if a.keep:
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
