"""Self-healing: a CS killed for real goes offline after mds.wd.offline_tout and its
replicas are rebuilt CS-to-CS; extra replicas are trimmed; a returning CS loses its stale
replicas."""
import hashlib
import os
import re
import threading
import time

from conftest import MiB, chunk_files, drop_caches, file_info, wait_for


def test_killed_cs_is_rebuilt_elsewhere_and_stale_copies_deleted(cluster):
    ids, m, h = cluster.start(5)
    h.vstorage("set-config", "mds.wd.offline_tout=3000")
    data = os.urandom(24 * MiB)
    with open(f"{m}/f", "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    info = file_info(cluster, f"{m}/f")
    victim = info["chunks"][0]["replicas"][1]

    # Kill it while a second file is being written: no write error.
    more = os.urandom(32 * MiB)
    err = []

    def writer():
        try:
            with open(f"{m}/g", "wb") as f:
                for i in range(0, len(more), MiB):
                    f.write(more[i:i + MiB])
                os.fsync(f.fileno())
        except OSError as e:  # pragma: no cover - reported below
            err.append(e)
    t = threading.Thread(target=writer)
    t.start()
    cluster.kill(f"cs{victim}")
    t.join(timeout=120)
    assert not err, err

    def healed():
        for name in ("f", "g"):
            for c in file_info(cluster, f"{m}/{name}")["chunks"]:
                if len(set(c["replicas"])) != 3 or victim in c["replicas"] or c["state"] != "healthy":
                    return False
        return True
    wait_for(healed, timeout=90, what="every chunk back to 3 healthy replicas")
    assert hashlib.sha256(open(f"{m}/f", "rb").read()).digest() == hashlib.sha256(data).digest()
    assert hashlib.sha256(open(f"{m}/g", "rb").read()).digest() == hashlib.sha256(more).digest()
    events = h.vstorage("get-event").stdout
    assert events.startswith("TIME")
    assert f"CS#{victim} has not registered during the last" in events
    assert "is marked as offline" in events
    assert "Replication started," in events and "chunks are queued" in events
    assert "Replication completed" in events
    assert re.search(r"The cluster is degraded with 4 active, [01] inactive, [01] offline CS", events)
    # Healthy once all had registered: with 3 CS the cluster is healthy already, and the
    # later ones may register within one watchdog tick, with no new status to announce.
    assert re.search(r"The cluster is healthy with [3-5] active CS", events)

    # The dead CS comes back: none of its old replicas is listed any more, so all go.
    repo, _ = cluster.cs_repos[victim]
    assert chunk_files(repo)
    cluster.restart(f"cs{victim}")
    wait_for(lambda: not chunk_files(repo), timeout=30, what="stale replicas deleted")
    assert open(f"{m}/f", "rb").read() == data


def test_lowering_replicas_trims_extra_copies(cluster):
    _, m, h = cluster.start(3)
    data = os.urandom(10 * MiB)
    with open(f"{m}/f", "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    assert all(len(c["replicas"]) == 3 for c in file_info(cluster, f"{m}/f")["chunks"])
    h.vstorage("set-attr", f"{m}/f", "replicas=2")
    wait_for(lambda: all(len(c["replicas"]) == 2 and c["state"] == "healthy"
                         for c in file_info(cluster, f"{m}/f")["chunks"]), timeout=30,
             what="chunks trimmed to 2 replicas")
    total = sum(len(chunk_files(repo)) for repo, _ in cluster.cs_repos.values())
    wait_for(lambda: sum(len(chunk_files(r)) for r, _ in cluster.cs_repos.values()) == 2 * 3,
             timeout=30, what=f"extra replica files deleted (had {total})")
    assert open(f"{m}/f", "rb").read() == data


def test_flipped_byte_is_never_served_and_the_replica_is_rebuilt(cluster):
    _, m, h = cluster.start(3)
    data = os.urandom(3 * MiB)
    with open(f"{m}/f", "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    c = file_info(cluster, f"{m}/f")["chunks"][0]
    bad_cs = c["replicas"][0]  # the replica reads try first
    repo, _ = cluster.cs_repos[bad_cs]
    path = os.path.join(repo, "chunks", "%016x" % c["id"])
    data_off = 4096 + 4096  # header + CRC table of a 4 MiB chunk (src/cs/chunk_store.h)
    with open(path, "r+b") as f:
        f.seek(data_off + 100)
        f.write(bytes([data[100] ^ 0xFF]))
    drop_caches()
    assert open(f"{m}/f", "rb").read() == data  # served from a good replica

    def repaired():
        info = file_info(cluster, f"{m}/f")["chunks"][0]
        if len(set(info["replicas"])) != 3 or info["state"] != "healthy":
            return False
        with open(path, "rb") as f:
            f.seek(data_off + 100)
            return f.read(1) == bytes([data[100]])
    wait_for(repaired, timeout=60, what="the corrupted replica rebuilt")
    events = h.vstorage("get-event").stdout
    assert f"Checksum mismatch in chunk {c['id']} on CS#{bad_cs}" in events
    flags = {x["id"]: x["flags"] for x in cluster.stat_json()["cs"]}
    wait_for(lambda: "h" in {x["id"]: x["flags"] for x in cluster.stat_json()["cs"]}[bad_cs],
             timeout=15, what=f"flag h on CS#{bad_cs} (now {flags})")
    assert open(f"{m}/f", "rb").read() == data


def test_too_many_offline_cs_is_failure_and_replication_stops(cluster):
    """5.6.1: more offline CS than mds.wd.max_offline_cs is 'failure' and nothing is
    re-replicated until the administrator raises the limit (0 disables the failed mode)."""
    ids, m, h = cluster.start(5)
    h.vstorage("set-config", "mds.wd.offline_tout=3000")
    h.vstorage("set-config", "mds.wd.max_offline_cs=1")
    h.vstorage("set-config", "mds.wd.max_offline_cs_hosts=0")
    data = os.urandom(16 * MiB)
    with open(f"{m}/f", "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    victims = file_info(cluster, f"{m}/f")["chunks"][0]["replicas"][:2]
    for v in victims:
        cluster.kill(f"cs{v}")
    wait_for(lambda: cluster.stat_json()["status"] == "failure", timeout=30, what="cluster status failure")
    events = h.vstorage("get-event").stdout
    failed_line = "The cluster failed with 3 active, 0 inactive, 2 offline CS (mds.wd.max_offline_cs=1)"
    assert failed_line in events
    # Replication is not scheduled once the cluster failed. The two victims die together but
    # the watchdog may see one go offline a tick before the other (the cluster is then only
    # degraded, and a copy of the first chunk may begin and land): one copy at most.
    before = events[:events.index(failed_line)]
    limit = 2 if "Replication started" in before else 1
    time.sleep(4)  # a negative check: nothing more may happen in this time
    c1 = file_info(cluster, f"{m}/f")["chunks"][0]
    assert len(c1["replicas"]) <= limit and c1["state"] != "healthy", (c1, events)
    after = h.vstorage("get-event").stdout
    assert "Replication started" not in after[after.index(failed_line):], after
    # Reads go on from the surviving replica.
    assert hashlib.sha256(open(f"{m}/f", "rb").read()).digest() == hashlib.sha256(data).digest()

    h.vstorage("set-config", "mds.wd.max_offline_cs=0")

    def healed():
        return all(len(set(c["replicas"])) == 3 and c["state"] == "healthy"
                   for c in file_info(cluster, f"{m}/f")["chunks"])
    wait_for(healed, timeout=90, what="replication after the limit was lifted")
    assert cluster.stat_json()["status"] == "degraded"  # two CS are still offline
    assert hashlib.sha256(open(f"{m}/f", "rb").read()).digest() == hashlib.sha256(data).digest()


def test_returning_cs_keeps_current_replicas_and_loses_stale_ones(cluster):
    """5.3: a CS back before it went offline keeps the replicas that are still current;
    a replica of a chunk rewritten while it was away is deleted and never served."""
    _, m, h = cluster.start(4)
    keep, old = os.urandom(8 * MiB), os.urandom(8 * MiB)
    for name, data in (("keep", keep), ("redo", old)):
        with open(f"{m}/{name}", "wb") as f:
            f.write(data)
            os.fsync(f.fileno())
    k0 = file_info(cluster, f"{m}/keep")["chunks"][0]
    r0 = file_info(cluster, f"{m}/redo")["chunks"][0]
    victim = sorted(set(k0["replicas"]) & set(r0["replicas"]))[0]
    repo, _ = cluster.cs_repos[victim]
    kept_name, stale_name = "%016x" % k0["id"], "%016x" % r0["id"]
    assert {kept_name, stale_name} <= chunk_files(repo)

    cluster.kill(f"cs{victim}")
    new = os.urandom(4 * MiB)
    with open(f"{m}/redo", "r+b") as f:
        f.write(new)
        os.fsync(f.fileno())
    r0_after = file_info(cluster, f"{m}/redo")["chunks"][0]
    assert victim not in r0_after["replicas"] and r0_after["version"] > r0["version"]
    cluster.restart(f"cs{victim}")
    # The stale copy goes; the file only stays if recovery has since made a fresh copy there.
    wait_for(lambda: stale_name not in chunk_files(repo) or
             victim in file_info(cluster, f"{m}/redo")["chunks"][0]["replicas"],
             timeout=30, what="stale replica deleted")
    assert kept_name in chunk_files(repo)
    assert victim in file_info(cluster, f"{m}/keep")["chunks"][0]["replicas"]
    wait_for(lambda: next(c for c in cluster.stat_json()["cs"] if c["id"] == victim)["status"] == "active",
             timeout=30, what=f"CS#{victim} active again")
    drop_caches()
    assert open(f"{m}/redo", "rb").read() == new + old[4 * MiB:]
    assert open(f"{m}/keep", "rb").read() == keep


def test_status_is_unknown_after_a_master_change_until_cs_report(cluster):
    """5.1: 'unknown' while the new master has not heard from the CS yet; no CS is declared
    offline and nothing is re-replicated on that account."""
    cluster.make_mds()
    ids = [cluster.add_cs() for _ in range(3)]
    cluster.wait_cs_active(3)
    assert cluster.stat_json()["status"] == "healthy"
    for i in ids:
        cluster.kill(f"cs{i}")
    cluster.restart("mds")
    cluster.wait_mds()
    st = cluster.stat_json()
    assert st["status"] == "unknown", st["status"]
    assert all(c["status"] == "inactive" for c in st["cs"])
    for i in ids:
        cluster.restart(f"cs{i}")
    wait_for(lambda: cluster.stat_json()["status"] == "healthy", timeout=30, what="healthy again")
