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


def test_limit_equal_to_host_memory_is_unlimited_and_one_page_less_is_not(tree, backend):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.current(procfs, rootfs)
    host = 8039424 * 1024
    for written, expected in ((host, math.inf), (host - 4096, host - 4096),
                              (host + 4096, math.inf)):
        with open(os.path.join(cg.paths["unified"], "memory.max"), "w") as f:
            f.write(f"{written}\n")
        lim = pycgroup.limits(cg, backend)
        assert lim.memory_max_bytes == expected
        assert lim.effective_memory_bytes == min(host, written)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_v1_swap_is_memsw_minus_memory_capped_by_the_hosts_swap(tree, backend):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    stat = os.path.join(cg.paths["memory"], "memory.stat")
    with open(stat) as f:
        text = f.read()
    memsw = 536870912 + 268435456
    write(stat, text.replace("hierarchical_memsw_limit 9223372036854771712",
                             f"hierarchical_memsw_limit {memsw}"))
    lim = pycgroup.limits(cg, backend)
    assert lim.swap_max_bytes == 268435456  # the cgroup's allowance
    assert lim.host_swap_bytes == 0
    assert lim.effective_swap_bytes == 0  # a swapless host: none of it can be used
    meminfo = os.path.join(procfs, "meminfo")
    with open(meminfo) as f:
        text = f.read()
    write(meminfo, text.replace("SwapTotal:             0 kB", "SwapTotal:        102400 kB"))
    lim = pycgroup.limits(cg, backend)
    assert (lim.host_swap_bytes, lim.effective_swap_bytes) == (104857600, 104857600)
    write(meminfo, text.replace("SwapTotal:             0 kB", "SwapTotal:       1048576 kB"))
    assert pycgroup.limits(cg, backend).effective_swap_bytes == 268435456


def test_v2_unlimited_swap_on_a_host_with_swap(tree, backend):
    procfs, rootfs = tree("dotdot")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.swap_max_bytes == math.inf  # no memory.swap.max anywhere: nothing limits it
    assert lim.host_swap_bytes == lim.effective_swap_bytes == 2097152 * 1024


def test_dotdot_path_gets_the_tighter_parents_limits(tree, backend):
    procfs, rootfs = tree("dotdot")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    # 192 MiB in the cgroup under a 128 MiB, half-core parent: the parent's bind.
    assert lim.memory_max_bytes == 134217728
    assert lim.cpu_quota_cores == 0.5
    assert lim.problems and "found it by the cgroup.procs" in lim.problems[0]


