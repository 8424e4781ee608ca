"""Two mounts of one cluster: names and attributes cached in each kernel (for 30 s) are
dropped as soon as the other mount changes them (issue 10 item 7, mds/invalidation.h).

Every wait below has a deadline far shorter than the cache timeout, so it passes only if
the change reached the other mount by invalidation, not by the cache running out.
"""
import os
import stat as st_mod

import pytest

from conftest import wait_for

SEEN_WITHIN_S = 5.0  # well below the mount's 30 s cache timeout


@pytest.fixture
def two_mounts(cluster):
    _, a, _ = cluster.start(3, replicas=3, chunk_size="1M")
    b = cluster.mount(name="mnt2")
    return a, b


def exists(p):
    return os.path.lexists(p)


def size_of(p):
    return os.stat(p).st_size


def write(p, data, mode="wb"):
    with open(p, mode) as f:
        f.write(data)


def test_a_rename_on_one_mount_is_seen_by_the_other(two_mounts):
    a, b = two_mounts
    write(f"{a}/old", b"payload")
    wait_for(lambda: exists(f"{b}/old"), timeout=SEEN_WITHIN_S, what="the new file on mount B")
    ino = os.stat(f"{b}/old").st_ino
    assert not exists(f"{b}/new")  # B now caches both the name and the absence
    os.rename(f"{a}/old", f"{a}/new")
    wait_for(lambda: not exists(f"{b}/old") and exists(f"{b}/new"), timeout=SEEN_WITHIN_S,
             what="the rename on mount B")
    assert os.stat(f"{b}/new").st_ino == ino
    assert open(f"{b}/new", "rb").read() == b"payload"


def test_a_rename_over_an_existing_file_is_seen_by_the_other(two_mounts):
    a, b = two_mounts
    write(f"{a}/x", b"xxxx")
    write(f"{a}/y", b"yy")
    wait_for(lambda: exists(f"{b}/x") and exists(f"{b}/y"), timeout=SEEN_WITHIN_S, what="both files on B")
    y_ino = os.stat(f"{b}/y").st_ino
    x_ino = os.stat(f"{b}/x").st_ino
    os.rename(f"{a}/x", f"{a}/y")
    wait_for(lambda: not exists(f"{b}/x") and os.stat(f"{b}/y").st_ino == x_ino, timeout=SEEN_WITHIN_S,
             what="y replaced by x on B")
    assert x_ino != y_ino
    assert open(f"{b}/y", "rb").read() == b"xxxx"


def test_an_unlink_on_one_mount_is_seen_by_the_other(two_mounts):
    a, b = two_mounts
    write(f"{a}/f", b"data")
    wait_for(lambda: exists(f"{b}/f"), timeout=SEEN_WITHIN_S, what="the file on B")
    os.stat(f"{b}/f")
    os.unlink(f"{a}/f")
    wait_for(lambda: not exists(f"{b}/f"), timeout=SEEN_WITHIN_S, what="the unlink on B")
    assert "f" not in os.listdir(b)


def test_size_changes_by_append_and_truncate_are_seen_by_the_other(two_mounts):
    a, b = two_mounts
    write(f"{a}/grow", b"12345")
    wait_for(lambda: exists(f"{b}/grow") and size_of(f"{b}/grow") == 5, timeout=SEEN_WITHIN_S, what="size 5 on B")
    write(f"{a}/grow", b"6789abc", mode="ab")  # the size reaches the MDS at close
    wait_for(lambda: size_of(f"{b}/grow") == 12, timeout=SEEN_WITHIN_S, what="the append on B")
    assert open(f"{b}/grow", "rb").read() == b"123456789abc"
    os.truncate(f"{a}/grow", 3)
    wait_for(lambda: size_of(f"{b}/grow") == 3, timeout=SEEN_WITHIN_S, what="the truncate on B")
    assert open(f"{b}/grow", "rb").read() == b"123"
    # A writer that fsyncs without closing: the size is at the MDS, and so at B.
    fd = os.open(f"{a}/grow", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"tail")
        os.fsync(fd)
        wait_for(lambda: size_of(f"{b}/grow") == 7, timeout=SEEN_WITHIN_S, what="the fsynced append on B")
    finally:
        os.close(fd)


