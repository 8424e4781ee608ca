"""Cluster set-up as in guide chapter 2, and the errors a wrong step must give."""
import hashlib
import json
import os

from conftest import BIN, PASSWORD


def test_make_mds_auth_node_make_cs_and_stat(cluster):
    mds_host = cluster.make_mds()
    conf = os.path.join(mds_host.conf, "clusters", cluster.name)
    digest = open(os.path.join(conf, "auth_digest.key")).read()
    assert digest.startswith("srp6a-3072-sha256$")  # a verifier: not a key to the cluster
    assert PASSWORD not in digest
    ids = [cluster.add_cs() for _ in range(3)]
    assert ids == [1025, 1026, 1027]
    cluster.wait_cs_active(3)
    s = cluster.stat_json()
    assert s["status"] == "healthy"
    assert [m["id"] for m in s["mds"]] == [1]
    assert sorted(c["id"] for c in s["cs"]) == ids
    assert all(c["status"] == "active" for c in s["cs"])
    text = mds_host.vstorage("stat").stdout
    assert f"Cluster '{cluster.name}': healthy" in text
    assert "CS nodes: 3 of 3 (3 avail, 0 inactive, 0 offline)" in text
    assert "MDSID" in text and "CSID" in text and "CLID" in text
    # Each CS host got its own host id.
    host_ids = {open(os.path.join(cluster.host(f"cs{i}").conf, "host_id")).read().strip() for i in (1, 2, 3)}
    assert len(host_ids) == 3
    # list-services shows the repositories of that host.
    out = cluster.host("cs1").vstorage("list-services").stdout
    assert cluster.cs_repos[1025][0] in out


def test_wrong_password_is_refused_and_writes_nothing(cluster):
    cluster.make_mds()
    h = cluster.host("intruder")
    h.copy_bs_list_from(cluster.host("mds"))
    r = h.auth_node(password="not-the-password", check=False)
    assert r.returncode != 0
    assert "wrong password" in r.stderr
    assert not os.path.exists(os.path.join(h.conf, "clusters", cluster.name, "cluster.key"))


def test_an_old_password_digest_becomes_a_verifier_and_still_admits_the_password(cluster):
    """A repository made before SRP stored PBKDF2(password) itself, which proves the password
    as well as the password does. The MDS replaces it with the SRP verifier at start, and
    auth-node goes on working with the same password (and only with it)."""
    cluster.make_mds()
    repo = os.path.join(cluster.root, "mds")
    salt = bytes(range(16))
    x = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 200000)
    cluster.kill("mds")
    with open(os.path.join(repo, "auth_digest.key"), "w") as f:
        f.write(f"pbkdf2-sha256$200000${salt.hex()}${x.hex()}\n")
    cluster.restart("mds")
    cluster.wait_mds()
    digest = open(os.path.join(repo, "auth_digest.key")).read()
    assert digest.startswith(f"srp6a-3072-sha256$200000${salt.hex()}$"), digest[:60]
    assert x.hex() not in digest
    h = cluster.host("newcomer")
    h.copy_bs_list_from(cluster.host("mds"))
    r = h.auth_node(password="not-the-password", check=False)
    assert r.returncode != 0 and "wrong password" in r.stderr, r.stderr
    h.auth_node()
    assert h.vstorage("stat").returncode == 0


def test_make_cs_on_unauthenticated_host_says_run_auth_node(cluster):
    cluster.make_mds()
    h = cluster.host("stranger")
    h.copy_bs_list_from(cluster.host("mds"))
    repo = os.path.join(cluster.root, "cs-stranger")
    r = h.vstorage("make-cs", "-r", repo, check=False)
    assert r.returncode != 0
    assert "auth-node" in r.stderr
    assert not os.path.exists(os.path.join(repo, "cs.conf"))


def test_unknown_cluster_and_missing_bs_list(cluster):
    h = cluster.host("empty")
    r = h.vstorage("stat", check=False)
    assert r.returncode != 0
    assert "bs.list" in r.stderr and "unknown cluster" in r.stderr


def test_mds_unreachable_is_named(cluster):
    cluster.make_mds()
    cluster.kill("mds")
    r = cluster.host("mds").vstorage("stat", check=False, timeout=120)
    assert r.returncode != 0
    assert "cannot reach" in r.stderr


