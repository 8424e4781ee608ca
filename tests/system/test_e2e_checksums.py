"""End-to-end checksums (issue 13 item 4) with real daemons and a FUSE mount: every CS
flips one bit of some of the writes it receives and of some of the reads it sends
(VSTORAGE_CS_FAULT_FLIP, cs/service.h). The client's checksums catch each one: writes are
sent again, reads retried, and what is stored and read back is byte for byte what was
written, on every replica, with no CS blamed."""
import os
import re
import subprocess

from conftest import MiB, drop_caches, file_info, wait_for
from test_powercut import wait_healthy_and_identical


def test_bits_flipped_between_client_and_disk_are_errors_and_retries_never_data(cluster):
    cluster.cs_env = {"VSTORAGE_CS_FAULT_FLIP": "recv=7,send=5"}
    ids, m, h = cluster.start(3, replicas=3, chunk_size="1M")
    data = os.urandom(6 * MiB + 12345)
    path = os.path.join(m, "f")
    with open(path, "wb") as f:
        for off in range(0, len(data), 300_000):  # unaligned writes
            f.write(data[off:off + 300_000])
        f.flush()
        os.fsync(f.fileno())
    # A third-party writer and verifier too: fio checks every block it wrote.
    fio = subprocess.run(["fio", "--name=e2e", f"--filename={m}/fio", "--size=4M", "--bs=4k",
                          "--rw=randwrite", "--verify=crc32c", "--do_verify=1", "--fsync=16",
                          "--ioengine=psync", "--verify_state_save=0", "--output-format=terse"],
                         capture_output=True, text=True, timeout=300)
    assert fio.returncode == 0, fio.stdout + fio.stderr
    for _ in range(2):
        drop_caches()
        with open(path, "rb") as f:
            assert f.read() == data
    logs = "".join(open(os.path.join(cluster.root, f"cs{i}.log"), errors="replace").read() for i in ids)
    refused = len(re.findall(r"arrived at CS#\d+ not matching its checksum", logs))
    assert refused > 5, "no write was refused: were the faults injected?"
    mount_log = open(os.path.join(cluster.root, "mnt.log"), errors="replace").read()
    assert "did not match its checksum" in mount_log, "no damaged read was seen by the client"
    st = {c["id"]: c["status"] for c in cluster.stat_json()["cs"]}
    assert all(st[i] == "active" for i in ids), st  # nobody was blamed for the network
    assert all(len(set(c["replicas"])) == 3 for c in file_info(cluster, path)["chunks"])
    wait_healthy_and_identical(cluster, path, 3)
