"""The default read rates: which metrics the sampler thread reads on every tick, which at
100 Hz and which at 10 Hz, and the process clocks' own divisors, on both backends."""

import fnmatch
import math

import numpy as np
import pytest

import pycgroup
from pycgroup.sampler import DEFAULT_RATE_HZ, THROTTLING, default_every

from background import sample_while


def fixture_cgroup(tree, name="v2"):
    procfs, rootfs = tree(name)
    return pycgroup.current(procfs, rootfs)


def test_default_divisors_follow_the_tick_rate():
    at_1k = default_every(1000.0)
    assert at_1k["proc.cpu_usec"] == 10 and at_1k["proc.utime_usec"] == 10
    assert at_1k["memory.stat.*"] == 100 and at_1k["*.pressure.*"] == 100
    assert at_1k["memory.events.*"] == 100 and at_1k["cpu.stat.user_usec"] == 100
    assert default_every(10_000.0)["memory.stat.*"] == 1000
    assert default_every(100.0)["proc.utime_usec"] == 1  # never slower than every tick
    assert default_every(150.0)["proc.utime_usec"] == 2  # rounded up: no faster than 100 Hz
    assert default_every(1.0)["host.*"] == 1
    assert set(default_every(1000.0)) == set(DEFAULT_RATE_HZ)


def test_what_moves_within_a_step_is_read_every_tick():
    every = default_every(1000.0)
    names = ["cpu.stat.usage_usec", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec",
             "memory.current"]
    assert not [n for n in names for p in every if fnmatch.fnmatchcase(n, p)]


@pytest.mark.parametrize("quota, slowed", [(math.inf, True), (2.0, False), (None, False)])
def test_throttling_is_slowed_only_without_a_cpu_quota(quota, slowed):
    every = default_every(1000.0, quota)
    assert all((every.get(name) == 100) == slowed for name in THROTTLING)
    assert "cpu.stat.usage_usec" not in every


def test_a_file_is_read_at_its_fastest_metrics_rate(tree):
    cg = fixture_cgroup(tree)
    s = pycgroup.Sampler(["cpu.stat.usage_usec", "cpu.stat.user_usec", "memory.current"],
                         cgroup=cg, every={"cpu.stat.user_usec": 10, "memory.*": 4})
    assert s._every == [1, 4] or s._every == [4, 1]
    s.close()


def test_v2_cpu_stat_stays_every_tick_without_a_quota(tree):
    """On v2 the throttling counters share cpu.stat with the usage: one file, read at the
    faster of its metrics' rates."""
    cg = fixture_cgroup(tree)
    s = pycgroup.Sampler(["cpu.stat.usage_usec", "cpu.stat.nr_throttled"], cgroup=cg,
                         every=default_every(1000.0, math.inf))
    assert s._every == [1]
    s.close()


@pytest.mark.parametrize("every, expected", [
    (None, (10, 10)), ({}, (1, 1)), ({"proc.[us]time_usec": 3}, (1, 3)),
    ({"proc.*": 4, "proc.stime_usec": 2}, (4, 2)), ({"proc.cpu_usec": 5}, (5, 1)),
    ({"proc.stime_usec": 6}, (1, 1)),  # utime_usec, in the same getrusage, has no divisor
])
def test_process_clock_divisors(backend, every, expected):
    s = pycgroup.Sampler(["proc.cpu_usec", "proc.utime_usec", "proc.stime_usec"],
                         backend=backend, every=every)
    assert s._clock_every == expected
    s.close()


def test_getrusage_fields_are_read_every_nth_tick(backend):
    """proc.utime_usec every 3rd tick while a thread burns CPU: the column changes only
    on those rows; proc.cpu_usec, read every tick, changes more often."""
    s = pycgroup.Sampler(["proc.cpu_usec", "proc.utime_usec"], hz=500, backend=backend,
                         every={"proc.utime_usec": 3})
    data = sample_while(s, lambda n: sum(i * i for i in range(2000)), 0.4)
    changed = np.flatnonzero(np.diff(data["proc.utime_usec"])) + 1
    assert len(changed) > 5
    assert set(changed % 3) == {0}
    assert len(np.flatnonzero(np.diff(data["proc.cpu_usec"]))) > len(changed)
    s.close()


def test_sample_reads_every_clock_whatever_the_divisors(backend):
    s = pycgroup.Sampler(["proc.cpu_usec", "proc.utime_usec"], backend=backend,
                         every={"proc.*": 1000})
    sum(i * i for i in range(200_000))
    s.sample()
    sum(i * i for i in range(200_000))
    s.sample()
    data = s.data()
    assert np.all(np.diff(data["proc.cpu_usec"]) > 0)
    assert np.all(data["proc.utime_usec"] > 0)
    s.close()