def test_repository_in_use_or_not_empty(cluster):
    cluster.make_mds()
    cs = cluster.add_cs()
    cluster.wait_cs_active(1)
    repo, host = cluster.cs_repos[cs]
    # A second daemon on the same repository is refused while the first runs.
    import subprocess
    from conftest import BIN
    r = subprocess.run([os.path.join(BIN, "vstorage-csd"), "-r", repo], capture_output=True,
                       text=True, env=host.env(), timeout=30)
    assert r.returncode != 0 and "in use" in r.stderr
    # make-cs into a non-empty directory is refused.
    r = host.vstorage("make-cs", "-r", repo, check=False)
    assert r.returncode != 0 and "not empty" in r.stderr
    # make-mds into a non-empty directory is refused.
    r = cluster.host("other").vstorage("make-mds", "-I", "-a", "127.0.0.1:1", "-r", repo, "-p",
                                       input="x\n", check=False)
    assert r.returncode != 0 and "not empty" in r.stderr


def test_stat_json_has_clients_after_mount(cluster3):
    s = cluster3.stat_json()
    assert len(s["clients"]) >= 1
    assert json.dumps(s)


def test_make_report_packs_the_cluster_and_this_host_without_secrets(cluster):
    """Guide 8.1.1: `vstorage -c NAME make-report -f FILE.tgz` prints where it saved the report;
    the report holds stat, events, config and this host's configuration, never the cluster key
    or the password verifier."""
    import subprocess
    import tarfile
    ids, m, h = cluster.start(3, replicas=3)
    path = os.path.join(cluster.root, "reportSTOR1.tgz")
    r = h.vstorage("make-report", "-f", path)
    assert r.stdout.strip() == f"The report is created and saved to {path}"
    key_hex = open(os.path.join(h.conf, "clusters", cluster.name, "cluster.key")).read().strip()
    verifier = open(os.path.join(cluster.root, "mds", "auth_digest.key")).read().strip().split("$")[-1]
    with tarfile.open(path) as t:
        members = {os.path.relpath(x.name, x.name.split("/")[0]): t.extractfile(x).read()
                   for x in t.getmembers() if x.isfile()}
    for name in ["cluster/stat.txt", "cluster/stat.json", "cluster/events.txt", "cluster/config.txt",
                 "host.txt", "conf/host_id", f"conf/clusters/{cluster.name}/bs.list", "services/mds-1/mds.conf"]:
        assert name in members, sorted(members)
    assert f"Cluster '{cluster.name}': healthy" in members["cluster/stat.txt"].decode()
    assert "gen.encryption" in members["cluster/config.txt"].decode()
    # Each host reports its own services: a CS host's report has its CS.
    cs_path = os.path.join(cluster.root, "report-cs.tgz")
    cluster.host("cs1").vstorage("make-report", "-f", cs_path)
    with tarfile.open(cs_path) as t:
        cs_names = [os.path.relpath(x.name, x.name.split("/")[0]) for x in t.getmembers() if x.isfile()]
    assert f"services/cs-{ids[0]}/cs.conf" in cs_names, cs_names
    for name, data in members.items():
        assert key_hex.encode() not in data, f"{name} holds the cluster key"
        assert verifier.encode() not in data, f"{name} holds the password verifier"
    assert b"cluster.key" in members["left-out.txt"]
    # The guide's extension is required; nothing is written otherwise.
    bad = h.vstorage("make-report", "-f", os.path.join(cluster.root, "report.zip"), check=False)
    assert bad.returncode != 0 and ".tgz" in bad.stderr
    assert not os.path.exists(os.path.join(cluster.root, "report.zip"))
    # Without -f: vstorage-report-DATE-TIME.tgz in the current directory.
    r = subprocess.run([os.path.abspath(os.path.join(BIN, "vstorage")), "-c", cluster.name, "make-report"], cwd=cluster.root,
                       capture_output=True, text=True, env=h.env(), timeout=60)
    assert r.returncode == 0, r.stderr
    name = r.stdout.strip().rsplit(" ", 1)[-1]
    assert name.startswith("vstorage-report-") and name.endswith(".tgz")
    assert tarfile.is_tarfile(os.path.join(cluster.root, name))
