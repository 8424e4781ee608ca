"""Encryption on the wire (issue 13 item 5, docs/design/rpc.md "Encryption"): a packet
capture of the loopback (tshark) while a file is written and read through a mount shows
none of its bytes and not its name; after `set-config gen.encryption=0` (and new
connections: a fresh mount, restarted CS) the same capture does show the data, so the check
can see plaintext when it is there."""
import os
import signal
import socket
import subprocess

from conftest import MiB, drop_caches, wait_for


def seen_probe(p, log):
    """Knocks at a closed port (a SYN and a RST on lo) and says whether tshark printed it."""
    assert p.poll() is None, f"tshark exited: {open(log.name).read()}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a port nobody listens on
        port = s.getsockname()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            pass
    text = open(log.name).read()
    return f"→ {port} [SYN]" in text or f"-> {port} [SYN]" in text


def capture(cluster, name, work):
    """Runs work() while tshark records every TCP packet on lo; returns the capture's bytes."""
    pcap = os.path.join(cluster.root, name + ".pcap")
    log = open(os.path.join(cluster.root, name + ".tshark.log"), "w+")
    # -P -l: a line per packet as it is captured, so the test knows when capturing has begun.
    p = subprocess.Popen(["tshark", "-i", "lo", "-B", "256", "-f", "tcp", "-w", pcap, "-P", "-l"],
                         stdout=log, stderr=log)
    try:
        wait_for(lambda: seen_probe(p, log), timeout=30, what="tshark capturing (a probe packet seen)")
        work()
        wait_for(lambda: seen_probe(p, log), timeout=30, what="tshark caught up (a later probe seen)")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    return open(pcap, "rb").read()


def write_and_read(m, fname, marker):
    data = (marker * (4 * MiB // len(marker) + 1))[:4 * MiB]
    with open(os.path.join(m, fname), "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    drop_caches()
    with open(os.path.join(m, fname), "rb") as f:
        assert f.read() == data


def test_a_capture_shows_no_file_data_or_names_unless_encryption_is_off(cluster):
    ids, m, h = cluster.start(3, replicas=3, chunk_size="1M")
    assert "gen.encryption" in h.vstorage("get-config").stdout

    secret = b"SECRET-FILE-BYTES-7f3a9c1e-"
    seen = capture(cluster, "encrypted", lambda: write_and_read(m, "name-7f3a9c1e", secret))
    # 4 MiB went down a chain of 3 replicas and came back: the capture holds all of it.
    assert len(seen) > 16 * MiB, f"the capture is only {len(seen)} bytes"
    assert secret not in seen, "file data crossed the network in plaintext"
    assert b"name-7f3a9c1e" not in seen, "a file name crossed the network in plaintext"

    h.vstorage("set-config", "gen.encryption=0")
    # New connections from now on: a fresh mount, and chunk servers started again.
    cluster.umount(m)
    for i in ids:
        cluster.restart(f"cs{i}")
    cluster.wait_cs_active(3)
    m = cluster.mount()
    plain = b"PLAIN-FILE-BYTES-5d2b8e04-"

    def work():
        # The CS learn gen.encryption=0 when they register; wait until writes go through.
        wait_for(lambda: cluster.stat_json()["status"] == "healthy", timeout=60, what="cluster healthy")
        write_and_read(m, "name-5d2b8e04", plain)
    seen = capture(cluster, "plaintext", work)
    assert plain in seen, "with gen.encryption=0 the capture should see the data"
    # The mount's link to the MDS was dialled before the MDS told it gen.encryption=0: it
    # stays encrypted (open connections keep what they began with), so names still do not show.
    assert b"name-5d2b8e04" not in seen
