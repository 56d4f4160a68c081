"""Helpers for tests on the running kernel: make cgroups under the mounted hierarchies
(cgroup v1 controllers, or cgroup v2 with its controllers enabled), run children inside
them, read the kernel's own counters as an oracle, and always remove them again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from pycgroup.discovery import parse_mountinfo

PREFIX = "pycgroup-test-"
MADE: set = set()  # the names this process made: others' test runs may share the machine
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset")
# What each name asks of cgroup v2: cpuacct's usage is cpu.stat's usage_usec, which every
# v2 cgroup has (Documentation/admin-guide/cgroup-v2.rst, "Core Interface Files").
V2_CONTROLLER = {"cpu": "cpu", "cpuacct": None, "memory": "memory", "pids": "pids",
                 "cpuset": "cpuset", "unified": None}


def mount_points() -> dict:
    """Returns {controller or "unified": mount point} for the writable cgroup mounts."""
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    found = {}
    for m in mounts:
        if m.root != "/" or not os.access(m.mountpoint, os.W_OK):
            continue
        if m.fstype == "cgroup2":
            found.setdefault("unified", m.mountpoint)
        elif m.fstype == "cgroup":
            for option in m.super_options:
                if option in V1_CONTROLLERS:
                    found.setdefault(option, m.mountpoint)
    return found


def all_mounts() -> list:
    """Every writable cgroup mount point, whatever its controllers (blkio, a named
    hierarchy, cgroup2...): where a runtime may create a test cgroup's name too."""
    with open("/proc/self/mountinfo") as f:
        mounts = parse_mountinfo(f.read())
    return sorted({m.mountpoint for m in mounts if m.fstype in ("cgroup", "cgroup2")
                   and m.root == "/" and os.access(m.mountpoint, os.W_OK)})


def v2_controllers(mount: str) -> set:
    """Returns the controllers a cgroup2 mount offers (empty while v1 holds them all)."""
    try:
        with open(os.path.join(mount, "cgroup.controllers")) as f:
            return set(f.read().split())
    except OSError:
        return set()


