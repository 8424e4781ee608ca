"""The power-cut file system itself (tests/powercut): what a cut keeps and what it drops.
The power-cut tests of the cluster are only as good as this model of a disk."""
import ctypes
import errno
import os
import time
import subprocess
import tempfile

import pytest

from conftest import BIN, wait_for

PAGE = 4096


class PcFs:
    def __init__(self, root):
        self.backing = os.path.join(root, "backing")
        self.mnt = os.path.join(root, "mnt")
        os.makedirs(self.backing)
        os.makedirs(self.mnt)
        self.log = open(os.path.join(root, "pc.log"), "ab")
        self.p = subprocess.Popen([os.path.join(BIN, "vstorage-powercut-fs"), self.backing, self.mnt],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.ismount(self.mnt) or self.p.poll() is not None, what="power-cut fs mounted")
        assert self.p.poll() is None

    def path(self, name):
        return os.path.join(self.mnt, name)

    def cut(self, opts=""):
        """A cut and the power back on."""
        self.control(("cut " + opts).strip())
        rep = self.report()
        self.control("on")
        return rep

    def control(self, line):
        fd = os.open(self.path(".powercut"), os.O_WRONLY)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)

    def report(self):
        return dict(kv.split("=") for kv in open(self.path(".powercut")).read().split())

    def sync_dir(self, name=""):
        fd = os.open(self.path(name) if name else self.mnt, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        if os.path.ismount(self.mnt):
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=30)


@pytest.fixture
def pcfs():
    root = tempfile.mkdtemp(prefix="vspc-")
    fs = PcFs(root)
    yield fs
    fs.close()
    subprocess.run(["rm", "-rf", root])


def write_synced(fs, name, data):
    with open(fs.path(name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fs.sync_dir()


def test_unsynced_data_is_rolled_back_and_fsynced_data_stays(pcfs):
    old = os.urandom(3 * PAGE)
    write_synced(pcfs, "f", old)
    write_synced(pcfs, "g", old)
    with open(pcfs.path("f"), "r+b") as f:
        f.seek(100)
        f.write(b"x" * 5000)   # overwrite across two pages
        f.seek(0, 2)
        f.write(b"tail" * 100)  # append
    with open(pcfs.path("g"), "r+b") as f:
        f.write(b"y" * 10)
        f.flush()
        os.fsync(f.fileno())
    rep = pcfs.cut()
    assert int(rep["dropped_pages_last"]) >= 2, rep
    assert open(pcfs.path("f"), "rb").read() == old
    assert open(pcfs.path("g"), "rb").read() == b"y" * 10 + old[10:]
    assert pcfs.report()["dirty_files"] == "0"


def test_names_need_an_fsync_of_their_directory(pcfs):
    write_synced(pcfs, "kept", b"k")
    with open(pcfs.path("new"), "wb") as f:
        f.write(b"data")
        f.flush()
        os.fsync(f.fileno())  # the file, not its directory
    os.mkdir(pcfs.path("d"))
    pcfs.cut()
    assert sorted(os.listdir(pcfs.mnt)) == ["kept"]
    os.mkdir(pcfs.path("d"))
    write_synced(pcfs, "d2", b"")
    os.remove(pcfs.path("d2"))
    pcfs.sync_dir()
    with open(pcfs.path("d/x"), "wb") as f:
        f.write(b"xx")
        f.flush()
        os.fsync(f.fileno())
    pcfs.sync_dir("d")
    pcfs.cut()
    assert sorted(os.listdir(pcfs.mnt)) == ["d", "kept"]
    assert open(pcfs.path("d/x"), "rb").read() == b"xx"


def test_unlink_and_rename_over_a_file_are_undone_until_the_directory_is_synced(pcfs):
    write_synced(pcfs, "a", b"A" * 9000)
    write_synced(pcfs, "b", b"B" * 10)
    os.remove(pcfs.path("a"))
    with open(pcfs.path("b.tmp"), "wb") as f:
        f.write(b"new b")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pcfs.path("b.tmp"), pcfs.path("b"))
    assert open(pcfs.path("b"), "rb").read() == b"new b"
    rep = pcfs.cut()
    assert int(rep["dropped_names_last"]) == 3, rep
    assert sorted(os.listdir(pcfs.mnt)) == ["a", "b"]
    assert open(pcfs.path("a"), "rb").read() == b"A" * 9000
    assert open(pcfs.path("b"), "rb").read() == b"B" * 10
    # The same, with the directory synced: all of it stays.
    os.remove(pcfs.path("a"))
    with open(pcfs.path("b.tmp"), "wb") as f:
        f.write(b"new b")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pcfs.path("b.tmp"), pcfs.path("b"))
    pcfs.sync_dir()
    pcfs.cut()
    assert sorted(os.listdir(pcfs.mnt)) == ["b"]
    assert open(pcfs.path("b"), "rb").read() == b"new b"