def test_mode_changes_and_new_names_are_seen_by_the_other(two_mounts):
    a, b = two_mounts
    os.mkdir(f"{a}/d")
    write(f"{a}/d/one", b"1")
    wait_for(lambda: exists(f"{b}/d/one"), timeout=SEEN_WITHIN_S, what="d/one on B")
    assert sorted(os.listdir(f"{b}/d")) == ["one"]
    write(f"{a}/d/two", b"22")
    wait_for(lambda: sorted(os.listdir(f"{b}/d")) == ["one", "two"], timeout=SEEN_WITHIN_S,
             what="the new name in B's listing")
    os.chmod(f"{a}/d/one", 0o600)
    wait_for(lambda: st_mod.S_IMODE(os.stat(f"{b}/d/one").st_mode) == 0o600, timeout=SEEN_WITHIN_S,
             what="the chmod on B")
    os.unlink(f"{a}/d/one")
    os.unlink(f"{a}/d/two")
    os.rmdir(f"{a}/d")
    wait_for(lambda: not exists(f"{b}/d"), timeout=SEEN_WITHIN_S, what="the rmdir on B")


def test_a_listing_with_attributes_is_right_on_both_mounts(two_mounts):
    a, b = two_mounts
    os.mkdir(f"{a}/many")
    for i in range(50):
        write(f"{a}/many/f{i}", b"x" * i)
    for m in (a, b):
        wait_for(lambda: len(os.listdir(f"{m}/many")) == 50, timeout=SEEN_WITHIN_S, what="50 names")
        with os.scandir(f"{m}/many") as it:
            sizes = {e.name: e.stat().st_size for e in it}
        assert sizes == {f"f{i}": i for i in range(50)}
    # Changed on A after B listed them: B's attributes follow.
    os.truncate(f"{a}/many/f10", 0)
    wait_for(lambda: os.stat(f"{b}/many/f10").st_size == 0, timeout=SEEN_WITHIN_S, what="the truncate on B")