def wait_until(condition, what: str, timeout_s: float = 120.0, poll_s: float = 0.01):
    """Polls until condition() is true. The timeout is only a safety net for a kernel that
    never gets there; tests wait on counters, never on the clock."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s and {what} did not happen")
        time.sleep(poll_s)


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _flat(path: str) -> dict:
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


class LiveCgroups:
    """Nested test cgroups (parent/leaf) in every hierarchy asked for.

    A controller mounted as cgroup v1 gets its own parent/leaf pair; one offered by the
    cgroup2 mount gets a pair there, with the controller enabled in the mount root's and
    the parent's cgroup.subtree_control (v2 keeps processes in leaves only: the parent
    holds none). ``version[controller]`` says which it got, ``leaves[controller]`` the
    directory a process joins, and ``key(controller)`` the name pycgroup's ``paths`` uses
    for it ("unified" on v2).
    """

    def __init__(self, controllers):
        points = mount_points()
        unified = points.get("unified")
        offered = v2_controllers(unified) if unified else set()
        self.name = PREFIX + uuid.uuid4().hex[:10]
        MADE.add(self.name)
        self.parents, self.leaves, self.version = {}, {}, {}
        self.missing = []
        try:
            self._make(controllers, points, unified, offered)
        except BaseException:
            self.remove()
            raise

    def _make(self, controllers, points, unified, offered):
        v2_needed = []
        for controller in controllers:
            if controller != "unified" and controller in points:
                self._make_v1(controller, points)
            elif unified and controller in V2_CONTROLLER and (
                    V2_CONTROLLER[controller] is None or V2_CONTROLLER[controller] in offered):
                v2_needed.append(controller)
            else:
                self.missing.append(controller)
        if v2_needed:
            self._make_v2(unified, v2_needed)

    def _make_v1(self, controller, points):
        mount = points[controller]
        for other, directory in self.parents.items():  # co-mounted with one made already
            if self.version[other] == "v1" and directory.startswith(mount + "/"):
                self.parents[controller], self.leaves[controller] = directory, self.leaves[other]
                self.version[controller] = "v1"
                return
        parent = os.path.join(mount, self.name)
        os.mkdir(parent)
        leaf = os.path.join(parent, "leaf")
        os.mkdir(leaf)
        self.parents[controller], self.leaves[controller] = parent, leaf
        self.version[controller] = "v1"

    def _make_v2(self, mount, controllers):
        enable = sorted({V2_CONTROLLER[c] for c in controllers if V2_CONTROLLER[c]})
        parent = os.path.join(mount, self.name)
        for directory in (mount, parent):
            if directory == parent:
                os.mkdir(parent)
                self.parents["unified"] = parent  # removed again if what follows fails
            for controller in enable:  # one at a time: the kernel names the one it refuses
                _write(os.path.join(directory, "cgroup.subtree_control"), "+" + controller)
        leaf = os.path.join(parent, "leaf")
        os.mkdir(leaf)
        for controller in [*controllers, "unified"]:
            self.parents[controller], self.leaves[controller] = parent, leaf
            self.version[controller] = "v2"

    def key(self, controller: str) -> str:
        """The key of pycgroup's ``paths`` that holds this controller's directory."""
        return "unified" if self.version[controller] == "v2" else controller

    def set(self, controller, file, value, level="leaf"):
        directory = (self.leaves if level == "leaf" else self.parents)[controller]
        _write(os.path.join(directory, file), value)

    def limit_memory(self, limit_bytes: int, level="leaf"):
        if self.version["memory"] == "v2":
            self.set("memory", "memory.max", limit_bytes, level)
        else:
            self.set("memory", "memory.limit_in_bytes", limit_bytes, level)

    def limit_cpu(self, quota_us: int, period_us: int = 100000, level="leaf"):
        if self.version["cpu"] == "v2":
            self.set("cpu", "cpu.max", f"{quota_us} {period_us}", level)
        else:
            self.set("cpu", "cpu.cfs_period_us", period_us, level)
            self.set("cpu", "cpu.cfs_quota_us", quota_us, level)

    def cpu_counters(self) -> dict:
        """The kernel's own CPU counters of the leaf, in v2's names and units (µs), read
        straight from its files: the oracle the sampler's figures are compared with."""
        if self.version["cpu"] == "v2":
            stat = _flat(os.path.join(self.leaves["cpu"], "cpu.stat"))
            keys = ("usage_usec", "nr_periods", "nr_throttled", "throttled_usec")
            return {k: stat[k] for k in keys}
        stat = _flat(os.path.join(self.leaves["cpu"], "cpu.stat"))
        with open(os.path.join(self.leaves["cpuacct"], "cpuacct.usage")) as f:
            usage_ns = int(f.read())
        return {"usage_usec": usage_ns // 1000, "nr_periods": stat["nr_periods"],
                "nr_throttled": stat["nr_throttled"],
                "throttled_usec": stat["throttled_time"] // 1000}

    def join(self):
        """Moves the calling process into every leaf (use as a preexec_fn)."""
        for leaf in set(self.leaves.values()):
            _write(os.path.join(leaf, "cgroup.procs"), "0")

    def run(self, code, **kwargs):
        """Runs Python code in a child that first joins the leaves. It runs from "/" so
        that it imports the installed pycgroup, not the source tree."""
        return subprocess.run([sys.executable, "-c", code], preexec_fn=self.join, cwd="/",
                              capture_output=True, text=True, timeout=300, **kwargs)

    def popen(self, args, **kwargs):
        return subprocess.Popen(args, preexec_fn=self.join, cwd="/", **kwargs)

    def remove(self):
        """Removes the cgroups, killing anything still inside them, and whatever else has
        this name in any hierarchy (Docker's --cgroup-parent creates it in all of them)."""
        made = [*set(self.leaves.values()), *set(self.parents.values())]
        others = []
        for mount in all_mounts():
            top = os.path.join(mount, self.name)
            if os.path.isdir(top):
                others += [d for d, _, _ in os.walk(top, topdown=False)]
        for directory in [*made, *others]:
            for _ in range(200):
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    with open(os.path.join(directory, "cgroup.procs")) as f:
                        pids = f.read().split()
                    for pid in pids:
                        try:
                            os.kill(int(pid), 9)
                        except ProcessLookupError:
                            pass
                    time.sleep(0.05)
