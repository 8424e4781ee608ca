"""Self-healing beyond a dead CS: rm-cs (3.2.2), scrubbing (7.6.5), a vanished repository
(flag R, 8.1.8) and writes to a chunk below its minimum replica count (5.3.2)."""
import errno
import os
import re
import subprocess
import threading
import time

from conftest import MiB, chunk_files, cs_entry, drop_caches, file_info, sha, wait_for, write_file


def test_rm_cs_refused_when_the_rest_cannot_hold_the_data(cluster):
    ids, m, h = cluster.start(3)
    write_file(f"{m}/f", os.urandom(5 * MiB))
    r = h.vstorage("rm-cs", "--wait", str(ids[0]), check=False)
    assert r.returncode == 1
    assert f"cannot remove CS#{ids[0]}" in r.stderr and "3 replicas on distinct hosts" in r.stderr
    assert cs_entry(cluster, ids[0])["status"] == "active"
    # -f is for lost chunk servers only.
    r = h.vstorage("rm-cs", "-f", str(ids[0]), check=False)
    assert r.returncode == 1 and "is active" in r.stderr
    r = h.vstorage("rm-cs", "--cancel", str(ids[0]), check=False)
    assert r.returncode == 1 and "not being removed" in r.stderr
    r = h.vstorage("rm-cs", "abc", check=False)
    assert r.returncode == 2 and "invalid CS id" in r.stderr
    assert all(c["status"] == "active" for c in cluster.stat_json()["cs"])


def test_rm_cs_wait_moves_data_without_dropping_below_three_replicas(cluster):
    ids, m, h = cluster.start(4)
    files = {}
    for i in range(3):
        files[f"f{i}"] = os.urandom(9 * MiB)
        write_file(f"{m}/f{i}", files[f"f{i}"])
    counts = {}
    for name in files:
        for c in file_info(cluster, f"{m}/{name}")["chunks"]:
            for r in c["replicas"]:
                counts[r] = counts.get(r, 0) + 1
    victim = max(counts, key=counts.get)
    repo, _ = cluster.cs_repos[victim]
    assert chunk_files(repo)

    # Cancel first: a slow removal (1 MB/s per copy) is started, then cancelled.
    h.vstorage("set-config", "mds.recovery.max_rate_mb=1")
    r = h.vstorage("rm-cs", str(victim))
    assert "started" in r.stdout
    wait_for(lambda: cs_entry(cluster, victim)["status"] == "releasing", what="status releasing")
    h.vstorage("rm-cs", "--cancel", str(victim))
    assert cs_entry(cluster, victim)["status"] == "active"
    h.vstorage("set-config", "mds.recovery.max_rate_mb=0")

    low = []
    stop = threading.Event()

    def watch():  # no chunk may ever have fewer than 3 replicas listed
        while not stop.is_set():
            for name in files:
                for c in file_info(cluster, f"{m}/{name}")["chunks"]:
                    if len(set(c["replicas"])) < 3:
                        low.append(c)
            time.sleep(0.05)
    t = threading.Thread(target=watch)
    t.start()
    try:
        r = h.vstorage("rm-cs", "--wait", str(victim), timeout=300)
    finally:
        stop.set()
        t.join()
    assert not low, low[:3]
    assert "replicas left to move" in r.stdout and f"CS#{victim} removed" in r.stdout
    assert cs_entry(cluster, victim)["status"] == "dropped"
    for name, data in files.items():
        for c in file_info(cluster, f"{m}/{name}")["chunks"]:
            assert victim not in c["replicas"] and len(set(c["replicas"])) == 3
        assert sha(open(f"{m}/{name}", "rb").read()) == sha(data)
    wait_for(lambda: not chunk_files(repo), timeout=30, what="replicas on the dropped CS deleted")
    wait_for(lambda: cluster.stat_json()["chunks"]["healthy"] == cluster.stat_json()["chunks"]["total"],
             timeout=30, what="every chunk healthy in stat")
    events = h.vstorage("get-event").stdout
    assert f"Removal of CS#{victim} started" in events and f"Removal of CS#{victim} cancelled" in events
    assert f"CS#{victim} is dropped" in events


