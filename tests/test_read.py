"""Snapshot reads on fixture trees: every metric's value, unit and v1/v2 source."""

import math
import os

import pytest

import pycgroup
from pycgroup.catalogue import CLOCK_TICKS, PAGE_SIZE
from pycgroup.errors import ParseError

PROC = {
    "proc.utime_usec": 250 * 1_000_000 // CLOCK_TICKS,
    "proc.stime_usec": 50 * 1_000_000 // CLOCK_TICKS,
    "proc.rss_bytes": 3000 * PAGE_SIZE,
    "host.mem.total": 8039424 * 1024,
    "host.mem.available": 6291456 * 1024,
}
V1 = {
    "memory.current": 157286400,
    "memory.max": 536870912,
    "memory.high": None,
    "memory.peak": 209715200,
    "memory.swap.current": 1048576,
    "memory.working_set": 157286400 - 41943040,
    "memory.stat.anon": 52428800,
    "memory.stat.file": 104857600,
    "memory.stat.inactive_file": 41943040,
    "memory.stat.anon_thp": 2097152,
    "memory.stat.kernel": None,
    "memory.events.low": None,
    "memory.events.high": None,
    "memory.events.max": 3,
    "memory.events.oom": None,
    "memory.events.oom_kill": 1,
    "cpu.stat.usage_usec": 5000000,  # 5000000123 ns
    "cpu.stat.user_usec": 4000000,
    "cpu.stat.system_usec": 1000000,
    "cpu.stat.nr_periods": 1200,
    "cpu.stat.nr_throttled": 300,
    "cpu.stat.throttled_usec": 4500000,  # throttled_time 4500000000 ns
    "cpu.stat.nr_bursts": 0,
    "cpu.stat.burst_usec": 0,
    "cpu.max.quota_usec": 150000,
    "cpu.max.period_usec": 100000,
    "cpu.pressure.some.total": None,
    "io.pressure.full.total": None,
    "pids.current": 7,
    "pids.max": 100,
    **PROC,
}
V2 = {
    "memory.current": 157286400,
    "memory.max": math.inf,  # "max"
    "memory.high": 805306368,
    "memory.peak": 209715200,
    "memory.swap.current": 1048576,
    "memory.working_set": 157286400 - 41943040,
    "memory.stat.anon": 52428800,
    "memory.stat.kernel": 4194304,
    "memory.stat.inactive_file": 41943040,
    "memory.stat.pgfault": 2000,
    "memory.events.low": 0,
    "memory.events.high": 12,
    "memory.events.max": 3,
    "memory.events.oom": 1,
    "memory.events.oom_kill": 1,
    "cpu.stat.usage_usec": 5000000,
    "cpu.stat.user_usec": 4000000,
    "cpu.stat.system_usec": 1000000,
    "cpu.stat.nr_periods": 1200,
    "cpu.stat.nr_throttled": 300,
    "cpu.stat.throttled_usec": 4500000,
    "cpu.stat.nr_bursts": 0,
    "cpu.stat.burst_usec": 0,
    "cpu.max.quota_usec": math.inf,
    "cpu.max.period_usec": 100000,
    "cpu.pressure.some.total": 123456,
    "cpu.pressure.full.total": 65432,
    "memory.pressure.some.total": 777,
    "memory.pressure.full.total": 555,
    "io.pressure.some.total": 9000,
    "io.pressure.full.total": 8000,
    "pids.current": 7,
    "pids.max": math.inf,
    **PROC,
}
HYBRID = {
    "memory.max": math.inf,  # v1's page-rounded LONG_MAX
    "cpu.max.quota_usec": math.inf,  # cfs_quota_us -1
    "cpu.stat.usage_usec": 5000000,  # from v1 cpuacct, not the unified cpu.stat
    "cpu.pressure.some.total": 4242,
    "cpu.pressure.full.total": 2121,
    "memory.pressure.some.total": 10,
    "io.pressure.full.total": 20,
    "pids.current": None,  # the pids hierarchy is in the fixture's cgroup file but has no files
}


@pytest.mark.parametrize("name, expected", [("v1", V1), ("v2", V2), ("hybrid", HYBRID)])
def test_every_metric(tree, backend, name, expected):
    procfs, rootfs = tree(name)
    with pycgroup.current(procfs, rootfs) as cg:
        assert cg.read(list(expected), backend=backend) == expected


def test_docker_on_v1(tree, backend):
    procfs, rootfs = tree("docker-v1")
    with pycgroup.current(procfs, rootfs) as cg:
        assert cg.read(["memory.max", "cpu.max.quota_usec", "pids.current"], backend) == {
            "memory.max": 268435456, "cpu.max.quota_usec": 200000, "pids.current": 3}


