"""System-test harness: real daemons on loopback in temp dirs, one config root per simulated host.

Every daemon is a real process (vstorage-mdsd, vstorage-csd, vstorage-mount); kill() sends
SIGKILL for real. Nothing here touches /etc/vstorage.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("VSTORAGE_BUILD", os.path.join(TOP, "build")), "bin")
PASSWORD = "test-password"


def free_port_pair():
    """A base port P with P and P+1 both free (the MDS uses both, as in the guide)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p > 65000:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def wait_for(pred, timeout=20.0, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


MiB = 1024 * 1024


# ---- helpers the system tests (and bench/fault_campaign.py) share ----
def file_info(cluster, path):
    """`vstorage file-info --json` of a path on a mount."""
    import json
    return json.loads(cluster.host("mds").vstorage("file-info", "--json", path).stdout)


def chunk_files(repo):
    """Names of the chunk files in a CS repository."""
    d = os.path.join(repo, "chunks")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def cs_entry(cluster, cs_id):
    """The `stat --json` entry of one CS."""
    return next(c for c in cluster.stat_json()["cs"] if c["id"] == cs_id)


def write_file(path, data):
    """Writes a whole file and fsyncs it."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def sha(b):
    import hashlib
    return hashlib.sha256(b).hexdigest()


def drop_caches():
    """So that reads go to the chunk servers, not the page cache."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


class Host:
    """A simulated host: its own config root (host_id, cluster key, bs.list)."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.conf = os.path.join(cluster.root, "hosts", name)
        os.makedirs(self.conf, exist_ok=True)

    def env(self):
        e = dict(os.environ)
        e["VSTORAGE_CONF_DIR"] = self.conf
        return e

    def vstorage(self, *args, input=None, check=True, timeout=60):
        cmd = [os.path.join(BIN, "vstorage"), "-c", self.cluster.name, *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, env=self.env(),
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def copy_bs_list_from(self, other):
        d = os.path.join(self.conf, "clusters", self.cluster.name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(other.conf, "clusters", self.cluster.name, "bs.list"), d)

    def auth_node(self, password=PASSWORD, check=True):
        return self.vstorage("auth-node", input=password + "\n", check=check)


class Cluster:
    def __init__(self, root, name="test1"):
        self.root = root
        self.name = name
        self.procs = {}   # key -> (Popen, argv, host)
        self.mounts = []
        self.hosts = {}
        self.mds_port = None
        self.cs_repos = {}  # cs id -> (repo, host)
        self.tmpfs = []     # repositories on their own small tmpfs (out-of-space tests)
        self.disks = []     # loop-mounted ext4 file systems (can be frozen: hung-disk tests)
        # Power-cut tests: when set, each server's repository lies on its own power-cut file
        # system (tests/powercut), and cut() drops everything that server had not synced.
        self.powercut = False
        self.pc = {}        # process key -> (mount point, Popen of the file system)
        self.cs_env = {}    # extra environment of every CS daemon (fault injection)

    # ---- processes ----
    def _spawn(self, key, argv, host):
        log = open(os.path.join(self.root, key + ".log"), "ab")
        env = host.env()
        if self.powercut:
            # Each server is its own machine: cut() gives it a new boot id (cs/intent_log.h).
            boot = os.path.join(self.root, f"boot-{key}")
            if not os.path.exists(boot):
                with open(boot, "w") as f:
                    f.write(str(uuid.uuid4()) + "\n")
            env["VSTORAGE_BOOT_ID_FILE"] = boot
        if key.startswith("cs"):
            env.update(self.cs_env)
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[key] = (p, argv, host)
        return p

    def kill(self, key, sig=signal.SIGKILL):
        p, _, _ = self.procs[key]
        if p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=30)

    def restart(self, key):
        p, argv, host = self.procs[key]
        if p.poll() is None:
            self.kill(key)
        return self._spawn(key, argv, host)

    def _pc_mount(self, name):
        """A fresh power-cut file system for one server; returns its mount point."""
        backing = os.path.join(self.root, "pc-backing", name)
        mnt = os.path.join(self.root, "pc", name)
        os.makedirs(backing)
        os.makedirs(mnt)
        log = open(os.path.join(self.root, f"pc-{name}.log"), "ab")
        p = subprocess.Popen([os.path.join(BIN, "vstorage-powercut-fs"), backing, mnt],
                             stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.ismount(mnt) or p.poll() is not None, what=f"power-cut fs {mnt}")
        assert p.poll() is None, f"vstorage-powercut-fs exited: see {log.name}"
        return mnt, p

    def cut(self, *keys, opts="", wait_dirty=None):
        """A power cut of these servers at one instant: their file systems drop everything
        not yet durable and refuse all I/O; then each process dies (SIGKILL) and power comes
        back. wait_dirty=S: the first server's cut waits up to S seconds for a moment it has
        unsynced writes and happens right at it (the file system's wait_ms; else
        BlockingIOError and nothing happens). Returns the file systems' reports (what each
        cut dropped)."""
        out = {}
        for n, key in enumerate(keys):
            ctl = os.path.join(self.pc[key][0], ".powercut")
            wait = f" wait_ms={int(wait_dirty * 1000)}" if wait_dirty is not None and n == 0 else ""
            with open(ctl, "w") as f:
                f.write(("cut " + opts + wait).strip() + "\n")
        for key in keys:
            self.kill(key)
            with open(os.path.join(self.root, f"boot-{key}"), "w") as f:
                f.write(str(uuid.uuid4()) + "\n")
        for key in keys:
            ctl = os.path.join(self.pc[key][0], ".powercut")
            out[key] = open(ctl).read().strip()
            with open(ctl, "w") as f:
                f.write("on\n")
        return out

    def host(self, name):
        if name not in self.hosts:
            self.hosts[name] = Host(self, name)
        return self.hosts[name]

    # ---- services ----
    def make_mds(self):
        h = self.host("mds")
        self.mds_port = free_port_pair()
        repo = os.path.join(self.root, "mds")
        if self.powercut:
            self.pc["mds"] = self._pc_mount("mds")
            repo = os.path.join(self.pc["mds"][0], "mds")
        h.vstorage("make-mds", "-I", "-a", f"127.0.0.1:{self.mds_port}", "-r", repo, "-p",
                   input=PASSWORD + "\n")
        self._spawn("mds", [os.path.join(BIN, "vstorage-mdsd"), "-r", repo], h)
        self.wait_mds()
        return h

    def wait_mds(self):
        def up():
            with socket.create_connection(("127.0.0.1", self.mds_port + 1), timeout=0.5):
                return True
        wait_for(up, what="MDS port")

    def add_cs(self, host_name=None, tier=None, size_mb=None, extra=(), disk_mb=None):
        n = len(self.cs_repos) + 1
        h = self.host(host_name or f"cs{n}")
        if not os.path.exists(os.path.join(h.conf, "clusters", self.name, "cluster.key")):
            h.copy_bs_list_from(self.host("mds"))
            h.auth_node()
        repo = os.path.join(self.root, f"cs{n}")
        if size_mb:
            os.makedirs(repo)
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", repo], check=True)
            self.tmpfs.append(repo)
        if disk_mb:
            # A real block device and file system: fsfreeze makes its I/O hang like a dead disk.
            disk = os.path.join(self.root, f"disk{n}")
            img = disk + ".img"
            os.makedirs(disk)
            subprocess.run(["truncate", "-s", f"{disk_mb}M", img], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
            r = subprocess.run(["mount", "-o", "loop", img, disk], capture_output=True, text=True)
            if r.returncode != 0:
                # An environment without loop devices cannot host this test at all.
                pytest.skip(f"cannot loop-mount an ext4 image here: {r.stderr.strip()}")
            self.disks.append(disk)
            repo = os.path.join(disk, "cs")
        pc = None
        if self.powercut:
            pc = self._pc_mount(f"cs{n}")
            repo = os.path.join(pc[0], "cs")
        args = ["make-cs", "-r", repo]
        if tier is not None:
            args += ["-t", str(tier)]
        h.vstorage(*args, *extra)
        conf = dict(l.split("=", 1) for l in open(os.path.join(repo, "cs.conf")).read().split("\n") if "=" in l)
        cs_id = int(conf["id"])
        self.cs_repos[cs_id] = (repo, h)
        if pc:
            self.pc[f"cs{cs_id}"] = pc
        self._spawn(f"cs{cs_id}", [os.path.join(BIN, "vstorage-csd"), "-r", repo], h)
        return cs_id

    def start(self, n_cs, replicas=3, chunk_size="4M", **cs_kwargs):
        """1 MDS and n_cs CS (each on its own host), mounted; replicas and chunk size set
        on the root. Returns (CS ids, mount point, the MDS host)."""
        self.make_mds()
        ids = [self.add_cs(**cs_kwargs) for _ in range(n_cs)]
        self.wait_cs_active(n_cs)
        m = self.mount()
        h = self.host("mds")
        h.vstorage("set-attr", "-R", m, f"replicas={replicas}")
        h.vstorage("set-attr", m, f"chunk-size={chunk_size}")
        return ids, m, h

    def stat_json(self):
        import json
        r = self.host("mds").vstorage("stat", "--json")
        return json.loads(r.stdout)

    def wait_cs_active(self, count):
        def ok():
            s = self.stat_json()
            return sum(1 for c in s["cs"] if c["status"] == "active") >= count
        wait_for(ok, what=f"{count} active CS")

    def mount(self, host_name="mds", name="mnt", extra=()):
        h = self.host(host_name)
        mnt = os.path.join(self.root, name)
        os.makedirs(mnt, exist_ok=True)
        r = subprocess.run([os.path.join(BIN, "vstorage-mount"), "-c", self.name, "-l",
                            os.path.join(self.root, name + ".log"), *extra, mnt],
                           capture_output=True, text=True, env=h.env(), timeout=60)
        assert r.returncode == 0, f"mount failed: {r.stdout}{r.stderr}"
        assert os.path.ismount(mnt)
        self.mounts.append(mnt)
        return mnt

    def umount(self, mnt):
        subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        if mnt in self.mounts:
            self.mounts.remove(mnt)

    def mount_pids(self):
        # Only this cluster's mounts (its log lies under its root): other runs may mount too.
        r = subprocess.run(["pgrep", "-f", f"vstorage-mount -c {self.name} -l {self.root}/"],
                           capture_output=True, text=True)
        return [int(x) for x in r.stdout.split()]

    def freeze(self, disk, frozen=True):
        subprocess.run(["fsfreeze", "-f" if frozen else "-u", disk], check=True)

    def shutdown(self):
        # Thaw first: a process blocked on a frozen file system cannot even be killed.
        for d in self.disks:
            subprocess.run(["fsfreeze", "-u", d], capture_output=True)
        for m in list(self.mounts):
            self.umount(m)
        for key in list(self.procs):
            p = self.procs[key][0]
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
        for pid in self.mount_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for d in self.tmpfs + self.disks:
            subprocess.run(["umount", "-l", d], capture_output=True)
        for mnt, p in self.pc.values():
            subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", mnt], capture_output=True)
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


@pytest.fixture
def cluster():
    root = tempfile.mkdtemp(prefix="vstest-")
    c = Cluster(root)
    try:
        yield c
    finally:
        c.shutdown()
        if os.environ.get("VSTORAGE_KEEP_TEST_DIRS"):
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster3(cluster):
    """1 MDS and 3 CS on three simulated hosts, mounted on the MDS host."""
    cluster.make_mds()
    for _ in range(3):
        cluster.add_cs()
    cluster.wait_cs_active(3)
    cluster.mnt = cluster.mount()
    return cluster
