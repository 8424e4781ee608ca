"""File system operations through a real FUSE mount on a 3-CS cluster."""
import errno
import hashlib
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, file_info, wait_for


def test_posix_operations(cluster3):
    m = cluster3.mnt
    os.mkdir(f"{m}/d")
    with open(f"{m}/d/f", "wb") as f:
        f.write(b"hello world")
    assert open(f"{m}/d/f", "rb").read() == b"hello world"
    assert sorted(os.listdir(m)) == ["d"]
    os.rename(f"{m}/d/f", f"{m}/d/g")
    assert os.listdir(f"{m}/d") == ["g"]
    os.truncate(f"{m}/d/g", 5)
    assert open(f"{m}/d/g", "rb").read() == b"hello"
    os.truncate(f"{m}/d/g", 8)
    assert open(f"{m}/d/g", "rb").read() == b"hello\0\0\0"
    os.symlink("g", f"{m}/d/link")
    assert os.readlink(f"{m}/d/link") == "g"
    assert open(f"{m}/d/link", "rb").read() == b"hello\0\0\0"
    with pytest.raises(OSError) as e:
        os.rmdir(f"{m}/d")
    assert e.value.errno == errno.ENOTEMPTY
    os.link(f"{m}/d/g", f"{m}/d/hard")  # hard links: tests/system/test_posix.py
    os.unlink(f"{m}/d/hard")
    os.unlink(f"{m}/d/link")
    os.unlink(f"{m}/d/g")
    os.rmdir(f"{m}/d")
    assert os.listdir(m) == []
    st = os.statvfs(m)
    assert st.f_blocks > 0 and st.f_bfree > 0


