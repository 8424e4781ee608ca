"""vstorage-hwflush-check (guide 7.1) against the power-cut file system: a device that keeps
what it flushed passes, one whose flushes are lies (powercut 'flush lie') is caught."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BIN, free_port_pair, wait_for
from test_powercut_fs import pcfs  # noqa: F401  (the fixture)

TOOL = os.path.join(BIN, "vstorage-hwflush-check")


@pytest.fixture
def server(tmp_path):
    port = free_port_pair()
    log = open(tmp_path / "server.log", "w+")
    p = subprocess.Popen([TOOL, "-l", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: "listening" in open(log.name).read() or p.poll() is not None, what="hwflush server")
    assert p.poll() is None, open(log.name).read()
    yield port, log.name
    p.kill()
    p.wait()


def run_until_cut(pcfs, port, threads):
    """The client writes until the power goes (the cut), then dies with its machine."""
    c = subprocess.Popen([TOOL, "-s", f"127.0.0.1:{port}", "-d", pcfs.path("test"), "-t", str(threads), "-n", "64",
                          "-i", "dev1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    files = [pcfs.path(f"test/hwflush.dev1.{t}") for t in range(threads)]
    # Several rounds of the 64-block ring of every thread written and reported.
    wait_for(lambda: all(os.path.exists(f) and os.path.getsize(f) >= 64 * 4096 for f in files)
             and time.sleep(0.5) is None, timeout=60, what="every thread writing")
    pcfs.cut()
    c.send_signal(signal.SIGKILL)
    c.wait(timeout=30)


def check(pcfs, port, threads):
    r = subprocess.run([TOOL, "-s", f"127.0.0.1:{port}", "-d", pcfs.path("test"), "-t", str(threads), "-n", "64",
                        "-i", "dev1", "-c", "1"], capture_output=True, text=True, timeout=60)
    lines = dict(re.findall(r"^id(\d+):(\d+ -> \d+)$", r.stdout, re.M))
    assert len(lines) == threads, r.stdout + r.stderr
    return r, {int(t): tuple(int(x) for x in v.split(" -> ")) for t, v in lines.items()}


def test_a_device_that_keeps_its_flushes_passes(pcfs, server):
    port, _ = server
    run_until_cut(pcfs, port, 4)
    r, counters = check(pcfs, port, 4)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok:" in r.stdout
    for t, (disk, srv) in counters.items():
        assert srv > 64, f"id{t}: the server heard of only {srv} flushed blocks"
        assert disk >= srv, f"id{t}: {disk} on disk, {srv} on the server"


def test_a_device_that_lies_about_flushes_is_caught(pcfs, server):
    port, server_log = server
    pcfs.control("flush lie")  # a volatile cache that acknowledges flushes it never does
    run_until_cut(pcfs, port, 2)
    pcfs.control("flush ok")
    r, counters = check(pcfs, port, 2)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED" in r.stdout and "do not use this device" in r.stdout
    assert all(disk < srv for disk, srv in counters.values()), counters
    assert "ERROR: the device lost data it had flushed" in open(server_log).read()


def test_bad_usage_and_no_server_are_explained(tmp_path):
    r = subprocess.run([TOOL, "-s", "127.0.0.1:1", "-d", str(tmp_path / "d")], capture_output=True, text=True)
    assert r.returncode == 2 and "is 'vstorage-hwflush-check -l' running there?" in r.stderr, r.stderr
    r = subprocess.run([TOOL, "-s", "x", "-d", str(tmp_path), "-t", "201"], capture_output=True, text=True)
    assert r.returncode == 2 and "-t 201: want a number from 1 to 200" in r.stderr, r.stderr
    r = subprocess.run([TOOL], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr
