"""The issue's acceptance scenario: make-mds, auth-node + make-cs on three hosts, a mount from
a fourth, replicas 3, 1 GiB of random data; every chunk on 3 distinct CS; the same sha256
after a remount and after SIGKILL of every daemon followed by a restart."""
import hashlib
import json
import os

MiB = 1024 * 1024


def write_random(path, total):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = total
        while left:
            b = os.urandom(min(16 * MiB, left))
            f.write(b)
            h.update(b)
            left -= len(b)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(16 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def test_one_gib_three_replicas_survives_remount_and_sigkill(cluster):
    cluster.make_mds()
    for i in range(3):
        cluster.add_cs(host_name=f"host{i + 1}")
    cluster.wait_cs_active(3)
    client = cluster.host("client")
    client.copy_bs_list_from(cluster.host("mds"))
    client.auth_node()
    m = cluster.mount(host_name="client")
    client.vstorage("set-attr", "-R", m, "replicas=3")
    sha = write_random(f"{m}/big", 1024 * MiB)

    info = json.loads(client.vstorage("file-info", "--json", f"{m}/big").stdout)
    assert len(info["chunks"]) == 4, info  # 256 MiB chunks
    for c in info["chunks"]:
        assert len(set(c["replicas"])) == 3, c
        assert c["state"] == "healthy", c

    cluster.umount(m)
    m = cluster.mount(host_name="client")
    assert sha256_of(f"{m}/big") == sha

    for pid in cluster.mount_pids():
        os.kill(pid, 9)
    for key in list(cluster.procs):
        cluster.kill(key)
    cluster.umount(m)
    for key in list(cluster.procs):
        cluster.restart(key)
    cluster.wait_mds()
    cluster.wait_cs_active(3)
    m = cluster.mount(host_name="client")
    assert sha256_of(f"{m}/big") == sha