def test_rm_cs_force_for_a_lost_cs(cluster):
    ids, m, h = cluster.start(4)
    data = os.urandom(9 * MiB)
    write_file(f"{m}/f", data)
    victim = file_info(cluster, f"{m}/f")["chunks"][0]["replicas"][0]
    cluster.kill(f"cs{victim}")
    # Still inactive (offline after 5 min by default): -f drops it now and recovery starts.
    wait_for(lambda: cs_entry(cluster, victim)["status"] == "inactive", timeout=30, what="CS inactive")
    r = h.vstorage("rm-cs", "-f", str(victim))
    assert "dropped" in r.stdout
    assert cs_entry(cluster, victim)["status"] == "dropped"
    wait_for(lambda: all(len(set(c["replicas"])) == 3 and victim not in c["replicas"] and c["state"] == "healthy"
                         for c in file_info(cluster, f"{m}/f")["chunks"]), timeout=60,
             what="chunks rebuilt without the dropped CS")
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)
    # A dropped CS that comes back is refused, not trusted.
    cluster.restart(f"cs{victim}")
    time.sleep(3)
    assert cs_entry(cluster, victim)["status"] == "dropped"
    log = open(os.path.join(cluster.root, f"cs{victim}.log")).read()
    assert "removed from the cluster" in log


def test_scrubbing_finds_a_flipped_byte_nobody_reads(cluster):
    ids, m, h = cluster.start(4)
    data = os.urandom(6 * MiB)
    write_file(f"{m}/f", data)
    c = file_info(cluster, f"{m}/f")["chunks"][1]
    bad_cs = c["replicas"][2]
    repo, _ = cluster.cs_repos[bad_cs]
    path = os.path.join(repo, "chunks", "%016x" % c["id"])
    data_off = 4096 + 4096  # header + CRC table of a 4 MiB chunk (src/cs/chunk_store.h)
    pos = 4 * MiB + 12345 - 4 * MiB  # byte 12345 of the second chunk
    with open(path, "r+b") as f:
        f.seek(data_off + pos)
        f.write(bytes([data[4 * MiB + pos] ^ 0x5A]))
    h.vstorage("set-config", "mds.wd.verify_chunks=600")  # 10 chunks a second per CS

    def found():
        return f"Checksum mismatch in chunk {c['id']} on CS#{bad_cs}" in h.vstorage("get-event").stdout
    wait_for(found, timeout=60, what="scrubbing to report the mismatch")
    wait_for(lambda: all(len(set(x["replicas"])) == 3 and x["state"] == "healthy"
                         for x in file_info(cluster, f"{m}/f")["chunks"]), timeout=60,
             what="the bad replica rebuilt")
    wait_for(lambda: "h" in cs_entry(cluster, bad_cs)["flags"], timeout=15, what="flag h")
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)
    get = h.vstorage("get-config").stdout
    assert "mds.wd.verify_chunks" in get and "600" in get


def test_vanished_repository_sets_flag_R_and_data_is_rebuilt(cluster):
    ids, m, h = cluster.start(4, size_mb=64)
    h.vstorage("set-config", "mds.wd.offline_tout=3000")
    data = os.urandom(9 * MiB)
    write_file(f"{m}/f", data)
    victim = file_info(cluster, f"{m}/f")["chunks"][0]["replicas"][0]
    repo, _ = cluster.cs_repos[victim]
    # The disk goes away under the running CS.
    subprocess.run(["umount", "-l", repo], check=True)
    cluster.tmpfs.remove(repo)
    wait_for(lambda: "R" in cs_entry(cluster, victim)["flags"], timeout=30, what="flag R")
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)  # served by the others
    wait_for(lambda: all(len(set(c["replicas"])) == 3 and victim not in c["replicas"] and c["state"] == "healthy"
                         for c in file_info(cluster, f"{m}/f")["chunks"]), timeout=90,
             what="chunks rebuilt away from the CS without a repository")
    events = h.vstorage("get-event").stdout
    assert f"CS#{victim} lost its repository {repo}" in events
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)


