"""Discovery on fixture trees: v1, v2, hybrid, Docker on v1, cgroup namespaces, odd mountinfo."""

import os

import pytest

import pycgroup
from pycgroup.discovery import (
    Membership, parse_mountinfo, parse_proc_cgroup, relative_to_root, resolve, unescape,
)
from pycgroup.errors import ParseError


def test_v1_with_comounted_cpu_cpuacct(tree):
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "v1"
    base = os.path.join(rootfs, "sys/fs/cgroup")
    assert cg.paths == {
        "pids": f"{base}/pids/user.slice/app",
        "cpu": f"{base}/cpu,cpuacct/user.slice/app",
        "cpuacct": f"{base}/cpu,cpuacct/user.slice/app",
        "memory": f"{base}/memory/user.slice/app",
        "cpuset": f"{base}/cpuset",
    }
    assert "name=systemd" not in cg.paths and "systemd" not in cg.paths


def test_v2(tree):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "v2"
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service")}


def test_hybrid(tree):
    procfs, rootfs = tree("hybrid")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "hybrid"
    assert cg.paths["unified"] == os.path.join(rootfs, "sys/fs/cgroup/unified/user.slice/app")
    assert cg.paths["memory"] == os.path.join(rootfs, "sys/fs/cgroup/memory/user.slice/app")


def test_docker_on_v1_mount_root_is_the_container(tree):
    procfs, rootfs = tree("docker-v1")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "v1"
    assert cg.paths["memory"] == os.path.join(rootfs, "sys/fs/cgroup/memory")
    assert cg.paths["cpu"] == os.path.join(rootfs, "sys/fs/cgroup/cpu,cpuacct")


def test_cgroup_namespace_root(tree):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "v2"
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup")}


def test_process_moved_out_of_the_namespace_is_reported_and_falls_back(tree):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.of_pid(77, procfs, rootfs)
    # No cgroup.procs below the mount lists it: the mount point stands in, as in the JDK.
    assert cg.mode == "v2" and cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup")}
    assert len(cg.problems) == 1 and "is outside the root / of its mount" in cg.problems[0]
    assert "the mount point's limits stand in" in cg.problems[0]


def test_deleted_suffix_is_stripped_and_flagged(tree):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.of_pid(78, procfs, rootfs)
    assert cg.deleted
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup/job")}


def test_no_cgroup_mounts_is_a_clear_result(tree):
    procfs, rootfs = tree("none")
    cg = pycgroup.current(procfs, rootfs)
    assert (cg.mode, cg.paths) == ("none", {})
    assert cg.metrics() == ["host.mem.available", "host.mem.free", "host.mem.total",
                            "host.swap.total", "proc.rss_bytes",
                            "proc.stime_usec", "proc.utime_usec"]
    assert cg.read(["memory.current"]) == {"memory.current": None}
    assert "no memory cgroup hierarchy is mounted" in cg.explain("memory.current")


def test_escapes_optional_fields_colons_and_overmounts(tree):
    procfs, rootfs = tree("odd-mountinfo")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.mode == "hybrid"
    # The first cgroup2 mount is hidden by a tmpfs mounted over it; the second is used.
    assert cg.paths["unified"] == os.path.join(rootfs, "mnt/cg v2/odd dir:1/job\tx")
    assert cg.paths["memory"] == os.path.join(rootfs, "mnt/memory\\x/job\tx")
    assert cg.read(["memory.current"]) == {"memory.current": 2}


def test_unescape():
    assert unescape(r"/a\040b\011c\012d\134e") == "/a b\tc\nd\\e"


def test_mountinfo_optional_fields():
    line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - cgroup cgroup rw,memory\n"
    (mount,) = parse_mountinfo(line)
    assert (mount.root, mount.mountpoint, mount.fstype) == ("/mnt1", "/mnt2", "cgroup")
    assert "memory" in mount.super_options


def test_malformed_mountinfo_names_file_and_line():
    with pytest.raises(ParseError) as info:
        parse_mountinfo("1 2 3:4 / /x rw - cgroup2 cgroup2 rw\nshort line\n", "/p/mountinfo")
    assert (info.value.path, info.value.line) == ("/p/mountinfo", 2)


def test_proc_cgroup_path_may_contain_colons():
    (m,) = parse_proc_cgroup("0::/a:b:c\n")
    assert (m.hierarchy, m.controllers, m.path) == (0, (), "/a:b:c")


def test_malformed_proc_cgroup():
    with pytest.raises(ParseError) as info:
        parse_proc_cgroup("0::/\nnot a line\n", "/proc/self/cgroup")
    assert info.value.line == 2


@pytest.mark.parametrize("path, root, expected", [
    ("/a/b", "/", "a/b"), ("/docker/x", "/docker/x", ""), ("/docker/x/y", "/docker/x", "y"),
    ("/docker/xy", "/docker/x", None), ("/", "/docker/x", None), ("/../a", "/", None),
    ("/a/../b", "/", None),
])
def test_relative_to_root(path, root, expected):
    assert relative_to_root(path, root) == expected


def test_v2_is_hierarchy_zero_not_an_empty_controller_list():
    mounts = parse_mountinfo("1 0 0:1 / /cg rw - cgroup2 cgroup2 rw\n"
                             "2 0 0:2 / /v1 rw - cgroup cgroup rw,name=test\n")
    # A v1 named hierarchy with no controllers is not the v2 hierarchy.
    found = resolve([Membership(5, ("name=test",), "/x", False),
                     Membership(0, (), "/y", False)], mounts, "/")
    assert found.paths == {"unified": "/cg/y"}
    assert found.mode == "v2"


def test_live_discovery_matches_the_kernel():
    cg = pycgroup.current()
    with open("/proc/self/cgroup") as f:
        text = f.read()
    assert cg.mode in ("v1", "v2", "hybrid")
    for name, path in cg.paths.items():
        assert os.path.isdir(path), path
        assert os.path.exists(os.path.join(path, "cgroup.procs"))
    if "memory" in cg.paths:
        line = next(l for l in text.splitlines() if l.split(":")[1] == "memory")
        assert cg.paths["memory"].endswith(line.split(":", 2)[2].rstrip("/"))