def test_truncate_and_punched_holes_of_synced_data_are_undone(pcfs):
    old = os.urandom(4 * PAGE)
    write_synced(pcfs, "t", old)
    write_synced(pcfs, "p", old)
    os.truncate(pcfs.path("t"), 100)
    fd = os.open(pcfs.path("p"), os.O_RDWR)
    # fallocate(1) would fsync the file afterwards: call fallocate(2) itself.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    punch_hole_keep_size = 0x02 | 0x01
    assert libc.fallocate(fd, punch_hole_keep_size, PAGE, 2 * PAGE) == 0, os.strerror(ctypes.get_errno())
    os.close(fd)
    assert open(pcfs.path("p"), "rb").read()[PAGE:3 * PAGE] == bytes(2 * PAGE)
    pcfs.cut()
    assert open(pcfs.path("t"), "rb").read() == old
    assert open(pcfs.path("p"), "rb").read() == old


def scatter(fs, seed_opts):
    """Old synced pages, then new unsynced ones; a cut with `seed_opts`; the file after it."""
    old = b"".join(bytes([1]) * PAGE for _ in range(64))
    write_synced(fs, "s", old)
    with open(fs.path("s"), "r+b") as f:
        for i in range(64):
            f.seek(i * PAGE)
            f.write(bytes([2]) * PAGE)
    fs.cut(seed_opts)
    return open(fs.path("s"), "rb").read()


def test_keep_and_tear_leave_each_page_or_sector_old_or_new_and_a_seed_reproduces(pcfs, tmp_path):
    got = scatter(pcfs, "keep=0.5 seed=7")
    pages = [got[i * PAGE:(i + 1) * PAGE] for i in range(64)]
    assert all(p in (bytes([1]) * PAGE, bytes([2]) * PAGE) for p in pages)
    assert bytes([1]) * PAGE in pages and bytes([2]) * PAGE in pages
    torn = scatter(pcfs, "keep=0.5 seed=7 tear=1")
    sectors = [torn[i * 512:(i + 1) * 512] for i in range(64 * 8)]
    assert all(s in (bytes([1]) * 512, bytes([2]) * 512) for s in sectors)
    mixed = [i for i in range(64) if len(set(torn[i * PAGE:(i + 1) * PAGE])) == 2]
    assert len(mixed) <= 1  # at most the one torn page
    other = PcFs(str(tmp_path))
    try:
        assert scatter(other, "keep=0.5 seed=7") == got
    finally:
        other.close()


def test_a_malformed_control_line_fails_and_changes_nothing(pcfs):
    write_synced(pcfs, "f", b"old")
    with open(pcfs.path("f"), "r+b") as f:
        f.write(b"new")
    for bad in ("cutt", "cut keep=2", "cut seed=x", "cut tear=5", "cut what", "on now"):
        with pytest.raises(OSError) as e:
            pcfs.control(bad)
        assert e.value.errno == errno.EINVAL, bad
    assert pcfs.report()["cuts"] == "0"
    assert open(pcfs.path("f"), "rb").read() == b"new"
    pcfs.cut()
    assert open(pcfs.path("f"), "rb").read() == b"old"