def test_writes_to_a_blocked_chunk_wait_for_recovery(cluster):
    # 3 CS, replicas 3:2: with two of them dead no copy can be made anywhere, so the chunk
    # stays blocked until a chunk server returns.
    ids, m, h = cluster.start(3, replicas="3:2")
    old = os.urandom(4 * MiB)
    write_file(f"{m}/f", old)
    c = file_info(cluster, f"{m}/f")["chunks"][0]
    dead = c["replicas"][:2]
    for cs in dead:
        cluster.kill(f"cs{cs}")
    new = os.urandom(4 * MiB)

    # A mount with a 3 s I/O timeout gives up with EIO and says why in its log.
    m2 = cluster.mount(name="mnt2", extra=("-t", "3"))
    with open(f"{m2}/f", "r+b") as f:
        try:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
            raised = None
        except OSError as e:
            raised = e
    assert raised is not None and raised.errno == errno.EIO, raised
    log = open(os.path.join(cluster.root, "mnt2.log")).read()
    assert "is blocked" in log and "gave up after 3 s" in log, log
    cluster.umount(m2)
    wait_for(lambda: file_info(cluster, f"{m}/f")["chunks"][0]["state"] in ("blocked", "pending"),
             timeout=30, what="chunk state blocked")

    # Reads go on, from the live replica.
    drop_caches()
    got = open(f"{m}/f", "rb").read()
    assert got == old or got == new  # the failed write may have reached the live replica

    # A writer with the default timeout (60 s) waits...
    err, done = [], threading.Event()

    def writer():
        try:
            with open(f"{m}/f", "r+b") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # pragma: no cover - reported below
            err.append(e)
        done.set()
    t = threading.Thread(target=writer)
    t.start()
    time.sleep(2)
    # ...no live chunk server can take a copy, so it cannot have finished.
    assert not done.is_set(), f"the write finished while its chunk was blocked ({err})"
    for cs in dead:
        cluster.restart(f"cs{cs}")
    t.join(timeout=120)
    assert done.is_set() and not err, err
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(new)
    wait_for(lambda: all(len(set(x["replicas"])) == 3 and x["state"] == "healthy"
                         for x in file_info(cluster, f"{m}/f")["chunks"]),
             timeout=60, what="chunk back to 3 replicas")
    assert sha(open(f"{m}/f", "rb").read()) == sha(new)
    events = h.vstorage("get-event").stdout
    assert "Replication started" in events


def header_version(path):
    with open(path, "rb") as f:
        f.seek(16)  # magic, id, version (src/cs/chunk_store.h)
        return int.from_bytes(f.read(8), "little")


def test_replica_that_missed_only_a_version_bump_is_kept_and_bumped_on_return(cluster):
    """Recovery bumps the chunk version; a replica on a CS that just died misses the bump.
    Its data is current, so it stays listed and gets the new version when the CS registers
    again, instead of being deleted (it could be the last intact copy)."""
    ids, m, h = cluster.start(4)
    data = os.urandom(3 * MiB)
    write_file(f"{m}/f", data)
    c = file_info(cluster, f"{m}/f")["chunks"][0]
    leaving, dying = c["replicas"][0], c["replicas"][1]
    repo, _ = cluster.cs_repos[dying]
    path = os.path.join(repo, "chunks", "%016x" % c["id"])
    cluster.kill(f"cs{dying}")
    h.vstorage("rm-cs", str(leaving))  # recovery starts at once, with CS#dying still "active"

    def copied():
        now = file_info(cluster, f"{m}/f")["chunks"][0]
        return now["version"] > c["version"] and leaving not in now["replicas"] and now
    now = wait_for(copied, timeout=60, what="chunk copied off the CS being removed")
    assert dying in now["replicas"], now
    assert header_version(path) == c["version"]  # it missed the bump
    cluster.restart(f"cs{dying}")
    wait_for(lambda: header_version(path) == file_info(cluster, f"{m}/f")["chunks"][0]["version"],
             timeout=30, what="version bump applied on registration")
    assert os.path.exists(path)
    wait_for(lambda: file_info(cluster, f"{m}/f")["chunks"][0]["state"] == "healthy", timeout=60,
             what="chunk healthy")
    assert dying in file_info(cluster, f"{m}/f")["chunks"][0]["replicas"]
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)


def test_recovery_skips_a_corrupt_source_and_drops_it(cluster):
    """A recovery copy whose source has a flipped byte is taken from another replica; the
    corrupt one is dropped (event) and rebuilt; nothing bad is copied."""
    ids, m, h = cluster.start(4)
    h.vstorage("set-config", "mds.wd.verify_chunks=0")  # no scrubbing: recovery finds it
    h.vstorage("set-config", "mds.wd.offline_tout=3000")
    data = os.urandom(3 * MiB)
    write_file(f"{m}/f", data)
    c = file_info(cluster, f"{m}/f")["chunks"][0]
    bad, dead = c["replicas"][0], c["replicas"][2]  # the first replica is the first source
    repo, _ = cluster.cs_repos[bad]
    path = os.path.join(repo, "chunks", "%016x" % c["id"])
    with open(path, "r+b") as f:
        f.seek(4096 + 4096 + 1000)  # header + CRC table of a 4 MiB chunk, then the data
        b = f.read(1)
        f.seek(4096 + 4096 + 1000)
        f.write(bytes([b[0] ^ 0x80]))
    cluster.kill(f"cs{dead}")
    wait_for(lambda: f"Checksum mismatch in chunk {c['id']} on CS#{bad}" in h.vstorage("get-event").stdout,
             timeout=60, what="checksum mismatch found by recovery")

    def healed():
        now = file_info(cluster, f"{m}/f")["chunks"][0]
        return len(set(now["replicas"])) == 3 and dead not in now["replicas"] and now["state"] == "healthy"
    wait_for(healed, timeout=60, what="3 healthy replicas again")
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)
    # Every listed replica reads clean: read each one through its own first-replica turn is
    # not possible from the mount, so check the files on disk against the data instead.
    now = file_info(cluster, f"{m}/f")["chunks"][0]
    for cs in now["replicas"]:
        p = os.path.join(cluster.cs_repos[cs][0], "chunks", "%016x" % c["id"])
        with open(p, "rb") as f:
            f.seek(4096 + 4096)
            assert f.read(len(data)) == data, f"replica on CS#{cs} differs"


