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
    # Names are kept whole: a trailing space or an X is part of the name.
    ("/aX", "/", "aX"), ("/d/X/y", "/d/X", "y"), ("/d/x/yX", "/d/x", "yX"), ("/d/x/y ", "/d/x", "y "),
    ("/d/Xy", "/d/X", None),
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


def test_dotdot_path_is_found_by_cgroup_procs_at_the_depth_it_gives(tree):
    procfs, rootfs = tree("dotdot")
    cg = pycgroup.current(procfs, rootfs)
    # /../other under a mount root of /../../..: 3 - 1 + 1 = 3 levels down, named "other",
    # and listing PID 4242 (the decoy at depth 1 lists it too, but is at the wrong depth).
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup/kubepods/pod1/other")}
    assert cg.mode == "v2"
    assert len(cg.problems) == 1 and "found it by the cgroup.procs that lists PID 4242" in (
        cg.problems[0])


def test_dotdot_path_not_found_falls_back_to_the_mount_point(tree):
    procfs, rootfs = tree("dotdot")
    os.remove(os.path.join(rootfs, "sys/fs/cgroup/kubepods/pod1/other/cgroup.procs"))
    cg = pycgroup.current(procfs, rootfs)
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup")}
    assert "no cgroup.procs below the mount point lists PID 4242" in cg.problems[0]


@pytest.mark.parametrize("path, root, depth", [
    ("/../other", "/../../..", 3), ("/", "/../..", 2), ("/../../x/y", "/../..", 2),
    ("/../x", "/", None), ("/a", "/../b", None), ("/../a/../b", "/../..", None),
])
def test_search_depth(path, root, depth):
    from pycgroup.discovery import search_depth

    assert search_depth(path, root) == depth


def test_conventional_mount_wins_over_an_earlier_bind_mount(tree):
    procfs, rootfs = tree("mounted-twice")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup/app")}
    assert cg.read(["memory.max"]) == {"memory.max": 268435456}


def test_mount_whose_root_covers_the_path_wins_over_the_conventional_place():
    mounts = parse_mountinfo("1 0 0:1 /other /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
                             "2 0 0:1 / /mnt/cg rw - cgroup2 cgroup2 rw\n")
    found = resolve([Membership(0, (), "/app", False)], mounts, "/")
    assert found.paths == {"unified": "/mnt/cg/app"}
    assert found.hierarchy_roots == {"unified": "/"}


def test_discovered_directory_that_does_not_exist_is_a_problem(tree):
    procfs, rootfs = tree("v2")
    leaf = os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service")
    import shutil

    shutil.rmtree(leaf)
    cg = pycgroup.current(procfs, rootfs)
    assert cg.missing == (leaf,)
    assert cg.problems == (f"unified: the cgroup directory {leaf} does not exist "
                           "(is the root right for this procfs?)",)


def test_container_root_seen_from_the_host_reads_the_pids_own_mountinfo(tree):
    procfs, rootfs = tree("host-view")
    assert not os.path.exists(os.path.join(procfs, "self"))
    cg = pycgroup.of_pid(4321, procfs, rootfs)
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup")}
    assert cg.problems == ()
    assert cg.hierarchy_roots == {"unified": "/system.slice/docker-abc.scope"}


@pytest.mark.parametrize("text, pids", [
    ("Name:\tx\nPid:\t4321\nNSpid:\t4321\t1\n", (4321, 1)),
    ("Pid:\t77\nNSpid:\t77\n", (77,)),
    ("Name:\tx\nPid:\t88\n", (88,)),  # before Linux 4.1: no NSpid line
    ("Name:\tx\n", ()),
])
def test_namespace_pids(text, pids):
    from pycgroup.discovery import namespace_pids

    assert namespace_pids(text) == pids


def test_procfs_pid_is_the_first_nspid(tree):
    from pycgroup.discovery import procfs_pid

    procfs, rootfs = tree("host-view")
    assert procfs_pid(4321, procfs) == 4321
    with open(os.path.join(procfs, "4321", "status"), "w") as f:
        f.write("Pid:\t1\nNSpid:\t9\t1\n")  # the first entry is procfs's namespace's
    assert procfs_pid(4321, procfs) == 9
    assert procfs_pid(5, procfs) == 5  # no status: the number asked
    assert procfs_pid("self", procfs) is None


