#!/usr/bin/python3
"""Loopback ceiling for a 3-copy write: the client's bytes go through a chain of --hops TCP
connections on 127.0.0.1 (sender -> relay -> relay -> sink for 3 hops, one process each, as
client -> CS1 -> CS2 -> CS3), --streams chains in parallel (one per fio job). Each relay
copies what it receives to the next hop in 1 MiB pieces. Prints one line of JSON:
client MiB/s = streams * bytes / wall time (first byte sent .. last sink saw EOF), and the
MiB/s through all sockets (hops times that).

  loopback_ceiling.py --bytes 2147483648 [--streams 1] [--hops 3]
"""
import argparse
import json
import os
import socket
import sys
import time

PIECE = 1 << 20


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def relay(ls, nxt_port):  # nxt_port None: sink
    c, _ = ls.accept()
    ls.close()
    out = None
    if nxt_port is not None:
        out = socket.create_connection(("127.0.0.1", nxt_port))
    buf = bytearray(PIECE)
    mv = memoryview(buf)
    while True:
        n = c.recv_into(mv)
        if not n:
            break
        if out is not None:
            out.sendall(mv[:n])
    if out is not None:
        out.shutdown(socket.SHUT_WR)
        out.recv(1)  # wait for the downstream close: the sink has everything
        out.close()
    c.close()


def sender(port, total):
    s = socket.create_connection(("127.0.0.1", port))
    data = memoryview(os.urandom(PIECE))
    left = total
    while left > 0:
        n = min(left, PIECE)
        s.sendall(data[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()


def fork(fn, *args):
    pid = os.fork()
    if pid == 0:
        try:
            fn(*args)
            os._exit(0)
        except BaseException as e:  # noqa: BLE001
            print("loopback_ceiling: %r" % e, file=sys.stderr)
            os._exit(1)
    return pid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, required=True, help="bytes per stream")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--hops", type=int, default=3)
    a = ap.parse_args()
    kids = []
    firsts = []
    for _ in range(a.streams):
        ports = []
        socks = [listener() for _ in range(a.hops)]
        ports = [s.getsockname()[1] for s in socks]
        for i, ls in enumerate(socks):
            kids.append(fork(relay, ls, ports[i + 1] if i + 1 < a.hops else None))
            ls.close()
        firsts.append(ports[0])
    time.sleep(0.2)  # every relay is in accept()
    t0 = time.monotonic()
    for p in firsts:
        kids.append(fork(sender, p, a.bytes))
    bad = 0
    for k in kids:
        _, st = os.waitpid(k, 0)
        bad |= st
    dt = time.monotonic() - t0
    if bad:
        sys.exit("loopback_ceiling: a child failed")
    client = a.streams * a.bytes / dt / 1048576.0
    print(json.dumps({"client_MiBps": client, "socket_MiBps": client * a.hops, "seconds": dt}))


if __name__ == "__main__":
    main()
