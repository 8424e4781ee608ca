#!/usr/bin/python3
"""Fault campaign (long, not part of `make test`): 5 CS, replicas 3, offline timeout 5 s.

Rounds of: writers rewrite and append to files (fsync'ed, contents known), while one of
  - SIGKILL a CS and restart it soon (inactive only) or late (after it went offline),
  - flip a byte in the data area of a random chunk file,
  - SIGKILL a CS, damage the header of one of its chunk files, restart it,
  - SIGKILL the MDS and restart it,
  - rm-cs --wait a CS, then add a fresh one,
happens at a random moment. After every round each file is read back and compared byte
for byte; at the end the cluster must return to all chunks healthy.

    /usr/bin/python3 bench/fault_campaign.py [--minutes 10] [--seed N]
"""
import argparse
import hashlib
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "system"))
from conftest import Cluster, drop_caches, file_info, wait_for  # noqa: E402

MiB = 1024 * 1024


class Spawner:
    """Starts daemons from a process forked before any file on the mount is open. A fork
    of this process while a writer holds a FUSE file open would close that file's copy in
    the child (a FUSE FLUSH, which waits for the MDS): restarting the MDS from here would
    wait for the MDS."""

    def __init__(self):
        import multiprocessing
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=self._serve, args=(child,), daemon=True)
        self.proc.start()
        self.lock = threading.Lock()

    @staticmethod
    def _serve(conn):
        import subprocess
        procs = {}
        while True:
            op, *args = conn.recv()
            if op == "spawn":
                argv, env, log = args
                with open(log, "ab") as f:
                    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
                procs[p.pid] = p
                conn.send(p.pid)
            elif op == "poll":
                conn.send(procs[args[0]].poll())
            elif op == "signal":
                procs[args[0]].send_signal(args[1])
                conn.send(None)
            elif op == "wait":
                conn.send(procs[args[0]].wait(timeout=args[1]))

    def call(self, *msg):
        with self.lock:
            self.conn.send(msg)
            return self.conn.recv()


class RemoteProc:
    def __init__(self, spawner, pid):
        self.s, self.pid = spawner, pid

    def poll(self):
        return self.s.call("poll", self.pid)

    def send_signal(self, sig):
        self.s.call("signal", self.pid, sig)

    def kill(self):
        self.send_signal(9)

    def wait(self, timeout=None):
        return self.s.call("wait", self.pid, timeout)


class CampaignCluster(Cluster):
    def __init__(self, root, spawner):
        super().__init__(root)
        self.spawner = spawner

    def _spawn(self, key, argv, host):
        pid = self.spawner.call("spawn", argv, host.env(), os.path.join(self.root, key + ".log"))
        p = RemoteProc(self.spawner, pid)
        self.procs[key] = (p, argv, host)
        return p


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
    c = CampaignCluster(root, Spawner())
    try:
        run(c, rnd, a.minutes)
    finally:
        c.shutdown()
        if not a.keep:
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("kept", root)


def diagnose(c, m, name, got, want):
    """Where the read differs, and which replicas on disk hold what."""
    out = []
    chunk = 4 * MiB
    info = file_info(c, f"{m}/{name}")
    for ch in info["chunks"]:
        lo, hi = ch["index"] * chunk, min((ch["index"] + 1) * chunk, len(want))
        if got[lo:hi] == want[lo:hi]:
            continue
        first = next(i for i in range(lo, hi) if i >= len(got) or got[i] != want[i])
        out.append(f"  chunk index {ch['index']} id {ch['id']} v{ch['version']} {ch['state']} "
                   f"replicas {ch['replicas']}: first difference at file offset {first}")
        for cs, (repo, _) in c.cs_repos.items():
            p = os.path.join(repo, "chunks", "%016x" % ch["id"])
            if not os.path.exists(p):
                continue
            with open(p, "rb") as f:
                head = f.read(24)
                f.seek(DATA_OFF)
                d = f.read(hi - lo)
            d += b"\0" * (hi - lo - len(d))
            ver = int.from_bytes(head[16:24], "little")
            out.append(f"    CS#{cs} file v{ver}: {'matches expected' if d == want[lo:hi] else 'DIFFERS'}"
                       f"{' (listed)' if cs in ch['replicas'] else ''}; equals what was read: {d == got[lo:hi]}")
    return out


def run(c, rnd, minutes):
    _, m, h = c.start(5)
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
        fault = rnd.choice(["kill_soon", "kill_late", "flip", "header", "mds", "rm_cs"])
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
                print(f"  flip in {p}", flush=True)
                off = DATA_OFF + rnd.randint(0, os.path.getsize(p) - DATA_OFF - 1)
                with open(p, "r+b") as f:
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ 0x5A]))
        elif fault == "header":
            # A CS dies and one of its chunk files comes back with a damaged header.
            v = rnd.choice(sorted(live_cs))
            c.kill(f"cs{v}")
            repo, _ = c.cs_repos[v]
            files = [os.path.join(repo, "chunks", x) for x in os.listdir(os.path.join(repo, "chunks"))]
            files = [x for x in files if os.path.getsize(x) >= 40]
            if files:
                p = rnd.choice(files)
                print(f"  damaged header of {p}", flush=True)
                with open(p, "r+b") as f:
                    off = rnd.randint(0, 39)
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ 0x21]))
            c.restart(f"cs{v}")
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
        drop_caches()
        for name, want in list(model.items()):
            got = open(f"{m}/{name}", "rb").read()
            if got != want:
                errors.append(f"round {rounds}: {name} differs (len {len(got)} vs {len(want)})")
                errors.extend(diagnose(c, m, name, got, want))
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
