"""pycgroup inside real Docker containers: every Limits field, seen from inside (both
backends) and from the host (`pycgroup info --pid`), against the kernel's own files read
on the host along the container's whole cgroup ancestry; live throttling under --cpus and
an OOM kill, against the kernel's counters."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

import pycgroup
from kernel_limits import KernelLimits, read
from live import wait_until

MiB = 2**20
# No limit: pycgroup.UNLIMITED where the package defines it, else None (older API).
NO_LIMIT = getattr(pycgroup, "UNLIMITED", None)
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Docker and cgroups need root")

REPORT = """
import dataclasses, json, os, time, pycgroup
out = {"proc_cgroup": open("/proc/self/cgroup").read()}
for backend in ("native", "pure"):
    cg = pycgroup.current()
    out[backend] = {"mode": cg.mode, "paths": cg.paths,
                    "limits": dataclasses.asdict(pycgroup.limits(cg, backend))}
print(json.dumps(out), flush=True)
time.sleep(3600)
"""


def limit(value):
    """The kernel's figure (math.inf for none) as Limits writes it."""
    return NO_LIMIT if value == math.inf else value


def check_limits(got: dict, k: KernelLimits, cpu_quota: float):
    """Asserts every Limits field against the kernel's files. cpu_quota is the quota the
    view can see: the tightest up the ancestry from the host, the container's own from
    inside (the kernel shows no ancestor of a container's cgroup there). Fields that newer
    versions of Limits add are checked when they are present."""
    assert got["host_memory_bytes"] == k.host_memory
    assert got["memory_max_bytes"] == limit(k.memory)
    assert got["effective_memory_bytes"] == min(k.host_memory, k.memory)
    assert got["memory_high_bytes"] == (None if k.v1 else limit(k.memory_high))
    assert got["swap_max_bytes"] == limit(k.swap)
    assert got["cpu_quota_cores"] == limit(cpu_quota)
    assert tuple(got["cpuset_cpus"]) == k.cpuset
    effective = k.effective_cpus(cpu_quota)
    assert got["effective_cpus"] == pytest.approx(effective)
    assert got["cpu_count"] == max(1, math.ceil(effective))
    assert got["pids_max"] == limit(k.pids)
    # Swap is what the host has, at most: on a swapless host none, whatever the allowance.
    assert got["host_swap_bytes"] == k.host_swap
    assert got["effective_swap_bytes"] == (0 if k.host_swap == 0 else
                                           limit(min(k.swap, k.host_swap)))
    assert got["cpu_weight"] == k.cpu_weight
    assert got["cpu_shares"] == (k.cpu_shares if k.v1 else None)
    assert got["memory_soft_limit_bytes"] == (limit(k.soft_limit) if k.v1 else None)
    assert got["memory_low_bytes"] == (None if k.v1 else limit(k.memory_low))
    assert got["memory_min_bytes"] == (None if k.v1 else limit(k.memory_min))
    assert got["io_max"] == {device: {key: limit(v) for key, v in values.items()}
                             for device, values in k.io_max.items()}


def inside(c) -> dict:
    """The container's own report: both backends agree; returns the native one."""
    assert c.report["native"]["limits"] == c.report["pure"]["limits"]
    assert c.report["native"]["mode"] in ("v1", "hybrid", "v2")
    return c.report["native"]


CPUS = len(os.sched_getaffinity(0))
CONFIGURATIONS = {
    # name: (docker run options, what the kernel must then hold: the option took effect)
    "no limits": ([], lambda k: k.memory == math.inf and k.cpu_quota == math.inf),
    "memory": (["--memory", "256m"], lambda k: k.memory == 256 * MiB),
    "memory and swap": (["--memory", "256m", "--memory-swap", "384m"],
                        lambda k: k.memory == 256 * MiB and (not k.v1 or k.swap == 128 * MiB)),
    "unlimited swap": (["--memory", "256m", "--memory-swap", "-1"],
                       lambda k: k.memory == 256 * MiB and k.swap == math.inf),
    "cpus": (["--cpus", "0.5"], lambda k: k.cpu_quota == 0.5),
    "odd quota and period": (["--cpu-quota", "33333", "--cpu-period", "77777"],
                             lambda k: k.cpu_quota == 33333 / 77777),
    "cpu shares": (["--cpu-shares", "512"],
                   lambda k: (k.cpu_shares == 512) if k.v1 else k.cpu_weight is not None),
    "cpuset": (["--cpuset-cpus", str(CPUS - 1)], lambda k: k.cpuset == (CPUS - 1,)),
    "pids": (["--pids-limit", "42"], lambda k: k.pids == 42),
    "memory reservation": (["--memory", "512m", "--memory-reservation", "128m"],
                           lambda k: k.memory == 512 * MiB and (
                               k.soft_limit == 128 * MiB if k.v1 else k.memory_low == 128 * MiB)),
}


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_limits_inside_a_container(container, name):
    options, took_effect = CONFIGURATIONS[name]
    c = container(options, REPORT)
    k = KernelLimits(c.pid)
    assert took_effect(k), vars(k)
    got = inside(c)
    check_limits(got["limits"], k, k.own_quota)


