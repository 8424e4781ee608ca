#!/usr/bin/python3
"""Fault campaign (long, not part of `make test`): 5 CS, replicas 3, offline timeout 5 s.

Rounds of: writers rewrite and append to files (fsync'ed, contents known), while one of
  - SIGKILL a CS and restart it soon (inactive only) or late (after it went offline),
  - flip a byte in the data area of a random chunk file,
  - SIGKILL the MDS and restart it,
  - rm-cs --wait a CS, then add a fresh one,
happens at a random moment. After every round each file is read back and compared byte
for byte; at the end the cluster must return to all chunks healthy.

    /usr/bin/python3 bench/fault_campaign.py [--minutes 10] [--seed N]
"""
import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from conftest import Cluster, wait_for  # noqa: E402

MiB = 1024 * 1024
DATA_OFF = 4096 + 4096  # header + CRC table of a 4 MiB chunk (src/cs/chunk_store.h)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    print(f"seed {a.seed}", flush=True)
    root = tempfile.mkdtemp(prefix="vsfault-")
    c = Cluster(root)
    try:
        run(c, rnd, a.minutes)
    finally:
        c.shutdown()
        if not a.keep:
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("kept", root)


def file_info(c, path):
    return json.loads(c.host("mds").vstorage("file-info", "--json", path).stdout)


def run(c, rnd, minutes):
    c.make_mds()
    for _ in range(5):
        c.add_cs()
    c.wait_cs_active(5)
    m = c.mount()
    h = c.host("mds")
    h.vstorage("set-attr", "-R", m, "replicas=3")
    h.vstorage("set-attr", m, "chunk-size=4M")
    h.vstorage("set-config", "mds.wd.offline_tout=5000")
    h.vstorage("set-config", "mds.wd.verify_chunks=30")
    model = {}  # name -> bytes
    lock = threading.Lock()
    errors = []
    deadline = time.time() + minutes * 60
    rounds = 0
    counts = {}

    def writer(name, seed):
        r = random.Random(seed)
        try:
            with lock:
                cur = bytearray(model.get(name, b""))
            with open(f"{m}/{name}", "r+b" if cur else "wb") as f:
                for _ in range(r.randint(2, 6)):
                    off = r.randint(0, len(cur)) if cur and r.random() < 0.6 else len(cur)
                    n = r.choice([4096, 65536, MiB, 3 * MiB + 17])
                    d = os.urandom(n)
                    f.seek(off)
                    f.write(d)
                    if off + n > len(cur):
                        cur.extend(b"\0" * (off + n - len(cur)))
                    cur[off:off + n] = d
                f.flush()
                os.fsync(f.fileno())
            with lock:
                model[name] = bytes(cur)
        except OSError as e:
            errors.append(f"{name}: {e}")

    live_cs = set(c.cs_repos)
    while time.time() < deadline:
        rounds += 1
        names = [f"f{rnd.randint(0, 7)}" for _ in range(2)]
        names = list(dict.fromkeys(names))
        ts = [threading.Thread(target=writer, args=(n, rnd.random())) for n in names]
        for t in ts:
            t.start()
        time.sleep(rnd.random() * 0.5)
        fault = rnd.choice(["kill_soon", "kill_late", "flip", "mds", "rm_cs"])
        counts[fault] = counts.get(fault, 0) + 1
        print(f"round {rounds}: {fault} while writing {names}", flush=True)
        if fault in ("kill_soon", "kill_late"):
            v = rnd.choice(sorted(live_cs))
            c.kill(f"cs{v}")
            for t in ts:
                t.join(timeout=300)
            time.sleep(0.5 if fault == "kill_soon" else 8)
            c.restart(f"cs{v}")
        elif fault == "flip":
            v = rnd.choice(sorted(live_cs))
            repo, _ = c.cs_repos[v]
            files = [os.path.join(repo, "chunks", x) for x in os.listdir(os.path.join(repo, "chunks"))]
            files = [x for x in files if os.path.getsize(x) > DATA_OFF + 4096]
            if files:
                p = rnd.choice(files)
                off = DATA_OFF + rnd.randint(0, os.path.getsize(p) - DATA_OFF - 1)
                with open(p, "r+b") as f:
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ 0x5A]))
        elif fault == "mds":
            c.kill("mds")
            time.sleep(rnd.random())
            c.restart("mds")
            c.wait_mds()
        elif fault == "rm_cs":
            for t in ts:
                t.join(timeout=300)
            v = rnd.choice(sorted(live_cs))
            r = h.vstorage("rm-cs", "--wait", str(v), check=False, timeout=600)
            if r.returncode == 0:
                live_cs.discard(v)
                c.kill(f"cs{v}")
                live_cs.add(c.add_cs())
            else:
                print("  rm-cs refused:", r.stderr.strip(), flush=True)
        for t in ts:
            t.join(timeout=300)
            if t.is_alive():
                errors.append("a writer hung for 300 s")
        if errors:
            break
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        for name, want in list(model.items()):
            got = open(f"{m}/{name}", "rb").read()
            if got != want:
                errors.append(f"round {rounds}: {name} differs (len {len(got)} vs {len(want)})")
        if errors:
            break

    def healthy():
        s = c.stat_json()
        ch = s["chunks"]
        return ch["healthy"] + ch.get("void", 0) == ch["total"]
    if not errors:
        try:
            wait_for(healthy, timeout=300, what="every chunk healthy")
        except AssertionError as e:
            errors.append(str(e))
        for name, want in model.items():
            if hashlib.sha256(open(f"{m}/{name}", "rb").read()).digest() != hashlib.sha256(want).digest():
                errors.append(f"end: {name} differs")
    print(f"{rounds} rounds, faults {counts}, files {len(model)}, "
          f"{sum(len(v) for v in model.values()) // MiB} MiB")
    if errors:
        print("FAILED:\n  " + "\n  ".join(errors))
        print(h.vstorage("stat").stdout)
        sys.exit(1)
    print("OK: every file byte-exact after every round; all chunks healthy at the end")


if __name__ == "__main__":
    main()