def test_create_and_exclusive_create_on_two_mounts(two_mounts):
    a, b = two_mounts
    fd = os.open(f"{a}/excl", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    os.close(fd)
    st = os.stat(f"{a}/excl")
    assert st_mod.S_IMODE(st.st_mode) == 0o640 and st.st_size == 0
    wait_for(lambda: exists(f"{b}/excl"), timeout=SEEN_WITHIN_S, what="the new file on B")
    with pytest.raises(FileExistsError):
        os.open(f"{b}/excl", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    # The name B created is seen by A, which looked it up (absent) before.
    assert not exists(f"{a}/fromb")
    os.close(os.open(f"{b}/fromb", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    wait_for(lambda: exists(f"{a}/fromb"), timeout=SEEN_WITHIN_S, what="B's file on A")


def xattr_of(p, name):
    try:
        return os.getxattr(p, name)
    except OSError:
        return None


def test_extended_attributes_cached_by_a_mount_follow_the_other_mounts_changes(two_mounts):
    # Each mount caches a file's extended attributes (the kernel asks for
    # security.capability before every write); the other mount's setxattr and removexattr
    # must still show at once, and its own at once too.
    a, b = two_mounts
    write(f"{a}/x", b"data")
    wait_for(lambda: exists(f"{b}/x"), timeout=SEEN_WITHIN_S, what="x on B")
    assert xattr_of(f"{b}/x", "user.tag") is None  # B now caches "no user.tag"
    write(f"{b}/x", b"more", "ab")  # a write on B: its security.capability lookup is cached too
    os.setxattr(f"{a}/x", "user.tag", b"one")
    wait_for(lambda: xattr_of(f"{b}/x", "user.tag") == b"one", timeout=SEEN_WITHIN_S,
             what="A's setxattr on B")
    os.setxattr(f"{a}/x", "user.tag", b"two")
    wait_for(lambda: xattr_of(f"{b}/x", "user.tag") == b"two", timeout=SEEN_WITHIN_S,
             what="A's second setxattr on B")
    os.removexattr(f"{a}/x", "user.tag")
    wait_for(lambda: xattr_of(f"{b}/x", "user.tag") is None, timeout=SEEN_WITHIN_S,
             what="A's removexattr on B")
    os.setxattr(f"{b}/x", "user.mine", b"b")  # B's own change is seen by B at once
    assert os.getxattr(f"{b}/x", "user.mine") == b"b"
    assert "user.mine" in os.listxattr(f"{b}/x")
    os.removexattr(f"{b}/x", "user.mine")
    assert xattr_of(f"{b}/x", "user.mine") is None
    assert "user.mine" not in os.listxattr(f"{b}/x")
    os.setxattr(f"{b}/x", "user.mine", b"again")
    wait_for(lambda: xattr_of(f"{a}/x", "user.mine") == b"again", timeout=SEEN_WITHIN_S,
             what="B's setxattr on A")
    assert open(f"{a}/x", "rb").read() == b"datamore"


def dir_view(p):
    s = os.stat(p)
    return (s.st_mtime_ns, s.st_ctime_ns, s.st_nlink, st_mod.S_IMODE(s.st_mode))


def test_a_directorys_attributes_follow_changes_of_both_mounts(two_mounts):
    # A mount answers the kernel's getattr of a directory it just changed from what the
    # MDS returned with the change (no round trip); these checks fail if that copy is
    # stale or outlives another mount's change.
    a, b = two_mounts
    os.mkdir(f"{a}/d", 0o755)
    wait_for(lambda: exists(f"{b}/d"), timeout=SEEN_WITHIN_S, what="the directory on B")
    before = dir_view(f"{a}/d")
    assert dir_view(f"{b}/d") == before
    for i in range(3):
        write(f"{a}/d/f{i}", b"x")
        now = dir_view(f"{a}/d")
        assert now[0] > before[0] and now[1] > before[1], (before, now)  # mtime, ctime moved on A
        assert now[2] == before[2]  # a file adds no link to its directory
        wait_for(lambda: dir_view(f"{b}/d") == now, timeout=SEEN_WITHIN_S, what=f"create {i} in d on B")
        before = now
    os.mkdir(f"{a}/d/sub")
    now = dir_view(f"{a}/d")
    assert now[2] == before[2] + 1 and now[0] > before[0], (before, now)
    wait_for(lambda: dir_view(f"{b}/d") == now, timeout=SEEN_WITHIN_S, what="the subdirectory on B")
    before = now
    os.unlink(f"{a}/d/f0")
    now = dir_view(f"{a}/d")
    assert now[0] > before[0] and now[2] == before[2], (before, now)
    wait_for(lambda: dir_view(f"{b}/d") == now, timeout=SEEN_WITHIN_S, what="the unlink in d on B")
    # Changes made on B reach what A answers, although A holds its own copy.
    before = now
    write(f"{b}/d/from_b", b"y")
    wait_for(lambda: dir_view(f"{a}/d")[0] > before[0], timeout=SEEN_WITHIN_S, what="B's create in d on A")
    assert dir_view(f"{a}/d") == dir_view(f"{b}/d")
    os.chmod(f"{b}/d", 0o700)
    wait_for(lambda: dir_view(f"{a}/d")[3] == 0o700, timeout=SEEN_WITHIN_S, what="B's chmod of d on A")
    # A's own chmod, then a create: the mode stays the new one.
    os.chmod(f"{a}/d", 0o750)
    write(f"{a}/d/f9", b"z")
    assert dir_view(f"{a}/d")[3] == 0o750
    wait_for(lambda: dir_view(f"{b}/d") == dir_view(f"{a}/d"), timeout=SEEN_WITHIN_S, what="the same d on both")
    os.rmdir(f"{a}/d/sub")
    assert dir_view(f"{a}/d")[2] == before[2] - 1
    wait_for(lambda: dir_view(f"{b}/d") == dir_view(f"{a}/d"), timeout=SEEN_WITHIN_S, what="the rmdir on B")
