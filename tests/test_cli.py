"""`pycgroup info`, run as a user runs it."""

import json
import subprocess

import pycgroup
from installed import PYCGROUP



def run(*args):
    return subprocess.run([PYCGROUP, *args], capture_output=True, text=True, timeout=60)


def test_info_on_this_machine():
    done = run("info")
    assert done.returncode == 0, done.stderr
    cg = pycgroup.current()
    assert done.stdout.startswith(f"cgroup mode   {cg.mode}\n")
    for name, path in cg.paths.items():
        assert f"  {name:<11} {path}\n" in done.stdout
    for section in ("limits of the cgroup", "host", "what this process can use",
                    "usage of the cgroup", "this process alone"):
        assert f"\n\n{section}" in done.stdout, section
    # The rows span a little under the second asked for on a loaded machine.
    assert "\nwhat a 1 kHz sampler saw over " in done.stdout
    assert "  cpu cores used     " in done.stdout


def test_info_json_matches_the_api():
    done = run("info", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    lim = pycgroup.limits()
    assert info["mode"] == pycgroup.current().mode
    assert info["limits"]["host_memory_bytes"] == lim.host_memory_bytes
    assert info["limits"]["cpu_count"] == lim.cpu_count
    assert info["usage"]["memory.current"] is None or info["usage"]["memory.current"] > 0
    sampled = info["sampled"]
    assert sampled["interval_s"] >= 0.9 and sampled["rows"] > 100
    assert sampled["cpu_cores_used"] > 0  # at least this process's own start-up


def test_info_without_sampling():
    info = json.loads(run("info", "--json", "--seconds", "0").stdout)
    assert info["sampled"] is None


def test_info_on_a_v2_fixture(tree):
    procfs, rootfs = tree("v2")
    done = run("info", "--procfs", procfs, "--rootfs", rootfs, "--seconds", "0.2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the tree's files do not change
    assert "  cpu cores used     0.000 of the 0.5-core quota\n" in out
    assert "  cpu throttled      no CPU period ended while sampling" in out
    assert "cgroup mode   v2\n" in out
    assert ("\n  memory limit   1.0 GiB\n  memory.high    768.0 MiB\n"
            "  swap limit     0 B\n") in out
    assert "  soft limit     does not exist on cgroup v2" in out
    assert "  cpu quota      0.5 cores\n" in out
    assert "\nhost\n  memory         7.7 GiB\n  swap           0 B\n" in out
    assert "  cpus           0.5 (cpus 0,1 of the cpuset and affinity) -> cpu_count 1\n" in out
    assert "  memory used            150.0 MiB     memory.current\n" in out
    assert "  time throttled         4.500 s       cpu.stat.throttled_usec\n" in out
    assert "  CPU stalls (some)      0.123 s       cpu.pressure.some.total\n" in out
    # The process's own figures are apart from the cgroup's.
    cgroup_part, process_part = out.split("\nthis process alone\n")
    assert "proc.rss_bytes" in process_part and "proc." not in cgroup_part


def test_info_on_v1_says_what_does_not_exist_there(tree):
    procfs, rootfs = tree("v1")
    out = run("info", "--procfs", procfs, "--rootfs", rootfs, "--seconds", "0.2").stdout
    assert "cgroup mode   v1\n" in out
    assert "  memory limit   512.0 MiB\n" in out
    assert "  memory.high    does not exist on cgroup v1 (memory.high is v2 only)\n" in out
    assert "  memory.low     does not exist on cgroup v1" in out
    assert "  pressure stalls    - (needs cgroup v2)\n" in out
    # Neither a limit that cannot exist nor a fraction with no periods reads as a value.
    assert "high unlimited" not in out and "high unavailable" not in out
    assert "- of periods" not in out and "\n  cpu throttled      -" not in out


def test_info_when_not_in_a_cgroup(tree):
    procfs, rootfs = tree("none")
    done = run("info", "--json", "--procfs", procfs, "--rootfs", rootfs)
    info = json.loads(done.stdout)
    assert info["mode"] == "none" and info["paths"] == {}
    assert "no memory cgroup hierarchy is mounted" in info["unavailable"]["memory.current"]
    text = run("info", "--procfs", procfs, "--rootfs", rootfs).stdout
    assert "not in a cgroup" in text


def test_info_for_a_missing_process_fails_cleanly():
    done = run("info", "--pid", str(2**22 + 12345))
    assert done.returncode == 1
    assert done.stderr.startswith("pycgroup: [Errno 2]") and "cgroup" in done.stderr


def test_bad_usage_exits_2():
    assert run("frobnicate").returncode == 2
    assert run().returncode == 2


def test_info_on_a_container_root_seen_from_the_host(tree):
    procfs, rootfs = tree("host-view")
    done = run("info", "--pid", "4321", "--procfs", procfs, "--rootfs", rootfs,
               "--seconds", "0")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("\n  memory limit   200.0 MiB\n  memory.high    unlimited\n"
            "  swap limit     unlimited\n  memory.low     100.0 MiB\n"
            "  memory.min     0 B\n") in out
    assert "\nwhat pid 4321 can use (the cgroup's limits on this host)\n" in out
    assert "  swap           0 B\n" in out
    assert "  cpus           0.5 (cpus 0,2,3 of the cpuset and affinity)" in out
    assert "  cpu quota      0.5 cores\n" in out
    assert "  cpu weight     39\n" in out
    assert "  io 8:16        rbps 2097152 wbps unlimited riops unlimited wiops 120\n" in out
    assert "\nio of the cgroup\n  8:0        rbytes 90430464 wbytes 299008000" in out
    info = json.loads(run("info", "--json", "--pid", "4321", "--procfs", procfs,
                          "--rootfs", rootfs, "--seconds", "0").stdout)
    assert info["limits"]["memory_high_bytes"] == "unlimited"
    assert info["limits"]["memory_soft_limit_bytes"] is None
    assert info["io_stat"]["8:16"]["wios"] == 353


def test_info_for_a_process_outside_its_mount_root_is_in_a_cgroup(tree):
    procfs, rootfs = tree("cgroupns")
    done = run("info", "--pid", "77", "--procfs", procfs, "--rootfs", rootfs, "--seconds", "0")
    assert done.returncode == 0, done.stderr
    assert "not in a cgroup" not in done.stdout
    assert "cgroup mode   v2\n" in done.stdout and "the mount point's limits stand in" in (
        done.stdout)


def test_info_labels_throttled_time_as_a_rate_not_a_fraction(tree):
    procfs, rootfs = tree("v2")
    out = run("info", "--procfs", procfs, "--rootfs", rootfs, "--seconds", "0.2").stdout
    assert "s throttled per s (summed over CPUs)\n" in out
    assert "of the time" not in out
    # The tree's nr_throttled never moves: gaps, if any, are not put down to the quota.
    import re

    assert re.search(r"\n  sampler gaps       \d+\n", out), out


def test_throttled_gaps_counts_the_gaps_that_nr_throttled_grew_across():
    import numpy as np

    from pycgroup.cli.info import throttled_gaps
    from pycgroup.formats import MISSING
    from pycgroup.samples import Samples

    ms = 1_000_000
    # Gaps (more than two 1 ms periods) before rows 3, 5 and 7: throttled across the
    # first only; the third's earlier value could not be read.
    t = [0, 1, 2, 10, 11, 20, 21, 30]
    throttled = [0, 0, 0, 1, 1, 1, MISSING, 2]
    rows = np.array([[ti * ms, n] for ti, n in zip(t, throttled)], dtype=np.int64)
    data = Samples(rows, ["cpu.stat.nr_throttled"], period_ns=ms)
    assert data.gaps.tolist() == [3, 5, 7]
    assert throttled_gaps(data) == (3, 1)
    rows[:, 1] = 0
    assert throttled_gaps(Samples(rows, ["cpu.stat.nr_throttled"], period_ns=ms)) == (3, 0)
    # Without nr_throttled the gaps are still counted; what they coincide with is unknown.
    assert throttled_gaps(Samples(rows[:, :1], [], period_ns=ms)) == (3, None)