def test_missing_directory_is_unavailable_not_unlimited_nor_the_parents(tree, backend):
    import shutil

    procfs, rootfs = tree("v2")
    shutil.rmtree(os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service"))
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    # The parent says 1 GiB and 0.5 cores; the process's own cgroup cannot be read.
    assert lim.memory_max_bytes is None and lim.swap_max_bytes is None
    assert lim.cpu_quota_cores is None and lim.pids_max is None
    assert lim.effective_memory_bytes == lim.host_memory_bytes
    assert any("memory limits are unavailable" in p for p in lim.problems)


def test_container_root_seen_from_the_host(tree, backend):
    procfs, rootfs = tree("host-view")
    lim = pycgroup.limits(pycgroup.of_pid(4321, procfs, rootfs), backend)
    assert lim.memory_max_bytes == 209715200
    assert lim.memory_high_bytes == math.inf and lim.swap_max_bytes == math.inf
    assert lim.effective_swap_bytes == 0  # SwapTotal 0
    assert (lim.memory_low_bytes, lim.memory_min_bytes) == (104857600, 0)
    assert lim.memory_soft_limit_bytes is None  # a v1 file
    assert lim.cpu_quota_cores == 0.5 and lim.pids_max == 64
    assert (lim.cpu_weight, lim.cpu_shares) == (39, None)
    # Cpus_allowed_list of <procfs>/4321/status, not this machine's PID 4321's affinity.
    assert lim.cpuset_cpus == (0, 2, 3)
    assert lim.io_max == {"8:16": {"rbps": 2097152, "wbps": math.inf, "riops": math.inf,
                                   "wiops": 120}}


def test_io_max_takes_the_tightest_of_each_key_up_the_ancestry(tree):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    write(os.path.join(cg.paths["unified"], "io.max"), "8:16 rbps=2097152 wbps=max riops=max wiops=120\n")
    write(os.path.join(os.path.dirname(cg.paths["unified"]), "io.max"),
          "8:16 rbps=4194304 wbps=1048576 riops=max wiops=max\n8:0 rbps=max wbps=max riops=10 wiops=max\n")
    assert pycgroup.limits(cg).io_max == {
        "8:16": {"rbps": 2097152, "wbps": 1048576, "riops": math.inf, "wiops": 120},
        "8:0": {"rbps": math.inf, "wbps": math.inf, "riops": 10, "wiops": math.inf}}


def test_v1_weight_is_converted_from_shares_and_the_raw_value_kept(tree, backend):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    for shares, weight in (("1024", 39), ("2", 1), ("262144", 10000), ("512", 20)):
        write(os.path.join(cg.paths["cpu"], "cpu.shares"), shares + "\n")
        lim = pycgroup.limits(cg, backend)
        assert (lim.cpu_shares, lim.cpu_weight) == (int(shares), weight)
        assert cg.read(["cpu.weight", "cpu.shares"], backend) == {
            "cpu.weight": weight, "cpu.shares": int(shares)}
    write(os.path.join(cg.paths["memory"], "memory.soft_limit_in_bytes"), "268435456\n")
    assert pycgroup.limits(cg, backend).memory_soft_limit_bytes == 268435456
    assert pycgroup.limits(cg, backend).memory_low_bytes is None  # v1 has no memory.low


def test_v1_mount_root_not_slash_says_a_parents_quota_cannot_be_seen(tree, backend):
    procfs, rootfs = tree("docker-v1")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert any("tighter CPU quota of a cgroup above it cannot be seen" in p
               and "pycgroup info --pid" in p for p in lim.problems)
    procfs, rootfs = tree("v1")
    assert pycgroup.limits(pycgroup.current(procfs, rootfs), backend).problems == ()


NAMESPACE_ROOT = (
    "unified: the cgroup2 mount shows the root of a cgroup namespace as /, not the host's "
    "root cgroup (its directory has cgroup.type, which a root cgroup lacks), so a tighter "
    "memory, CPU or pids limit of a cgroup above it cannot be seen from here (cgroup v2 has "
    "no hierarchical limit to read instead); on the host, `pycgroup info --pid <host pid>` "
    "sees it")


def test_v2_cgroup_namespace_root_says_a_parents_limits_cannot_be_seen(tree, backend):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.paths["unified"] == cg.mount_roots["unified"] and not cg.is_v2_root()
    lim = pycgroup.limits(cg, backend)
    assert lim.memory_max_bytes == 67108864  # its own: a parent's cannot be read
    assert lim.problems == (NAMESPACE_ROOT,)
    # Below the namespace's root (systemd in the container moved it): still hidden.
    os.mkdir(os.path.join(rootfs, "sys/fs/cgroup/init.scope"))
    write(os.path.join(procfs, "self", "cgroup"), "0::/init.scope\n")
    assert pycgroup.limits(pycgroup.current(procfs, rootfs), backend).problems == (
        NAMESPACE_ROOT,)


def test_v2_root_directories_without_cgroup_type_say_nothing_is_hidden(tree, backend):
    """The host's root cgroup looks like a namespace's root in mountinfo; it lacks
    cgroup.type, and every cgroup is below it: no limit is hidden, on the root or below."""
    for name in ("v2-root", "v2"):
        procfs, rootfs = tree(name)
        assert pycgroup.limits(pycgroup.current(procfs, rootfs), backend).problems == ()
    procfs, rootfs = tree("cgroupns")
    os.remove(os.path.join(rootfs, "sys/fs/cgroup/cgroup.type"))
    assert pycgroup.limits(pycgroup.current(procfs, rootfs), backend).problems == ()


def test_v2_mount_of_a_subtree_says_so(tree, backend):
    procfs, rootfs = tree("host-view")
    write(os.path.join(rootfs, "sys/fs/cgroup/cgroup.type"), "domain\n")
    problems = pycgroup.limits(pycgroup.of_pid(4321, procfs, rootfs), backend).problems
    assert problems == (NAMESPACE_ROOT.replace(
        "the root of a cgroup namespace as /", "the subtree /system.slice/docker-abc.scope"),)


def test_v2_root_has_no_limits_and_they_are_unlimited(tree, backend):
    procfs, rootfs = tree("v2-root")
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes == lim.cpu_quota_cores == lim.pids_max == math.inf
    assert lim.memory_high_bytes == lim.swap_max_bytes == math.inf
    assert lim.problems == ()


@pytest.mark.parametrize("text", ["0-3,*4^2\n", "1,8-7\n", "0-\n", "-3\n", "a\n", "0,,1\n"])
def test_malformed_cpu_list_is_a_parse_error_naming_the_file(text):
    from pycgroup.errors import ParseError
    from pycgroup.limits import parse_cpu_list

    with pytest.raises(ParseError) as info:
        parse_cpu_list(text, "/cg/cpuset.cpus.effective")
    assert info.value.path == "/cg/cpuset.cpus.effective"


@pytest.mark.parametrize("text, cpus", [("7\n", (7,)), ("3-3\n", (3,)), ("2-4,0\n", (0, 2, 3, 4)),
                                        ("1,1-2\n", (1, 2)), ("", ())])
def test_cpu_list_edges(text, cpus):
    from pycgroup.limits import parse_cpu_list

    assert parse_cpu_list(text) == cpus


def test_malformed_cpuset_file_raises_from_limits(tree, backend):
    from pycgroup.errors import ParseError

    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    path = os.path.join(cg.paths["cpuset"], "cpuset.effective_cpus")
    write(path, "1,8-7\n")
    with pytest.raises(ParseError, match="reversed CPU range") as info:
        pycgroup.limits(cg, backend)
    assert info.value.path == path


def test_removed_cgroup_raises_cgroup_gone(tree, backend):
    import errno
    import shutil

    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    shutil.rmtree(cg.paths["unified"])
    with pytest.raises(pycgroup.CgroupGone) as info:
        pycgroup.limits(cg, backend)
    assert info.value.errno == errno.ENOENT and info.value.filename == cg.paths["unified"]
    assert isinstance(info.value, OSError) and isinstance(info.value, pycgroup.Error)


def test_unlimited_is_math_inf():
    assert pycgroup.UNLIMITED == math.inf


def test_cpu_list_errors_name_line_1():
    from pycgroup.errors import ParseError
    from pycgroup.limits import parse_cpu_list

    for text, message in (("1,x\n", "'x' is not a CPU number or range"),
                          ("3-1\n", "reversed CPU range '3-1'")):
        with pytest.raises(ParseError, match=message) as info:
            parse_cpu_list(text, "/cg/cpuset.cpus")
        assert (info.value.path, info.value.line) == ("/cg/cpuset.cpus", 1)
    with pytest.raises(ParseError, match="^cpu list:1: "):
        parse_cpu_list("3-1")


def test_ancestry_walks_to_the_mount_root_and_no_further():
    from pycgroup.limits import ancestry

    cg = pycgroup.CGroup("v2", {"unified": "/cg/a/b"}, {"unified": "/cg"})
    assert ancestry(cg, "unified") == ["/cg/a/b", "/cg/a", "/cg"]
    cg = pycgroup.CGroup("v2", {"unified": "/a/b"}, {"unified": "/"})
    assert ancestry(cg, "unified") == ["/a/b", "/a", "/"]
    # No mount root known, or a leaf outside it: the leaf alone.
    assert ancestry(pycgroup.CGroup("v1", {"memory": "/m/x"}), "memory") == ["/m/x"]
    cg = pycgroup.CGroup("v1", {"memory": "/m/x"}, {"memory": "/elsewhere"})
    assert ancestry(cg, "memory") == ["/m/x"]
    assert ancestry(cg, "cpu") == []


def test_quota_without_a_period_or_with_period_zero_limits_nothing(tree, backend):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    os.remove(os.path.join(cg.paths["cpu"], "cpu.cfs_period_us"))
    lim = pycgroup.limits(cg, backend)
    assert lim.cpu_quota_cores == math.inf  # the parent's quota is -1
    write(os.path.join(cg.paths["cpu"], "cpu.cfs_period_us"), "0\n")
    assert pycgroup.limits(cg, backend).cpu_quota_cores == math.inf


def test_available_memory_defaults_and_floor(tree):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    assert pycgroup.available_memory(cg) == pycgroup.available_memory(cg, "pure")
    write(os.path.join(cg.paths["memory"], "memory.limit_in_bytes"), "4096\n")
    assert pycgroup.available_memory(cg) == 0  # the working set is above the limit
    assert 0 < pycgroup.available_memory() <= pycgroup.limits().effective_memory_bytes


def test_affinity_of_another_procfs_comes_from_its_status(tree, backend):
    procfs, rootfs = tree("v1")  # cpuset.effective_cpus 0-1
    cg = pycgroup.current(procfs, rootfs)
    with open(os.path.join(procfs, "self", "status"), "a") as f:
        f.write("Cpus_allowed_list:\t1,5\n")
    lim = pycgroup.limits(cg, backend)
    assert lim.cpuset_cpus == (1,) and lim.effective_cpus == 1.0 and lim.cpu_count == 1


def test_affinity_unknown_for_a_pid_of_another_procfs_is_a_problem(tree, backend):
    procfs, rootfs = tree("host-view")
    status = os.path.join(procfs, "4321", "status")
    write(status, "Name:\tpy\nPid:\t4321\nNSpid:\t4321\t1\n")
    write(os.path.join(rootfs, "sys/fs/cgroup/cpuset.cpus.effective"), "2-3\n")
    lim = pycgroup.limits(pycgroup.of_pid(4321, procfs, rootfs), backend)
    assert lim.cpuset_cpus == (2, 3)  # the cpuset alone, not this machine's PID 4321's
    assert lim.problems == (f"cpus: {procfs}/4321/status has no Cpus_allowed_list, and PID "
                            "4321 of another procfs cannot be asked for its affinity here; "
                            "the cpuset alone counts",)


def test_affinity_on_this_machines_proc_is_the_kernels(live_cgroups):
    import subprocess
    import sys

    cpu = min(os.sched_getaffinity(0))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    try:
        lim = pycgroup.limits(pycgroup.of_pid(child.pid))
        assert lim.cpuset_cpus == (cpu,) and lim.cpu_count == 1
    finally:
        child.kill()
        child.wait()


def test_meminfo_without_memtotal_is_a_parse_error_naming_it(tree, backend):
    from pycgroup.errors import ParseError

    procfs, rootfs = tree("v2")
    meminfo = os.path.join(procfs, "meminfo")
    with open(meminfo) as f:
        text = f.read()
    write(meminfo, text.replace("MemTotal:        8039424 kB\n", ""))
    with pytest.raises(ParseError, match=": no MemTotal line$") as info:
        pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert info.value.path == meminfo


def test_missing_directory_swap_on_hosts_with_and_without_swap(tree, backend):
    import shutil

    procfs, rootfs = tree("v2")  # SwapTotal 0
    leaf = os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service")
    shutil.rmtree(leaf)
    cg = pycgroup.current(procfs, rootfs)
    lim = pycgroup.limits(cg, backend)
    # The cgroup's allowance is unknown, but a swapless host lets nobody swap.
    assert (lim.swap_max_bytes, lim.host_swap_bytes, lim.effective_swap_bytes) == (None, 0, 0)
    assert [p for p in lim.problems if "limits are unavailable" in p] == [
        f"{name} limits are unavailable: {leaf} does not exist"
        for name in ("memory", "cpu", "pids")]
    meminfo = os.path.join(procfs, "meminfo")
    with open(meminfo) as f:
        text = f.read()
    write(meminfo, text.replace("SwapTotal:             0 kB", "SwapTotal:        102400 kB"))
    lim = pycgroup.limits(cg, backend)
    assert (lim.host_swap_bytes, lim.effective_swap_bytes) == (104857600, None)
    write(meminfo, text.replace("SwapTotal:             0 kB\n", ""))
    lim = pycgroup.limits(cg, backend)
    assert (lim.host_swap_bytes, lim.effective_swap_bytes) == (None, None)


def test_v1_memsw_equal_to_the_memory_limit_allows_no_swap(tree, backend):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    stat = os.path.join(cg.paths["memory"], "memory.stat")
    with open(stat) as f:
        text = f.read()
    write(stat, text.replace("hierarchical_memsw_limit 9223372036854771712",
                             "hierarchical_memsw_limit 536870912"))
    assert pycgroup.limits(cg, backend).swap_max_bytes == 0


def test_v1_cgroup_with_no_hierarchy_root_known_has_no_hidden_quota_problem(tree, backend):
    procfs, rootfs = tree("v1")
    found = pycgroup.current(procfs, rootfs)
    cg = pycgroup.CGroup("v1", found.paths, found.mount_roots, procfs=procfs)
    assert cg.hierarchy_roots == {}
    assert pycgroup.limits(cg, backend).problems == ()


def test_v1_hidden_quota_problem_says_where_the_hierarchy_is_mounted_from(tree, backend):
    procfs, rootfs = tree("docker-v1")
    cg = pycgroup.current(procfs, rootfs)
    root = cg.hierarchy_roots["cpu"]
    assert root != "/"
    assert pycgroup.limits(cg, backend).problems == (
        f"cpu: the cpu hierarchy is mounted from {root}, so a tighter CPU quota of a cgroup "
        "above it cannot be seen from here (the kernel does not expose it; memory limits are "
        "seen through memory.stat's hierarchical_memory_limit); on the host, `pycgroup info "
        "--pid <host pid>` sees it",)


def test_unknown_affinity_and_no_cpuset_counts_every_cpu_of_this_machine(tree, backend):
    procfs, rootfs = tree("host-view")
    write(os.path.join(procfs, "4321", "status"), "Name:\tpy\nPid:\t4321\nNSpid:\t4321\t1\n")
    cg = pycgroup.of_pid(4321, procfs, rootfs)
    assert not os.path.exists(os.path.join(cg.paths["unified"], "cpuset.cpus.effective"))
    lim = pycgroup.limits(cg, backend)
    assert lim.cpuset_cpus == tuple(range(os.cpu_count()))
    assert lim.cpu_count == min(os.cpu_count(), math.ceil(lim.cpu_quota_cores))


def test_own_affinity_is_the_calling_threads(tree, backend):
    procfs, rootfs = tree("v1")  # cpuset.effective_cpus 0-1
    cg = pycgroup.CGroup("v1", pycgroup.current(procfs, rootfs).paths)  # procfs /proc
    before = os.sched_getaffinity(0)
    cpu = max(before & {0, 1}) if before & {0, 1} else None
    if cpu is None or len(before) < 2:
        pytest.skip("needs two usable CPUs, one of them 0 or 1")
    os.sched_setaffinity(0, {cpu})
    try:
        lim = pycgroup.limits(cg, backend)
    finally:
        os.sched_setaffinity(0, before)
    assert lim.cpuset_cpus == (cpu,) and lim.cpu_count == 1


def test_malformed_cpus_allowed_list_is_a_parse_error_naming_the_status_file(tree, backend):
    from pycgroup.errors import ParseError

    procfs, rootfs = tree("v1")
    status = os.path.join(procfs, "self", "status")
    with open(status, "a") as f:
        f.write("Cpus_allowed_list:\t3-1\n")
    with pytest.raises(ParseError, match="reversed CPU range") as info:
        pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert info.value.path == status


def test_removed_cgroup_error_says_so(tree, backend):
    import shutil

    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    shutil.rmtree(cg.paths["unified"])
    with pytest.raises(pycgroup.CgroupGone) as info:
        pycgroup.limits(cg, backend)
    assert info.value.strerror == "the cgroup was removed"


def test_in_a_cgroup_whose_hierarchy_is_not_mounted_limits_are_unknown_not_unlimited(
        tree, backend):
    procfs, rootfs = tree("none")  # no cgroup mount at all
    write(os.path.join(procfs, "self", "cgroup"), "0::/kubepods/pod1/app\n")
    cg = pycgroup.current(procfs, rootfs)
    assert (cg.mode, cg.unmounted) == ("none", ("unified",))
    lim = pycgroup.limits(cg, backend)
    assert lim.memory_max_bytes is lim.cpu_quota_cores is lim.pids_max is None
    assert lim.swap_max_bytes is None and lim.effective_swap_bytes == 0  # SwapTotal 0
    assert lim.effective_memory_bytes == lim.host_memory_bytes == 8039424 * 1024
    assert lim.cpu_count == len(os.sched_getaffinity(0))
    assert lim.problems == ("unified: hierarchy 0 is not mounted", *(
        f"{name} limits are unavailable: the process is in a {name} cgroup, but its "
        "hierarchy is not mounted here" for name in ("memory", "cpu", "pids")))


def test_an_unmounted_v1_hierarchy_is_not_read_from_the_v2_one(tree, backend):
    procfs, rootfs = tree("v2")  # memory.max 1 GiB, cpu 0.5, pids 100 up the v2 ancestry
    with open(os.path.join(procfs, "self", "cgroup"), "a") as f:
        f.write("4:memory:/system.slice/app.service\n")  # on v1, where nothing mounts it
    lim = pycgroup.limits(pycgroup.current(procfs, rootfs), backend)
    assert lim.memory_max_bytes is lim.memory_high_bytes is lim.swap_max_bytes is None
    assert lim.memory_low_bytes is None
    assert lim.cpu_quota_cores == 0.5 and lim.pids_max == 100
    assert lim.problems == ("memory: hierarchy 4 is not mounted",
                            "memory limits are unavailable: the process is in a memory cgroup, "
                            "but its hierarchy is not mounted here")
