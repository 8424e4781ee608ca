"""Operator bugs of issue 9 that live in the MDS: the watchdog and chunk servers that were made
but never started (9.1), rm-cs when the failure domain cannot be kept (9.2), replica counts
the hosts cannot hold (9.8), and a host_id rewritten after cloning a host (9.9)."""
import errno
import os
import re
import shutil
import subprocess

from conftest import BIN, MiB, cs_entry, file_info, wait_for, write_file


def events(h):
    return h.vstorage("get-event").stdout


def test_cs_made_but_not_started_is_not_offline_at_once_and_never_fails_the_cluster(cluster):
    ids, m, h = cluster.start(3)
    h.vstorage("set-config", "mds.wd.offline_tout=5000")
    # The MDS has been up longer than offline_tout before the new CS are made.
    wait_for(lambda: cluster.stat_json()["epoch_uptime_ms"] > 15000, timeout=40, what="MDS up 15 s")
    new = cluster.host("new")
    new.copy_bs_list_from(cluster.host("mds"))
    new.auth_node()
    made = []
    for i in range(3):  # more than mds.wd.max_offline_cs (2), on one host
        new.vstorage("make-cs", "-r", os.path.join(cluster.root, f"idle{i}"))
        made.append(max(c["id"] for c in cluster.stat_json()["cs"]))
    st = cluster.stat_json()
    for cs in made:
        assert cs_entry(cluster, cs)["status"] == "inactive", st
    assert st["status"] != "failure"

    wait_for(lambda: all(cs_entry(cluster, cs)["status"] == "offline" for cs in made), timeout=30,
             what="the idle CS offline after offline_tout")
    ev = events(h)
    for cs in made:
        t = re.search(rf"CS#{cs} has not registered during the last (\d+) sec and is marked as offline", ev)
        assert t, ev
        assert 5 <= int(t.group(1)) < 12, ev  # since make-cs, not the MDS's uptime (15 s and more)
    assert "CS#%d has not registered during the last 0 sec" % made[0] not in ev
    assert cluster.stat_json()["status"] == "degraded"
    assert "The cluster failed" not in events(h)

    # Replication keeps working: a killed CS is rebuilt elsewhere.
    write_file(f"{m}/f", os.urandom(MiB))
    victim = file_info(cluster, f"{m}/f")["chunks"][0]["replicas"][0]
    cluster.add_cs()
    cluster.wait_cs_active(4)
    cluster.kill(f"cs{victim}")
    wait_for(lambda: all(victim not in c["replicas"] and len(c["replicas"]) == 3 and c["state"] == "healthy"
                         for c in file_info(cluster, f"{m}/f")["chunks"]), timeout=60,
             what="the killed CS's replicas rebuilt")
    assert "The cluster failed" not in events(h)

    # The creation time is journaled: after an MDS restart the idle CS are timed from make-cs.
    cluster.restart("mds")
    cluster.wait_mds()
    wait_for(lambda: all(cs_entry(cluster, cs)["status"] == "offline" for cs in made), timeout=30,
             what="the idle CS offline again after the restart")
    t = re.findall(rf"CS#{made[0]} has not registered during the last (\d+) sec", events(h))
    assert len(t) == 2 and int(t[1]) > int(t[0]), t
    assert "The cluster failed" not in events(h)


