"""The model-based exerciser (tests/fsx/fsx.cc) against a real mount: writes, reads
(buffered, O_DIRECT, mmap), truncates, fallocate modes, fsync, reopen and remount on 1 MiB
chunks with three replicas, every read compared with the model. `make test` runs a short
bounded run; bench/fsx_long.sh runs long ones."""
import os
import shlex
import subprocess

from conftest import BIN

OPS = int(os.environ.get("VSTORAGE_FSX_OPS", "4000"))
SEEDS = [int(x) for x in os.environ.get("VSTORAGE_FSX_SEEDS", "1,2").split(",")]


def remount_command(cluster, m):
    h = cluster.host("mds")
    log = os.path.join(cluster.root, "mnt.log")
    return (f"fusermount3 -u {shlex.quote(m)} && VSTORAGE_CONF_DIR={shlex.quote(h.conf)} "
            f"{shlex.quote(os.path.join(BIN, 'vstorage-mount'))} -c {cluster.name} -l {shlex.quote(log)} "
            f"{shlex.quote(m)}")


def run_fsx(cluster, m, seed, ops, extra=()):
    argv = [os.path.join(BIN, "vstorage-fsx"), "-S", str(seed), "-N", str(ops), "--max-size", str(6 << 20),
            "--remount-cmd", remount_command(cluster, m), "--remount-every", "1500",
            "--log", os.path.join(cluster.root, f"fsx-{seed}.log"), *extra, f"{m}/fsx-{seed}"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=max(1200, ops // 50))
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert f"{ops} operations clean" in r.stdout, r.stdout
    print(r.stdout.strip())  # the time it took, seen with pytest -s (bench/fsx_long.sh)


def test_fsx_short_run_on_small_chunks(cluster):
    _, m, _ = cluster.start(3, replicas=3, chunk_size="1M")
    for seed in SEEDS:
        run_fsx(cluster, m, seed, OPS, ["--progress", str(max(OPS // 20, 1000))])


def test_fsx_finds_a_corruption(cluster, tmp_path):
    """The exerciser is not blind: a byte changed behind its back is reported, with the
    offset and the replay hint."""
    f = tmp_path / "f"
    cmd = f"printf x | dd of={shlex.quote(str(f))} bs=1 seek=100 conv=notrunc status=none"
    argv = [os.path.join(BIN, "vstorage-fsx"), "-S", "5", "-N", "400", "--no-falloc", "--remount-cmd", cmd,
            "--remount-every", "50", str(f)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED at operation" in r.stderr and "replay with the same command" in r.stderr, r.stderr
