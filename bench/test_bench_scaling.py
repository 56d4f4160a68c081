"""How the cost of a sample grows: with the number of metrics, with the size of
memory.stat (v1 vs v2 layouts), and with the number of cgroups watched."""

import os
import sys

import pytest

import pycgroup
from pycgroup import _native
from pycgroup.formats import Format

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from live import LiveCgroups  # noqa: E402


def default_columns(cgroup):
    return list(pycgroup.Sampler(cgroup=cgroup).columns)


@pytest.mark.parametrize("count", [1, 5, 10, "all"])
@pytest.mark.benchmark(group="scaling-metrics")
def test_metric_count(benchmark, cgroup, count):
    names = default_columns(cgroup)
    names = names if count == "all" else names[:count]
    sampler = pycgroup.Sampler(names, cgroup=cgroup)
    benchmark.extra_info["metrics"] = len(names)
    benchmark(sampler.sample)


MEMORY_STAT = {
    "v1": "/sys/fs/cgroup/memory/memory.stat",
    "v2": os.path.join(os.path.dirname(HERE), "tests", "fixtures", "v2", "sys", "fs", "cgroup",
                       "system.slice", "app.service", "memory.stat"),
}


@pytest.mark.parametrize("layout", ["v1", "v2"])
@pytest.mark.benchmark(group="scaling-memory-stat")
def test_memory_stat_parse(benchmark, layout):
    path = MEMORY_STAT[layout] if os.path.exists(MEMORY_STAT[layout]) else MEMORY_STAT["v2"]
    data = open(path, "rb").read()
    key = "total_inactive_file" if layout == "v1" else "inactive_file"
    benchmark.extra_info.update(keys=data.count(b"\n"), bytes=len(data))
    assert _native.parse(Format.FLAT_KEYED, data, [key])[0] is not None
    benchmark(_native.parse, Format.FLAT_KEYED, data, [key])


@pytest.fixture(scope="module")
def siblings():
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    made = [LiveCgroups(["memory", "cpu", "cpuacct"]) for _ in range(64)]
    yield made
    for cgroups in made:
        cgroups.remove()


@pytest.mark.parametrize("n", [1, 8, 64])
@pytest.mark.benchmark(group="scaling-cgroups")
def test_sibling_cgroups(benchmark, siblings, n):
    """One Sampler per cgroup (each may run its own thread, or be sampled in a loop
    like this): the cost of a row from every one of n sibling cgroups."""
    samplers = []
    for cgroups in siblings[:n]:
        cg = pycgroup.CGroup("v1", {c: cgroups.leaves[c] for c in cgroups.leaves})
        samplers.append(pycgroup.Sampler(
            ["memory.current", "memory.stat.inactive_file", "memory.events.max",
             "cpu.stat.usage_usec", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec"],
            cgroup=cg))
    benchmark.extra_info["cgroups"] = n

    def sample_all():
        for sampler in samplers:
            sampler.sample()

    benchmark(sample_all)
