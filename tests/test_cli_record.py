"""`pycgroup record` and `pycgroup plot`, run as a user runs them."""

import glob
import os
import pty
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pycgroup
from live import mount_points
from installed import PYCGROUP


BUSY = "import time\nt = time.time()\nwhile time.time() - t < {s}: pass\n"


def record(*args, **kwargs):
    return subprocess.run([PYCGROUP, "record", *args], capture_output=True, text=True,
                          timeout=120, cwd="/", **kwargs)


def leftover_cgroups() -> list:
    return [p for mount in set(mount_points().values())
            for p in glob.glob(os.path.join(mount, "pycgroup-record-*"))]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="--cgroup new needs root")


def test_exit_status_passes_through(tmp_path):
    out = tmp_path / "r.npz"
    done = record("-o", str(out), "--", sys.executable, "-c", "raise SystemExit(7)")
    assert done.returncode == 7, done.stderr
    assert "\r" not in done.stderr  # no progress line when stderr is not a terminal
    assert re.search(r"pycgroup record: [\d,]+ rows -> ", done.stderr)
    r = pycgroup.load(out)
    assert r.complete and len(r.samples) >= 1


def test_signal_death_is_128_plus_n(tmp_path):
    done = record("-o", str(tmp_path / "r.npz"), "--", sys.executable, "-c",
                  "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert done.returncode == 128 + signal.SIGTERM


def test_usage_errors(tmp_path):
    assert record().returncode == 2
    assert "either --pid PID or -- CMD" in record().stderr
    done = record("--cpus", "1", "--", "true")
    assert done.returncode == 2 and "need --cgroup new" in done.stderr
    done = record("-o", str(tmp_path / "x.npz"), "--", "/nonexistent/program")
    assert done.returncode == 127 and "cannot run /nonexistent/program" in done.stderr
    done = record("-o", str(tmp_path / "x.txt"), "--", "true")
    assert done.returncode == 1 and "must end in .npz or .parquet" in done.stderr


def test_follows_a_pid_until_it_exits(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    out = tmp_path / "pid.npz"
    recorder = subprocess.Popen([PYCGROUP, "record", "-o", str(out), "--hz", "200",
                                 "--pid", str(sleeper.pid)], stderr=subprocess.PIPE,
                                text=True, cwd="/")
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # rows while the process lives
    sleeper.kill()
    sleeper.wait()
    _, stderr = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, stderr
    r = pycgroup.load(out)
    assert r.origin.pid == sleeper.pid and r.origin.period_ns == 5_000_000
    assert len(r.samples) > 10
    # The process's own columns were read while it lived.
    rss = r.samples["proc.rss_bytes"]
    assert rss[0] > 0


def test_progress_line_on_a_terminal(tmp_path):
    primary, secondary = pty.openpty()
    child = subprocess.Popen([PYCGROUP, "record", "-o", str(tmp_path / "t.npz"), "--",
                              sys.executable, "-c", "import time; time.sleep(1.5)"],
                             stderr=secondary, stdout=subprocess.DEVNULL, cwd="/")
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    child.wait(60)
    os.close(primary)
    text = seen.decode()
    assert child.returncode == 0
    assert re.search(r"\r\x1b\[Kpycgroup record: +\d+\.\d s  [\d,]+ rows  0 dropped", text)


@needs_root
def test_new_cgroup_with_a_cpu_quota(tmp_path):
    out = tmp_path / "quota.npz"
    done = record("-o", str(out), "--cgroup", "new", "--cpus", "0.5", "--memory", "256M",
                  "--pids", "40", "--", sys.executable, "-c", BUSY.format(s=2.5))
    if "no cpu controller" in done.stderr:
        pytest.skip(done.stderr)
    assert done.returncode == 0, done.stderr
    assert leftover_cgroups() == []
    r = pycgroup.load(out)
    assert r.limits["cpu_quota_cores"] == 0.5
    assert r.limits["memory_max_bytes"] == 256 * 2**20 and r.limits["pids_max"] == 40
    assert all("pycgroup-record-" in p for c, p in r.origin.cgroup_paths.items()
               if c in ("cpu", "memory", "pids"))
    t = r.samples.throttling()
    assert t.cpu_limit_cores == 0.5
    # The quota guarantees at most 0.5 cores (a loaded host may give less), in periods
    # the kernel counted; a child that got its whole quota was throttled.
    assert 0.05 < t.cpu_cores_used <= 0.5 * 1.1
    periods = r.samples.total("cpu.stat.nr_periods")
    assert periods >= 10
    if t.cpu_cores_used > 0.45:
        assert t.cpu_throttled_fraction > 0


@needs_root
def test_sigint_leaves_a_loadable_file_and_no_cgroup(tmp_path):
    out = tmp_path / "int.npz"
    recorder = subprocess.Popen(
        [PYCGROUP, "record", "-o", str(out), "--cgroup", "new", "--cpus", "0.5", "--",
         sys.executable, "-c", "import time; time.sleep(60)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not leftover_cgroups():
        time.sleep(0.05)
    assert leftover_cgroups(), "the recorder made no cgroup"
    time.sleep(1.5)  # a chunk or more
    recorder.send_signal(signal.SIGINT)  # to the recorder only, not its child
    _, stderr = recorder.communicate(timeout=60)
    assert recorder.returncode == 128 + signal.SIGINT, stderr  # the child died of SIGINT
    assert leftover_cgroups() == []
    r = pycgroup.load(out)
    assert r.complete and len(r.samples) > 10


@needs_root
def test_cgroup_new_removes_stray_children(tmp_path):
    # CMD leaves a background process behind in the cgroup; it is killed with it.
    code = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)'])")
    done = record("-o", str(tmp_path / "s.npz"), "--cgroup", "new", "--", sys.executable,
                  "-c", code)
    assert done.returncode == 0, done.stderr
    assert leftover_cgroups() == []


# --- plot -----------------------------------------------------------------------------

def _recording(tmp_path):
    """A recording with a rising memory step, two labelled steps and a mark."""
    with pycgroup.Sampler(hz=500) as s:
        for i in range(2):
            with s.span("step"):
                block = bytearray(20_000_000 * (i + 1))
                t = time.monotonic()
                while time.monotonic() - t < 0.3:
                    pass
                del block
        s.mark("done")
    path = tmp_path / "plot.npz"
    pycgroup.save(path, s.data(), steps=s.steps("step"), marks=s.marks())
    s.close()
    return path


def _png_size(path) -> tuple:
    data = open(path, "rb").read(32)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_png_svg_html(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is the plot extra")
    from pycgroup.export.plot import DPI, PANEL_HEIGHT_IN, WIDTH_IN
    path = _recording(tmp_path)
    cg = pycgroup.current()
    # memory, cores, throttled fraction, and pressure stalls where cgroup v2 has them
    expected = 3 + ("unified" in cg.paths and os.path.exists(
        os.path.join(cg.paths["unified"], "cpu.pressure")))
    png = tmp_path / "p.png"
    done = subprocess.run([PYCGROUP, "plot", str(path), "-o", str(png)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{expected} panels -> {png}" in done.stderr
    width, height = _png_size(png)
    assert (width, height) == (round(WIDTH_IN * DPI),
                               round((1.0 + PANEL_HEIGHT_IN * expected) * DPI))
    assert os.path.getsize(png) > 20_000
    svg = tmp_path / "p.svg"
    assert subprocess.run([PYCGROUP, "plot", str(path), "-o", str(svg)],
                          timeout=120).returncode == 0
    text = svg.read_text()
    assert len(re.findall(r'<g id="axes_\d+"', text)) == expected
    for title in ("Memory", "CPU cores used", "CPU throttled fraction", "working set",
                  "step", "done"):
        assert f"<!-- {title} -->" in text, title
    html = tmp_path / "p.html"
    assert subprocess.run([PYCGROUP, "plot", str(path), "-o", str(html)],
                          timeout=120).returncode == 0
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    assert "<?xml" not in page


def test_plot_selected_metrics(tmp_path):
    pytest.importorskip("matplotlib")
    from pycgroup.export.plot import save_plot
    r = pycgroup.load(_recording(tmp_path))
    assert save_plot(r, tmp_path / "m.svg", ["memory.current"]) == 1
    assert save_plot(r, tmp_path / "m.svg", ["memory.current", "proc.utime_usec"]) == 2
    with pytest.raises(ValueError, match="nothing to plot"):
        save_plot(r, tmp_path / "m.svg", ["pids.current"])
    done = subprocess.run([PYCGROUP, "plot", str(tmp_path / "absent.npz")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "absent.npz" in done.stderr


def _quota_samples(memory_max):
    """3 s at 1 kHz of a command under a 0.5-core quota with 100 ms CFS periods: it runs
    the first half of every period and is throttled in each one."""
    from pycgroup.samples import ClockAnchor, Origin, Samples
    t_ms = np.arange(3001)
    ran_ms = (t_ms // 100) * 50 + np.minimum(t_ms % 100, 50)
    periods = t_ms // 100
    memory = np.full(len(t_ms), 50 * 2**20)
    rows = np.stack([t_ms * 1_000_000, ran_ms * 1000, periods, periods, memory], axis=1)
    limits = {"memory_max_bytes": memory_max, "memory_high_bytes": None,
              "cpu_quota_cores": 0.5}
    origin = Origin("v2", {"unified": "/q"}, 1, "h", 1_000_000, limits,
                    ClockAnchor(1_700_000_000_000_000_000, 0))
    return Samples(rows.astype(np.int64), ("cpu.stat.usage_usec", "cpu.stat.nr_periods",
                                           "cpu.stat.nr_throttled", "memory.current"),
                   cpu_limit_cores=0.5, effective_memory_bytes=2**34, origin=origin)


def _panels(fig):
    return {ax.get_title(loc="left"): ax for ax in fig.axes}


def test_plot_under_a_quota_draws_throttling_and_steady_cores():
    pytest.importorskip("matplotlib")
    from pycgroup.export.plot import cfs_period_s, figure
    samples = _quota_samples(memory_max=float("inf"))
    assert cfs_period_s(samples) == pytest.approx(0.1)
    panels = _panels(figure(samples))
    (throttled,) = panels["CPU throttled fraction"].get_lines()
    y = np.asarray(throttled.get_ydata(), dtype=float)
    # A line is drawn between neighbouring finite points only: windows shorter than the
    # CFS period leave each period's end alone between gaps, and no line at all.
    drawn = np.isfinite(y[1:]) & np.isfinite(y[:-1])
    assert drawn.sum() >= 5
    assert np.nanmin(y) == pytest.approx(1.0)  # every period was throttled
    cores = panels["CPU cores used"].get_lines()[0]
    used = np.asarray(cores.get_ydata(), dtype=float)
    # Whole periods in every window: the 0.5 cores the quota gives, not 0.25 and 0.75.
    assert np.nanmax(np.abs(used[:-1] - 0.5)) < 0.06
    # No memory limit: no memory.max line, nor a legend entry promising one.
    labels = [line.get_label() for line in panels["Memory"].get_lines()]
    assert labels == ["current"]


def test_plot_draws_a_finite_memory_limit():
    pytest.importorskip("matplotlib")
    from pycgroup.export.plot import figure
    panels = _panels(figure(_quota_samples(memory_max=256 * 2**20)))
    (limit,) = [line for line in panels["Memory"].get_lines()
                if line.get_label() == "memory.max"]
    assert list(limit.get_ydata()) == [256 * 2**20] * 2


def test_plot_has_gpu_panels_when_the_recording_has_gpus():
    pytest.importorskip("matplotlib")
    from pycgroup.export.plot import figure
    from test_trace import gpu_samples
    panels = _panels(figure(gpu_samples()))
    assert list(panels) == ["Memory", "GPU utilisation", "GPU power", "GPU memory used"]
    util = {line.get_label(): line for line in panels["GPU utilisation"].get_lines()}
    assert set(util) == {"gpu0", "gpu1"}
    assert set(np.asarray(util["gpu0"].get_ydata())) == {97.0}
