"""Operator mistakes from issue 9, replayed against real daemons: each is refused up front,
changes nothing, and the message names the cause and the fix."""
import json
import os
import subprocess

from conftest import BIN


def get_config(h):
    out = h.vstorage("get-config").stdout
    return dict(l.split(" = ", 1) for l in out.splitlines() if " = " in l)


def events(h):
    return h.vstorage("get-event").stdout


def test_set_config_applies_all_pairs_or_none(cluster):
    h = cluster.make_mds()
    before = get_config(h)
    r = h.vstorage("set-config", "mds.wd.offline_tout=7000", "no.such.param=1", check=False)
    assert r.returncode == 1
    assert "unknown parameter 'no.such.param'" in r.stderr
    assert "none was changed" in r.stderr
    assert r.stdout == ""
    assert get_config(h) == before
    assert "7000" not in events(h)
    # A bad value refuses the good key beside it too.
    r = h.vstorage("set-config", "mds.wd.max_offline_cs=3", "mds.wd.offline_tout=abc", check=False)
    assert r.returncode == 1 and "invalid value 'abc' for mds.wd.offline_tout" in r.stderr
    assert get_config(h) == before
    # All valid: all applied, each named, one event; and they survive an MDS restart.
    r = h.vstorage("set-config", "mds.wd.offline_tout=7000", "mds.wd.max_offline_cs=3")
    assert r.stdout == "Set mds.wd.max_offline_cs=3\nSet mds.wd.offline_tout=7000\n"
    cfg = get_config(h)
    assert cfg["mds.wd.offline_tout"] == "7000" and cfg["mds.wd.max_offline_cs"] == "3"
    assert "mds.wd.max_offline_cs=3, mds.wd.offline_tout=7000" in events(h)
    cluster.restart("mds")
    cluster.wait_mds()
    cfg = get_config(h)
    assert cfg["mds.wd.offline_tout"] == "7000" and cfg["mds.wd.max_offline_cs"] == "3"


def test_make_cs_with_an_unusable_address_registers_nothing(cluster):
    cluster.make_mds()
    h = cluster.host("cs1")
    h.copy_bs_list_from(cluster.host("mds"))
    h.auth_node()
    repo = os.path.join(cluster.root, "cs1")
    for addr, cause in [("999.1.1.1", "'999.1.1.1' is not a valid IPv4 address"),
                        ("192.0.2.1:2520", "cannot listen on 192.0.2.1:2520"),
                        ("127.0.0.1:70000", "give a port from 1 to 65534")]:
        r = h.vstorage("make-cs", "-r", repo, "-a", addr, check=False)
        assert r.returncode != 0, addr
        assert cause in r.stderr, r.stderr
        assert not os.path.exists(repo), addr
    assert cluster.stat_json()["cs"] == []
    assert "CS#" not in events(cluster.host("mds"))
    assert not os.path.exists(os.path.join(h.conf, "services.list"))
    # A good address still works, and the CS comes up on it.
    r = h.vstorage("make-cs", "-r", repo, "-a", "127.0.0.1")
    assert "Created CS#1025" in r.stdout


def mount_count(path):
    return sum(1 for l in open("/proc/self/mountinfo") if l.split()[4] == path)


def test_mount_refuses_a_file_and_a_second_mount_of_the_cluster(cluster3):
    c = cluster3
    h = c.host("mds")
    mount = os.path.join(BIN, "vstorage-mount")
    f = os.path.join(c.root, "plainfile")
    open(f, "w").write("x")
    r = subprocess.run([mount, "-c", c.name, f], capture_output=True, text=True, env=h.env(),
                       timeout=60)
    assert r.returncode != 0
    assert f"mount point {f} is a regular file, not a directory" in r.stderr, r.stderr
    assert mount_count(f) == 0 and open(f).read() == "x"
    # The cluster is already mounted on c.mnt: a second mount would stack on it.
    assert mount_count(c.mnt) == 1
    r = subprocess.run([mount, "-c", c.name, c.mnt], capture_output=True, text=True, env=h.env(),
                       timeout=60)
    assert r.returncode != 0
    assert f"cluster '{c.name}' is already mounted on {c.mnt}" in r.stderr, r.stderr
    assert mount_count(c.mnt) == 1
    os.listdir(c.mnt)  # the first mount still works


def services(h):
    """list-services rows as (type, id, status, process, repo)."""
    lines = h.vstorage("list-services").stdout.splitlines()[1:]
    return [tuple(l.split()) for l in lines]