def test_make_cs_dash_S_disables_checksumming_on_that_cs(cluster):
    """7.6.4: make-cs -S; that CS has no flag C, computes and stores no CRC, data is intact."""
    cluster.make_mds()
    plain = [cluster.add_cs() for _ in range(2)]
    nosum = cluster.add_cs(extra=("-S",))
    cluster.wait_cs_active(3)
    repo, _ = cluster.cs_repos[nosum]
    assert "checksums=0" in open(os.path.join(repo, "cs.conf")).read()
    flags = {c["id"]: c["flags"] for c in cluster.stat_json()["cs"]}
    assert "C" not in flags[nosum] and all("C" in flags[i] for i in plain), flags
    m = cluster.mount()
    h = cluster.host("mds")
    h.vstorage("set-attr", "-R", m, "replicas=3")
    h.vstorage("set-attr", m, "chunk-size=4M")
    data = os.urandom(5 * MiB + 123)
    write_file(f"{m}/f", data)
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)
    c = file_info(cluster, f"{m}/f")["chunks"][0]
    assert nosum in c["replicas"]
    with open(os.path.join(repo, "chunks", "%016x" % c["id"]), "rb") as f:
        f.seek(4096)
        assert f.read(4096) == bytes(4096)  # the CRC table of a 4 MiB chunk: never written
    plain_repo, _ = cluster.cs_repos[plain[0]]
    with open(os.path.join(plain_repo, "chunks", "%016x" % c["id"]), "rb") as f:
        f.seek(4096)
        assert f.read(4096) != bytes(4096)


def test_hung_disk_sets_flag_T_gets_no_new_replicas_and_writes_go_on(cluster):
    """A CS whose disk stops answering (fsfreeze on a real ext4 file system: its I/O blocks
    in the kernel, the process cannot even be killed) shows flag T (8.1.8), gets no new
    replicas, and writes to chunks it holds go on without it."""
    ids, m, h = cluster.start(4, disk_mb=256)  # alike, so placement spreads evenly
    h.vstorage("set-config", "mds.wd.io_tout=2000")
    data = bytearray(os.urandom(16 * MiB))
    write_file(f"{m}/f", bytes(data))
    # The second CS of chunk 0's chain hangs: its upstream CS times out on it.
    idx = 0
    hung = file_info(cluster, f"{m}/f")["chunks"][idx]["replicas"][1]
    disk = cluster.disks[ids.index(hung)]
    patch = os.urandom(MiB)
    errors = []

    def overwrite():
        try:
            fd = os.open(f"{m}/f", os.O_WRONLY)
            try:
                os.pwrite(fd, patch, idx * 4 * MiB)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            errors.append(e)

    cluster.freeze(disk)
    try:
        t = threading.Thread(target=overwrite)
        t.start()
        wait_for(lambda: "T" in cs_entry(cluster, hung)["flags"], timeout=30, what="flag T on the hung CS")
        # New data goes elsewhere, without waiting for the hung disk.
        fresh = os.urandom(12 * MiB)
        write_file(f"{m}/g", fresh)
        for c in file_info(cluster, f"{m}/g")["chunks"]:
            assert hung not in c["replicas"], c
        t.join(timeout=120)
        assert not t.is_alive(), "a write to a chunk on the hung CS never finished"
        assert not errors, errors
        data[idx * 4 * MiB:idx * 4 * MiB + MiB] = patch
        assert sha(open(f"{m}/f", "rb").read()) == sha(bytes(data))
        events = h.vstorage("get-event").stdout
        assert re.search(rf"CS#{hung} has had an I/O request pending for \d+ sec on .*no new replicas", events), events
    finally:
        cluster.freeze(disk, frozen=False)
    wait_for(lambda: f"CS#{hung} completed its pending I/O requests" in h.vstorage("get-event").stdout,
             timeout=30, what="the hung CS answering again")
    assert "T" in cs_entry(cluster, hung)["flags"]  # like H and h, T stays until the CS restarts
    wait_for(lambda: cluster.stat_json()["chunks"]["healthy"] == cluster.stat_json()["chunks"]["total"],
             timeout=90, what="every chunk healthy again")
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(bytes(data))
    assert sha(open(f"{m}/g", "rb").read()) == sha(fresh)
    for c in file_info(cluster, f"{m}/f")["chunks"]:
        assert len(set(c["replicas"])) == 3 and c["state"] == "healthy", c


