"""Truncate through a real FUSE mount: a cut-off tail reads as zeros when the file grows
again, on every chunk size, and no chunk server is blamed on the way (issue: shrinking by
more than 1 MiB used to write client memory into the file, or fail with EIO)."""
import os

from conftest import drop_caches, file_info

M = 1 << 20


def first_difference(path, size, keep, fill):
    """Offset of the first byte that is not `fill` in [0, keep) or not zero in [keep, size)."""
    with open(path, "rb") as f:
        off = 0
        while off < size:
            n = min(8 * M, size - off)
            b = f.read(n)
            assert len(b) == n, f"short read at {off}"
            for start, end, want in ((off, min(off + n, keep), fill), (max(off, keep), off + n, 0)):
                if start < end:
                    seg = b[start - off:end - off]
                    if seg != bytes([want]) * len(seg):
                        return start + next(i for i, c in enumerate(seg) if c != want)
            off += n
    return None


def write_pattern(path, size, fill=0xAA):
    block = bytes([fill]) * M
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[:min(M, left)])
            left -= min(M, left)


def test_shrink_and_regrow_read_zeros_on_every_chunk_size(cluster):
    _, m, h = cluster.start(3, replicas=3, chunk_size="1M")
    cases = [(3 * M, M), (2 * M, 1), (5 * M, M + 4097), (5 * M, 3 * M - 1), (M + 10, M - 10), (3 * M, 0)]
    n = 0
    for chunk in ("1M", "4M", "256M"):
        d = f"{m}/c{chunk}"
        os.mkdir(d)
        h.vstorage("set-attr", d, f"chunk-size={chunk}")
        for big, small in cases + ([(300 * M, M), (300 * M, 257 * M + 5)] if chunk == "256M" else []):
            for via_fd in (False, True):
                p = f"{d}/f{n}"
                n += 1
                write_pattern(p, big)
                if via_fd:  # ftruncate on the writer's own descriptor
                    with open(p, "r+b") as f:
                        os.ftruncate(f.fileno(), small)
                        os.ftruncate(f.fileno(), big)
                else:  # truncate(2) by path, the file closed: the guide's scenario
                    os.truncate(p, small)
                    os.truncate(p, big)
                drop_caches()
                assert os.path.getsize(p) == big
                bad = first_difference(p, big, small, 0xAA)
                assert bad is None, f"chunk {chunk}: {big} -> {small} -> {big}: wrong byte at {bad}"
                for c in file_info(cluster, p)["chunks"]:
                    assert len(set(c["replicas"])) == 3, (p, c)
                if big >= 100 * M:
                    os.unlink(p)  # keep the CS repositories small
    # Nothing was blamed on a chunk server: all are active and no replica was re-made.
    assert all(c["status"] == "active" for c in cluster.stat_json()["cs"])
    log = open(os.path.join(cluster.root, "mnt.log")).read()
    assert "reporting CS" not in log, log[-2000:]


def test_truncate_of_a_file_written_by_another_process_is_immediate(cluster):
    """python3 writing 3 MiB, then os.truncate to 1 MiB: used to fail with EIO after 60 s."""
    _, m, _ = cluster.start(3, replicas=3, chunk_size="256M")
    p = f"{m}/f"
    with open(p, "wb") as f:
        f.write(os.urandom(3 * M))
    os.truncate(p, M)
    assert os.path.getsize(p) == M
    os.truncate(p, 3 * M)
    drop_caches()
    with open(p, "rb") as f:
        f.seek(M)
        assert f.read() == bytes(2 * M)
