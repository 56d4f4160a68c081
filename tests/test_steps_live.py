"""Spans on the running kernel: a child under a CFS quota of half a core measures its own
steps, and its figures are compared with the kernel's counters over the same window.

Only what the quota itself guarantees is bounded (the host may be loaded by other work,
which can only lower the CPU the child gets): usage never above 0.5 core plus one
period's quota, throttling seen when the quota ran out, and agreement with the files."""

import json
import os
import textwrap

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")

#: The longest scheduler tick of common kernels (CONFIG_HZ=100): how far behind a running
#: task's charged CPU usage may be when a file is read (kernel/sched/fair.c update_curr).
TICK_US = 10_000

CHILD = textwrap.dedent("""
    import json, time, pycgroup

    s = pycgroup.Sampler(["cpu.stat.usage_usec", "cpu.stat.nr_periods",
                          "cpu.stat.nr_throttled", "proc.cpu_usec"], hz=1000, backend=BACKEND)
    usage = s.cgroup.resolve("cpu.stat.usage_usec")

    def kernel_usage_usec():  # the kernel's own counter, read straight from its file
        with open(usage.path) as f:
            text = f.read()
        if usage.key:
            text = next(l.split()[1] for l in text.splitlines() if l.split()[0] == usage.key)
        return int(text) // usage.div

    def busy(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    out = {}
    with s:
        time.sleep(0.05)
        for name, exact, work in [("busy", False, lambda: busy(1.0)),
                                  ("busy_exact", True, lambda: busy(0.5)),
                                  ("sleep", False, lambda: time.sleep(0.5))]:
            t0, k0 = time.monotonic_ns(), kernel_usage_usec()
            with s.span(name, exact=exact) as sp:
                work()
            k1, t1 = kernel_usage_usec(), time.monotonic_ns()
            out[name] = dict(cores=sp.throttling.cpu_cores_used,
                             fraction=sp.throttling.cpu_throttled_fraction,
                             delta=sp.delta["cpu.stat.usage_usec"], kernel=k1 - k0,
                             throttled=sp.delta["cpu.stat.nr_throttled"],
                             process=sp.delta["proc.cpu_usec"],
                             duration=sp.duration_s, error_ns=sp.boundary_error_ns,
                             outside_us=(t1 - t0 - (sp.end_ns - sp.start_ns)) / 1000,
                             steps_cores=float(s.steps(name)["cpu_cores_used"][0]))
    out["overruns"] = s.stats.overruns
    print(json.dumps(out))
""")


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_spans_under_half_a_core(live_cgroups, backend):
    cgroups = live_cgroups("cpu", "cpuacct")
    cgroups.set("cpu", "cpu.cfs_period_us", 100000)
    cgroups.set("cpu", "cpu.cfs_quota_us", 50000)
    done = cgroups.run(CHILD.replace("BACKEND", repr(backend)))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    busy, exact, sleep = out["busy"], out["busy_exact"], out["sleep"]
    for step in (busy, exact):
        # The quota allows 0.5 core, plus one period's 50 ms of quota spent early.
        assert 0 < step["cores"] <= 0.5 + 0.05 / step["duration"] + 0.02, step
        assert step["steps_cores"] == pytest.approx(step["cores"])
        if step["throttled"]:
            assert step["fraction"] > 0.3, step
    # An exact span's rows are read at its boundaries, inside the kernel reads around it:
    # its delta is short of theirs by no more than what the child's two threads can use
    # in the time between those reads and the span (microseconds, unless the host
    # preempted the child there), give or take the kernel's own lag: a running task's
    # usage is charged at scheduler ticks and switches, so each read may miss up to a
    # tick of it (TICK_US).
    lag = 2 * TICK_US
    assert -lag <= exact["kernel"] - exact["delta"] <= 2 * exact["outside_us"] + 1000 + lag, exact
    assert exact["error_ns"] == 0
    # A cheap span's rows lie within its boundary error of the boundaries: at most the
    # child's two threads' CPU over that much time at each end differs from the kernel's.
    slack = 2 * (2 * busy["error_ns"] / 1000 + busy["outside_us"]) + 2000 + 2 * TICK_US
    assert abs(busy["kernel"] - busy["delta"]) <= slack, busy
    # While the step sleeps only the sampler thread runs: the cgroup's CPU is the
    # process's own (clock_gettime) to within 1% of a core.
    assert sleep["delta"] <= sleep["process"] + 0.01 * 1e6 * sleep["duration"] + 2000, sleep
