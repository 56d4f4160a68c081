"""On the running kernel: cgroups with known limits, read from a child inside them."""

import json
import math
import os
import subprocess
import sys

import pytest

import pycgroup
from installed import PYCGROUP
from live import MADE, PREFIX, all_mounts

MiB = 2**20
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")


REPORT = """
import json, dataclasses, pycgroup
out = {}
for backend in ("native", "pure"):
    cg = pycgroup.current()
    out[backend] = {
        "mode": cg.mode, "paths": cg.paths,
        "read": cg.read(NAMES, backend=backend),
        "limits": dataclasses.asdict(pycgroup.limits(cg, backend)),
    }
print(json.dumps(out))
"""


def report(live, names):
    done = live.run(f"NAMES = {names!r}\n" + REPORT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["native"]["limits"] == out["pure"]["limits"]
    return out["native"]


def test_limits_seen_from_inside(live_cgroups):
    """Known limits on a parent and its leaf, as cgroup v1 or v2 (whichever the kernel
    offers), read by a child in the leaf."""
    live = live_cgroups("memory", "cpu", "pids", optional=("cpuacct",))
    live.limit_memory(256 * MiB, "parent")
    live.limit_memory(512 * MiB)  # looser than the parent
    live.limit_cpu(150000, 100000)
    live.set("pids", "pids.max", 50)
    names = ["memory.max", "memory.current", "cpu.max.quota_usec", "cpu.max.period_usec",
             "pids.max", "pids.current", "cpu.stat.nr_periods", "cpu.stat.usage_usec",
             "proc.rss_bytes"]
    got = report(live, names)
    for controller in ("memory", "cpu", "pids"):
        assert got["paths"][live.key(controller)] == live.leaves[controller]
    values = got["read"]
    assert values["memory.max"] == 512 * MiB
    assert values["cpu.max.quota_usec"] == 150000 and values["cpu.max.period_usec"] == 100000
    assert values["pids.max"] == 50 and 1 <= values["pids.current"] <= 50
    assert 0 < values["memory.current"] <= 256 * MiB
    assert values["proc.rss_bytes"] > MiB
    assert values["cpu.stat.nr_periods"] >= 0
    if "cpuacct" in live.leaves:
        assert values["cpu.stat.usage_usec"] > 0  # the child's own start-up counts
    lim = got["limits"]
    assert lim["memory_max_bytes"] == 256 * MiB  # the parent's, tighter than the leaf's
    assert lim["effective_memory_bytes"] == 256 * MiB
    assert lim["cpu_quota_cores"] == 1.5
    ncpus = len(os.sched_getaffinity(0))
    assert lim["effective_cpus"] == min(1.5, ncpus)
    assert lim["cpu_count"] == min(2, ncpus)
    assert lim["pids_max"] == 50


def test_parent_quota_is_the_tightest(live_cgroups):
    live = live_cgroups("cpu")
    live.limit_cpu(50000, 100000, "parent")
    got = report(live, ["cpu.max.quota_usec"])
    assert got["read"]["cpu.max.quota_usec"] == math.inf  # the leaf is unlimited
    assert got["limits"]["cpu_quota_cores"] == 0.5
    assert got["limits"]["cpu_count"] == 1


def test_unified_hierarchy_and_pressure(live_cgroups):
    live = live_cgroups("unified")
    got = report(live, ["cpu.pressure.some.total", "memory.pressure.some.total",
                        "cpu.stat.usage_usec"])
    assert got["paths"]["unified"] == live.leaves["unified"]
    if os.path.exists(os.path.join(live.leaves["unified"], "cpu.pressure")):
        assert got["read"]["cpu.pressure.some.total"] >= 0
        assert got["read"]["memory.pressure.some.total"] >= 0


def test_of_pid_watches_another_process(live_cgroups):
    live = live_cgroups("memory", optional=("cpu",))
    live.limit_memory(128 * MiB)
    child = live.popen([sys.executable, "-c", "import time; print('ready', flush=True); "
                        "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"  # past exec: its own memory is mapped
        cg = pycgroup.of_pid(child.pid)
        assert cg.paths[live.key("memory")] == live.leaves["memory"]
        assert cg.read(["memory.max"]) == {"memory.max": 128 * MiB}
        assert pycgroup.limits(cg).memory_max_bytes == 128 * MiB
        assert cg.read(["proc.rss_bytes"])["proc.rss_bytes"] > 0
    finally:
        child.kill()
        child.wait()


def test_live_reads_agree_between_backends():
    cg = pycgroup.current()
    stable = [n for n in cg.metrics() if n in ("memory.max", "cpu.max.period_usec",
                                               "cpu.max.quota_usec", "host.mem.total")]
    assert stable, cg.metrics()
    assert cg.read(stable) == cg.read(stable, backend="pure")


def test_info_command_inside_a_limited_cgroup(live_cgroups):
    live = live_cgroups("memory", "cpu")
    live.limit_memory(300 * MiB)
    live.limit_cpu(25000, 100000)
    done = subprocess.run([PYCGROUP, "info", "--json"], preexec_fn=live.join,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["limits"]["memory_max_bytes"] == 300 * MiB
    assert info["limits"]["cpu_quota_cores"] == 0.25
    assert info["paths"][live.key("memory")] == live.leaves["memory"]
    text = subprocess.run([PYCGROUP, "info"], preexec_fn=live.join, capture_output=True,
                          text=True, timeout=300).stdout
    assert "  memory limit   300.0 MiB\n" in text and "  cpu quota      0.25 cores\n" in text


def jdk_metrics(text: str) -> dict:
    """The "Key: value" lines of `java -XshowSettings:system`, sizes ("300.00M") in bytes
    rounded to the printed precision, "Unlimited" as math.inf."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    found = {}
    for line in text.splitlines():
        key, colon, value = line.strip().partition(": ")
        if not colon:
            continue
        if value == "Unlimited":
            found[key] = math.inf
        elif value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
            found[key] = round(float(value[:-1]) * units[value[-1]])
        elif value.lstrip("-").rstrip("us").isdigit():
            found[key] = int(value.rstrip("us"))
    return found


def test_limits_agree_with_the_jdks_container_detection(live_cgroups):
    """A peer check wherever a JDK is installed: the JDK's own container detection, run in
    the same cgroups, reports the same memory, swap, soft limit, CPU quota, CPU count and
    pids figures (limits set in the leaf, where the JDK looks: it misses tighter parents)."""
    import shutil

    java = shutil.which("java")
    if java is None:
        pytest.skip("no JDK on PATH (java): the peer check needs one")
    live = live_cgroups("memory", "cpu", "pids")
    v1 = live.version["memory"] == "v1"
    live.limit_memory(300 * MiB)
    swap_file = "memory.memsw.limit_in_bytes" if v1 else "memory.swap.max"
    swap = os.path.exists(os.path.join(live.leaves["memory"], swap_file))
    if swap:  # a kernel without swap accounting has no such file
        live.set("memory", swap_file, 400 * MiB if v1 else 100 * MiB)
    live.set("memory", "memory.soft_limit_in_bytes" if v1 else "memory.low", 128 * MiB)
    live.limit_cpu(75000, 50000)
    live.set("pids", "pids.max", 77)
    if v1:
        live.set("cpu", "cpu.shares", 512)
    done = subprocess.run([java, "-XshowSettings:system", "-version"], preexec_fn=live.join,
                          cwd="/", capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    jdk = jdk_metrics(done.stderr + done.stdout)
    if "Memory Limit" not in jdk:
        pytest.skip(f"this JDK reports no container metrics here: {done.stderr[:300]}")
    lim = report(live, [])["limits"]
    assert jdk["Memory Limit"] == lim["memory_max_bytes"] == 300 * MiB
    if swap:  # the JDK reports memory + swap, as v1's memsw limit does; pycgroup the swap
        assert jdk["Memory & Swap Limit"] == lim["memory_max_bytes"] + lim["swap_max_bytes"]
        assert lim["swap_max_bytes"] == 100 * MiB
    soft = lim["memory_soft_limit_bytes"] if v1 else lim["memory_low_bytes"]
    assert jdk["Memory Soft Limit"] == soft == 128 * MiB
    assert jdk["CPU Quota"] / jdk["CPU Period"] == lim["cpu_quota_cores"] == 1.5
    assert jdk["Effective CPU Count"] == lim["cpu_count"]
    assert jdk["Maximum Processes Limit"] == lim["pids_max"] == 77
    if v1:
        assert jdk["CPU Shares"] == lim["cpu_shares"] == 512


def test_cleanup_leaves_nothing_behind():
    """Runs last in this file: every test cgroup made above has been removed (only this
    process's: other test runs on the machine use the same prefix)."""
    if not MADE:
        pytest.skip("no test cgroup was made in this run")
    for point in all_mounts():
        assert [d for d in os.listdir(point) if d.startswith(PREFIX) and d in MADE] == []
