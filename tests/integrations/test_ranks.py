"""Many ranks: two processes on a gloo group, one busy in a 0.3-core cgroup and one in
an unlimited one; the reduced step table must name the throttled rank."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch", reason="the framework tests need pip install '.[frameworks-test]'")

import pycgroup  # noqa: E402
from conftest import TINY, cgroup_dirs, root_only, run_tiny  # noqa: E402
from pycgroup.integrations import ranks  # noqa: E402


def test_rank_labels_read_the_launchers_variables(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert ranks.rank_labels() == {"rank": 3, "local_rank": 1, "world_size": 8}
    assert ranks.across_ranks({"cpu_cores_used": 0.5}) == {"rank3/cpu_cores_used": 0.5}
    monkeypatch.setenv("RANK", "not a number")
    assert "rank" not in ranks.rank_labels()


def test_without_a_process_group_this_rank_alone_is_reduced(monkeypatch):
    for name in ranks.RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    sampler = pycgroup.Sampler(hz=100)
    with sampler:
        for _ in range(3):
            with sampler.span("step"):
                sum(range(100_000))
    reduced = ranks.reduce_steps(sampler.steps("step"))
    sampler.close()
    assert reduced.world_size == 1 and reduced.steps == (3,)  # one row per finished span
    duration = reduced["duration_s"]
    assert duration.min == duration.max == duration.mean > 0 and duration.worst_rank == 0
    assert "start_ns" not in reduced.columns
    assert "duration_s" in str(reduced)
    assert ranks.across_ranks({"x": 1.0}) == {"x": 1.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@root_only
def test_two_gloo_ranks_name_the_throttled_one(live_cgroups):
    """Both ranks busy-loop in 50 ms steps for 2 s. Rank 1's cgroup has a quota of 0.3
    cores as 1 ms in each 3.333 ms period (the shortest quota the kernel takes): on a
    host loaded by others a rank may get less than 0.3 cores on average, but any period
    in which it runs for a time slice is throttled. Rank 0's cgroup has no quota, so it
    has no throttled periods at all."""
    free = live_cgroups("cpu", optional=("cpuacct",))
    limited = live_cgroups("cpu", optional=("cpuacct",))
    limited.set("cpu", "cpu.cfs_period_us", 3333)
    limited.set("cpu", "cpu.cfs_quota_us", 1000)
    port = free_port()

    other = subprocess.Popen([sys.executable, TINY, "rank", "1", "2", str(port), "2.0"],
                             cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, env={**os.environ,
                                             "PYCGROUP_TEST_JOIN": cgroup_dirs(limited)})
    try:
        got = run_tiny("rank", 0, 2, port, 2.0, env={"PYCGROUP_TEST_JOIN": cgroup_dirs(free)})
    finally:
        _, err = other.communicate(timeout=120)
    assert other.returncode == 0, err[-3000:]
    assert got["world_size"] == 2 and all(n > 5 for n in got["steps"])
    throttled = got["columns"]["cpu_throttled_fraction"]
    assert throttled["worst_rank"] == 1, got["table"]
    assert throttled["per_rank"][1] > 0, got["table"]
    assert np.isnan(throttled["per_rank"][0]) or throttled["per_rank"][0] == 0
    cores = got["columns"]["cpu_cores_used"]
    assert cores["per_rank"][1] <= 0.3 + 0.001 / 0.05 + 0.05  # + one period's quota a step
    assert got["columns"]["duration_s"]["worst_rank"] in (0, 1)
