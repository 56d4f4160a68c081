"""The sampler on the running kernel: a CPU-bound child under a CFS quota, and a child
that allocates memory, each watched from outside at 1 kHz."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import pycgroup
from pycgroup.formats import MISSING

MiB = 2**20
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")


def start_child(cgroups, code):
    child = cgroups.popen([sys.executable, "-c", "print('ready', flush=True)\n" + code],
                          stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    return child


def test_cpu_quota_half_a_core(live_cgroups, backend):
    """A busy loop under quota 50000/100000 uses 0.5 cores and is throttled in nearly every
    period. Tolerances: usage within [0.40, 0.55] cores over 2 s (the quota allows 0.5 plus
    at most one period's 50 ms; the lower bound leaves 20% for a busy host stealing CPU);
    throttled in >= 90% of periods; throttled time growing at >= 0.3 s per second."""
    cgroups = live_cgroups("cpu", "cpuacct")
    cgroups.set("cpu", "cpu.cfs_period_us", 100000)
    cgroups.set("cpu", "cpu.cfs_quota_us", 50000)
    child = start_child(cgroups, "while True: pass")
    try:
        cg = pycgroup.of_pid(child.pid)
        assert cg.paths["cpu"] == cgroups.leaves["cpu"]
        sampler = pycgroup.Sampler(hz=1000, cgroup=cg, backend=backend)
        with sampler:
            time.sleep(2.0)
        data = sampler.data()
    finally:
        child.kill()
        child.wait()
    t = data.throttling()
    assert t.interval_s > 1.9
    assert 0.40 <= t.cpu_cores_used <= 0.55, t
    assert t.cpu_throttled_fraction >= 0.9, t
    assert t.cpu_throttled_seconds_per_second >= 0.3, t
    assert t.cpu_limit_cores == 0.5
    throttled = data["cpu.stat.throttled_usec"]
    assert MISSING not in throttled.tolist()
    assert np.all(np.diff(throttled) >= 0) and throttled[-1] - throttled[0] > 600_000
    assert len(data) > 1000  # most of the 2000 ticks, whatever the host's scheduling


def test_memory_follows_an_allocating_child(live_cgroups, backend):
    """memory.current and the working set rise by the 200 MiB the child writes (anonymous
    memory is never inactive_file), within 10% for the page cache and runtime around it."""
    cgroups = live_cgroups("memory")
    code = ("import sys, time\nchunks = []\n"
            "for i in range(4):\n"
            "    chunks.append(bytearray(b'\\x01') * (50 << 20))\n"
            "    time.sleep(0.15)\n"
            "print('done', flush=True)\ntime.sleep(60)\n")
    sampler = None
    child = cgroups.popen([sys.executable, "-c", "import time; time.sleep(0.3)\n" + code],
                          stdout=subprocess.PIPE, text=True)
    try:
        cg = pycgroup.of_pid(child.pid)  # the child waits 0.3 s before it allocates
        sampler = pycgroup.Sampler(["memory.current", "memory.working_set", "proc.rss_bytes"],
                                   hz=1000, cgroup=cg, backend=backend).start()
        assert child.stdout.readline() == "done\n"
        time.sleep(0.05)
        sampler.stop()
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