def test_replicas_attr_and_file_info(cluster3):
    m = cluster3.mnt
    h = cluster3.host("mds")
    assert "replicas=1:1" in h.vstorage("get-attr", m).stdout
    h.vstorage("set-attr", "-R", m, "replicas=3")
    assert "replicas=3:2" in h.vstorage("get-attr", m).stdout
    os.mkdir(f"{m}/sub")
    assert "replicas=3:2" in h.vstorage("get-attr", f"{m}/sub").stdout
    data = os.urandom(3 * 1024 * 1024 + 123)
    with open(f"{m}/sub/file", "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    info = file_info(cluster3, f"{m}/sub/file")
    assert info["chunks"], info
    for c in info["chunks"]:
        assert len(set(c["replicas"])) == 3, c
        assert c["state"] == "healthy"
    assert hashlib.sha256(open(f"{m}/sub/file", "rb").read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("bad", ["replicas=0", "replicas=16", "replicas=3:4", "replicas=abc"])
def test_invalid_attr_values_change_nothing(cluster3, bad):
    m = cluster3.mnt
    h = cluster3.host("mds")
    before = h.vstorage("get-attr", m).stdout
    r = h.vstorage("set-attr", m, bad, check=False)
    assert r.returncode != 0
    assert "invalid" in r.stderr.lower()
    assert h.vstorage("get-attr", m).stdout == before


def test_second_writer_from_another_mount_gets_ebusy(cluster3):
    m1 = cluster3.mnt
    m2 = cluster3.mount(name="mnt2")
    with open(f"{m1}/shared", "wb") as f:
        f.write(b"first")
        f.flush()
        with pytest.raises(OSError) as e:
            open(f"{m2}/shared", "r+b")
        assert e.value.errno == errno.EBUSY
    # After the first writer closed, the second mount may write and sees the data.
    with open(f"{m2}/shared", "r+b") as f:
        assert f.read() == b"first"
        f.write(b"-second")
    assert open(f"{m1}/shared", "rb").read() == b"first-second"


def test_large_file_across_chunks_and_remount(cluster3):
    m = cluster3.mnt
    h = cluster3.host("mds")
    os.mkdir(f"{m}/small")
    h.vstorage("set-attr", f"{m}/small", "chunk-size=1M")
    h.vstorage("set-attr", f"{m}/small", "replicas=3")
    data = os.urandom(5 * 1024 * 1024 + 4097)
    with open(f"{m}/small/f", "wb") as f:
        f.write(data)
    info = file_info(cluster3, f"{m}/small/f")
    assert len(info["chunks"]) == 6
    assert all(len(set(c["replicas"])) == 3 for c in info["chunks"])
    cluster3.umount(m)
    m = cluster3.mount(name="mnt")
    assert open(f"{m}/small/f", "rb").read() == data
    # Unaligned overwrite in the middle, across a chunk boundary.
    with open(f"{m}/small/f", "r+b") as f:
        f.seek(1024 * 1024 - 10)
        f.write(b"X" * 20)
    expect = data[:1024 * 1024 - 10] + b"X" * 20 + data[1024 * 1024 + 10:]
    assert open(f"{m}/small/f", "rb").read() == expect


def test_mount_of_unknown_cluster_fails_clearly(cluster):
    h = cluster.host("nobody")
    mnt = os.path.join(cluster.root, "m")
    os.makedirs(mnt)
    r = subprocess.run([os.path.join(BIN, "vstorage-mount"), "-c", "nosuch", mnt],
                       capture_output=True, text=True, env=h.env(), timeout=60)
    assert r.returncode != 0
    assert "unknown cluster" in r.stderr
    assert not os.path.ismount(mnt)


def test_out_of_space_gives_enospc_and_keeps_the_cluster(cluster):
    cluster.make_mds()
    for _ in range(3):
        cluster.add_cs(size_mb=40)
    cluster.wait_cs_active(3)
    m = cluster.mount()
    h = cluster.host("mds")
    h.vstorage("set-attr", "-R", m, "replicas=3")
    h.vstorage("set-attr", m, "chunk-size=4M")
    keep = os.urandom(6 * 1024 * 1024)
    with open(f"{m}/keep", "wb") as f:
        f.write(keep)
        os.fsync(f.fileno())
    with pytest.raises(OSError) as e:
        with open(f"{m}/big", "wb") as f:
            for _ in range(100):  # 100 MiB into 40 MiB disks
                f.write(os.urandom(1024 * 1024))
            os.fsync(f.fileno())
    assert e.value.errno == errno.ENOSPC, e.value
    # What was there is intact, the cluster still answers, and space comes back on delete.
    assert open(f"{m}/keep", "rb").read() == keep
    assert cluster.stat_json()["status"] in ("healthy", "degraded")
    os.unlink(f"{m}/big")
    def can_write():
        with open(f"{m}/again", "wb") as f:
            f.write(b"x" * 4096)
            os.fsync(f.fileno())
        return True
    wait_for(can_write, timeout=30, what="space to come back after unlink")
    info = file_info(cluster, f"{m}/keep")
    assert all(len(set(c["replicas"])) == 3 for c in info["chunks"]), info


def test_stat_shows_measured_iowait_and_iolat(cluster3):
    """IOWAIT, IOLAT and QDEPTH (guide 5.3, 5.4) come from the I/O the CS and clients did."""

    path = os.path.join(cluster3.mnt, "busy")
    stop = threading.Event()

    def writer():
        block = os.urandom(1 << 20)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            i = 0
            while not stop.is_set():
                os.pwrite(fd, block, (i % 64) << 20)
                os.fsync(fd)
                i += 1
        finally:
            os.close(fd)

    t = threading.Thread(target=writer)
    t.start()
    try:
        def measured():
            st = cluster3.stat_json()
            cs = [c for c in st["cs"] if c["iowait_pct"] > 0 and c["iolat_max_ms"] >= 1]
            cl = [c for c in st["clients"] if c["iolat_max_ms"] >= 1]
            return (cs and cl) and st
        st = wait_for(measured, timeout=30, what="CS and client I/O figures in stat")
    finally:
        stop.set()
        t.join()
    for c in st["cs"]:
        assert c["iolat_avg_ms"] <= c["iolat_max_ms"]
        assert 0 <= c["iowait_pct"] <= 100
    text = cluster3.host("mds").vstorage("stat").stdout
    rows = [l for l in text.splitlines() if re.match(r"^\d{4}\s+active\s", l)]
    assert len(rows) == 3, text
    for row in rows:
        assert re.search(r"\s\d+%\s+\d+/\d+\s+\d+\.\d\s", row), row
    client_rows = [l for l in text.splitlines() if re.search(r"ops/s\s+\d+/\d+\s", l)]
    assert client_rows, text
    # The MDS row: %CTIME, COMMITS as a rate, %CPU, as the guide prints them.
    assert re.search(r"^\s*M 1\s+avail\s+\d+\.\d%\s+\d+/s\s+\d+\.\d%\s", text, re.M), text
    mds = st["mds"][0]
    # The MDS worked while the cluster was set up and written to: it used CPU and committed.
    assert mds["commits"] > 0 and 0 <= mds["ctime_pct"] <= 100 and mds["cpu_pct"] > 0, mds


def test_name_too_long_on_every_call_as_on_ext4(cluster3):
    m = cluster3.mnt
    long = "x" * 256
    open(f"{m}/ok", "w").close()
    os.mkdir(f"{m}/dir")
    calls = [
        ("stat", lambda: os.stat(f"{m}/{long}")),
        ("open O_CREAT", lambda: open(f"{m}/{long}", "w")),
        ("mkdir", lambda: os.mkdir(f"{m}/{long}")),
        ("unlink", lambda: os.unlink(f"{m}/{long}")),
        ("rmdir", lambda: os.rmdir(f"{m}/{long}")),
        ("rename to", lambda: os.rename(f"{m}/ok", f"{m}/{long}")),
        ("rename from", lambda: os.rename(f"{m}/{long}", f"{m}/ok2")),
        ("symlink", lambda: os.symlink("ok", f"{m}/{long}")),
        ("lookup below", lambda: os.stat(f"{m}/dir/{long}/f")),
    ]
    for what, call in calls:
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.ENAMETOOLONG, (what, e.value)
    # 255 bytes is fine.
    open(f"{m}/{'y' * 255}", "w").close()
    assert os.path.exists(f"{m}/{'y' * 255}")


def test_df_size_used_and_avail_agree_in_logical_bytes(cluster):
    _, m, h = cluster.start(3, replicas=3, chunk_size="4M")
    st = os.statvfs(m)
    size, free, avail = st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize
    raw = sum(os.statvfs(repo).f_blocks * os.statvfs(repo).f_frsize for repo, _ in cluster.cs_repos.values())
    # Three replicas on three CS: the logical size is a third of the raw space.
    assert abs(size - raw // 3) <= raw // 300 + 3 * 4096, (size, raw)
    assert avail <= free <= size
    raw_free = sum(os.statvfs(repo).f_bavail * os.statvfs(repo).f_frsize for repo, _ in cluster.cs_repos.values())
    # Use% as df computes it equals the disks' fill level (within a percent).
    used = size - free
    disks_used = 1 - raw_free / raw
    assert abs(used / size - disks_used) < 0.01, (used / size, disks_used)
    out = subprocess.run(["df", "-B1", m], capture_output=True, text=True, check=True).stdout.splitlines()[1].split()
    assert int(out[1]) == size and int(out[3]) == avail, out


def test_a_file_written_before_an_unmount_opens_for_writing_at_once_after(cluster3):
    """The old mount says goodbye: its leases end at unmount, not at their timeout."""
    m = cluster3.mnt
    for i in range(3):
        with open(f"{m}/f", "ab") as f:
            f.write(b"x" * 1000)
        cluster3.umount(m)
        m = cluster3.mount()
        t0 = time.monotonic()
        with open(f"{m}/f", "ab") as f:
            f.write(b"y")
        assert time.monotonic() - t0 < 5, f"round {i}: open for writing waited for a lease"
    assert os.path.getsize(f"{m}/f") == 3 * 1001
    # A mount stopped with a file still open for writing (no release ever comes for it).
    f = open(f"{m}/f", "ab")
    f.write(b"z")
    f.flush()
    pids = cluster3.mount_pids()
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGTERM)
    wait_for(lambda: not cluster3.mount_pids(), what="the mount process to exit")
    try:
        f.close()
    except OSError:
        pass  # ENOTCONN: the file system is gone
    cluster3.umount(m)
    m = cluster3.mount()
    t0 = time.monotonic()
    with open(f"{m}/f", "ab") as g:
        g.write(b"w")
    assert time.monotonic() - t0 < 5, "open for writing waited for the dead mount's lease"

