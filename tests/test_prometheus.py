"""The Prometheus collector on fixture trees, live cgroups and the fake NVML, the
`pycgroup serve` command, and the error a missing prometheus_client gives."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import pycgroup  # noqa: E402
from pycgroup.export.labels import cgroup_path  # noqa: E402
from pycgroup.prometheus import CgroupCollector, start_http_server  # noqa: E402

from test_gpu import fake_builds, fake_nvml  # noqa: E402,F401  (the fake NVML fixtures)
from installed import PYCGROUP  # noqa: E402

APP = "sys/fs/cgroup/system.slice/app.service"


def parse(text: str) -> dict:
    """Returns {(sample name, ((label, value), ...)): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(collector) -> dict:
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    return parse(prometheus_client.generate_latest(registry).decode())


def types(collector) -> dict:
    registry = prometheus_client.CollectorRegistry()
    registry.register(collector)
    text = prometheus_client.generate_latest(registry).decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def by_name(samples: dict, name: str) -> dict:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def v2_tree(tree, monkeypatch):
    for variable in ("RANK", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    procfs, rootfs = tree("v2")
    return procfs, rootfs


def test_values_are_the_files_in_base_units(v2_tree):
    procfs, rootfs = v2_tree
    got = scrape(CgroupCollector(pycgroup.current(procfs, rootfs), gpus=False))
    label = (("cgroup", "/system.slice/app.service"),)
    expected = {  # tests/fixtures/v2/.../app.service: cpu.stat, memory.*, io.pressure
        "pycgroup_cpu_usage_seconds_total": 5.0,
        "pycgroup_cpu_user_seconds_total": 4.0,
        "pycgroup_cpu_system_seconds_total": 1.0,
        "pycgroup_cpu_periods_total": 1200,
        "pycgroup_cpu_throttled_periods_total": 300,
        "pycgroup_cpu_throttled_seconds_total": 4.5,
        "pycgroup_cpu_period_seconds": 0.1,
        "pycgroup_memory_usage_bytes": 157286400,
        "pycgroup_memory_high_bytes": 805306368,
    }
    for name, value in expected.items():
        assert got[(name, label)] == value, name
    assert by_name(got, "pycgroup_memory_events_total") == {
        label + (("event", e),): v
        for e, v in {"high": 12, "low": 0, "max": 3, "oom": 1, "oom_kill": 1}.items()}
    io = {k: v for k, v in by_name(got, "pycgroup_pressure_some_seconds_total").items()
          if ("resource", "io") in k}
    assert list(io.values()) == [9000 / 1e6]
    assert by_name(got, "pycgroup_pressure_full_seconds_total")[
        (("cgroup", "/system.slice/app.service"), ("resource", "io"))] == 8000 / 1e6


def test_unlimited_limits_are_absent_and_set_ones_are_gauges(v2_tree):
    procfs, rootfs = v2_tree
    collector = CgroupCollector(pycgroup.current(procfs, rootfs), gpus=False,
                                cadvisor_names=True)
    names = {n for n, _ in scrape(collector)}
    # memory.max, pids.max and the cpu.max quota are "max" in the fixture
    for absent in ("pycgroup_memory_max_bytes", "pycgroup_pids_max",
                   "pycgroup_cpu_quota_cores", "container_spec_memory_limit_bytes",
                   "container_spec_cpu_quota", "container_threads_max"):
        assert absent not in names
    app = os.path.join(rootfs, APP)
    for file, value in (("memory.max", "1073741824"), ("cpu.max", "50000 100000"),
                        ("pids.max", "64")):
        with open(os.path.join(app, file), "w") as f:
            f.write(value + "\n")
    label = (("cgroup", "/system.slice/app.service"),)
    got = scrape(CgroupCollector(pycgroup.current(procfs, rootfs), gpus=False,
                                 cadvisor_names=True))
    assert got[("pycgroup_memory_max_bytes", label)] == 1073741824
    assert got[("pycgroup_cpu_quota_cores", label)] == 0.5
    assert got[("pycgroup_pids_max", label)] == 64
    cadvisor = (("id", "/system.slice/app.service"),)
    assert got[("container_spec_memory_limit_bytes", cadvisor)] == 1073741824
    assert got[("container_spec_cpu_quota", cadvisor)] == 50000
    assert got[("container_spec_cpu_period", cadvisor)] == 100000
    kinds = types(collector)
    assert kinds["pycgroup_memory_max_bytes"] == "gauge"
    assert kinds["pycgroup_cpu_usage_seconds"] == "counter"  # the parser drops _total
    assert kinds["pycgroup_memory_events"] == "counter"


def test_cadvisor_names_only_on_request_with_cadvisor_meanings(v2_tree):
    procfs, rootfs = v2_tree
    cg = pycgroup.current(procfs, rootfs)
    assert not any(n.startswith("container_") for n, _ in scrape(CgroupCollector(cg, gpus=False)))
    got = scrape(CgroupCollector(cg, gpus=False, cadvisor_names=True))
    label = (("id", "/system.slice/app.service"),)
    assert got[("container_cpu_cfs_throttled_seconds_total", label)] == 4.5
    assert got[("container_cpu_cfs_throttled_periods_total", label)] == 300
    assert got[("container_cpu_cfs_periods_total", label)] == 1200
    assert got[("container_cpu_usage_seconds_total", label)] == 5.0
    assert got[("container_memory_usage_bytes", label)] == 157286400
    assert got[("container_memory_failcnt", label)] == 3  # cAdvisor's name has no _total
    assert got[("container_oom_events_total", label)] == 1
    assert got[("container_pressure_io_waiting_seconds_total", label)] == 0.009
    assert got[("container_pressure_io_stalled_seconds_total", label)] == 0.008
    working_set = got[("pycgroup_memory_working_set_bytes", (("cgroup", label[0][1]),))]
    assert got[("container_memory_working_set_bytes", label)] == working_set


def test_rank_labels_come_from_the_environment(v2_tree, monkeypatch):
    procfs, rootfs = v2_tree
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "1")
    got = scrape(CgroupCollector(pycgroup.current(procfs, rootfs), gpus=False,
                                 cadvisor_names=True, labels={"job_name": "train"}))
    labels = dict(next(k for n, k in got if n == "pycgroup_memory_usage_bytes"))
    assert labels == {"cgroup": "/system.slice/app.service", "rank": "5", "local_rank": "1",
                      "job_name": "train"}
    labels = dict(next(k for n, k in got if n == "container_memory_usage_bytes"))
    assert labels == {"id": "/system.slice/app.service", "rank": "5", "local_rank": "1",
                      "job_name": "train"}


def test_gpu_series_from_nvml(fake_nvml):  # noqa: F811
    fake_nvml()
    got = scrape(CgroupCollector())
    label = (("cgroup", cgroup_path(pycgroup.current())), ("gpu", "0"))
    assert got[("pycgroup_gpu_memory_used_bytes", label)] == 1073741824
    assert got[("pycgroup_gpu_utilization_ratio", label)] == 0.97
    assert got[("pycgroup_gpu_power_watts", label)] == 612.0
    assert got[("pycgroup_gpu_energy_joules_total", label)] == 5000.0
    assert got[("pycgroup_gpu_sm_clock_hertz", label)] == 1980e6
    assert got[("pycgroup_gpu_violation_seconds_total", label + (("reason", "power"),))] == 1.5
    events = {dict(k)["reason"]: v for k, v in
              by_name(got, "pycgroup_gpu_clock_event_active").items() if ("gpu", "0") in k}
    assert events["sw_power_cap"] == 1.0 and events["gpu_idle"] == 0.0  # reasons = 4
    # gpu1 does not support temperature: absent, not 0
    assert ("pycgroup_gpu_temperature_celsius",
            (label[0], ("gpu", "1"))) not in got
    assert got[("pycgroup_gpu_memory_used_bytes", (label[0], ("gpu", "1")))] == 2048


def test_live_cgroup_limit_and_cpu(live_cgroups):
    cgroups = live_cgroups("memory", "cpu", "cpuacct")
    limit = 256 * 1024 * 1024
    cgroups.limit_memory(limit)  # memory.max on v2, memory.limit_in_bytes on v1
    child = cgroups.popen([sys.executable, "-c", "while True: pass"])
    try:
        collector = CgroupCollector(pycgroup.of_pid(child.pid), gpus=False)
        label = (("cgroup", "/" + os.path.relpath(cgroups.leaves["memory"],
                                                  os.path.dirname(cgroups.parents["memory"]))),)
        first = scrape(collector)
        assert first[("pycgroup_memory_max_bytes", label)] == limit
        time.sleep(0.5)
        second = scrape(collector)
    finally:
        child.kill()
        child.wait()
    usage = "pycgroup_cpu_usage_seconds_total"
    assert second[(usage, label)] > first[(usage, label)]


def favour(cgroups):
    """Gives the test cgroups ten times the default CPU weight (cpu.shares on v1,
    cpu.weight on v2), so that they get their quota even on a busy host."""
    name, value = ("cpu.weight", 1000) if cgroups.version["cpu"] == "v2" else ("cpu.shares", 10240)
    cgroups.set("cpu", name, value, "parent")
    cgroups.set("cpu", name, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_http_server_adds_local_rank(monkeypatch):
    port = free_port()
    monkeypatch.setenv("LOCAL_RANK", "3")
    server, thread = start_http_server(port - 3, add_local_rank=True, gpus=False)
    try:
        assert server.server_port == port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        labels = dict(next(k for n, k in parse(text.decode())
                           if n == "pycgroup_memory_usage_bytes"))
        assert labels["local_rank"] == "3"
    finally:
        server.shutdown()
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(ValueError, match="LOCAL_RANK must be an integer, not 'x'"):
        start_http_server(port, add_local_rank=True)


def test_serve_exports_another_process_until_it_exits(live_cgroups):
    cgroups = live_cgroups("memory")
    child = cgroups.popen([sys.executable, "-c", "import time; time.sleep(60)"])
    serve = subprocess.Popen([PYCGROUP, "serve", "--port", "0", "--pid", str(child.pid),
                              "--cadvisor-names"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = serve.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + serve.stderr.read()
        url = line.split()[1]
        got = parse(urllib.request.urlopen(url, timeout=10).read().decode())
        path = "/" + os.path.relpath(cgroups.leaves["memory"],
                                     os.path.dirname(cgroups.parents["memory"]))
        assert ("container_memory_usage_bytes", (("id", path),)) in got
        assert got[("pycgroup_memory_usage_bytes", (("cgroup", path),))] > 0
    finally:
        child.kill()
        child.wait()
    assert serve.wait(timeout=30) == 0
    assert f"process {child.pid} exited" in serve.stderr.read()


def test_serve_reports_a_missing_process():
    result = subprocess.run([PYCGROUP, "serve", "--port", "0", "--pid", "999999999"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("pycgroup serve: ") and "999999999" in result.stderr


def test_missing_prometheus_client_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "prometheus_client.core", None)
    with pytest.raises(pycgroup.MissingExtra, match=r'pip install "pycgroup\[prometheus\]"'):
        CgroupCollector()
    with pytest.raises(ImportError):
        start_http_server(0)


def test_step_summary_of_a_running_sampler():
    sampler = pycgroup.Sampler(["cpu.stat.usage_usec", "memory.current",
                                "memory.stat.inactive_file"], hz=500)
    collector = CgroupCollector(sampler=sampler, step_labels=("step", "eval"), gpus=False)
    durations = []
    with sampler:
        for i in range(4):
            with sampler.span("step", exact=True) as span:
                sum(range(50_000 * (i + 1)))
            durations.append(span.duration_s)
    got = scrape(collector)
    step = (("cgroup", cgroup_path(sampler.cgroup)), ("step", "step"))
    assert got[("pycgroup_step_duration_seconds_count", step)] == 4
    assert got[("pycgroup_step_duration_seconds_sum", step)] == pytest.approx(sum(durations))
    summary = sampler.summary("step")

    def quantile(q, labels=step):
        return ("pycgroup_step_duration_seconds", tuple(sorted(labels + (("quantile", q),))))

    assert got[quantile("0.5")] == summary.duration_s.p50
    assert got[quantile("0.9")] == summary.duration_s.p90
    assert got[quantile("0.99")] == summary.duration_s.p99
    assert summary.duration_s.max == pytest.approx(max(durations))
    assert got[("pycgroup_step_peak_working_set_bytes_count", step)] == 4
    assert got[("pycgroup_step_cpu_cores_used_count", step)] == 4
    evaluation = (step[0], ("step", "eval"))
    assert got[("pycgroup_step_duration_seconds_count", evaluation)] == 0
    assert quantile("0.5", evaluation) not in got
    assert types(CgroupCollector(sampler=sampler, gpus=False))[
        "pycgroup_step_duration_seconds"] == "summary"
    sampler.close()  # a closed sampler's steps are no longer exported; the cgroup's are
    after = scrape(collector)
    assert ("pycgroup_step_duration_seconds_count", step) not in after
    assert any(name.startswith("pycgroup_cpu_usage") for name, _ in after)


def test_step_throttled_ratio_of_a_cgroup_under_a_quota(live_cgroups):
    cgroups = live_cgroups("cpu", "cpuacct")
    favour(cgroups)
    cgroups.limit_cpu(20000, 100000)  # 0.2 core for a busy loop
    child = cgroups.popen([sys.executable, "-c", "while True: pass"])
    try:
        sampler = pycgroup.Sampler(["cpu.stat.usage_usec", "cpu.stat.nr_periods",
                                    "cpu.stat.nr_throttled"], hz=100,
                                   cgroup=pycgroup.of_pid(child.pid))
        collector = CgroupCollector(sampler.cgroup, sampler=sampler, gpus=False)
        with sampler:
            for _ in range(3):
                with sampler.span("step", exact=True):
                    time.sleep(0.5)  # about 5 CFS periods, each throttled
            got = scrape(collector)
    finally:
        child.kill()
        child.wait()
    step = (("cgroup", cgroup_path(sampler.cgroup)), ("step", "step"))
    assert got[("pycgroup_step_cpu_throttled_ratio_count", step)] == 3
    median_labels = tuple(sorted(step + (("quantile", "0.5"),)))
    median = got[("pycgroup_step_cpu_throttled_ratio", median_labels)]
    assert 0.5 < median <= 1.0
    assert got[("pycgroup_step_cpu_throttled_ratio_sum", step)] > 1.5
    cores = got[("pycgroup_step_cpu_cores_used", median_labels)]
    assert 0.05 < cores <= 0.2 * 1.1


def test_every_exported_name_is_documented():
    from pycgroup.export import prometheus as exported
    from pycgroup.export.step_metrics import STEP_FIGURES

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "docs", "metrics.md")) as f:
        text = f.read()
    names = {s.name for s in exported.SERIES + exported.CADVISOR_SERIES + exported.gpu_series(0)}
    names |= {exported.QUOTA_CORES[0], exported.GPU_CLOCK_EVENTS}
    names |= {name for name, _ in STEP_FIGURES.values()}
    assert sorted(n for n in names if f"| `{n}` |" not in text) == []
