"""The pytest plugin inside real pytest sessions (pytester), with pytest-benchmark, and
live: a benchmark in a child cgroup with a 0.3-core CPU quota is flagged as throttled,
one without a quota is not."""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

BUSY_TEST = """
def test_busy():
    sum(range(3_000_000))

def test_memory():
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
"""
BENCHMARK_TEST = """
def spin():
    return sum(range(200_000))

def test_spin(benchmark):
    benchmark(spin)
"""
BENCHMARK_ARGS = ("--benchmark-min-rounds=5", "--benchmark-max-time=1.0",
                  "--benchmark-warmup=off", "-p", "no:cacheprovider")


def properties(junit_path) -> dict:
    """Returns {test name: {property: value}} of a junitxml file."""
    root = ET.parse(junit_path).getroot()
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in root.iter("testcase")}


def test_inert_unless_enabled(pytester):
    pytester.makepyfile(BUSY_TEST)
    result = pytester.runpytest_subprocess("--junitxml=out.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert properties(pytester.path / "out.xml") == {"test_busy": {}, "test_memory": {}}
    result.stdout.re_match_lines([r"plugins: .*\bpycgroup-"])  # loaded by its entry point
    result.stdout.no_fnmatch_line("*= pycgroup =*")
    result.stdout.no_fnmatch_line("most CPU time:")


def test_a_run_without_it_imports_none_of_the_core(pytester):
    """The plugin is loaded into every pytest run of the environment: disabled, it must
    not import numpy or pycgroup's core (about 200 ms a run)."""
    pytester.makepyfile("""
        import sys

        def test_nothing_heavy_was_imported():
            assert "pycgroup.integrations.pytest_plugin" in sys.modules
            assert not {"numpy", "pycgroup.cgroup", "pycgroup.sampler"} & set(sys.modules)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_call_phase_figures_reach_junitxml_and_the_summary(pytester):
    pytester.makepyfile(BUSY_TEST)
    result = pytester.runpytest_subprocess("--pycgroup", "--junitxml=out.xml",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    found = properties(pytester.path / "out.xml")
    busy, memory = found["test_busy"], found["test_memory"]
    # summing 3 million ints costs tens of ms of CPU, here or on any machine
    assert 0.01 < float(busy["pycgroup.cpu_seconds"]) < 30
    assert float(busy["pycgroup.duration_seconds"]) > 0
    assert float(busy["pycgroup.cpu_seconds"]) == pytest.approx(
        float(busy["pycgroup.cpu_cores_used"]) * float(busy["pycgroup.duration_seconds"]),
        rel=0.05)
    # touching 64 MiB raises the cgroup's working set by about that much during the test
    assert int(memory["pycgroup.peak_working_set_bytes"]) > 64 * 2**20
    assert memory["pycgroup.oom_kills"] == "0"
    result.stdout.fnmatch_lines(["*pycgroup*", "most memory (peak working set):",
                                 "*MiB  test_call_phase_figures_reach_junitxml_and_the_summary.py::test_memory",
                                 "most CPU time:"])


def test_ini_option_enables_it(pytester):
    pytester.makeini("[pytest]\npycgroup = true\n")
    pytester.makepyfile(BUSY_TEST)
    result = pytester.runpytest_subprocess("--junitxml=out.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert "pycgroup.cpu_seconds" in properties(pytester.path / "out.xml")["test_busy"]


def test_a_cgroup_without_some_files_still_measures_the_others(tree):
    # The root cgroup has no memory.events (nor memory.current); without PSI there are
    # no pressure files. The figures of the files that are there must stay right.
    import pycgroup
    from pycgroup.integrations.pytest_plugin import measure, new_sampler

    procfs, rootfs = tree("v2")
    os.remove(os.path.join(rootfs, "sys/fs/cgroup/system.slice/app.service/memory.events"))
    sampler = new_sampler(pycgroup.current(procfs, rootfs), hz=100)
    assert "memory.events.oom_kill" not in sampler.columns
    with sampler:
        with sampler.span("pytest", exact=True) as span:
            pass
    figures = measure(span)
    sampler.close()
    assert "oom_kills" not in figures
    # the fixture's memory.current less its memory.stat inactive_file
    assert figures["peak_working_set_bytes"] == 157286400 - 41943040
    assert figures["cpu_seconds"] == 0 and figures["psi_io_some_seconds"] == 0


def test_benchmark_gets_limits_and_extra_info(pytester):
    pytest.importorskip("pytest_benchmark")
    import pycgroup
    from pycgroup.values import to_json

    pytester.makepyfile(BENCHMARK_TEST)
    result = pytester.runpytest_subprocess("--pycgroup", "--benchmark-json=bench.json",
                                           *BENCHMARK_ARGS)
    result.assert_outcomes(passed=1)
    saved = json.loads((pytester.path / "bench.json").read_text())
    limits = pycgroup.limits()
    assert saved["machine_info"]["pycgroup"]["cpu_count"] == limits.cpu_count
    assert saved["machine_info"]["pycgroup"]["cgroup_mode"] == pycgroup.current().mode
    # JSON has no infinity: no limit is saved as "unlimited", as pycgroup info --json does.
    assert saved["machine_info"]["pycgroup"]["memory_max_bytes"] == to_json(
        limits.memory_max_bytes)
    (bench,) = saved["benchmarks"]
    assert bench["extra_info"]["pycgroup.cpu_seconds"] > 0
    assert bench["extra_info"]["pycgroup.cpu_cores_used"] > 0


def run_in(cgroups, directory, *args):
    """Runs pytest in a child that joins the test cgroups first; returns the result."""
    return subprocess.run([sys.executable, "-m", "pytest", *args], preexec_fn=cgroups.join,
                          cwd=directory, capture_output=True, text=True, timeout=300)


def live_benchmark(live_cgroups, pytester, quota_usec, *extra):
    pytest.importorskip("pytest_benchmark")
    cgroups = live_cgroups("cpu", "cpuacct")
    # A weight ten times the default (cpu.shares on v1, cpu.weight on v2): the cgroup
    # wants its quota even on a busy host.
    name, value = ("cpu.weight", 1000) if cgroups.version["cpu"] == "v2" else ("cpu.shares", 10240)
    cgroups.set("cpu", name, value, "parent")
    cgroups.set("cpu", name, value)
    if quota_usec is not None:
        cgroups.limit_cpu(quota_usec, 100000)
    pytester.makepyfile(BENCHMARK_TEST)
    result = run_in(cgroups, pytester.path, "--pycgroup", "--benchmark-json=bench.json",
                    *BENCHMARK_ARGS, *extra)
    saved = json.loads((pytester.path / "bench.json").read_text()) if (
        pytester.path / "bench.json").exists() else None
    return result, saved


def test_live_benchmark_under_a_quota_is_flagged(live_cgroups, pytester):
    result, saved = live_benchmark(live_cgroups, pytester, 30000)
    assert result.returncode == 0, result.stdout + result.stderr
    (bench,) = saved["benchmarks"]
    fraction = bench["extra_info"]["pycgroup.cpu_throttled_fraction"]
    assert fraction > 0.5, bench["extra_info"]
    assert bench["extra_info"]["pycgroup.cpu_throttled_periods"] > 0
    assert bench["extra_info"]["pycgroup.cpu_throttled_seconds"] > 0
    assert bench["extra_info"]["pycgroup.cpu_cores_used"] <= 0.3 * 1.1
    assert saved["machine_info"]["pycgroup"]["cpu_quota_cores"] == 0.3
    message = (f"benchmark test_live_benchmark_under_a_quota_is_flagged.py::test_spin was "
               f"CPU-throttled for {fraction:.0%} of its run; its timings are not comparable")
    assert message in result.stdout
    # and the summary ranks it among the most throttled tests
    assert re.search(r"most CPU-throttled \(fraction of CFS periods\):\n +"
                     rf"{fraction:.0%}  test_live_benchmark_under_a_quota_is_flagged.py::test_spin",
                     result.stdout), result.stdout


def test_live_benchmark_under_a_quota_fails_on_request(live_cgroups, pytester):
    result, _ = live_benchmark(live_cgroups, pytester, 30000, "--pycgroup-fail-on-throttle")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "was CPU-throttled for" in result.stdout


def test_live_benchmark_without_a_quota_is_not_flagged(live_cgroups, pytester):
    result, saved = live_benchmark(live_cgroups, pytester, None, "--pycgroup-fail-on-throttle")
    assert result.returncode == 0, result.stdout + result.stderr
    (bench,) = saved["benchmarks"]
    assert "pycgroup.cpu_throttled_fraction" not in bench["extra_info"]  # no CFS periods
    assert bench["extra_info"].get("pycgroup.cpu_throttled_periods", 0) == 0
    assert saved["machine_info"]["pycgroup"]["cpu_quota_cores"] == "unlimited"
    assert "CPU-throttled" not in result.stdout