@pytest.mark.parametrize("mode", ["private", "host"])
def test_cgroup_namespace_modes(container, mode):
    """Both --cgroupns modes: the container's /proc/self/cgroup names "/" (private) or
    the host's path (host); the limits read are the kernel's either way."""
    c = container(["--cgroupns", mode, "--memory", "200m", "--cpus", "0.75",
                   "--pids-limit", "64"], REPORT)
    k = KernelLimits(c.pid)
    got = inside(c)
    own = [line.split(":", 2)[2] for line in c.report["proc_cgroup"].splitlines()
           if "memory" in line.split(":")[1].split(",") or line.startswith("0::")]
    if mode == "private":
        assert own[0] == "/", c.report["proc_cgroup"]
    else:
        assert c.id in own[0], c.report["proc_cgroup"]
    assert k.memory == 200 * MiB and k.cpu_quota == 0.75 and k.pids == 64
    check_limits(got["limits"], k, k.own_quota)


def host_view(pid: int, *options: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "pycgroup", "info", "--pid", str(pid), "--json",
                           "--seconds", "0", *options],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    # Versions with pycgroup.UNLIMITED write no limit as "unlimited" in JSON.
    info["limits"] = {field: NO_LIMIT if value == "unlimited" else value
                      for field, value in info["limits"].items()}
    return info


def test_host_view_of_a_container(container):
    """`pycgroup info --pid <host pid>` on the host sees the container's cgroups."""
    c = container(["--memory", "300m", "--memory-swap", "400m", "--cpus", "1.5",
                   "--pids-limit", "99"], REPORT)
    k = KernelLimits(c.pid)
    info = host_view(c.pid)
    for controller in ("memory", "cpu", "pids"):
        key = controller if k.v1 else "unified"
        assert info["paths"][key] == k.dirs[key]
    check_limits(info["limits"], k, k.cpu_quota)


def test_container_root_seen_from_the_host(container):
    """The container's own view, taken from the host: `--rootfs /proc/<pid>/root` with the
    host's procfs and PID, and with the container's procfs and its PID 1 (whose `self` the
    host has not got, and whose affinity comes from its status, not the host's PID 1): the
    same paths under that root and the same Limits as pycgroup reports inside."""
    c = container(["--memory", "300m", "--memory-swap", "400m", "--cpus", "1.5",
                   "--pids-limit", "99", "--cpuset-cpus", str(CPUS - 1)], REPORT)
    got = inside(c)
    root = f"/proc/{c.pid}/root"
    expected = {name: NO_LIMIT if value == math.inf else value
                for name, value in got["limits"].items()}
    for pid, options in ((c.pid, ["--rootfs", root]),
                         (1, ["--rootfs", root, "--procfs", root + "/proc"])):
        info = host_view(pid, *options)
        assert info["mode"] == got["mode"]
        assert info["paths"] == {name: root + path for name, path in got["paths"].items()}
        assert info["limits"] == expected
    assert expected["memory_max_bytes"] == 300 * MiB and expected["pids_max"] == 99
    assert expected["cpu_quota_cores"] == 1.5 and expected["cpuset_cpus"] == [CPUS - 1]


def test_tighter_cgroup_parent(live_cgroups, docker, container):
    """--cgroup-parent under a parent with less memory than the container asks for and a
    CPU quota the container has none of (v1 refuses a child quota above its parent's):
    the host's view gets both of the parent's limits; inside, memory comes through the
    kernel's hierarchical limit on v1, and the parent's CPU quota is not visible (the
    kernel exposes no ancestor of the container's cgroup there)."""
    if docker.info("CgroupDriver") != "cgroupfs":
        pytest.skip("--cgroup-parent as a path needs the cgroupfs driver")
    parent = live_cgroups("memory", "cpu", "pids")
    parent.limit_memory(200 * MiB, "parent")
    parent.limit_cpu(25000, 100000, "parent")
    c = container(["--cgroup-parent", "/" + parent.name, "--memory", "400m"], REPORT)
    k = KernelLimits(c.pid)
    key = "memory" if k.v1 else "unified"
    assert k.dirs[key].startswith(parent.parents["memory"] + "/")
    assert k.memory == 200 * MiB and k.cpu_quota == 0.25 and k.own_quota == math.inf
    check_limits(host_view(c.pid)["limits"], k, k.cpu_quota)
    got = inside(c)["limits"]
    if k.v1:
        check_limits(got, k, k.own_quota)
        # ...and says so: the parent's quota cannot be seen from inside.
        assert any(p.startswith("cpu: the cpu hierarchy is mounted from ")
                   and "cannot be seen from here" in p for p in got["problems"]), got["problems"]
    else:
        assert got["memory_max_bytes"] == 400 * MiB  # the parent is outside the namespace
        # ...and says so: the container's cgroup is its namespace's root.
        assert any(p.startswith("unified: the cgroup2 mount shows the root of a cgroup "
                                "namespace as /") and "cannot be seen from here" in p
                   for p in got["problems"]), got["problems"]


