"""`vstorage top` (guide chapter 5) on a real cluster, driven through a real terminal: a
detached tmux session of 80x24 runs it; keys go in with send-keys and the screen comes back
with capture-pane. Every wait is bounded."""
import os
import re
import subprocess
import uuid

from conftest import BIN, wait_for

COLS, ROWS = 80, 24


class Tmux:
    """A private tmux server (its own socket): nothing here touches anyone else's sessions."""

    def __init__(self, env):
        self.sock = f"vstest-top-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args, check=True):
        # -f /dev/null: no user configuration changes the terminal tmux gives top.
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args], env=self.env,
                              check=check, capture_output=True, text=True, timeout=30)

    def start(self, shell_cmd):
        self.run("new-session", "-d", "-x", str(COLS), "-y", str(ROWS), "-s", "top",
                 "sh", "-c", shell_cmd)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "top").stdout

    def lines(self):
        return self.screen().split("\n")

    def keys(self, *keys):
        self.run("send-keys", "-t", "top", *keys)

    def wait(self, pred, what, timeout=20.0):
        def check():
            s = self.screen()
            return s if pred(s) else None
        return wait_for(check, timeout=timeout, what=f"{what}; screen:\n{self.screen()}")

    def wait_text(self, text, timeout=20.0):
        return self.wait(lambda s: text in s, f"'{text}' on the screen", timeout)

    def kill(self):
        self.run("kill-server", check=False)


def cs_row(screen, cs_id):
    for line in screen.split("\n"):
        if re.match(rf"\s*{cs_id}\s", line):
            return line
    return None


def cs_header(screen):
    return next((l for l in screen.split("\n") if l.startswith("CSID")), "")


def test_top_is_interactive_and_refreshes(cluster):
    h = cluster.make_mds()
    ids = [cluster.add_cs() for _ in range(3)]
    cluster.wait_cs_active(3)
    env = h.env()
    env["TERM"] = "xterm"  # the client's; inside tmux top sees tmux's own (screen)
    t = Tmux(env)
    top = os.path.abspath(os.path.join(BIN, "vstorage"))
    # The shell records the terminal modes before top and compares them after it.
    t.start(f"S0=$(stty -g); {top} -c {cluster.name} top -d 1; echo TOP-EXIT=$?; "
            f"if [ \"$(stty -g)\" = \"$S0\" ]; then echo TTY-RESTORED; else echo TTY-CHANGED; fi; "
            f"sleep 600")
    try:
        s = t.wait(lambda s: "CSID" in s and all(cs_row(s, i) and "active" in cs_row(s, i)
                                                 for i in ids),
                   "the CS table with 3 active CS")
        lines = s.split("\n")
        assert re.match(r"connected to MDS#\d+$", lines[0]), lines[0]
        assert lines[1] == f"Cluster '{cluster.name}': healthy", lines[1]
        assert "CS nodes: 3 of 3 (3 avail, 0 inactive, 0 offline)" in s
        assert "MDSID" in s and "CLID" in s
        # The guide's default layout: no Chunks line, no FLAGS column; the key hints below.
        assert "Chunks:" not in s
        assert "FLAGS" not in cs_header(s)
        assert "q quit" in lines[ROWS - 1], lines[ROWS - 1]

        # v: verbose lines; v again: gone.
        t.keys("v")
        s = t.wait_text("Chunks:")
        assert "tier 0:" in s and "FS: " in s and "IO QDEPTH:" in s
        t.keys("v")
        t.wait(lambda s: "Chunks:" not in s and "CSID" in s, "verbose off")

        # i: cycles the CS columns.
        t.keys("i")
        t.wait(lambda s: "FLAGS" in cs_header(s), "the FLAGS column")
        t.keys("i")
        s = t.wait(lambda s: "JRMW" in cs_header(s), "the RMW/JRMW columns")
        assert "n/a" in cs_row(s, ids[0])
        t.keys("i")
        t.wait(lambda s: "BUILD_VERSION" in cs_header(s), "the BUILD_VERSION column")
        t.keys("i")
        t.wait(lambda s: "UNIQUE" in cs_header(s) and "BUILD_VERSION" not in cs_header(s),
               "the default CS columns")

        # w: topology; w again: back.
        t.keys("w")
        s = t.wait_text("Services topology (host_ID.cs_ID) and space per location:")
        assert "LOCATION" in s and "CSID" not in s
        assert sum(1 for l in s.split("\n") if " 1 CS " in l) == 3, s  # three hosts, one CS each
        t.keys("w")
        t.wait_text("CSID")
        # d: disks table.
        t.keys("d")
        s = t.wait_text("DISK  SMART  TEMP  CAPACITY  SERIAL  MODEL  HOST")
        assert "CSID" not in s
        t.keys("d")
        t.wait_text("CSID")
        # h: help; unknown keys change nothing.
        t.keys("h")
        t.wait_text("vstorage top keys:")
        t.keys("h")
        t.wait_text("CSID")
        t.keys("x", "Z", "%")
        s = t.wait_text("CSID")
        assert "Chunks:" not in s and "FLAGS" not in cs_header(s)

        # A CS dies: the refreshed screen shows it.
        victim = ids[1]
        cluster.kill(f"cs{victim}")
        s = t.wait(lambda s: cs_row(s, victim) and re.search(r"\b(inactive|offline)\b",
                                                             cs_row(s, victim)),
                   f"CS {victim} inactive or offline", timeout=60)
        assert "CS nodes: 2 of 3" in s

        # The MDS goes away: an error in the status line, top keeps running and retrying.
        cluster.kill("mds")
        s = t.wait(lambda s: s.split("\n")[ROWS - 1].startswith("ERROR:"),
                   "the error status line", timeout=30)
        assert "CSID" in s  # the last reply stays on screen
        assert "TOP-EXIT" not in s
        cluster.restart("mds")
        cluster.wait_mds()
        t.wait(lambda s: s.split("\n")[ROWS - 1].startswith("q quit"),
               "the status line back to the key hints after the MDS restart", timeout=60)

        # The terminal shrinks: top redraws to the new size (status line on the new last row).
        t.run("resize-window", "-t", "top", "-x", "60", "-y", "15")
        s = t.wait(lambda s: len(s.split("\n")) >= 15 and s.split("\n")[14].startswith("q quit"),
                   "the redraw at 60x15")
        assert all(len(l) <= 60 for l in s.split("\n")), s
        assert s.split("\n")[1].startswith(f"Cluster '{cluster.name}': "), s

        # q: top exits and leaves the terminal as it found it.
        t.keys("q")
        s = t.wait_text("TOP-EXIT=", timeout=20)
        assert "TOP-EXIT=0" in s, s
        assert "TTY-RESTORED" in t.wait(lambda s: "TTY-" in s, "the stty comparison"), s
        assert "CSID" not in t.screen()  # the alternate screen is gone
    finally:
        t.kill()