def test_list_services_shows_only_live_services_with_their_state(cluster):
    import shutil
    from conftest import wait_for, cs_entry
    cluster.make_mds()
    old = cluster.add_cs(host_name="cs1")
    cluster.wait_cs_active(1)
    repo, h = cluster.cs_repos[old]
    assert services(h) == [("cs", str(old), "active", "running", repo)]
    # The disk is replaced: the CS is dropped and a new one is made in the same directory.
    cluster.kill(f"cs{old}")
    wait_for(lambda: cs_entry(cluster, old)["status"] == "inactive", timeout=30, what="CS inactive")
    assert services(h) == [("cs", str(old), "inactive", "stopped", repo)]
    cluster.host("mds").vstorage("rm-cs", "-f", str(old))
    assert services(h) == []
    shutil.rmtree(repo)
    new = int(h.vstorage("make-cs", "-r", repo).stdout.split("CS#")[1].split()[0])
    assert new != old
    # Never started yet: inactive (offline today, which is issue 9's bug 1, not this test's).
    [row] = services(h)
    assert row[:2] == ("cs", str(new)) and row[3:] == ("stopped", repo)
    assert row[2] in ("inactive", "offline")
    cluster._spawn(f"cs{new}", [os.path.join(BIN, "vstorage-csd"), "-r", repo], h)
    wait_for(lambda: services(h) == [("cs", str(new), "active", "running", repo)], timeout=30,
             what="the new CS listed as active and running")
    # The MDS host lists its MDS; the master says so.
    assert services(cluster.host("mds"))[0][:4] == ("mds", "1", "avail", "(master)")


def test_messages_point_at_the_real_fault(cluster):
    cluster.make_mds()
    # -c with a cluster this host does not know: what to create, not "not authenticated".
    h = cluster.host("newhost")
    repo = os.path.join(cluster.root, "cs-new")
    r = h.vstorage("-c", "nosuch", "make-cs", "-r", repo, check=False)
    assert r.returncode == 1
    assert "unknown cluster 'nosuch'" in r.stderr and "make-mds -I" in r.stderr, r.stderr
    assert "not authenticated" not in r.stderr
    # A key that is not the cluster's: the fault is on this host, which must run auth-node.
    h.copy_bs_list_from(cluster.host("mds"))
    key = os.path.join(h.conf, "clusters", cluster.name, "cluster.key")
    open(key, "w").write("ab" * 32 + "\n")
    r = h.vstorage("stat", check=False)
    assert r.returncode == 1
    assert "the fault is on this host" in r.stderr, r.stderr
    assert f"run 'vstorage -c {cluster.name} auth-node' on this host" in r.stderr
    assert "on that host" not in r.stderr
    # A damaged key file is named.
    open(key, "w").write("abc\n")
    r = h.vstorage("make-cs", "-r", repo, check=False)
    assert r.returncode == 1
    assert f"cluster key file {key} is damaged" in r.stderr, r.stderr
    assert "odd-length" in r.stderr and "auth-node" in r.stderr
    assert not os.path.exists(repo)
    # The advice works.
    os.unlink(key)
    h.auth_node()
    h.vstorage("stat")


def test_set_attr_chunk_size_on_a_file_with_data_says_why(cluster3):
    c = cluster3
    h = c.host("mds")
    d = os.path.join(c.mnt, "d")
    os.makedirs(os.path.join(d, "sub"))
    with open(os.path.join(d, "sub", "full"), "wb") as f:
        f.write(b"x" * 4096)
    open(os.path.join(d, "empty"), "wb").close()
    full = os.path.join(d, "sub", "full")
    r = h.vstorage("set-attr", full, "chunk-size=2M", check=False)
    assert r.returncode == 1
    assert "file that already has data cannot change" in r.stderr, r.stderr
    assert full in r.stderr
    # -R: every path it could change is changed; the ones it could not are named.
    r = h.vstorage("set-attr", "-R", d, "chunk-size=2M", "replicas=2", check=False)
    assert r.returncode == 1
    assert "1 path(s) kept their chunk-size" in r.stderr, r.stderr
    assert f"  {full} (chunk-size)" in r.stderr
    assert os.path.join(d, "empty") not in r.stderr

    def attrs(p):
        return h.vstorage("get-attr", p).stdout
    for p in (d, os.path.join(d, "sub"), os.path.join(d, "empty")):
        assert "chunk-size=2097152" in attrs(p), attrs(p)
    assert "replicas=2:1" in attrs(full) and "chunk-size=2097152" not in attrs(full)
