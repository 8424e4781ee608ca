"""Placement by tier and failure domain (guide 3.5.4, 3.5.5; issue 14 items 1 and 2): data goes to
its directory's tier, falls back to another tier when its own cannot take it and moves back once
it can; failure-domain=disk|host|rack|row|room keeps replicas apart, strictly or (when
mds.alloc.strict_failure_domain=0) as far as the cluster allows. Real daemons on loopback; each
simulated host has its own config root, and so its own host_id and location file."""
import errno
import os

from conftest import MiB, file_info, sha, wait_for, write_file


def cs_table(cluster):
    return {c["id"]: c for c in cluster.stat_json()["cs"]}


def where(cluster, path):
    """For each chunk of path: its state and the (tier, host) of each replica's CS."""
    cs = cs_table(cluster)
    return [(c["state"], [(cs[r]["tier"], cs[r]["host_id"]) for r in c["replicas"]])
            for c in file_info(cluster, path)["chunks"]]


def all_in(cluster, path, tier, replicas=3):
    chunks = where(cluster, path)
    return bool(chunks) and all(
        st == "healthy" and len(reps) == replicas and {t for t, _ in reps} == {tier}
        and len({h for _, h in reps}) == replicas for st, reps in chunks)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def events(h):
    return h.vstorage("get-event").stdout


def test_a_directory_keeps_its_tier_falls_back_when_it_cannot_and_moves_back(cluster):
    ids, m, h = cluster.start(3, chunk_size="1M")  # tier 0 on hosts cs1..cs3
    # Tier 1 on two of those hosts only: replicas=3 with one per host does not fit in it.
    for host in ("cs1", "cs2"):
        cluster.add_cs(host_name=host, tier=1)
    cluster.wait_cs_active(5)
    os.mkdir(f"{m}/fast")
    h.vstorage("set-attr", "-R", f"{m}/fast", "tier=1")
    assert os.getxattr(f"{m}/fast", "vstorage.tier") == b"1"
    assert os.getxattr(f"{m}/fast", "vstorage.failure-domain") == b"host"
    data = os.urandom(3 * MiB)
    write_file(f"{m}/fast/vm.img", data)
    # Fallback (3.5.5.2): the lower tier holds the data, with all three replicas.
    assert all_in(cluster, f"{m}/fast/vm.img", 0), where(cluster, f"{m}/fast/vm.img")
    assert "Tier 1 cannot take new data of '/fast/vm.img' now, tier 0 holds it" in events(h)

    # A third tier-1 host: the data moves to tier 1 in the background, replica by replica.
    cluster.add_cs(host_name="cs3", tier=1)
    cluster.wait_cs_active(6)
    wait_for(lambda: all_in(cluster, f"{m}/fast/vm.img", 1), timeout=90,
             what="the data moved back to tier 1")
    assert read(f"{m}/fast/vm.img") == data
    # New data goes straight to tier 1; other directories stay on tier 0.
    write_file(f"{m}/fast/new", data[:MiB])
    assert all_in(cluster, f"{m}/fast/new", 1)
    write_file(f"{m}/cold", data[:MiB])
    assert all_in(cluster, f"{m}/cold", 0)

    # set-attr tier= on existing data moves it (and its directory's new files follow).
    h.vstorage("set-attr", "-R", m, "tier=1")
    wait_for(lambda: all_in(cluster, f"{m}/cold", 1), timeout=90, what="/cold moved to tier 1")
    assert read(f"{m}/cold") == data[:MiB]

    # mds.alloc.strict_tier=1: a tier that cannot take data refuses it instead (here: it has
    # no chunk server, which is not a lack of space: EIO and the reason, as issue 9.8 wants).
    os.mkdir(f"{m}/top")
    h.vstorage("set-attr", f"{m}/top", "tier=3")
    h.vstorage("set-config", "mds.alloc.strict_tier=1")
    err = None
    try:
        write_file(f"{m}/top/f", data[:MiB])
    except OSError as e:
        err = e.errno
    assert err == errno.EIO, err
    assert "active chunk servers in tier 3" in events(h)
    h.vstorage("set-config", "mds.alloc.strict_tier=0")
    write_file(f"{m}/top/g", data[:MiB])  # falls back: tier 1 is the highest below with room
    assert all_in(cluster, f"{m}/top/g", 1)