def test_mounts_below_sys_fs_cgroup_count_as_conventional():
    mounts = parse_mountinfo("1 0 0:1 / /mnt/v2 rw - cgroup2 cgroup2 rw\n"
                             "2 0 0:1 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
                             "3 0 0:1 / /sys/fs/cgroupx rw - cgroup2 cgroup2 rw\n")
    found = resolve([Membership(0, (), "/a", False)], mounts, "/")
    assert found.paths == {"unified": "/sys/fs/cgroup/unified/a"}
    # /sys/fs/cgroupx is not below /sys/fs/cgroup: the first mount in order wins then.
    found = resolve([Membership(0, (), "/a", False)], [mounts[2], mounts[0]], "/")
    assert found.paths == {"unified": "/sys/fs/cgroupx/a"}


def test_search_without_a_depth_still_needs_the_path_tail(tmp_path):
    from pycgroup.discovery import find_by_procs

    for relative, pids in (("a/wrong", "5\n"), ("b/x", "6\n"), ("c/x", "5\n")):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "cgroup.procs").write_text(pids)
    # "/../x" under a mount root of "/": no depth is known; only a directory named x counts.
    assert find_by_procs(str(tmp_path), "/../x", "/", 5) == "c/x"
    assert find_by_procs(str(tmp_path), "/../x", "/", 7) is None
    # With a depth, the tail and depth must both match.
    assert find_by_procs(str(tmp_path), "/../x", "/../..", 5) == "c/x"
    assert find_by_procs(str(tmp_path), "/../../x", "/../..", 5) is None  # depth 1: no x