def test_of_pid_reads_that_process(tree, backend):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.of_pid(78, procfs, rootfs)
    assert cg.read(["proc.utime_usec"], backend) == {"proc.utime_usec": None}
    assert "proc/78/stat does not exist" in cg.explain("proc.utime_usec")


def test_reads_follow_changing_files(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    leaf = cg.paths["unified"]
    assert cg.read(["memory.current"], backend) == {"memory.current": 157286400}
    with open(os.path.join(leaf, "memory.current"), "w") as f:
        f.write("1\n")
    assert cg.read(["memory.current"], backend) == {"memory.current": 1}


def test_unknown_name_suggests_close_matches(tree):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    with pytest.raises(KeyError, match="memory.current"):
        cg.read(["memory.curent"])
    with pytest.raises(KeyError, match="unknown metric 'bogus'"):
        cg.read(["bogus"])


def test_unavailable_metric_explains_why(tree):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.explain("memory.high") == "memory.high: unavailable: cgroup v1 has no memory.high"
    assert "needs cgroup v2" in cg.explain("cpu.pressure.some.total")
    assert cg.explain("cpu.stat.usage_usec").endswith("cpuacct.usage ÷1000")
    assert "total_rss" in cg.explain("memory.stat.anon")


def test_absent_key_is_missing_and_explained(tree, backend):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.read(["cpu.stat.nr_throttled", "cpu.stat.usage_usec"], backend) == {
        "cpu.stat.nr_throttled": None, "cpu.stat.usage_usec": 10}
    assert "has no key 'nr_throttled'" in cg.explain("cpu.stat.nr_throttled")


def test_metrics_lists_what_is_available(tree):
    procfs, rootfs = tree("v2")
    names = pycgroup.current(procfs, rootfs).metrics()
    assert "memory.stat.kernel" in names and "cpu.pressure.full.total" in names
    assert "memory.stat.zswap" not in names  # documented, but not in this file
    procfs, rootfs = tree("v1")
    names = pycgroup.current(procfs, rootfs).metrics()
    assert "memory.high" not in names and "memory.stat.anon" in names
    assert "cpu.pressure.some.total" not in names


def test_malformed_file_raises_parse_error_naming_it(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    path = os.path.join(cg.paths["unified"], "memory.events")
    with open(path, "w") as f:
        f.write("low 0\nhigh twelve\n")
    with pytest.raises(ParseError) as info:
        cg.read(["memory.events.high"], backend)
    assert (info.value.path, info.value.line) == (path, 2)


def test_removed_cgroup_raises_an_oserror_naming_the_file(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    cg.read(["memory.current"], backend)
    cg.close()
    os.remove(os.path.join(cg.paths["unified"], "memory.current"))
    assert cg.read(["memory.current"], backend) == {"memory.current": None}


def test_new_limit_metrics_on_v2(tree, backend):
    procfs, rootfs = tree("host-view")
    with pycgroup.of_pid(4321, procfs, rootfs) as cg:
        assert cg.read(["memory.swap.max", "memory.low", "memory.min", "cpu.weight",
                        "cpu.shares", "memory.soft_limit", "memory.memsw.max"], backend) == {
            "memory.swap.max": math.inf, "memory.low": 104857600, "memory.min": 0,
            "cpu.weight": 39, "cpu.shares": None, "memory.soft_limit": None,
            "memory.memsw.max": None}
        assert "cgroup v2 has cpu.weight instead" in cg.explain("cpu.shares")
        assert "memory.low is its counterpart" in cg.explain("memory.soft_limit")


def test_v1_swap_max_is_derived_from_memsw(tree, backend):
    procfs, rootfs = tree("v1")
    with pycgroup.current(procfs, rootfs) as cg:
        leaf = cg.paths["memory"]
        with open(os.path.join(leaf, "memory.memsw.limit_in_bytes"), "w") as f:
            f.write(f"{536870912 + 1048576}\n")
        assert cg.read(["memory.swap.max", "memory.max"], backend) == {
            "memory.swap.max": 1048576, "memory.max": 536870912}
        assert "memory.memsw.max - memory.max" in cg.explain("memory.swap.max")
        with open(os.path.join(leaf, "memory.memsw.limit_in_bytes"), "w") as f:
            f.write("9223372036854771712\n")
        cg.close()
        assert cg.read(["memory.swap.max"], backend) == {"memory.swap.max": math.inf}
        assert "cgroup v1 has no memory.min" in cg.explain("memory.min")


def test_v2_root_memory_current_is_derived_from_meminfo(tree, backend):
    procfs, rootfs = tree("v2-root")
    with pycgroup.current(procfs, rootfs) as cg:
        assert cg.is_v2_root()
        got = cg.read(["memory.current", "memory.peak", "pids.current",
                       "memory.working_set"], backend)
        assert got == {"memory.current": (8039424 - 1203456) * 1024, "memory.peak": None,
                       "pids.current": None, "memory.working_set": None}
        explained = cg.explain("memory.current")
        assert explained.startswith("memory.current: derived from host.mem.total, "
                                    "host.mem.free as /proc/meminfo MemTotal - MemFree")
        assert "memory.current" in cg.metrics()
        # The root has no pressure files either: /proc/pressure is the whole system's.
        assert cg.read(["memory.swap.current", "cpu.pressure.some.total",
                        "memory.pressure.full.total", "io.pressure.some.total"], backend) == {
            "memory.swap.current": (2097152 - 1048576) * 1024, "cpu.pressure.some.total": 111,
            "memory.pressure.full.total": 44, "io.pressure.some.total": None}
        assert cg.explain("cpu.pressure.some.total").endswith("proc/pressure/cpu key 'some'")


def test_namespace_root_is_not_the_v2_root(tree, backend):
    procfs, rootfs = tree("cgroupns")
    with pycgroup.current(procfs, rootfs) as cg:
        assert not cg.is_v2_root()
        os.remove(os.path.join(cg.paths["unified"], "memory.current"))
        assert cg.read(["memory.current"], backend) == {"memory.current": None}


def test_removed_cgroup_directory_raises_cgroup_gone(tree, backend):
    import errno
    import shutil

    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    shutil.rmtree(cg.paths["unified"])
    with pytest.raises(pycgroup.CgroupGone) as info:
        cg.read(["memory.current"], backend)
    assert info.value.errno == errno.ENOENT and info.value.filename == cg.paths["unified"]


def test_directory_missing_at_discovery_reads_as_unavailable(tree, backend):
    import shutil

    procfs, rootfs = tree("v2")
    shutil.rmtree(os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service"))
    cg = pycgroup.current(procfs, rootfs)
    assert cg.read(["memory.max"], backend) == {"memory.max": None}
    assert "does not exist" in cg.explain("memory.max")


def test_io_max_and_io_stat_per_device_and_key(tree, backend):
    procfs, rootfs = tree("host-view")
    with pycgroup.of_pid(4321, procfs, rootfs) as cg:
        names = ["io.max.8:16.rbps", "io.max.8:16.wbps", "io.max.8:16.wiops",
                 "io.stat.8:16.wios", "io.stat.8:0.dbytes", "io.stat.8:0.nokey",
                 "io.max.8:0.rbps"]
        assert cg.read(names, backend) == {
            "io.max.8:16.rbps": 2097152, "io.max.8:16.wbps": math.inf,
            "io.max.8:16.wiops": 120, "io.stat.8:16.wios": 353,
            "io.stat.8:0.dbytes": 50331648, "io.stat.8:0.nokey": None,
            "io.max.8:0.rbps": None}
        assert cg.explain("io.stat.8:16.rios").endswith("io.stat device 8:16 key 'rios'")
        assert "unavailable" in cg.explain("io.max.8:0.rbps")
        listed = cg.metrics()
        assert "io.stat.8:0.rbytes" in listed and "io.max.8:16.riops" in listed
        assert "io.max.8:0.rbps" not in listed
    procfs, rootfs = tree("v1")
    with pycgroup.current(procfs, rootfs) as cg:
        assert cg.read(["io.stat.8:0.rbytes"], backend) == {"io.stat.8:0.rbytes": None}
        assert "blkio.throttle" in cg.explain("io.stat.8:0.rbytes")


def test_malformed_io_file_raises_parse_error_naming_it(tree):
    from pycgroup.iofiles import parse_io_lines

    with pytest.raises(ParseError) as info:
        parse_io_lines("8:16 rbps=1\n8-16 rbps=2\n", "/cg/io.max")
    assert (info.value.path, info.value.line) == ("/cg/io.max", 2)
    with pytest.raises(ParseError, match="'rbps' is not key=value"):
        parse_io_lines("8:16 rbps\n", "/cg/io.max")
    with pytest.raises(ParseError):
        parse_io_lines("8:16 rbps=-1\n", "/cg/io.max")


def test_live_removed_cgroup_raises_cgroup_gone_with_enodev(live_cgroups, backend):
    import errno
    import subprocess
    import sys

    live = live_cgroups("memory")
    child = live.popen([sys.executable, "-c", "import time; print('ready', flush=True); "
                        "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        cg = pycgroup.of_pid(child.pid)
        assert cg.read(["memory.current"], backend)["memory.current"] > 0
    finally:
        child.kill()
        child.wait()
    os.rmdir(live.leaves["memory"])  # the files stay open in cg's reader
    with pytest.raises(pycgroup.CgroupGone) as info:
        cg.read(["memory.current"], backend)
    assert info.value.errno in (errno.ENODEV, errno.ENOENT)
    assert info.value.filename.startswith(live.leaves["memory"])
    with pytest.raises(pycgroup.CgroupGone):
        pycgroup.limits(cg, backend)


def test_live_v1_weight_and_soft_limit(live_cgroups, backend):
    import json

    live = live_cgroups("memory", "cpu")
    live.set("cpu", "cpu.shares", 512)
    live.set("memory", "memory.soft_limit_in_bytes", 64 * 2**20)
    done = live.run("import json, pycgroup; cg = pycgroup.current(); "
                    f"lim = pycgroup.limits(cg, {backend!r}); "
                    "print(json.dumps([lim.cpu_shares, lim.cpu_weight, "
                    "lim.memory_soft_limit_bytes, "
                    f"cg.read(['cpu.weight', 'memory.soft_limit'], {backend!r})]))")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [512, 20, 64 * 2**20,
                                       {"cpu.weight": 20, "memory.soft_limit": 64 * 2**20}]


@pytest.mark.parametrize("name, kind, unit", [
    ("gpu0.energy_mj", "counter", "mJ"), ("gpu1.power_mw", "gauge", "mW"),
    ("gpu0.violation.power_ns", "counter", "ns"), ("gpu0.util.gpu", "gauge", "percent"),
    ("gpu0.memory.used", "gauge", "bytes"), ("gpu0.clock_event_reasons", "gauge", "bitmask"),
    ("io.stat.8:0.rbytes", "counter", "count"), ("io.max.8:0.rbps", "gauge", "count"),
    ("memory.stat.pgfault", "counter", "count"), ("memory.stat.anon", "gauge", "bytes"),
    ("memory.working_set", "gauge", "bytes"), ("host.mem.total", "gauge", "bytes"),
    ("host.swap.free", "gauge", "bytes"), ("host.swap.total", "gauge", "bytes"),
    ("proc.utime_usec", "counter", "us"), ("proc.rss_bytes", "gauge", "bytes"),
    ("proc.max_rss_bytes", "gauge", "bytes"), ("cpu.stat.nr_periods", "counter", "count"),
    ("memory.events.oom", "counter", "count"), ("pids.max", "gauge", "count"),
    ("pids.current", "gauge", "count"), ("cpu.weight", "gauge", "count"),
    ("cpu.pressure.some.total", "counter", "us"), ("io.pressure.full.total", "counter", "us"),
    ("memory.max", "gauge", "bytes"), ("cpu.max.quota_usec", "gauge", "us"),
])
def test_kind_and_unit(name, kind, unit):
    from pycgroup import catalogue

    assert (catalogue.kind(name), catalogue.unit(name)) == (kind, unit)


@pytest.mark.parametrize("name", ["gpu0.bogus", "memory.stat.", "memory.stat.a b",
                                  "memory.stat.a\nb", "io.max", "nope"])
def test_resolve_refuses_unknown_names_by_name(name):
    from pycgroup import catalogue

    with pytest.raises(KeyError) as info:
        catalogue.resolve(name, {"unified": "/cg"}, "/proc", "self")
    assert info.value.args[0].startswith(f"unknown metric {name!r}")
    if name == "gpu0.bogus":
        with pytest.raises(KeyError) as info:
            catalogue.unit(name)
        assert info.value.args[0].startswith(f"unknown metric {name!r}")
    if not name.startswith("memory.stat."):
        with pytest.raises(KeyError) as info:
            catalogue.kind(name)
        assert info.value.args[0].startswith(f"unknown metric {name!r}")


def test_unknown_metric_names_at_most_three_close_matches():
    from pycgroup import catalogue

    assert str(catalogue.unknown_metric("cpu.stat.nr_")) == (
        "unknown metric 'cpu.stat.nr_'; did you mean cpu.stat.nr_bursts, "
        "cpu.stat.nr_periods, cpu.stat.user_usec?")
    assert str(catalogue.unknown_metric("zzzz")) == "unknown metric 'zzzz'"


def test_shares_and_memsw_conversions_at_their_edges():
    from pycgroup.catalogue import shares_to_weight, swap_of_memsw

    assert shares_to_weight(math.inf) is None and shares_to_weight(None) is None
    assert (shares_to_weight(1), shares_to_weight(10**6)) == (1, 10000)  # clamped
    assert swap_of_memsw(4096, 4096) == 0  # memsw == memory: no swap allowed
    assert swap_of_memsw(None, 4096) is None and swap_of_memsw(4096, None) is None
    assert swap_of_memsw(math.inf, 4096) == math.inf
    assert swap_of_memsw(4096, math.inf) is None


def test_unavailable_reasons_say_what_is_missing(tree):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.explain("io.max.8:0.rbps") == (
        "io.max.8:0.rbps: unavailable: cgroup v1 has blkio.throttle.* files instead of io.max "
        "and io.stat, which pycgroup does not read")
    assert cg.explain("memory.stat.kernel") == (
        "memory.stat.kernel: unavailable: memory.stat key 'kernel' has no cgroup v1 counterpart")
    none = pycgroup.CGroup("none", {})
    assert none.explain("io.max.8:0.rbps") == (
        "io.max.8:0.rbps: unavailable: no cgroup2 hierarchy is mounted")
    assert none.explain("memory.stat.anon") == (
        "memory.stat.anon: unavailable: no memory cgroup hierarchy is mounted")
    cpu_only = pycgroup.CGroup("v1", {"cpu": cg.paths["cpu"]})
    assert cpu_only.explain("cpu.stat.usage_usec") == (
        "cpu.stat.usage_usec: unavailable: no cpuacct cgroup hierarchy is mounted")


def test_absent_io_file_reads_as_missing_and_names_the_file(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    io_max = os.path.join(cg.paths["unified"], "io.max")
    assert not os.path.exists(io_max)
    assert cg.read(["io.max.8:0.rbps"], backend) == {"io.max.8:0.rbps": None}
    assert cg.explain("io.max.8:0.rbps") == (
        f"io.max.8:0.rbps: {io_max} device 8:0 key 'rbps' (unavailable: no such file, "
        "device or key)")


def test_malformed_io_file_leaves_its_names_out_of_metrics(tree):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    with open(os.path.join(cg.paths["unified"], "io.stat"), "w") as f:
        f.write("8:0 rbytes=1\n")
    with open(os.path.join(cg.paths["unified"], "io.max"), "w") as f:
        f.write("not an io.max line\n")
    names = cg.metrics()
    assert "io.stat.8:0.rbytes" in names and not any(n.startswith("io.max.") for n in names)


def test_process_cpu_clock_is_read_for_this_process_only(tree, backend):
    for cg in (pycgroup.current(), pycgroup.of_pid(os.getpid())):
        value = cg.read(["proc.cpu_usec"], backend)["proc.cpu_usec"]
        assert isinstance(value, int) and value > 0
    procfs, rootfs = tree("host-view")
    other = pycgroup.of_pid(4321, procfs, rootfs)
    assert other.read(["proc.cpu_usec"], backend) == {"proc.cpu_usec": None}
    assert other.explain("proc.cpu_usec") == (
        "proc.cpu_usec: unavailable: proc.cpu_usec is read for the sampler's own process "
        "only; for pid 4321 use proc.utime_usec + proc.stime_usec")


def test_peak_rss_of_another_pid_is_its_status_vmhwm(tree, backend):
    procfs, rootfs = tree("host-view")
    with open(os.path.join(procfs, "4321", "status"), "a") as f:
        f.write("VmHWM:\t   2048 kB\n")
    other = pycgroup.of_pid(4321, procfs, rootfs)
    assert other.read(["proc.max_rss_bytes"], backend) == {"proc.max_rss_bytes": 2097152}


def test_v2_root_pressure_comes_from_proc_pressure(tree):
    procfs, rootfs = tree("v2-root")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.explain("cpu.pressure.some.total") == (
        f"cpu.pressure.some.total: {procfs}/pressure/cpu key 'some'")


def test_file_of_an_unknown_name_is_a_key_error_naming_it():
    from pycgroup import catalogue

    assert catalogue.file_of("memory.high", "v1") is None
    assert catalogue.file_of("memory.high", "v2").name == "memory.high"
    with pytest.raises(KeyError) as info:
        catalogue.file_of("memory.hihg", "v2")
    assert info.value.args[0].startswith("unknown metric 'memory.hihg'")
