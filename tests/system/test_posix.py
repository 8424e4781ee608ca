"""POSIX behaviour programs rely on, beyond the guide (issue 15, part 3), on a real mount."""
import os
import signal
import subprocess

import pytest

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


def test_nanosecond_timestamps_and_the_parents_times_move_on_every_change(cluster3):
    m = cluster3.mnt
    os.mkdir(f"{m}/d")
    p = f"{m}/d/f"
    open(p, "w").close()
    os.utime(p, ns=(1_600_000_000_123_456_789, 1_500_000_000_987_654_321))
    st = os.stat(p)
    assert st.st_atime_ns == 1_600_000_000_123_456_789
    assert st.st_mtime_ns == 1_500_000_000_987_654_321

    def dir_times():
        s = os.stat(f"{m}/d")
        return s.st_mtime_ns, s.st_ctime_ns

    for what, op in [("create", lambda: open(f"{m}/d/g", "w").close()),
                     ("rename", lambda: os.rename(f"{m}/d/g", f"{m}/d/h")),
                     ("unlink", lambda: os.unlink(f"{m}/d/h")),
                     ("mkdir", lambda: os.mkdir(f"{m}/d/sub")),
                     ("rmdir", lambda: os.rmdir(f"{m}/d/sub"))]:
        before = dir_times()
        op()
        after = dir_times()
        assert after[0] > before[0] and after[1] > before[1], (what, before, after)
    # ctime on chmod and truncate; mtime on a write (seen once the file is closed).
    for what, op in [("chmod", lambda: os.chmod(p, 0o600)), ("truncate", lambda: os.truncate(p, 10))]:
        before = os.stat(p).st_ctime_ns
        op()
        assert os.stat(p).st_ctime_ns > before, what
    before = os.stat(p).st_mtime_ns
    with open(p, "r+b") as f:
        f.write(b"new")
    assert os.stat(p).st_mtime_ns > before


def test_access_time_follows_relatime_and_never_costs_a_write_per_read(cluster3):
    m = cluster3.mnt
    p = f"{m}/f"
    with open(p, "wb") as f:
        f.write(b"x" * 1000)
    os.utime(p, ns=(1_000_000_000, os.stat(p).st_mtime_ns))  # atime far behind mtime
    with open(p, "rb") as f:
        f.read()
    # Moved at the close. The kernel sends FUSE's release after close() returns, and the MDS
    # answers reads from what is durable, so the new atime shows once the release is done.
    wait_for(lambda: os.stat(p).st_atime_ns > os.stat(p).st_mtime_ns, 10, "atime moved at the close")
    first = os.stat(p).st_atime_ns
    with open(p, "rb") as f:
        f.read()
    assert os.stat(p).st_atime_ns == first  # newer than mtime and under a day old: kept


