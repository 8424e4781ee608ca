"""Power cuts (issue 13): every server's repository lies on its own power-cut file system
(tests/powercut), so cutting a server drops everything it had not synced, as losing power
would (SIGKILL alone keeps the page cache and proves nothing about fsync).

After the servers come back:
  * every byte acknowledged by an fsync that returned is there;
  * every other 512-byte sector reads as one of the versions written to it since that fsync,
    or as the fsynced one: never an error, never other bytes;
  * every chunk is readable, and once the cluster is healthy its replicas are identical;
  * every create and rename whose call returned is in the namespace (the MDS replies only
    after the change is durable: docs/design/mds.md).
"""
import hashlib
import os
import struct
import subprocess
import time

from conftest import MiB, drop_caches, file_info, wait_for

BLOCK = 4096
SECTOR = 512
MAGIC = 0x7063757473656374  # "tcestucp"


def sector_bytes(b, gen, s):
    head = struct.pack("<QQQQ", MAGIC, b, gen, s)
    return head + (hashlib.sha256(head).digest() * 16)[:SECTOR - len(head)]


# The writer runs in its own process: the test process must hold no file open on the mount,
# or starting a daemon (exec closes inherited CLOEXEC files, and the mount's flush of them
# waits for the MDS) would hang while the MDS is down.
WRITER = r"""
import hashlib, os, random, struct, sys
path, n, seed, sequential, every, log, stop, first = sys.argv[1:9]
n, every, sequential = int(n), int(every), sequential == "1"
rng = random.Random(int(seed) * 1000003 + int(first))
MAGIC = %d
def block(b, g):
    out = []
    for s in range(8):
        head = struct.pack("<QQQQ", MAGIC, b, g, s)
        out.append(head + (hashlib.sha256(head).digest() * 16)[:512 - len(head)])
    return b"".join(out)
out = open(log, "a", buffering=1)
out.write("P\n")
fd = os.open(path, os.O_RDWR)
gen, writes = int(first) - 1, 0
while not os.path.exists(stop):
    b = (gen %% n) if sequential else rng.randrange(n)
    gen += 1
    out.write(f"I {b} {gen}\n")
    try:
        os.pwrite(fd, block(b, gen), b * 4096)
    except OSError as e:
        out.write(f"E write of block {b}: {e}\n")
        continue
    writes += 1
    if writes %% every == 0:
        upto = gen
        try:
            os.fsync(fd)
            out.write(f"F {upto}\n")
        except OSError as e:
            out.write(f"E fsync: {e}\n")
os.close(fd)
""" % MAGIC