def test_with_another_root_the_pids_own_mountinfo_wins_over_self(tree):
    procfs, rootfs = tree("host-view")
    os.makedirs(os.path.join(procfs, "self"))
    with open(os.path.join(procfs, "self", "mountinfo"), "w") as f:  # the host's own
        f.write("26 21 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    from pycgroup.discovery import mountinfo_path

    assert mountinfo_path(4321, procfs, rootfs) == os.path.join(procfs, "4321", "mountinfo")
    assert mountinfo_path(4321, procfs, "/") == os.path.join(procfs, "self", "mountinfo")
    assert mountinfo_path("self", procfs, rootfs) == os.path.join(procfs, "self", "mountinfo")
    cg = pycgroup.of_pid(4321, procfs, rootfs)
    assert cg.paths == {"unified": os.path.join(rootfs, "sys/fs/cgroup")} and not cg.problems


def test_deleted_cgroup_directory_problem_says_deleted(tree):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.of_pid(78, procfs, rootfs)
    leaf = os.path.join(rootfs, "sys/fs/cgroup/job")
    assert cg.missing == (leaf,)
    assert cg.problems == (f"unified: the cgroup directory {leaf} does not exist (the kernel "
                           "reports the cgroup as deleted)",)


def test_live_process_moved_out_of_its_cgroup_namespace_is_found(live_cgroups):
    """unshare -C in cgroup A without remounting cgroup2, then moved to sibling B: the
    kernel shows the mount's root as /../.. and the cgroup as /../b."""
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    live = live_cgroups("unified")
    sibling = os.path.join(live.parents["unified"], "b")
    os.mkdir(sibling)
    code = ("import sys, json, pycgroup; print('ready', flush=True); sys.stdin.readline(); "
            "cg = pycgroup.current(); print(json.dumps([cg.paths.get('unified'), cg.problems, "
            "[l.split(':', 2)[2].strip() for l in open('/proc/self/cgroup') "
            "if l.startswith('0::')]]))")
    child = live.popen(["unshare", "-C", sys.executable, "-c", code], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if child.stdout.readline() != "ready\n":
            pytest.skip(f"unshare -C failed: {child.stderr.read().strip()}")
        with open(os.path.join(sibling, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
        out, err = child.communicate("go\n", timeout=60)
        assert child.returncode == 0, err
    finally:
        child.kill()
        child.wait()
        os.rmdir(sibling)  # before the fixture removes its parent
    import json

    path, problems, (kernel_path,) = json.loads(out)
    assert kernel_path == "/../b"
    assert path == sibling
    assert any(p.startswith("unified: cgroup /../b is outside the root /../..") and
               f"found it by the cgroup.procs that lists PID {child.pid}" in p for p in problems)


def test_fstype_is_the_field_after_the_separator_not_the_source():
    (mount,) = parse_mountinfo("30 25 0:28 / /cg rw,relatime - cgroup2 none rw,nsdelegate\n")
    assert (mount.fstype, mount.super_options) == ("cgroup2", frozenset({"rw", "nsdelegate"}))


def test_parse_errors_say_what_and_default_to_the_files_name():
    with pytest.raises(ParseError, match=": not a mountinfo line$") as info:
        parse_mountinfo("short line\n")
    assert (info.value.path, info.value.line) == ("mountinfo", 1)
    with pytest.raises(ParseError, match=": not a hierarchy-ID:controllers:path line$") as info:
        parse_proc_cgroup("0::/\nx\n")
    assert (info.value.path, info.value.line) == ("cgroup", 2)


@pytest.mark.parametrize("line", ["0::relative\n", "x::/a\n", "1:memory\n", ":memory:/a\n"])
def test_proc_cgroup_line_needs_a_numeric_id_and_an_absolute_path(line):
    with pytest.raises(ParseError) as info:
        parse_proc_cgroup(line, "/proc/7/cgroup")
    assert (info.value.path, info.value.line) == ("/proc/7/cgroup", 1)


V1_MOUNTS = ("1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n"
             "2 0 0:2 / /cg/pids rw - cgroup cgroup rw,pids\n")


def test_a_nameless_or_unmounted_hierarchy_does_not_hide_the_next(tmp_path):
    for controller in ("memory", "pids"):
        (tmp_path / "cg" / controller / "a").mkdir(parents=True)
    memberships = parse_proc_cgroup("5::/\n4:cpu,cpuacct:/a\n3:memory:/a\n2:pids:/a\n")
    found = resolve(memberships, parse_mountinfo(V1_MOUNTS), str(tmp_path))
    assert found.paths == {"memory": str(tmp_path / "cg/memory/a"),
                           "pids": str(tmp_path / "cg/pids/a")}
    assert found.problems == ("cpu,cpuacct: hierarchy 4 is not mounted",)


def test_missing_directory_problem_names_every_controller_sharing_it(tmp_path):
    mounts = parse_mountinfo("1 0 0:1 / /cg rw - cgroup cgroup rw,cpu,cpuacct\n")
    found = resolve(parse_proc_cgroup("4:cpu,cpuacct:/gone\n"), mounts, str(tmp_path))
    path = str(tmp_path / "cg/gone")
    assert found.missing == (path,)
    assert found.problems == (f"cpu,cpuacct: the cgroup directory {path} does not exist "
                              "(is the root right for this procfs?)",)


def test_outside_the_mount_root_and_not_found_says_the_mount_point_stands_in(tree):
    procfs, rootfs = tree("cgroupns")
    cg = pycgroup.of_pid(77, procfs, rootfs)
    (path,) = [line.split(":", 2)[2] for line in open(os.path.join(procfs, "77", "cgroup"))]
    assert cg.problems == (
        f"unified: cgroup {path.strip()} is outside the root / of its mount at /sys/fs/cgroup "
        "(another cgroup namespace, or the process was moved out of it); no cgroup.procs "
        "below the mount point lists PID 77, so the mount point's limits stand in (as the "
        "JDK does): they may be looser than the process's own",)


def test_search_gives_up_after_search_limit_directories(tmp_path, monkeypatch):
    from pycgroup import discovery
    from pycgroup.discovery import find_by_procs

    # Depth first, in name order: "", a, a/x, b, b/x: b/x is the 5th directory visited.
    for relative, pids in (("a/x", "6\n"), ("b/x", "5\n")):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "cgroup.procs").write_text(pids)
    monkeypatch.setattr(discovery, "SEARCH_LIMIT", 5)
    assert find_by_procs(str(tmp_path), "/../x", "/", 5) == "b/x"
    monkeypatch.setattr(discovery, "SEARCH_LIMIT", 4)
    assert find_by_procs(str(tmp_path), "/../x", "/", 5) is None


def test_search_with_dotdot_inside_the_path_needs_no_tail(tmp_path):
    from pycgroup.discovery import find_by_procs

    (tmp_path / "p" / "q").mkdir(parents=True)
    (tmp_path / "p" / "q" / "cgroup.procs").write_text("5\n")
    # "/../a/../b": neither a depth nor a trustworthy tail; any directory listing 5 counts.
    assert find_by_procs(str(tmp_path), "/../a/../b", "/", 5) == "p/q"


def test_search_does_not_follow_symbolic_links(tmp_path):
    from pycgroup.discovery import find_by_procs

    (tmp_path / "elsewhere" / "x").mkdir(parents=True)
    (tmp_path / "elsewhere" / "x" / "cgroup.procs").write_text("5\n")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path / "elsewhere")
    assert find_by_procs(str(tmp_path / "base"), "/../x", "/", 5) is None


def test_defaults_are_this_process_in_this_machines_proc():
    from pycgroup.discovery import discover, mountinfo_path, procfs_pid

    assert mountinfo_path() == "/proc/self/mountinfo"
    assert procfs_pid("self") == os.getpid()
    assert discover() == discover(os.getpid(), "/proc", "/")
    assert all(p.startswith("/sys/fs/cgroup") for p in discover().paths.values())


def test_undecodable_bytes_in_cgroup_paths_survive_discovery(tree):
    procfs, rootfs = tree("v2")
    name = b"app\xff.service".decode("utf-8", "surrogateescape")
    cgroup_file = os.path.join(procfs, "self", "cgroup")
    with open(cgroup_file, "wb") as f:
        f.write(b"0::/system.slice/app\xff.service\n")
    base = os.path.join(rootfs, "sys/fs/cgroup/system.slice")
    os.rename(os.path.join(base, "app.service"), os.path.join(base, name))
    mountinfo = os.path.join(procfs, "self", "mountinfo")
    with open(mountinfo, "rb") as f:
        text = f.read()
    with open(mountinfo, "wb") as f:
        f.write(text + b"99 1 0:99 / /mnt/\xff rw - tmpfs tmpfs rw\n")
    cg = pycgroup.current(procfs, rootfs)
    assert cg.paths == {"unified": os.path.join(base, name)} and cg.missing == ()


def test_discover_parse_errors_name_the_file(tree):
    from pycgroup.discovery import discover

    procfs, rootfs = tree("v2")
    for file in ("mountinfo", "cgroup"):  # cgroup is read first: break mountinfo first
        path = os.path.join(procfs, "self", file)
        with open(path, "a") as f:
            f.write("garbage\n")
        with pytest.raises(ParseError) as info:
            discover("self", procfs, rootfs)
        assert info.value.path == path


def test_resolve_places_mount_points_under_the_root_filesystem(tmp_path):
    memberships = parse_proc_cgroup("0::/\n")
    mounts = parse_mountinfo("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    assert resolve(memberships, mounts).paths == {"unified": "/sys/fs/cgroup"}  # rootfs "/"
    (tmp_path / "Xcg").mkdir()
    mounts = parse_mountinfo("1 0 0:1 / /Xcg rw - cgroup2 cgroup2 rw\n")
    assert resolve(memberships, mounts, str(tmp_path)).paths == {"unified": str(tmp_path / "Xcg")}


def test_with_the_root_filesystem_slash_the_readers_own_mountinfo_wins(tree):
    from pycgroup.discovery import discover

    procfs, rootfs = tree("host-view")
    os.mkdir(os.path.join(procfs, "self"))
    with open(os.path.join(procfs, "4321", "mountinfo")) as f:
        theirs = f.read()
    with open(os.path.join(procfs, "self", "mountinfo"), "w") as f:
        f.write(theirs.replace(" /system.slice/docker-abc.scope /sys/fs/cgroup ",
                               " / /sys/fs/cgroup "))
    # Seen from this machine's root, PID 4321's cgroup lies below the reader's mount of /.
    found = discover(4321, procfs, "/")
    assert found.hierarchy_roots == {"unified": "/"}
    assert found.paths == {"unified": "/sys/fs/cgroup/system.slice/docker-abc.scope"}