def test_set_attr_tier_and_failure_domain_check_their_values(cluster):
    _, m, h = cluster.start(1, replicas=1)
    r = h.vstorage("set-attr", m, "tier=4", check=False)
    assert r.returncode != 0 and "expected 0, 1, 2 or 3" in r.stderr, r.stderr
    r = h.vstorage("set-attr", m, "failure-domain=chassis", check=False)
    assert r.returncode != 0 and "expected disk, host, rack, row or room" in r.stderr, r.stderr
    r = h.vstorage("set-attr", m, "tier=2")
    assert "no chunk server is in tier 2" in r.stderr, r.stderr  # said at once, and set
    assert os.getxattr(m, "vstorage.tier") == b"2"
    out = h.vstorage("get-attr", m).stdout
    assert "tier=2" in out and "failure-domain=host" in out, out

    # Guide 3.5.4.2, exactly as printed: -c NAME set-attr -R -p /failure-domain=..., no mount.
    os.makedirs(f"{m}/a/b")
    h.vstorage("set-attr", "-R", "-p", "/failure-domain=disk")
    for p in (m, f"{m}/a", f"{m}/a/b"):
        wait_for(lambda: os.getxattr(p, "vstorage.failure-domain") == b"disk", what=f"{p} failure-domain=disk")
    h.vstorage("set-attr", "-p", "/a", "tier=1", "replicas=1")
    wait_for(lambda: os.getxattr(f"{m}/a", "vstorage.tier") == b"1", what="/a tier=1")
    assert os.getxattr(f"{m}/a/b", "vstorage.tier") == b"2"  # not recursive
    r = h.vstorage("set-attr", "-p", "/nope", "tier=1", check=False)
    assert r.returncode != 0 and "/nope does not exist in cluster" in r.stderr, r.stderr


def test_failure_domain_disk_host_and_advisory(cluster):
    cluster.make_mds()
    for _ in range(3):
        cluster.add_cs(host_name="big")  # three disks of one host
    cluster.wait_cs_active(3)
    m = cluster.mount()
    h = cluster.host("mds")
    h.vstorage("set-attr", m, "chunk-size=1M")
    os.mkdir(f"{m}/d")
    h.vstorage("set-attr", "-R", f"{m}/d", "replicas=3", "failure-domain=disk")
    data = os.urandom(2 * MiB)
    write_file(f"{m}/d/f", data)
    chunks = file_info(cluster, f"{m}/d/f")["chunks"]
    assert all(len(set(c["replicas"])) == 3 and c["state"] == "healthy" for c in chunks), chunks

    d_replicas = [c["replicas"] for c in chunks]
    # Host domain, strict (the default): one host cannot take 3:3 replicas (EIO, issue 9.8).
    os.mkdir(f"{m}/h")
    h.vstorage("set-attr", "-R", f"{m}/h", "replicas=3:3")
    err = None
    try:
        write_file(f"{m}/h/f", data)
    except OSError as e:
        err = e.errno
    assert err == errno.EIO, err
    assert "not enough hosts for 3 replicas" in events(h)
    # Advisory: the same write succeeds, replicas on three disks, and says so.
    h.vstorage("set-config", "mds.alloc.strict_failure_domain=0")
    write_file(f"{m}/h/g", data)
    chunks = file_info(cluster, f"{m}/h/g")["chunks"]
    assert all(len(set(c["replicas"])) == 3 for c in chunks), chunks
    assert "they are kept apart by disk only" in events(h)

    # Two more hosts: the replicas sharing a host move apart (strict again or not).
    h.vstorage("set-config", "mds.alloc.strict_failure_domain=1")
    cluster.add_cs(host_name="h2")
    cluster.add_cs(host_name="h3")
    cluster.wait_cs_active(5)
    wait_for(lambda: all_in(cluster, f"{m}/h/g", 0), timeout=90, what="replicas moved to 3 hosts")
    assert read(f"{m}/h/g") == data
    # The disk-domain file keeps its replicas where they are: they are in place.
    assert [c["replicas"] for c in file_info(cluster, f"{m}/d/f")["chunks"]] == d_replicas


def test_racks_from_each_hosts_location_file(cluster):
    cluster.make_mds()
    racks = {"a1": "room1.row1.rackA", "a2": "room1.row1.rackA", "b1": "room1.row1.rackB",
             "c1": "room1.row2.rackC"}
    for host, loc in racks.items():
        hh = cluster.host(host)
        with open(os.path.join(hh.conf, "location"), "w") as f:
            f.write(loc + "\n")
        cluster.add_cs(host_name=host)
    cluster.wait_cs_active(4)
    wait_for(lambda: all(c["location"] for c in cluster.stat_json()["cs"]), what="CS locations known")
    m = cluster.mount()
    h = cluster.host("mds")
    h.vstorage("set-attr", m, "chunk-size=1M")
    h.vstorage("set-attr", "-R", m, "replicas=3", "failure-domain=rack")
    data = os.urandom(4 * MiB)
    write_file(f"{m}/f", data)
    cs = cs_table(cluster)
    for c in file_info(cluster, f"{m}/f")["chunks"]:
        locs = [cs[r]["location"] for r in c["replicas"]]
        assert len(locs) == 3 and len(set(locs)) == 3, locs  # one per rack
    # Rows: two of them, so 3:3 cannot be met and the write fails with the reason.
    os.mkdir(f"{m}/rows")
    h.vstorage("set-attr", "-R", f"{m}/rows", "replicas=3:3", "failure-domain=row")
    err = None
    try:
        write_file(f"{m}/rows/f", data)
    except OSError as e:
        err = e.errno
    assert err == errno.EIO, err
    assert "not enough rows for 3 replicas" in events(h)
    # top's topology screen (key w) shows the paths room.row.rack.host.cs.
    out = h.vstorage("stat", "--json").stdout
    assert "room1.row2.rackC" in out
    assert sha(read(f"{m}/f")) == sha(data)
