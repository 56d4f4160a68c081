"""The sampler on the running kernel: a CPU-bound child under a CFS quota, and a child
that allocates memory, each watched from outside at 1 kHz."""

import os
import subprocess
import sys

import numpy as np
import pytest

import pycgroup
from live import wait_until
from pycgroup.formats import MISSING

MiB = 2**20
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")


def start_child(cgroups, code, **kwargs):
    child = cgroups.popen([sys.executable, "-c", "print('ready', flush=True)\n" + code],
                          stdout=subprocess.PIPE, text=True, **kwargs)
    assert child.stdout.readline() == "ready\n"
    return child


COUNTERS = {"usage_usec": "cpu.stat.usage_usec", "nr_periods": "cpu.stat.nr_periods",
            "nr_throttled": "cpu.stat.nr_throttled",
            "throttled_usec": "cpu.stat.throttled_usec"}


def sample_busy_child(cgroups, backend, quota_us, until, what):
    """Samples a busy loop in the cgroups, under quota_us per 100 ms period, at 1 kHz from
    outside them until the kernel's own counters satisfy until(first, now). The quota is
    set once the child is running: its start-up under a tiny quota could take minutes on a
    slow (emulated) machine. The sampler's first and last rows are each
    taken between two reads of those counters (k0 <= first row <= k1, k2 <= last row <=
    k3). Returns the sampler's data and the kernel's deltas over its window, after
    checking that each of its columns lies within what the kernel counted."""
    child = start_child(cgroups, "while True: pass")
    try:
        cgroups.limit_cpu(quota_us, 100000)
        cg = pycgroup.of_pid(child.pid)
        assert cg.paths[cgroups.key("cpu")] == cgroups.leaves["cpu"]
        sampler = pycgroup.Sampler(hz=1000, cgroup=cg, backend=backend)
        k0 = cgroups.cpu_counters()
        sampler.sample()
        k1 = cgroups.cpu_counters()
        sampler.start()
        wait_until(lambda: until(k1, cgroups.cpu_counters()), what)
        sampler.stop()
        k2 = cgroups.cpu_counters()
        sampler.sample()
        k3 = cgroups.cpu_counters()
        data = sampler.data()
    finally:
        child.kill()
        child.wait()
    assert len(data) == sampler.stats.samples >= 2 and sampler.stats.dropped == 0
    assert np.all(np.diff(data.t_ns) > 0)
    delta = {}
    for name, column in COUNTERS.items():
        values = data[column]
        assert MISSING not in values.tolist(), column
        assert np.all(np.diff(values) >= 0), column  # counters never go back
        assert k0[name] <= values[0] <= k1[name], (column, k0, values[0], k1)
        assert k2[name] <= values[-1] <= k3[name], (column, k2, values[-1], k3)
        delta[name] = int(values[-1] - values[0])
        assert k2[name] - k1[name] <= delta[name] <= k3[name] - k0[name], column
    inside = {name: k2[name] - k1[name] for name in COUNTERS}  # surely inside the window
    return data, delta, inside


def test_cpu_quota_half_a_core(live_cgroups, backend):
    """A busy loop under quota 50000/100000. A loaded host may give the child less than
    its half core (then it is never throttled) and the sampler fewer rows, so nothing
    here depends on what the host delivers: the sampler's figures are compared with the
    kernel's own counters over the same window, and the only bound on the child is the
    one the quota guarantees: never more than 0.5 core over the window plus one period
    (an overrun is paid back in later periods). It waits on the kernel's period counter,
    not on the clock."""
    cgroups = live_cgroups("cpu", "cpuacct")
    data, delta, inside = sample_busy_child(
        cgroups, backend, 50000, lambda k1, k: k["nr_periods"] - k1["nr_periods"] >= 20,
        "20 CFS periods")
    t = data.throttling()
    interval_s = (data.t_ns[-1] - data.t_ns[0]) / 1e9
    assert t.interval_s == pytest.approx(interval_s)
    assert t.cpu_limit_cores == 0.5
    # The sampler's rates are the kernel's deltas over its own rows' timestamps.
    assert t.cpu_cores_used == pytest.approx(delta["usage_usec"] / 1e6 / interval_s)
    assert t.cpu_throttled_seconds_per_second == pytest.approx(
        delta["throttled_usec"] / 1e6 / interval_s)
    assert t.cpu_throttled_fraction == pytest.approx(delta["nr_throttled"] / delta["nr_periods"])
    # What the quota guarantees, loaded host or not.
    assert delta["usage_usec"] / 1e6 <= 0.5 * interval_s + 0.1, t
    assert delta["nr_throttled"] <= delta["nr_periods"] >= inside["nr_periods"] >= 20
    # Throttled time comes only with throttled periods.
    assert (delta["throttled_usec"] > 0) == (delta["nr_throttled"] > 0), delta


