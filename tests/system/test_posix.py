"""POSIX behaviour programs rely on, beyond the guide (issue 15, part 3), on a real mount."""
import os
import signal

from conftest import chunk_files, drop_caches, wait_for

M = 1 << 20


def all_chunk_files(cluster):
    return sum(len(chunk_files(repo)) for repo, _ in cluster.cs_repos.values())


def test_an_open_unlinked_file_works_until_its_last_close_even_across_an_mds_restart(cluster):
    _, m, _ = cluster.start(3, replicas=3, chunk_size="1M")
    p = f"{m}/scratch"
    data = bytearray(os.urandom(3 * M))
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, bytes(data), 0)
        os.fsync(fd)
        before = all_chunk_files(cluster)
        assert before == 9
        os.unlink(p)
        assert not os.path.exists(p) and os.listdir(m) == []
        st = os.fstat(fd)
        assert st.st_nlink == 0 and st.st_size == len(data)
        drop_caches()
        assert os.pread(fd, len(data), 0) == bytes(data)
        more = os.urandom(M)
        os.pwrite(fd, more, 3 * M)  # a new chunk for the nameless file
        data += more
        os.fsync(fd)
        assert os.fstat(fd).st_size == 4 * M
        assert all_chunk_files(cluster) == 12
        # The orphan is part of the MDS state: a restart keeps it.
        cluster.kill("mds")
        cluster.restart("mds")
        cluster.wait_mds()
        drop_caches()
        assert os.pread(fd, len(data), 0) == bytes(data)
    finally:
        os.close(fd)
    # The last close frees it on every CS.
    wait_for(lambda: all_chunk_files(cluster) == 0, timeout=30, what="the unlinked file's chunks to be deleted")


def test_a_file_renamed_over_while_open_keeps_its_data_for_the_opener(cluster3):
    m = cluster3.mnt
    with open(f"{m}/old", "wb") as f:
        f.write(b"old contents")
    with open(f"{m}/new", "wb") as f:
        f.write(b"new contents")
    with open(f"{m}/old", "rb") as reader:
        os.rename(f"{m}/new", f"{m}/old")
        assert open(f"{m}/old", "rb").read() == b"new contents"
        drop_caches()
        assert reader.read() == b"old contents"
        assert os.fstat(reader.fileno()).st_nlink == 0


def test_an_unlinked_file_of_a_crashed_client_is_freed_once_its_lease_expires(cluster):
    _, m, _ = cluster.start(3, replicas=3, chunk_size="1M")
    p = f"{m}/tmp"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, os.urandom(2 * M), 0)
    os.fsync(fd)
    os.unlink(p)
    assert all_chunk_files(cluster) == 6
    pids = cluster.mount_pids()
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)  # no release, no goodbye
    try:
        os.close(fd)
    except OSError:
        pass
    cluster.umount(m)
    # Not before the lease timeout (60 s): the client might come back.
    assert all_chunk_files(cluster) == 6
    wait_for(lambda: all_chunk_files(cluster) == 0, timeout=120,
             what="the crashed client's unlinked file to be freed after its lease expired")