def test_top_without_a_terminal_and_batch_print_once(cluster):
    h = cluster.make_mds()
    cluster.add_cs()
    cluster.wait_cs_active(1)
    for args in (("top",), ("top", "-b"), ("top", "-b", "-d", "1")):
        r = h.vstorage(*args, timeout=20)  # not a terminal: must not wait for keys
        assert r.returncode == 0, r.stderr
        out = r.stdout.split("\n")
        assert re.match(r"connected to MDS#\d+$", out[0]), out[0]
        assert out[1] == f"Cluster '{cluster.name}': healthy"
        assert sum(1 for l in out if l.startswith("CSID")) == 1
    r = h.vstorage("top", "-b", "--json")
    assert r.stdout.startswith("{") and '"cluster":"test1"' in r.stdout
    r = h.vstorage("top", "-d", "0", check=False)
    assert r.returncode == 1 and "invalid -d '0'" in r.stderr


def test_top_waits_for_an_absent_mds_and_ctrl_c_restores_the_terminal(cluster):
    h = cluster.make_mds()
    cs = cluster.add_cs()
    cluster.wait_cs_active(1)
    cluster.kill("mds")
    t = Tmux(h.env())
    top = os.path.abspath(os.path.join(BIN, "vstorage"))
    # C-c reaches the shell too: its trap keeps it going (top gets the default disposition).
    t.start(f"trap : INT; S0=$(stty -g); {top} -c {cluster.name} top -d 1; echo TOP-EXIT=$?; "
            f"if [ \"$(stty -g)\" = \"$S0\" ]; then echo TTY-RESTORED; else echo TTY-CHANGED; fi; "
            f"sleep 600")
    try:
        s = t.wait(lambda s: s.split("\n")[ROWS - 1].startswith("ERROR: cannot reach any MDS"),
                   "the error status line with no MDS")
        assert s.split("\n")[0] == "no cluster status yet", s
        t.keys("v", "i")  # keys still work while nothing answers
        t.keys("h")
        t.wait_text("vstorage top keys:")
        t.keys("h")
        cluster.restart("mds")
        cluster.wait_mds()
        t.wait(lambda s: cs_row(s, cs) is not None and "Chunks:" in s and "FLAGS" in cs_header(s),
               "the cluster once the MDS is up, in the view the keys chose", timeout=60)
        t.keys("C-c")
        s = t.wait_text("TOP-EXIT=", timeout=20)
        assert "TOP-EXIT=0" in s, s
        assert "TTY-RESTORED" in t.wait(lambda s: "TTY-" in s, "the stty comparison")
    finally:
        t.kill()