class Writer:
    """Writes 4 KiB blocks of distinct versions (random or sequential order) and fsyncs
    every `every` writes, in a child process that logs what it issued and what each
    returned fsync covered."""

    def __init__(self, root, path, nblocks, seed, sequential=False, every=16):
        self.path, self.n = path, nblocks
        self.log = os.path.join(root, f"writer-{seed}.log")
        self.stop = os.path.join(root, f"writer-{seed}.stop")
        self.args = [path, str(nblocks), str(seed), "1" if sequential else "0", str(every), self.log, self.stop]

    def start(self):
        """Starts (or, after finish(), resumes) writing; versions go on from the last one."""
        if not os.path.exists(self.log):
            open(self.log, "w").close()
        issued = self.state()[0]
        first = max((max(g) for g in issued if g), default=0) + 1
        if os.path.exists(self.stop):
            os.remove(self.stop)
        self.p = subprocess.Popen(["/usr/bin/python3", "-c", WRITER, *self.args, str(first)], stderr=subprocess.PIPE)

    def state(self):
        """(versions issued per block, the versions a returned fsync covered, writes,
        fsyncs, errors). A phase ("P") is one writer process; an fsync covers the writes
        of its own phase before it, and nothing issued before a cut that it did not cover."""
        issued = [[] for _ in range(self.n)]
        covered, phase, writes, fsyncs, errors = set(), [], 0, 0, []
        for line in open(self.log).read().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "P":
                phase = []
            elif kind == "I":
                b, g = map(int, rest.split())
                issued[b].append(g)
                phase.append(g)
                writes += 1
            elif kind == "F":
                covered.update(phase)
                phase, fsyncs = [], fsyncs + 1
            elif kind == "E":
                errors.append(rest)
                if rest.startswith("fsync"):
                    phase = []  # reported lost: no later fsync covers them
        return issued, covered, writes, fsyncs, errors

    def wait_progress(self, writes, fsyncs=1, timeout=120):
        _, _, w0, f0, _ = self.state()

        def moved():
            assert self.p.poll() is None, f"the writer died: {self.p.stderr.read().decode()[-2000:]}"
            _, _, w, f, errors = self.state()
            return w >= w0 + writes and f >= f0 + fsyncs
        wait_for(moved, timeout=timeout, what=f"{writes} more writes and {fsyncs} more fsyncs")

    def finish(self):
        open(self.stop, "w").close()
        self.p.wait(timeout=300)
        assert self.p.returncode == 0, self.p.stderr.read().decode()[-2000:]
        self.issued, self.covered, _, _, self.errors = self.state()

    def check(self, path):
        """Every sector holds the newest fsynced version or one written after it that no
        returned fsync covered."""
        bad = []
        data = open(path, "rb").read()
        assert len(data) >= self.n * BLOCK, f"file is {len(data)} bytes, {self.n * BLOCK} were written"
        for b in range(self.n):
            durable = max([g for g in self.issued[b] if g in self.covered], default=0)
            ok = {durable} | {g for g in self.issued[b] if g > durable and g not in self.covered}
            for s in range(BLOCK // SECTOR):
                got = data[b * BLOCK + s * SECTOR:b * BLOCK + (s + 1) * SECTOR]
                if got == bytes(SECTOR):
                    gen = 0
                else:
                    magic, bb, gen, ss = struct.unpack_from("<QQQQ", got)
                    if magic != MAGIC or bb != b or ss != s or got != sector_bytes(b, gen, s):
                        bad.append(f"block {b} sector {s}: foreign bytes")
                        continue
                if gen not in ok:
                    bad.append(f"block {b} sector {s}: version {gen}, fsynced {durable}, allowed {sorted(ok)[:6]}")
        assert not bad, f"{len(bad)} bad sectors, e.g. {bad[:5]}"


def pc_cluster(cluster, n_cs, replicas=3):
    cluster.powercut = True
    ids, m, h = cluster.start(n_cs, replicas=replicas, chunk_size="1M")
    return ids, m, h


def new_file(m, name, nblocks):
    path = f"{m}/{name}"
    with open(path, "wb") as f:
        f.truncate(nblocks * BLOCK)
        os.fsync(f.fileno())
    return path


def chunk_data(repo, cid, chunk_size=MiB):
    """A replica's bytes (src/cs/chunk_store.h layout: header, CRC table, data)."""
    table = (chunk_size // BLOCK) * 4
    data_off = 4096 + (table + BLOCK - 1) // BLOCK * BLOCK
    with open(os.path.join(repo, "chunks", "%016x" % cid), "rb") as f:
        f.seek(data_off)
        return f.read().ljust(chunk_size, b"\0")


def wait_healthy_and_identical(cluster, path, replicas):
    def healthy():
        chunks = file_info(cluster, path)["chunks"]
        return all(c["state"] == "healthy" and len(set(c["replicas"])) == replicas for c in chunks) and chunks
    chunks = wait_for(healthy, timeout=120, what=f"every chunk of {path} healthy with {replicas} replicas")
    for c in chunks:
        copies = {cs: chunk_data(cluster.cs_repos[cs][0], c["id"]) for cs in c["replicas"]}
        digests = {cs: hashlib.sha256(d).hexdigest()[:12] for cs, d in copies.items()}
        assert len(set(digests.values())) == 1, f"chunk {c['id']}: replicas differ: {digests}"


def restart(cluster, *keys):
    """Power back: the servers start again and every CS among them becomes active."""
    # The MDS first: starting a process closes (CLOEXEC) the test's open files on the mount,
    # and their flush waits for the MDS.
    for k in sorted(keys, key=lambda k: k != "mds"):
        cluster.restart(k)
        if k == "mds":
            cluster.wait_mds()
    cs = [int(k[2:]) for k in keys if k.startswith("cs")]

    def back():
        for k in keys:
            assert cluster.procs[k][0].poll() is None, f"{k} exited after the power cut: see {k}.log"
        st = {c["id"]: c["status"] for c in cluster.stat_json()["cs"]}
        return all(st.get(i) == "active" for i in cs)
    wait_for(back, timeout=90, what=f"{keys} back after the power cut")


def cut_while_dirty(cluster, *keys, opts=""):
    """Cuts power at a moment the first server's file system holds unsynced writes (a cut
    that found everything synced would prove nothing): its file system makes the cut right
    after the next change, however short the window before its sync (the MDS's)."""
    rep = cluster.cut(*keys, opts=opts, wait_dirty=60)
    if "keep=" not in opts:  # with keep=P a dirty page may survive by chance
        assert dropped(rep[keys[0]]) > 0, rep
    return rep


def dropped(report):
    """Pages and names a cut dropped, from the file system's report."""
    kv = dict(x.split("=") for x in report.split())
    return int(kv["dropped_pages_last"]) + int(kv["dropped_names_last"])


def test_power_cut_of_one_cs_during_random_writes_loses_nothing_fsynced(cluster):
    ids, m, h = pc_cluster(cluster, 4)
    path = new_file(m, "f", 1024)  # 4 MiB: 4 chunks
    w = Writer(cluster.root, path, 1024, seed=1)
    w.start()
    w.wait_progress(300, 5)
    victim = file_info(cluster, path)["chunks"][0]["replicas"][0]
    cut_while_dirty(cluster, f"cs{victim}")
    w.wait_progress(200, 3)  # the other replicas go on
    restart(cluster, f"cs{victim}")
    w.wait_progress(50, 1)
    w.finish()
    assert not w.errors, w.errors[:5]
    drop_caches()
    w.check(path)
    wait_healthy_and_identical(cluster, path, 3)
    w.check(path)


def test_power_cut_of_a_minority_of_cs_during_sequential_writes(cluster):
    ids, m, h = pc_cluster(cluster, 5)
    path = new_file(m, "f", 2048)
    w = Writer(cluster.root, path, 2048, seed=2, sequential=True, every=32)
    w.start()
    w.wait_progress(400, 5)
    a, b = file_info(cluster, path)["chunks"][0]["replicas"][:2]
    cut_while_dirty(cluster, f"cs{a}", f"cs{b}", opts="keep=0.5 seed=3 tear=1")
    w.wait_progress(200, 3)
    restart(cluster, f"cs{a}", f"cs{b}")
    w.wait_progress(50, 1)
    w.finish()
    assert not w.errors, w.errors[:5]
    drop_caches()
    w.check(path)
    wait_healthy_and_identical(cluster, path, 3)
    w.check(path)


META = r"""
import os, sys
d, log, stop = sys.argv[1:4]
out = open(log, "a", buffering=1)
i = 0
while not os.path.exists(stop):
    try:
        with open(f"{d}/tmp{i}", "wb") as f:
            f.write(b"x" * 100)
        os.rename(f"{d}/tmp{i}", f"{d}/f{i}")
        out.write(f"D {i}\n")
    except OSError as e:
        out.write(f"E {i}: {e}\n")
    i += 1
"""


def test_power_cut_of_the_mds_keeps_every_returned_create_and_rename(cluster):
    ids, m, h = pc_cluster(cluster, 3)
    os.mkdir(f"{m}/d")
    log, stop = os.path.join(cluster.root, "meta.log"), os.path.join(cluster.root, "meta.stop")
    p = subprocess.Popen(["/usr/bin/python3", "-c", META, f"{m}/d", log, stop], stderr=subprocess.PIPE)

    def done():
        return [int(l.split()[1]) for l in open(log).read().splitlines() if l.startswith("D ")]
    wait_for(lambda: os.path.exists(log) and len(done()) >= 50, what="50 creates+renames")
    cut_while_dirty(cluster, "mds")
    n_before = len(done())
    restart(cluster, "mds")
    wait_for(lambda: len(done()) >= n_before + 50, timeout=120, what="creates after the MDS came back")
    open(stop, "w").close()
    p.wait(timeout=120)
    assert p.returncode == 0, p.stderr.read().decode()[-2000:]
    ok = done()
    names = set(os.listdir(f"{m}/d"))
    missing = [i for i in ok if f"f{i}" not in names]
    assert not missing, f"{len(missing)} returned renames lost, e.g. {missing[:5]}"
    # The size a close() returned with is durable too (the mount flushes it on close).
    short = [i for i in ok if os.path.getsize(f"{m}/d/f{i}") != 100]
    assert not short, f"{len(short)} files lost their size, e.g. {short[:5]}"
    # Calls cut by the restart may fail (the MDS was gone); none of them may be half done.
    errors = [l for l in open(log).read().splitlines() if l.startswith("E ")]
    assert len(errors) <= 2, errors


def test_power_cut_of_every_server_at_once_twice(cluster):
    ids, m, h = pc_cluster(cluster, 4)
    path = new_file(m, "f", 1024)
    w = Writer(cluster.root, path, 1024, seed=4, every=8)
    keys = [f"cs{i}" for i in ids] + ["mds"]
    for opts in ["", "keep=0.5 seed=11 tear=1"]:
        w.start()
        w.wait_progress(200, 5)
        cut_while_dirty(cluster, *keys, opts=opts)
        restart(cluster, *keys)
        w.finish()  # its last call may have run into the cut: it returns once the cluster is back
        # Every replica lost what was not synced, and the client sent its acknowledged
        # writes again (File::Replay): neither a write nor an fsync failed.
        assert not w.errors, w.errors[:5]
        drop_caches()  # what the servers hold, not what the mount's page cache remembers
        w.check(path)
    wait_healthy_and_identical(cluster, path, 3)
    w.check(path)