def test_cpu_quota_throttles_a_busy_loop(live_cgroups, backend):
    """Under the smallest quota the kernel accepts (1 ms per 100 ms period) a busy loop is
    throttled whenever the host runs it for a millisecond in a period, as even a heavily
    loaded host does. The kernel's counters are waited for: nr_throttled counts periods
    spent throttled (at each period's timer) while throttled time is added only when the
    group is unthrottled, so one long throttle (a large overrun to pay back) can show in
    the first and not yet in the second. The sampler's data must show every throttled
    period the kernel counted inside its window."""
    cgroups = live_cgroups("cpu", "cpuacct")
    data, delta, inside = sample_busy_child(
        cgroups, backend, 1000, lambda k1, k: k["nr_throttled"] - k1["nr_throttled"] >= 5
        and k["throttled_usec"] > k1["throttled_usec"],
        "5 throttled CFS periods and throttled time")
    t = data.throttling()
    interval_s = (data.t_ns[-1] - data.t_ns[0]) / 1e9
    assert delta["nr_throttled"] >= inside["nr_throttled"] >= 5
    assert delta["throttled_usec"] >= inside["throttled_usec"] > 0
    assert 0 < t.cpu_throttled_fraction <= 1
    assert t.cpu_throttled_seconds_per_second > 0
    assert t.cpu_limit_cores == 0.01
    # What the quota guarantees: 0.01 core over the window plus one period. A busy loop
    # overruns its runtime until the kernel next checks it (a tick; longer when a virtual
    # machine's vCPU is descheduled meanwhile) and pays the debt back in later periods.
    assert delta["usage_usec"] / 1e6 <= 0.01 * interval_s + 0.1, t


def test_memory_follows_an_allocating_child(live_cgroups, backend):
    """memory.current and the working set rise by the 200 MiB the child writes (anonymous
    memory is never inactive_file), within 10% for the page cache and runtime around it.
    The child allocates only once told to, after the sampler has a row, and the last row
    is taken after it says it is done, so a slow host cannot make the sampler miss either
    end."""
    cgroups = live_cgroups("memory")
    code = ("import sys, time\nchunks = []\n"
            "sys.stdin.readline()\n"
            "for i in range(4):\n"
            "    chunks.append(bytearray(b'\\x01') * (50 << 20))\n"
            "    time.sleep(0.15)\n"
            "print('done', flush=True)\ntime.sleep(600)\n")
    child = start_child(cgroups, code, stdin=subprocess.PIPE)
    try:
        cg = pycgroup.of_pid(child.pid)
        sampler = pycgroup.Sampler(["memory.current", "memory.working_set", "proc.rss_bytes"],
                                   hz=1000, cgroup=cg, backend=backend)
        sampler.sample()
        sampler.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        sampler.stop()
        sampler.sample()
        data = sampler.data()
    finally:
        child.kill()
        child.wait()
    current = data["memory.current"]
    working = data["memory.working_set"]
    rss = data["proc.rss_bytes"]
    assert MISSING not in current.tolist() and MISSING not in working.tolist()
    assert 180 * MiB <= current.max() - current.min() <= 230 * MiB
    assert 180 * MiB <= working.max() - working.min() <= 230 * MiB
    assert 180 * MiB <= rss.max() - rss.min() <= 230 * MiB
    # It rises in four steps of 50 MiB, never falling by more than noise on the way.
    assert np.all(np.diff(current) > -5 * MiB)