def as_user(uid, gid, fn):
    """Runs fn in a child process with that uid/gid; returns its errno (0 on success)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fn()
        except OSError as e:
            code = e.errno or 1
        except BaseException:  # noqa: BLE001 - report anything else as a failure
            code = 250
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def mount_for_other_users(cluster):
    """Starts 1 MDS and 3 CS; returns a mount with -o allow_other that other users can reach."""
    cluster.make_mds()
    for _ in range(3):
        cluster.add_cs()
    cluster.wait_cs_active(3)
    m = cluster.mount(extra=("-o", "allow_other"))
    os.chmod(cluster.root, 0o711)  # mkdtemp's 0700 would stop the other user before the mount
    return m


def test_owners_and_permissions_hold_for_other_users_as_on_ext4(cluster):
    import errno
    m = mount_for_other_users(cluster)
    os.chmod(m, 0o777)
    secret = f"{m}/secret"
    with open(secret, "w") as f:
        f.write("root only")
    os.chmod(secret, 0o600)
    os.chown(f"{m}/secret", 0, 0)
    # A file made by user 65534 is theirs.
    assert as_user(65534, 65534, lambda: open(f"{m}/mine", "w").write("hi")) == 0
    st = os.stat(f"{m}/mine")
    assert (st.st_uid, st.st_gid) == (65534, 65534)
    # Root changes owners, and they are kept.
    os.chown(f"{m}/mine", 1234, 5678)
    st = os.stat(f"{m}/mine")
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(f"{m}/mine", 65534, 65534)
    # Another user: EACCES on a 0600 file of root's, EPERM for chown and for chmod of it.
    assert as_user(65534, 65534, lambda: open(secret).read()) == errno.EACCES
    assert as_user(65534, 65534, lambda: os.chown(f"{m}/mine", 0, 0)) == errno.EPERM
    assert as_user(65534, 65534, lambda: os.chmod(secret, 0o666)) == errno.EPERM
    assert as_user(65534, 65534, lambda: os.chmod(f"{m}/mine", 0o640)) == 0
    assert os.stat(f"{m}/mine").st_mode & 0o777 == 0o640
    assert open(secret).read() == "root only"


def getfacl(*args):
    return subprocess.run(["getfacl", "-cpn", *args], check=True, capture_output=True, text=True).stdout.split()


def setfacl(*args):
    subprocess.run(["setfacl", *args], check=True, capture_output=True, text=True)


def test_posix_acls_grant_deny_follow_chmod_and_are_inherited_across_mounts(cluster):
    """setfacl/getfacl as on ext4: the kernel enforces the ACL, the MDS keeps it with the mode."""
    import errno
    m = mount_for_other_users(cluster)
    m2 = cluster.mount(name="mnt2", extra=("-o", "allow_other"))
    os.chmod(m, 0o755)
    f = f"{m}/f"
    with open(f, "w") as out:
        out.write("for 65534 only")
    os.chmod(f, 0o600)

    def read(path):
        return lambda: open(path).read()
    assert as_user(65534, 65534, read(f)) == errno.EACCES
    # A named user is let in; anyone else is not; the group bits show the mask.
    setfacl("-m", "u:65534:r", f)
    assert "user:65534:r--" in getfacl(f) and "mask::r--" in getfacl(f)
    assert os.stat(f).st_mode & 0o777 == 0o640
    assert "system.posix_acl_access" in os.listxattr(f)
    assert as_user(65534, 65534, read(f)) == 0
    assert as_user(65533, 65533, read(f)) == errno.EACCES
    assert as_user(65534, 65534, lambda: open(f, "a")) == errno.EACCES  # r only
    # chmod narrows the mask: the entry stays but grants nothing until the mask is back.
    os.chmod(f, 0o600)
    assert "user:65534:r--" in getfacl(f) and "mask::---" in getfacl(f)
    assert as_user(65534, 65534, read(f)) == errno.EACCES
    os.chmod(f, 0o640)
    assert as_user(65534, 65534, read(f)) == 0
    # The other mount sees it, and a change made here reaches its kernel's ACL cache.
    assert as_user(65534, 65534, read(f"{m2}/f")) == 0
    setfacl("-x", "u:65534", f)
    wait_for(lambda: as_user(65534, 65534, read(f"{m2}/f")) == errno.EACCES, 10, "the other mount to refuse")
    setfacl("-m", "u:65534:rw", f)
    wait_for(lambda: as_user(65534, 65534, read(f"{m2}/f")) == 0, 10, "the other mount to allow")
    # Only the owner sets an ACL; setfacl -b leaves the mode alone.
    assert as_user(65534, 65534, lambda: os.setxattr(f, "system.posix_acl_access",
                                                      os.getxattr(f, "system.posix_acl_access"))) == errno.EPERM
    setfacl("-b", f)
    assert "system.posix_acl_access" not in os.listxattr(f)
    assert os.stat(f).st_mode & 0o777 == 0o600
    assert as_user(65534, 65534, read(f)) == errno.EACCES

    # A default ACL: new nodes take it (the umask does not apply), subdirectories hand it on.
    d = f"{m}/d"
    os.mkdir(d, 0o755)
    setfacl("-m", "u:65534:rwx", "-d", "-m", "u:65534:rwx", d)
    old = os.umask(0o077)
    try:
        with open(f"{d}/g", "w") as out:
            out.write("shared")
        os.mkdir(f"{d}/sub")
        with open(f"{m}/h", "w") as out:  # no default ACL here: the umask applies
            out.write("private")
    finally:
        os.umask(old)
    assert os.stat(f"{m}/h").st_mode & 0o777 == 0o600
    assert os.stat(f"{d}/g").st_mode & 0o777 == 0o664
    assert "user:65534:rwx" in getfacl(f"{d}/g") and "mask::rw-" in getfacl(f"{d}/g")
    assert "default:user:65534:rwx" in getfacl(f"{d}/sub")
    assert as_user(65534, 65534, lambda: open(f"{d}/g", "a").write("+")) == 0
    assert as_user(65534, 65534, lambda: open(f"{d}/sub/theirs", "w").write("x")) == 0
    assert "user:65534:rwx" in getfacl(f"{d}/sub/theirs")
    with pytest.raises(subprocess.CalledProcessError):  # a default ACL needs a directory
        setfacl("-d", "-m", "u:65534:r", f"{d}/g")
    # They are metadata like any other: kept across an MDS restart.
    cluster.kill("mds")
    cluster.restart("mds")
    cluster.wait_mds()
    drop_caches()
    assert "default:user:65534:rwx" in getfacl(d)
    assert open(f"{d}/g").read() == "shared+"


def test_extended_attributes_in_user_trusted_and_security_namespaces_as_on_ext4(cluster3):
    import errno
    m = cluster3.mnt
    p = f"{m}/f"
    open(p, "w").close()
    os.setxattr(p, "user.comment", b"hello")
    os.setxattr(p, "trusted.x", b"\x00\x01binary")
    os.setxattr(p, "security.selinux", b"system_u:object_r:tmp_t:s0\x00")
    assert os.getxattr(p, "user.comment") == b"hello"
    assert os.getxattr(p, "trusted.x") == b"\x00\x01binary"
    names = set(os.listxattr(p))
    assert {"user.comment", "trusted.x", "security.selinux", "vstorage.replicas"} <= names, names
    # Flags, missing names, limits, and the namespaces not kept.
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.comment", b"again", os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.nope", b"v", os.XATTR_REPLACE)
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.getxattr(p, "user.nope")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.removexattr(p, "user.nope")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user." + "n" * 251, b"v")
    assert e.value.errno == errno.ERANGE
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.big", b"v" * 65537)
    assert e.value.errno == errno.E2BIG
    with pytest.raises(OSError) as e:
        os.setxattr(p, "system.nope", b"v")
    assert e.value.errno == errno.EOPNOTSUPP
    os.setxattr(p, "user.comment", b"replaced", os.XATTR_REPLACE)
    os.removexattr(p, "user.comment")
    assert "user.comment" not in os.listxattr(p)
    # They stay across an MDS restart, and the vstorage.* attributes keep working.
    cluster3.kill("mds")
    cluster3.restart("mds")
    cluster3.wait_mds()
    assert os.getxattr(p, "security.selinux") == b"system_u:object_r:tmp_t:s0\x00"
    assert os.getxattr(m, "vstorage.replicas")


def test_fifos_sockets_and_device_nodes(cluster3):
    import socket
    import stat
    import threading
    m = cluster3.mnt
    os.mkfifo(f"{m}/fifo", 0o640)
    assert stat.S_ISFIFO(os.stat(f"{m}/fifo").st_mode)
    got = []
    t = threading.Thread(target=lambda: got.append(open(f"{m}/fifo", "rb").read()))
    t.start()
    with open(f"{m}/fifo", "wb") as w:
        w.write(b"through the pipe")
    t.join(timeout=20)
    assert got == [b"through the pipe"]
    os.mknod(f"{m}/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.stat(f"{m}/null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    # (Opening it needs a mount with -o dev: FUSE mounts are nodev by default, like most.)
    os.mknod(f"{m}/blk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    assert stat.S_ISBLK(os.stat(f"{m}/blk").st_mode)
    s = socket.socket(socket.AF_UNIX)
    s.bind(f"{m}/sock")
    assert stat.S_ISSOCK(os.stat(f"{m}/sock").st_mode)
    s.close()
    for n in ("fifo", "null", "blk", "sock"):
        os.unlink(f"{m}/{n}")
    assert os.listdir(m) == []


def test_hard_links(cluster3):
    import errno
    m = cluster3.mnt
    os.mkdir(f"{m}/a")
    os.mkdir(f"{m}/b")
    data = os.urandom(100_000)
    with open(f"{m}/a/f", "wb") as f:
        f.write(data)
    os.link(f"{m}/a/f", f"{m}/b/g")
    os.link(f"{m}/b/g", f"{m}/a/h")
    st = os.stat(f"{m}/a/f")
    assert st.st_nlink == 3 and os.stat(f"{m}/b/g").st_ino == st.st_ino
    with open(f"{m}/b/g", "ab") as f:  # a write through one name is seen through the others
        f.write(b"tail")
    assert open(f"{m}/a/h", "rb").read() == data + b"tail"
    os.unlink(f"{m}/a/f")
    assert os.stat(f"{m}/b/g").st_nlink == 2
    # Rename over a link drops that name only.
    with open(f"{m}/new", "wb") as f:
        f.write(b"other")
    os.rename(f"{m}/new", f"{m}/a/h")
    assert open(f"{m}/a/h", "rb").read() == b"other"
    assert os.stat(f"{m}/b/g").st_nlink == 1
    drop_caches()
    assert open(f"{m}/b/g", "rb").read() == data + b"tail"
    with pytest.raises(OSError) as e:
        os.link(f"{m}/a", f"{m}/dirlink")
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:
        os.link(f"{m}/b/g", f"{m}/a/h")
    assert e.value.errno == errno.EEXIST
    # The last name: the data goes.
    os.unlink(f"{m}/b/g")
    os.unlink(f"{m}/a/h")
    wait_for(lambda: all_chunk_files(cluster3) == 0, timeout=30, what="chunks of the unlinked files to go")
