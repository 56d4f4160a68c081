"""`pycgroup watch` in a real terminal (tmux): bars and numbers against known limits, and
`q` and Ctrl-C leave the terminal as they found it."""

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from pycgroup.cli.watch import BAR_WIDTH, bar

from test_gpu import fake_builds, fake_nvml  # noqa: E402,F401  (the fake NVML fixtures)
from installed import PYCGROUP  # noqa: E402


needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (.ci/provision.d/15-tmux.sh)")
pytest.importorskip("rich", reason="rich is the watch extra")


class Pane:
    """A detached tmux session running one shell command."""

    def __init__(self, command: str):
        self.name = "pycgroup-test-" + uuid.uuid4().hex[:8]
        self.tmux = ["tmux", "-L", self.name]  # a server of its own
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", "140", "-y",
                        "45", f"{command}; echo EXITED-$?; stty -a; sleep 60"], check=True,
                       cwd="/")

    def text(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    def wait_for(self, needle: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} did not appear; the pane shows:\n{self.text()}")

    def keys(self, *keys):
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def close(self):
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


def _watch_command(cgroups=None) -> str:
    watch = f"{shlex.quote(PYCGROUP)} watch --hz 100 --refresh 5"
    if cgroups is None:
        return watch
    joins = "; ".join(f"echo $$ > {shlex.quote(os.path.join(leaf, 'cgroup.procs'))}"
                      for leaf in set(cgroups.leaves.values()))
    return f"sh -c {shlex.quote(joins + '; exec ' + watch)}"


def _terminal_restored(screen: str):
    assert "EXITED-0" in screen
    flags = screen.split()
    assert "icanon" in flags and "echo" in flags  # not left in cbreak mode


def test_bar():
    assert bar(0.5, 10) == "█████░░░░░" and bar(None, 4) == "    "
    assert bar(1.7, 4) == "████" and bar(-1, 4) == "░░░░"


@needs_tmux
def test_watch_shows_limits_and_quits_on_q(live_cgroups):
    cgroups = live_cgroups("memory", "cpu", optional=("cpuacct",))
    memory = os.path.join(cgroups.leaves["memory"], "memory.limit_in_bytes")
    if os.path.exists(memory):
        cgroups.set("memory", "memory.limit_in_bytes", 256 * 2**20)
    else:
        cgroups.set("memory", "memory.max", 256 * 2**20)
    if os.path.exists(os.path.join(cgroups.leaves["cpu"], "cpu.cfs_quota_us")):
        cgroups.set("cpu", "cpu.cfs_period_us", 100_000)
        cgroups.set("cpu", "cpu.cfs_quota_us", 50_000)
    else:
        cgroups.set("cpu", "cpu.max", "50000 100000")
    pane = Pane(_watch_command(cgroups))
    try:
        screen = pane.wait_for("cpu cores")
        assert "pycgroup watch: this process" in screen
        memory_line = next(line for line in screen.splitlines() if " memory " in line)
        assert "of 256.0 MiB limit" in memory_line
        cpu_line = next(line for line in screen.splitlines() if "cpu cores" in line)
        assert "of 0.5 quota" in cpu_line
        cells = cpu_line.split()
        assert len(cells[2]) == BAR_WIDTH and set(cells[2]) <= {"█", "░"}
        used = float(cells[3])
        assert 0 <= used <= 0.5 * 1.2  # the quota bounds what the watcher itself uses
        assert "throttled" in screen and "q or Ctrl-C quits" in screen
        pane.keys("q")
        pane.wait_for("EXITED-")
        _terminal_restored(pane.wait_for(" baud"))
    finally:
        pane.close()


@needs_tmux
def test_watch_quits_on_ctrl_c():
    pane = Pane(_watch_command())
    try:
        pane.wait_for("cpu cores")
        pane.keys("C-c")
        pane.wait_for("EXITED-")
        screen = pane.wait_for(" baud")  # stty -a has printed the terminal's modes
        _terminal_restored(screen)
        assert "Traceback" not in screen
    finally:
        pane.close()


def test_missing_extra_names_it(monkeypatch):
    import pycgroup
    from pycgroup._extras import require
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.live", None)
    with pytest.raises(pycgroup.MissingExtra, match=r'pip install "pycgroup\[watch\]"'):
        require("rich.live", "watch", "pycgroup watch")


def test_watch_samples_and_shows_each_gpu(fake_nvml):  # noqa: F811
    """With NVML the view samples each GPU's utilisation and memory and draws them."""
    import pycgroup
    from pycgroup.cli.watch import rows, watched_metrics

    fake_nvml()
    cg = pycgroup.current()
    names = watched_metrics(cg)
    assert {"gpu0.util.gpu", "gpu0.memory.used", "gpu2.memory.total"} <= set(names)
    assert "gpu0.temp_c" not in names
    s = pycgroup.Sampler(names, cgroup=cg)
    s.sample()
    window = s.data()
    latest = {name: int(window[name][-1]) for name in window.columns}
    limits = s.origin.limits
    s.close()
    shown = {row.label: row.text for row in rows(window, latest, limits, window)}
    assert shown["gpu0 util"] == "97%"
    assert shown["gpu0 memory"].startswith("1.0 GiB of 80")


def _window(periods, throttled):
    """One second of rows: 0.25 cores, `periods` CFS periods, `throttled` of them
    throttled."""
    from pycgroup.samples import Samples
    rows = np.array([[0, 100 * 2**20, 0, 0, 0, 12],
                     [10**9, 100 * 2**20, 250_000, periods, throttled, 12]], dtype=np.int64)
    return Samples(rows, ("memory.current", "cpu.stat.usage_usec", "cpu.stat.nr_periods",
                          "cpu.stat.nr_throttled", "pids.current"))


def _shown(window, limits):
    from pycgroup.cli.watch import rows
    latest = {name: int(window[name][-1]) for name in window.columns}
    return {row.label: row for row in rows(window, latest, limits, window)}


def test_rows_without_limits_say_so():
    """UNLIMITED is math.inf: the view says there is no limit rather than 'inf'."""
    inf = float("inf")
    limits = {"memory_max_bytes": inf, "memory_high_bytes": inf, "cpu_quota_cores": inf,
              "effective_cpus": 2.0, "effective_memory_bytes": 8 * 2**30, "pids_max": inf}
    shown = _shown(_window(0, 0), limits)  # no quota: the kernel counts no periods
    assert shown["memory"].text == "100.0 MiB of 8.0 GiB (no limit; host memory)"
    assert shown["memory"].fraction == pytest.approx(100 / 8192)
    assert "memory.high" not in shown
    assert shown["cpu cores"].text == "0.25 of 2 cpus (no quota)"
    assert shown["cpu cores"].fraction == pytest.approx(0.125)
    assert shown["throttled"].text == "never: no CPU quota"
    assert shown["pids"].text == "12 of no limit" and shown["pids"].fraction is None
    assert not [row for row in shown.values() if "inf" in row.text]


def test_rows_against_limits():
    limits = {"memory_max_bytes": 400 * 2**20, "memory_high_bytes": 200 * 2**20,
              "cpu_quota_cores": 0.5, "effective_cpus": 0.5,
              "effective_memory_bytes": 400 * 2**20, "pids_max": 48}
    shown = _shown(_window(10, 4), limits)
    assert shown["memory"].text == "100.0 MiB of 400.0 MiB limit"
    assert shown["memory.high"].fraction == pytest.approx(0.5)
    assert shown["cpu cores"].text == "0.25 of 0.5 quota"
    assert shown["cpu cores"].fraction == pytest.approx(0.5)
    assert shown["throttled"].text == "40.0% of CPU periods"
    assert shown["pids"].text == "12 of 48" and shown["pids"].fraction == pytest.approx(0.25)
    quiet = _window(0, 0)  # a refresh in which no period ended
    assert _shown(quiet, limits)["throttled"].text == (
        "no CPU period ended since the last refresh")
