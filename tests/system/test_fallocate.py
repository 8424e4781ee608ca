"""fallocate(2) on a real FUSE mount (issue 9, item 10): mode 0, KEEP_SIZE, PUNCH_HOLE and
ZERO_RANGE; a punched range reads as zeros and its space goes on every replica; guide
3.5.7's gen.do_punch_hole; qemu-img preallocation=falloc and fstrim inside a loop-mounted
ext4 image on the mount."""
import os
import subprocess

import pytest

from conftest import drop_caches, wait_for

M = 1 << 20


def allocated(repo):
    """Bytes of disk the chunk files of a CS repository hold (st_blocks)."""
    d = os.path.join(repo, "chunks")
    return sum(os.stat(os.path.join(d, n)).st_blocks * 512 for n in os.listdir(d))


def run(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stdout}{r.stderr}"
    return r.stdout


def test_fallocate_modes_and_punched_space_given_back_on_every_replica(cluster):
    _, m, h = cluster.start(3, replicas=3, chunk_size="4M")
    p = f"{m}/img"
    repos = [repo for repo, _ in cluster.cs_repos.values()]
    # Mode 0 (posix_fallocate): the size grows, the space is reserved on each replica.
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        base = [allocated(r) for r in repos]
        os.posix_fallocate(fd, 0, 10 * M)
        assert os.fstat(fd).st_size == 10 * M
        for r, b in zip(repos, base):
            assert allocated(r) >= b + 10 * M - 64 * 1024, r
        model = bytearray(os.urandom(10 * M))
        os.pwrite(fd, bytes(model), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    before = [allocated(r) for r in repos]
    # PUNCH_HOLE across a chunk boundary, unaligned (util-linux fallocate -p keeps the size).
    off, length = 3 * M + 1000, 3 * M
    run("fallocate", "-p", "-o", str(off), "-l", str(length), p)
    model[off:off + length] = bytes(length)
    assert os.path.getsize(p) == 10 * M
    after = [allocated(r) for r in repos]
    for r, b, a in zip(repos, before, after):
        assert a <= b - length + 8192, f"{r}: {b} -> {a} bytes after punching {length}"
    # ZERO_RANGE inside the data, then KEEP_SIZE past the end, then ZERO_RANGE growing it.
    run("fallocate", "-z", "-o", "100", "-l", "5000", p)
    model[100:5100] = bytes(5000)
    run("fallocate", "-n", "-o", str(10 * M), "-l", str(2 * M), p)
    assert os.path.getsize(p) == 10 * M
    run("fallocate", "-z", "-o", str(10 * M - 10), "-l", "30", p)
    model[10 * M - 10:] = bytes(10)
    model += bytes(20)
    assert os.path.getsize(p) == len(model)
    drop_caches()
    assert open(p, "rb").read() == bytes(model)
    # Guide 3.5.7: with gen.do_punch_hole=0 a punch hole is refused and changes nothing.
    h.vstorage("set-config", "gen.do_punch_hole=0")
    assert "gen.do_punch_hole" in h.vstorage("get-config").stdout

    def refused():  # mounts see the change within seconds; probe a range of zeros
        r = subprocess.run(["fallocate", "-p", "-o", str(10 * M), "-l", "10", p], capture_output=True, text=True)
        return r.returncode != 0 and "supported" in r.stderr.lower()
    wait_for(refused, what="punch hole refused with gen.do_punch_hole=0")
    r = subprocess.run(["fallocate", "-p", "-o", "0", "-l", str(M), p], capture_output=True, text=True)
    assert r.returncode != 0 and "supported" in r.stderr.lower(), r.stderr
    drop_caches()
    assert open(p, "rb").read() == bytes(model)
    h.vstorage("set-config", "gen.do_punch_hole=1")


def test_qemu_img_preallocation_falloc(cluster):
    _, m, _ = cluster.start(3, replicas=3, chunk_size="4M")
    for fmt in ("raw", "qcow2"):
        img = f"{m}/vm.{fmt}"
        run("qemu-img", "create", "-f", fmt, "-o", "preallocation=falloc", img, "64M")
        out = run("qemu-img", "info", img)
        assert f"file format: {fmt}" in out and "virtual size: 64 MiB" in out, out
        if fmt == "qcow2":
            run("qemu-img", "check", img)
        assert os.path.getsize(img) >= 64 * M


def test_fstrim_in_a_loop_mounted_ext4_image_gives_space_back(cluster, tmp_path):
    _, m, _ = cluster.start(3, replicas=3, chunk_size="16M")
    repos = [repo for repo, _ in cluster.cs_repos.values()]
    img = f"{m}/disk.img"
    with open(img, "wb") as f:
        f.truncate(256 * M)
    run("mkfs.ext4", "-q", "-F", "-E", "nodiscard", img)
    r = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no loop device here: {r.stderr.strip()}")
    loop = r.stdout.strip()
    mnt = tmp_path / "ext4"
    mnt.mkdir()
    try:
        run("mount", loop, str(mnt))
        try:
            data = os.urandom(64 * M)
            with open(mnt / "big", "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
            run("sync")
            full = sum(allocated(r) for r in repos)
            os.unlink(mnt / "big")
            run("sync")
            out = run("fstrim", "-v", str(mnt))
            assert "trimmed" in out, out
            trimmed = sum(allocated(r) for r in repos)
            # Three replicas of ~64 MiB went back to the chunk servers' disks.
            assert trimmed <= full - 3 * 48 * M, f"{full} -> {trimmed} bytes after fstrim: {out}"
            with open(mnt / "small", "wb") as f:
                f.write(b"still works")
            run("sync")
            assert open(mnt / "small", "rb").read() == b"still works"
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)
    run("e2fsck", "-f", "-n", img)


def test_a_punched_chunk_stays_sparse_when_recovery_copies_it(cluster):
    """Recovery writes only the blocks that hold data: a hole punched on the old replicas is
    a hole on the new one, and every byte still reads back."""
    from conftest import file_info
    ids, m, h = cluster.start(4, replicas=3, chunk_size="16M")
    h.vstorage("set-config", "mds.wd.offline_tout=3000")
    p = f"{m}/img"
    data = bytearray(os.urandom(16 * M))
    with open(p, "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    run("fallocate", "-p", "-o", str(2 * M), "-l", str(12 * M), p)
    data[2 * M:14 * M] = bytes(12 * M)
    info = file_info(cluster, p)
    replicas = info["chunks"][0]["replicas"]
    spare = next(i for i in ids if i not in replicas)
    cluster.kill(f"cs{replicas[0]}")

    def copied():
        c = file_info(cluster, p)["chunks"][0]
        return spare in c["replicas"] and len(set(c["replicas"])) == 3 and c["state"] == "healthy"
    wait_for(copied, timeout=90, what=f"the chunk copied to CS#{spare}")
    repo, _ = cluster.cs_repos[spare]
    assert allocated(repo) <= 4 * M + 64 * 1024, f"new replica holds {allocated(repo)} bytes for 4 MiB of data"
    drop_caches()
    assert open(p, "rb").read() == bytes(data)


def test_fallocate_past_the_free_space_is_enospc_at_once(cluster):
    """Mode 0 reserves on every replica: a reservation the disks cannot hold fails now,
    not at a later write."""
    import errno
    _, m, _ = cluster.start(3, replicas=3, chunk_size="16M", size_mb=64)
    fd = os.open(f"{m}/big", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, 8 * M)  # fits
        with pytest.raises(OSError) as e:
            os.posix_fallocate(fd, 0, 256 * M)
        assert e.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