def kernel_cpu(k: KernelLimits) -> dict:
    """The container's CPU counters from the kernel's files, in µs."""
    if k.v1:
        stat = dict(line.split() for line in read(os.path.join(k.dirs["cpu"],
                                                               "cpu.stat")).splitlines())
        usage = int(read(os.path.join(k.dirs["cpuacct"], "cpuacct.usage"))) // 1000
        return {"usage_usec": usage, "nr_periods": int(stat["nr_periods"]),
                "nr_throttled": int(stat["nr_throttled"]),
                "throttled_usec": int(stat["throttled_time"]) // 1000}
    stat = dict(line.split() for line in read(os.path.join(k.dirs["unified"],
                                                           "cpu.stat")).splitlines())
    return {name: int(stat[name]) for name in ("usage_usec", "nr_periods", "nr_throttled",
                                               "throttled_usec")}


THROTTLED = """
import json, os, subprocess, sys, time, pycgroup
print(json.dumps({"ready": True}), flush=True)
while not os.path.exists("/tmp/go"):
    time.sleep(0.01)
busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
s = pycgroup.Sampler(hz=1000)
s.sample()
first = pycgroup.current().read(["cpu.stat.nr_throttled"])["cpu.stat.nr_throttled"]
s.start()
while pycgroup.current().read(["cpu.stat.nr_throttled"])["cpu.stat.nr_throttled"] < first + 5:
    time.sleep(0.05)
s.stop()
s.sample()
busy.kill()
d = s.data()
t = d.throttling()
from pycgroup.cli.info import throttled_gaps
gaps, gaps_throttled = throttled_gaps(d)
names = ["cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
         "cpu.stat.throttled_usec"]
print(json.dumps({"first": {n: int(d[n][0]) for n in names},
                  "last": {n: int(d[n][-1]) for n in names},
                  "interval_s": t.interval_s, "limit": t.cpu_limit_cores,
                  "fraction": t.cpu_throttled_fraction, "rows": len(d),
                  "gaps": gaps, "gaps_throttled": gaps_throttled}), flush=True)
time.sleep(3600)
"""


def second_line(c, timeout_s=300) -> dict:
    wait_until(lambda: len(c.logs().splitlines()) >= 2, "the container's second report",
               timeout_s=timeout_s)
    return json.loads(c.logs().splitlines()[1])


def test_live_throttling_inside_a_container(container):
    """A busy loop and a 1 kHz sampler in one container under --cpus=0.5: the sampler is
    throttled with the work (rows come late), but its counters lie within the kernel's,
    read on the host before and after, and it sees the throttling the kernel counts."""
    c = container(["--cpus", "0.5"], THROTTLED)
    k = KernelLimits(c.pid)
    before = kernel_cpu(k)
    open(f"/proc/{c.pid}/root/tmp/go", "w").close()
    got = second_line(c)
    after = kernel_cpu(k)
    for name in before:
        column = "cpu.stat." + name
        assert before[name] <= got["first"][column] <= got["last"][column] <= after[name], name
    delta = {n: got["last"][n] - got["first"][n] for n in got["first"]}
    assert delta["cpu.stat.nr_throttled"] >= 5 and delta["cpu.stat.throttled_usec"] > 0
    assert got["limit"] == 0.5
    assert got["fraction"] == pytest.approx(delta["cpu.stat.nr_throttled"]
                                            / delta["cpu.stat.nr_periods"])
    # What the quota guarantees: 0.5 core over the window plus one period's 50 ms.
    assert delta["cpu.stat.usage_usec"] / 1e6 <= 0.5 * got["interval_s"] + 0.05
    # The sampler is throttled with the work: its schedule stalls across throttled periods.
    assert 1 <= got["gaps_throttled"] <= got["gaps"]


OOM = """
import json, subprocess, sys, time, pycgroup
s = pycgroup.Sampler(["memory.current", "memory.events.oom_kill"], hz=200).start()
hog = subprocess.run([sys.executable, "-c",
                      "chunks = []\\nwhile True: chunks.append(bytearray(b'x') * (16 << 20))"])
time.sleep(0.1)
s.stop()
s.sample()
print(json.dumps({"returncode": hog.returncode,
                  "read": pycgroup.current().read(["memory.events.oom_kill"]),
                  "oom_kills": s.data().throttling().oom_kills}), flush=True)
time.sleep(3600)
"""


def test_oom_kill_inside_a_container(container):
    """A process allocating past --memory is OOM-killed; pycgroup's oom_kill count inside
    equals the kernel's, read on the host."""
    c = container(["--memory", "128m", "--memory-swap", "128m"], OOM)
    k = KernelLimits(c.pid)
    if k.v1:
        control = dict(line.split() for line in read(os.path.join(
            k.dirs["memory"], "memory.oom_control")).splitlines())
    else:
        control = dict(line.split() for line in read(os.path.join(
            k.dirs["unified"], "memory.events")).splitlines())
    assert c.report["returncode"] == -9
    assert int(control["oom_kill"]) >= 1
    assert c.report["read"]["memory.events.oom_kill"] == int(control["oom_kill"])
    assert 1 <= c.report["oom_kills"] <= int(control["oom_kill"])