def test_after_a_cut_io_waits_for_power_and_then_fails_and_if_dirty_needs_unsynced_writes(pcfs):
    write_synced(pcfs, "f", b"old")
    with pytest.raises(BlockingIOError):
        pcfs.control("cut if_dirty=1")  # nothing unsynced: no cut
    assert pcfs.report()["cuts"] == "0" and pcfs.report()["powered"] == "1"
    fd = os.open(pcfs.path("f"), os.O_RDWR)
    os.pwrite(fd, b"new", 0)
    pcfs.control("cut if_dirty=1")
    assert pcfs.report()["powered"] == "0"
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:  # a process that outlived the cut by an instant
        os.pwrite(fd, b"zombie", 0)
    assert e.value.errno == errno.EIO
    assert time.monotonic() - t0 >= 0.3, "failed at once: the process could still act on the error"
    pcfs.control("on")
    os.close(fd)
    assert open(pcfs.path("f"), "rb").read() == b"old"


def test_an_open_with_o_trunc_of_synced_data_is_undone(pcfs):
    old = os.urandom(3 * PAGE + 5)
    write_synced(pcfs, "f", old)
    with open(pcfs.path("f"), "wb") as f:  # O_TRUNC: the truncation is as volatile as a write
        f.write(b"new")
    assert open(pcfs.path("f"), "rb").read() == b"new"
    rep = pcfs.cut()
    assert int(rep["dropped_pages_last"]) >= 1, rep
    assert open(pcfs.path("f"), "rb").read() == old


def test_rename_keeps_posix_semantics(pcfs):
    os.mkdir(pcfs.path("a"))
    os.mkdir(pcfs.path("b"))
    write_synced(pcfs, "b/x", b"x")
    with pytest.raises(OSError) as e:
        os.rename(pcfs.path("a"), pcfs.path("b"))
    assert e.value.errno == errno.ENOTEMPTY
    assert open(pcfs.path("b/x"), "rb").read() == b"x"
    # Two names of one inode: renaming one over the other does nothing.
    write_synced(pcfs, "f", b"f")
    os.link(pcfs.path("f"), pcfs.path("g"))
    os.rename(pcfs.path("f"), pcfs.path("g"))
    assert sorted(os.listdir(pcfs.mnt)) == ["a", "b", "f", "g"]


def test_new_files_get_the_mode_the_caller_asked_for(pcfs):
    old = os.umask(0)
    try:
        fd = os.open(pcfs.path("f"), os.O_CREAT | os.O_WRONLY, 0o666)
        os.close(fd)
        os.mkdir(pcfs.path("d"), 0o777)
    finally:
        os.umask(old)
    assert os.stat(pcfs.path("f")).st_mode & 0o777 == 0o666
    assert os.stat(pcfs.path("d")).st_mode & 0o777 == 0o777


def test_a_file_held_open_across_a_cut_works_after_it(pcfs):
    write_synced(pcfs, "f", b"a" * PAGE)
    fd = os.open(pcfs.path("f"), os.O_RDWR)
    try:
        os.pwrite(fd, b"b" * PAGE, PAGE)  # an unsynced append: the cut drops it
        pcfs.cut()
        assert os.fstat(fd).st_size == PAGE
        assert os.pread(fd, 2 * PAGE, 0) == b"a" * PAGE
        os.pwrite(fd, b"c" * 10, PAGE)
        os.fsync(fd)
    finally:
        os.close(fd)
    pcfs.cut()
    assert open(pcfs.path("f"), "rb").read() == b"a" * PAGE + b"c" * 10


