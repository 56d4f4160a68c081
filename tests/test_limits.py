"""Container-aware limits on fixture trees."""

import math
import os

import pytest

import pycgroup


def usable_cpus(*cpus):
    return tuple(c for c in cpus if c in os.sched_getaffinity(0))


def test_v1_leaf_limits(tree, backend):
    procfs, rootfs = tree("v1")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes == 536870912
    assert lim.memory_high_bytes is None
    assert lim.swap_max_bytes == math.inf  # hierarchical_memsw_limit is unlimited
    assert lim.host_memory_bytes == 8039424 * 1024
    assert lim.effective_memory_bytes == 536870912
    assert lim.cpu_quota_cores == 1.5
    assert lim.cpuset_cpus == usable_cpus(0, 1)
    assert lim.effective_cpus == min(1.5, len(lim.cpuset_cpus))
    assert lim.cpu_count == 2 if len(lim.cpuset_cpus) >= 2 else 1
    assert lim.pids_max == 100


def test_v2_nested_limits_take_the_tightest_ancestor(tree, backend):
    procfs, rootfs = tree("v2")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes == 1073741824  # the parent's; the leaf says "max"
    assert lim.memory_high_bytes == 805306368  # the leaf's; the parent says "max"
    assert lim.swap_max_bytes == 0
    assert lim.cpu_quota_cores == 0.5  # parent 50000/100000; the leaf says "max"
    assert lim.effective_cpus == 0.5
    assert lim.cpu_count == 1
    assert lim.cpuset_cpus == usable_cpus(0, 1, 2, 3)
    assert lim.pids_max == 100


def test_docker_v1_limits(tree, backend):
    procfs, rootfs = tree("docker-v1")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes == 268435456
    assert lim.cpu_quota_cores == 2.0
    assert lim.pids_max == 512
    assert lim.cpuset_cpus == tuple(sorted(os.sched_getaffinity(0)))


def test_limit_above_host_memory_is_unlimited(tree, backend):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.current(procfs, rootfs)
    assert pycgroup.limits(cg, backend).memory_max_bytes == 67108864
    with open(os.path.join(cg.paths["unified"], "memory.max"), "w") as f:
        f.write(f"{64 * 2**30}\n")  # 64 GiB on an 8 GiB host
    lim = pycgroup.limits(cg, backend)
    assert lim.memory_max_bytes == math.inf
    assert lim.effective_memory_bytes == lim.host_memory_bytes == 8039424 * 1024


def test_no_cgroup_falls_back_to_the_host(tree, backend):
    procfs, rootfs = tree("none")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes == math.inf and lim.cpu_quota_cores == math.inf
    assert lim.effective_memory_bytes == 8039424 * 1024
    assert lim.cpu_count == len(os.sched_getaffinity(0))


def test_limits_are_frozen(tree):
    procfs, rootfs = tree("v2")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs))
    with pytest.raises(AttributeError):
        lim.cpu_count = 64


def test_available_memory(tree, backend):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    # effective 512 MiB - working set (157286400 - 41943040) is below MemAvailable.
    assert pycgroup.available_memory(cg, backend) == 536870912 - (157286400 - 41943040)


@pytest.mark.parametrize("text, cpus", [("0-3,8,10-11\n", (0, 1, 2, 3, 8, 10, 11)), ("\n", ())])
def test_cpu_list(text, cpus):
    from pycgroup.limits import parse_cpu_list

    assert parse_cpu_list(text) == cpus
