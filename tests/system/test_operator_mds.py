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