def test_a_renamed_directory_takes_its_pending_names_along(pcfs):
    for d in ("d1", "d2"):
        os.mkdir(pcfs.path(d))
        write_synced(pcfs, d + "/x", b"x")  # x is pending in its directory
        os.rename(pcfs.path(d), pcfs.path("e" + d[1]))
    pcfs.sync_dir()
    pcfs.sync_dir("e1")  # d1's names, under its new name
    pcfs.cut()
    assert sorted(os.listdir(pcfs.mnt)) == ["e1", "e2"]
    assert os.listdir(pcfs.path("e1")) == ["x"]
    assert open(pcfs.path("e1/x"), "rb").read() == b"x"
    assert os.listdir(pcfs.path("e2")) == []  # undone under the name the rename made durable


def test_a_durable_removal_of_a_tree_settles_what_was_pending_inside_it(pcfs):
    os.makedirs(pcfs.path("t/u/v"))
    write_synced(pcfs, "t/u/v/w", b"w")
    os.rename(pcfs.path("t"), pcfs.path("t2"))
    subprocess.run(["rm", "-r", pcfs.path("t2")], check=True)
    pcfs.sync_dir()  # the removal of t2 is durable: nothing inside it can come back
    rep = pcfs.cut()
    assert rep["dropped_names_last"] == "0", rep
    assert os.listdir(pcfs.mnt) == []
    assert os.listdir(os.path.join(pcfs.backing, ".powercut-graveyard")) == []
    pcfs.log.flush()
    assert b"undo of" not in open(pcfs.log.name, "rb").read()


def test_o_direct_io_works_and_is_undone_like_any_other(pcfs):
    import mmap
    write_synced(pcfs, "f", b"o" * PAGE)
    buf = mmap.mmap(-1, PAGE)  # page-aligned, as O_DIRECT wants
    buf.write(b"d" * PAGE)
    for flags in (os.O_CREAT, 0):  # through create, then through open
        name = "g" if flags else "f"
        fd = os.open(pcfs.path(name), os.O_RDWR | os.O_DIRECT | flags, 0o644)
        try:
            assert os.pwrite(fd, buf, 0) == PAGE
        finally:
            os.close(fd)
        assert open(pcfs.path(name), "rb").read() == b"d" * PAGE
    pcfs.cut()
    assert open(pcfs.path("f"), "rb").read() == b"o" * PAGE
    assert not os.path.exists(pcfs.path("g"))


def test_an_armed_cut_happens_right_after_the_next_change_however_short_its_window(pcfs):
    write_synced(pcfs, "f", b"old")
    with pytest.raises(BlockingIOError):  # nothing changes within wait_ms: no cut
        pcfs.control("cut wait_ms=50")
    assert pcfs.report()["cuts"] == "0" and pcfs.report()["powered"] == "1"
    # A writer that syncs at once after each write, as the MDS journal does: a cut that
    # polls for a dirty moment would rarely find one; the armed cut takes the first.
    script = ("import os, sys\n"
              "fd = os.open(sys.argv[1], os.O_RDWR)\n"
              "i = 0\n"
              "while True:\n"
              "    try:\n"
              "        os.pwrite(fd, b'%08d' % i, 0); os.fsync(fd); i += 1\n"
              "    except OSError:\n"
              "        break\n")
    w = subprocess.Popen(["/usr/bin/python3", "-c", script, pcfs.path("f")])
    try:
        for bad in ("cut wait_ms=x", "cut wait_ms=-1", "cut wait_ms=999999999"):
            with pytest.raises(OSError) as e:
                pcfs.control(bad)
            assert e.value.errno == errno.EINVAL, bad
        pcfs.control("cut wait_ms=30000")
        rep = pcfs.report()
        assert rep["powered"] == "0" and rep["cuts"] == "1", rep
        assert int(rep["dropped_pages_last"]) >= 1, rep  # the write not yet synced (and its size)
        w.wait(timeout=30)  # its next write failed: the power is off
    finally:
        if w.poll() is None:
            w.kill()
    pcfs.control("on")
    data = open(pcfs.path("f"), "rb").read()
    assert data == b"old" or data.isdigit(), data  # the last synced counter, not the torn-off one