def test_chunk_file_with_a_damaged_header_is_quarantined_and_rebuilt(cluster):
    ids, m, h = cluster.start(4)
    data = os.urandom(12 * MiB)
    write_file(f"{m}/f", data)
    chunk = file_info(cluster, f"{m}/f")["chunks"][1]
    victim = chunk["replicas"][0]
    repo, _ = cluster.cs_repos[victim]
    name = "%016x" % chunk["id"]
    assert name in chunk_files(repo)
    cluster.kill(f"cs{victim}")
    with open(os.path.join(repo, "chunks", name), "r+b") as f:
        f.seek(17)
        b = f.read(1)
        f.seek(17)
        f.write(bytes([b[0] ^ 0xFF]))
    cluster.restart(f"cs{victim}")
    wait_for(lambda: "h" in cs_entry(cluster, victim)["flags"], timeout=30, what="flag h on the restarted CS")
    wait_for(lambda: all(len(set(c["replicas"])) == 3 and c["state"] == "healthy"
                         for c in file_info(cluster, f"{m}/f")["chunks"]), timeout=60, what="every chunk healthy")
    events = h.vstorage("get-event").stdout
    assert re.search(rf"Chunk \d+ on CS#{victim} is damaged \(its file header fails the checksum\); "
                     r"the replica is dropped and rebuilt", events), events
    kept = os.listdir(os.path.join(repo, "quarantine"))
    assert kept and all(k.startswith(name) for k in kept), kept  # kept for inspection, not deleted
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(data)
    # The chunk takes writes again and every replica of it agrees.
    patch = os.urandom(MiB)
    with open(f"{m}/f", "r+b") as f:
        f.seek(4 * MiB + 123)
        f.write(patch)
        os.fsync(f.fileno())
    want = data[:4 * MiB + 123] + patch + data[4 * MiB + 123 + MiB:]
    drop_caches()
    assert sha(open(f"{m}/f", "rb").read()) == sha(want)


def test_chunk_without_an_intact_replica_fails_reads_and_is_reported_once(cluster):
    """Every replica of a chunk corrupt: reads of it fail with EIO (never wrong bytes), the
    rest of the file and other files keep working, the loss is logged once, and recovery
    does not re-read the chunk over and over."""
    ids, m, h = cluster.start(4)
    data = os.urandom(8 * MiB)
    write_file(f"{m}/f", data)
    other = os.urandom(2 * MiB)
    write_file(f"{m}/g", other)
    c = file_info(cluster, f"{m}/f")["chunks"][1]
    data_off = 4096 + 4096  # header + CRC table of a 4 MiB chunk
    for cs in c["replicas"]:
        repo, _ = cluster.cs_repos[cs]
        with open(os.path.join(repo, "chunks", "%016x" % c["id"]), "r+b") as f:
            f.seek(data_off + 777)
            f.write(bytes([data[4 * MiB + 777] ^ 0x5A]))
    drop_caches()
    with open(f"{m}/f", "rb") as f:
        assert f.read(4 * MiB) == data[:4 * MiB]  # the intact chunk
        f.seek(4 * MiB)
        try:
            f.read(4096)
            raise AssertionError("a read of a chunk with no intact replica returned data")
        except OSError as e:
            assert e.errno == errno.EIO, e
    assert open(f"{m}/g", "rb").read() == other
    h.vstorage("set-config", "mds.wd.verify_chunks=600")
    pattern = rf"Chunk {c['id']} has no intact replica|chunk {c['id']} on CS#\d+ \(.*\); it is the only replica and is kept"

    def reported():
        return len(re.findall(pattern, h.vstorage("get-event").stdout))
    wait_for(reported, timeout=60, what="the loss reported")
    time.sleep(5)  # scrubbing verifies 10 chunks a second per CS meanwhile
    assert reported() == 1, h.vstorage("get-event").stdout
    fi = file_info(cluster, f"{m}/f")["chunks"][1]
    assert fi["replicas"], fi  # the last copy is never dropped
    write_file(f"{m}/h", other)  # the cluster still takes new data
    assert open(f"{m}/h", "rb").read() == other
