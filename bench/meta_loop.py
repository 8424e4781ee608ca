#!/usr/bin/python3
"""The metadata loop of issue 10 on one directory of any file system.

    /usr/bin/python3 bench/meta_loop.py DIR [--files 10000] [--threads 1]

Makes DIR/run-<threads>/ and, with THREADS threads over disjoint name sets (FILES in all),
runs three phases one after the other, each timed from a barrier to the last thread's end:
  create  os.open(name, O_CREAT|O_EXCL|O_WRONLY) + os.close
  stat    os.stat(name)
  unlink  os.unlink(name)
Prints one line per phase: "<phase> <ops/s>". Python's threads drop the GIL inside each
system call, so THREADS calls can be in flight in the file system at once.
"""
import argparse
import os
import sys
import threading
import time


def run_phase(names_per_thread, op):
    barrier = threading.Barrier(len(names_per_thread) + 1)
    errors = []

    def work(names):
        barrier.wait()
        try:
            for n in names:
                op(n)
        except OSError as e:  # reported after the phase; the phase's figure is void
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in names_per_thread]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        sys.exit(f"meta_loop: {errors[0]}")
    return sum(len(n) for n in names_per_thread) / elapsed


def create(path):
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    d = os.path.join(a.dir, f"run-{a.threads}")
    os.mkdir(d)
    names = [[os.path.join(d, f"t{t}_{i}") for i in range(t, a.files, a.threads)] for t in range(a.threads)]
    for phase, op in (("create", create), ("stat", os.stat), ("unlink", os.unlink)):
        print(f"{phase} {run_phase(names, op):.0f}", flush=True)
    os.rmdir(d)


if __name__ == "__main__":
    main()