def test_rm_cs_keeps_the_failure_domain_refuses_or_says_why(cluster):
    cluster.make_mds()
    h = cluster.host("mds")
    h.vstorage("set-config", "mds.wd.offline_tout=10000")
    # Tiers strict: otherwise the tier-1 CS below takes the replica for now (3.5.5.2's
    # fallback, tested in test_placement.py), and nothing would refuse.
    h.vstorage("set-config", "mds.alloc.strict_tier=1")
    for _ in range(4):
        cluster.add_cs()
    a = cluster.add_cs(host_name="h5")
    cluster.add_cs(host_name="h5", tier=1)  # on the 5th host, but not a place for tier-0 chunks
    cluster.wait_cs_active(6)
    m = cluster.mount()
    h.vstorage("set-attr", m, "chunk-size=4M")
    os.mkdir(f"{m}/d")
    h.vstorage("set-attr", f"{m}/d", "replicas=5:2")
    write_file(f"{m}/d/f", os.urandom(MiB))
    assert a in file_info(cluster, f"{m}/d/f")["chunks"][0]["replicas"]

    # Refused up front: the only other CS of its host cannot take the replica.
    r = h.vstorage("rm-cs", "--wait", str(a), check=False, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot remove CS#{a}" in r.stderr and "not enough hosts" in r.stderr, r.stderr
    assert cs_entry(cluster, a)["status"] == "active"

    # Another tier-0 CS on that host: the replica moves there, one per host still.
    b = cluster.add_cs(host_name="h5")
    cluster.wait_cs_active(7)
    r = h.vstorage("rm-cs", "--wait", str(a), timeout=60)
    assert f"CS#{a} removed" in r.stdout
    reps = file_info(cluster, f"{m}/d/f")["chunks"][0]["replicas"]
    assert b in reps and a not in reps and len(set(reps)) == 5
    hosts = {cs_entry(cluster, x)["host_id"] for x in reps}
    assert len(hosts) == 5

    # It arises later: the only target dies during the copy. The progress line and an event
    # say why; once the target is back the removal completes.
    c = cluster.add_cs(host_name="h5")
    cluster.wait_cs_active(7)
    write_file(f"{m}/d/g", os.urandom(4 * MiB))
    if b not in file_info(cluster, f"{m}/d/g")["chunks"][0]["replicas"]:
        b, c = c, b  # remove whichever of the two holds g's replica on h5
    h.vstorage("set-config", "mds.recovery.max_rate_mb=1")  # a 4 MiB copy takes ~4 s
    p = subprocess.Popen([os.path.join(BIN, "vstorage"), "-c", cluster.name, "rm-cs", "--wait", str(b)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=h.env())
    try:
        wait_for(lambda: cs_entry(cluster, b)["status"] == "releasing", what="releasing")
        cluster.kill(f"cs{c}")
        lines = []
        for line in p.stdout:
            lines.append(line)
            if "waiting:" in line:
                break
        assert "not enough hosts" in lines[-1], lines
        assert f"Removal of CS#{b} cannot go on" in events(h)
        h.vstorage("set-config", "mds.recovery.max_rate_mb=0")
        cluster.restart(f"cs{c}")
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and f"CS#{b} removed" in out, "".join(lines) + out
    finally:
        if p.poll() is None:
            p.kill()
    reps = file_info(cluster, f"{m}/d/g")["chunks"][0]["replicas"]
    assert c in reps and b not in reps and len({cs_entry(cluster, x)["host_id"] for x in reps}) == 5


def test_replicas_more_than_hosts_warns_and_writes_say_not_enough_hosts(cluster):
    ids, m, h = cluster.start(3)
    os.mkdir(f"{m}/d")
    r = h.vstorage("set-attr", f"{m}/d", "replicas=4:4")
    assert r.returncode == 0
    assert "Warning" in r.stderr and "cannot hold 4 replicas on distinct hosts" in r.stderr, r.stderr
    assert "only 3 host(s)" in r.stderr
    assert "replicas=4:4 set on '/d'" in events(h)
    assert h.vstorage("get-attr", f"{m}/d").stdout.count("4:4") == 1

    try:
        write_file(f"{m}/d/f", os.urandom(MiB))
        raise AssertionError("the write succeeded with 4 replicas on 3 hosts")
    except OSError as e:
        assert e.errno != errno.ENOSPC, e
    assert os.statvfs(m).f_bavail > 0
    log = open(os.path.join(cluster.root, "mnt.log")).read()
    assert "not enough hosts for 4 replicas" in log, log[-2000:]
    assert "no space" not in log
    ev = events(h)
    assert "Failed to allocate 4 replicas for '/d/f'" in ev and "not enough hosts for 4 replicas" in ev

    # Below the minimum only: written, degraded, and the warning says so.
    r = h.vstorage("set-attr", f"{m}/d", "replicas=4:2")
    assert "degraded" in r.stderr, r.stderr
    write_file(f"{m}/d/g", b"x" * MiB)
    assert len(file_info(cluster, f"{m}/d/g")["chunks"][0]["replicas"]) == 3
    # Nothing to say when the hosts suffice.
    assert h.vstorage("set-attr", f"{m}/d", "replicas=3").stderr == ""


def test_new_host_id_moves_a_cloned_cs_to_its_own_host(cluster):
    cluster.make_mds()
    h = cluster.host("mds")
    a = cluster.add_cs(host_name="a")
    # Host b was cloned from a's image: same host_id.
    b_host = cluster.host("b")
    shutil.copy(os.path.join(cluster.host("a").conf, "host_id"), os.path.join(b_host.conf, "host_id"))
    b = cluster.add_cs(host_name="b")
    cluster.wait_cs_active(2)
    old = cs_entry(cluster, a)["host_id"]
    assert cs_entry(cluster, b)["host_id"] == old
    m = cluster.mount()
    h.vstorage("set-attr", m, "chunk-size=4M")
    h.vstorage("set-attr", m, "replicas=2:1")
    write_file(f"{m}/f", os.urandom(MiB))
    assert len(file_info(cluster, f"{m}/f")["chunks"][0]["replicas"]) == 1  # one host: one replica

    # The guide's fix (2.5.2.1, 8.1.7): a new host_id on b, then restart its CS.
    new = "0123456789abcdef"
    with open(os.path.join(b_host.conf, "host_id"), "w") as f:
        f.write(new + "\n")
    cluster.restart(f"cs{b}")
    wait_for(lambda: cs_entry(cluster, b)["host_id"] == new and cs_entry(cluster, b)["status"] == "active",
             what="CS b on its new host")
    assert cs_entry(cluster, a)["host_id"] == old
    repo, _ = cluster.cs_repos[b]
    assert f"host_id={new}" in open(os.path.join(repo, "cs.conf")).read()
    assert f"CS#{b} moved from host {old} to host {new}" in events(h)
    # Now two hosts: the chunk gets its second replica, and new chunks get two at once.
    wait_for(lambda: sorted(file_info(cluster, f"{m}/f")["chunks"][0]["replicas"]) == sorted([a, b])
             and file_info(cluster, f"{m}/f")["chunks"][0]["state"] == "healthy", timeout=60,
             what="second replica on the moved CS")
    write_file(f"{m}/g", os.urandom(MiB))
    assert sorted(file_info(cluster, f"{m}/g")["chunks"][0]["replicas"]) == sorted([a, b])
    # It stays on the new host across an MDS restart (journaled).
    cluster.restart("mds")
    cluster.wait_mds()
    wait_for(lambda: cs_entry(cluster, b)["host_id"] == new, what="host id after MDS restart")
