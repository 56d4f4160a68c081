"""The live tests on a pure cgroup v2 kernel: tests/vm/run-v2.sh boots Debian's kernel
under QEMU with cgroup_no_v1=all and runs them inside; they must pass there, and the ones
that set limits must have run, not skipped."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "run-v2.sh")
# What the guest runs: the live tests, and the tests that must hold at a v2 cgroup.
GUEST_TESTS = [
    "-k", "not pure",  # the pure twin's reads are compared with the native ones elsewhere
    "tests/test_live.py",
    "tests/test_live_sampler.py",
    "tests/test_sampler.py::test_removed_cgroup_while_sampling_counts_errors_and_keeps_going",
    "tests/test_gpu.py::test_without_nvml_gpu_metrics_are_unavailable_and_cgroups_work",
    # unshare -C, then moved: the cgroup outside its mount's root, found by cgroup.procs.
    "tests/test_discovery.py::test_live_process_moved_out_of_its_cgroup_namespace_is_found",
]
# Tests that set limits in v2 cgroups: each must have passed in the guest, not skipped.
MUST_PASS = [
    "test_limits_seen_from_inside", "test_parent_quota_is_the_tightest",
    "test_unified_hierarchy_and_pressure", "test_of_pid_watches_another_process",
    "test_info_command_inside_a_limited_cgroup", "test_cleanup_leaves_nothing_behind",
    "test_cpu_quota_half_a_core[native]", "test_cpu_quota_throttles_a_busy_loop[native]",
    "test_memory_follows_an_allocating_child[native]",
    "test_removed_cgroup_while_sampling_counts_errors_and_keeps_going[native]",
    "test_without_nvml_gpu_metrics_are_unavailable_and_cgroups_work",
    "test_live_process_moved_out_of_its_cgroup_namespace_is_found",
]


def missing_programs() -> list:
    missing = [p for p in ("qemu-system-x86_64", "busybox", "modinfo", "cpio")
               if shutil.which(p) is None]
    if not [f for f in os.listdir("/boot") if f.startswith("vmlinuz-")]:
        missing.append("a kernel in /boot")
    return missing


@pytest.mark.skipif(os.geteuid() != 0, reason="the guest runs the live tests as root, "
                    "reading the host's root filesystem")
def test_live_tests_pass_on_pure_cgroup_v2():
    if os.environ.get("PYCGROUP_SKIP_VM"):
        pytest.skip("PYCGROUP_SKIP_VM is set (the emulated guest takes minutes of both cores)")
    missing = missing_programs()
    if missing:
        pytest.skip(f"no {', '.join(missing)} (.ci/provision.d/30-qemu.sh installs "
                    "qemu-system-x86, linux-image-amd64 and busybox-static)")
    out = tempfile.mkdtemp(prefix="pycgroup-vm-")  # not under pytest's rotating basetemp
    try:
        check_guest_run(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check_guest_run(out: str):
    tmp_path = pathlib.Path(out)
    env = dict(os.environ, PYTHON=sys.executable, OUT=out)
    done = subprocess.run([SCRIPT, *GUEST_TESTS], env=env, capture_output=True, text=True,
                          timeout=2400)
    assert done.returncode != 125, f"the guest did not run pytest:\n{done.stderr[-3000:]}"
    # The guest's kernel had cgroup v2 only, with the controllers the tests need.
    with open(tmp_path / "mountinfo") as f:
        mounts = [line.split(" - ")[1].split()[0] for line in f]
    assert "cgroup" not in mounts and "cgroup2" in mounts, mounts
    with open(tmp_path / "cgroup.controllers") as f:
        assert {"cpu", "memory", "pids"} <= set(f.read().split())
    cases = {}
    for case in ElementTree.parse(tmp_path / "junit.xml").iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
        cases[case.get("name")] = outcome
    assert done.returncode == 0, done.stdout[-6000:]
    assert {name: cases.get(name) for name in MUST_PASS} == dict.fromkeys(MUST_PASS, "passed")
