"""A real Prometheus server (Debian's `prometheus`, installed by
.ci/provision.d/10-prometheus.sh) scrapes pycgroup's collector and OpenTelemetry's
Prometheus exporter on 127.0.0.1; the values it stored are compared with the kernel's
files read around the scrape window."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

import pycgroup  # noqa: E402
from pycgroup.prometheus import start_http_server  # noqa: E402

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus server binary is not installed (.ci/provision.d/10-prometheus.sh "
           "installs Debian's package)")
SCRAPE_INTERVAL_S = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """A Prometheus server on 127.0.0.1 with its own config and data directory."""

    def __init__(self, directory, targets: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        jobs = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            for job, target in targets.items())
        config.write_text(f"global:\n  scrape_interval: {int(SCRAPE_INTERVAL_S * 1000)}ms\n"
                          f"  scrape_timeout: {int(SCRAPE_INTERVAL_S * 1000)}ms\n"
                          f"scrape_configs:\n{jobs}")
        self.log = open(directory / "prometheus.log", "w+")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=directory)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/-/ready", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("prometheus did not start: " + self.output())
                time.sleep(0.2)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def query(self, expression: str) -> list:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        answer = json.load(urllib.request.urlopen(url, timeout=10))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for_samples(self, expression: str, count: int, timeout_s: float = 60) -> list:
        """Returns the series of a range selector once one holds count samples."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expression)
            if result and min(len(r["values"]) for r in result) >= count:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression}: {result}\n{self.targets()}\n{self.output()}")
            time.sleep(SCRAPE_INTERVAL_S)

    def targets(self) -> str:
        return urllib.request.urlopen(self.url + "/api/v1/targets", timeout=10).read().decode()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().split()[0])


def kernel_memory_limit(cgroups) -> int:
    """The leaf's memory limit as the kernel's own file says (memory.max on v2)."""
    v2 = cgroups.version["memory"] == "v2"
    return read_int(os.path.join(cgroups.leaves["memory"],
                                 "memory.max" if v2 else "memory.limit_in_bytes"))


def kernel_cpu_seconds(cgroups) -> float:
    """The leaf's CPU usage as the kernel's own files say (cpuacct.usage on v1)."""
    return cgroups.cpu_counters()["usage_usec"] / 1e6


def test_prometheus_stores_what_the_kernel_said(live_cgroups, tmp_path):
    cgroups = live_cgroups("memory", "cpu", "cpuacct")
    limit = 192 * 1024 * 1024
    cgroups.limit_memory(limit)
    child = cgroups.popen([sys.executable, "-c", "while True: pass"])
    server = prometheus = None
    try:
        server, _ = start_http_server(0, cg=pycgroup.of_pid(child.pid), gpus=False,
                                      cadvisor_names=True)
        before_s = kernel_cpu_seconds(cgroups)
        prometheus = Prometheus(tmp_path, {"pycgroup": f"127.0.0.1:{server.server_port}"})
        window = f"[{int(60 + 10)}s]"
        usage = prometheus.wait_for_samples("pycgroup_cpu_usage_seconds_total" + window, 6)
        cadvisor = prometheus.query("container_cpu_usage_seconds_total" + window)
        memory_max = prometheus.query("pycgroup_memory_max_bytes")
        spec = prometheus.query("container_spec_memory_limit_bytes")
        after_s = kernel_cpu_seconds(cgroups)
        kernel_limit = kernel_memory_limit(cgroups)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if server is not None:
            server.shutdown()
        child.kill()
        child.wait()

    path = "/" + os.path.relpath(cgroups.leaves["memory"],
                                 os.path.dirname(cgroups.parents["memory"]))
    assert kernel_limit == limit
    assert [float(r["value"][1]) for r in memory_max] == [limit]
    assert memory_max[0]["metric"]["cgroup"] == path
    assert memory_max[0]["metric"]["job"] == "pycgroup"
    assert [float(r["value"][1]) for r in spec] == [limit]
    assert spec[0]["metric"]["id"] == path

    (series,) = usage
    values = [float(v) for _, v in series["values"]]
    # every stored value lies between the kernel's readings before and after the scrapes
    assert before_s <= values[0] and values[-1] <= after_s
    assert all(b >= a for a, b in zip(values, values[1:]))  # a counter: monotonic
    assert values[-1] > values[0]  # and the busy child made it grow
    assert sum(b > a for a, b in zip(values, values[1:])) >= len(values) // 2
    (same,) = cadvisor
    assert {t: v for t, v in same["values"]}.keys() & {t: v for t, v in series["values"]}.keys()
    for (t1, v1), (t2, v2) in zip(same["values"], series["values"]):
        if t1 == t2:
            assert v1 == v2  # one snapshot feeds both names


def test_prometheus_scrapes_the_opentelemetry_exporter(live_cgroups, tmp_path):
    pytest.importorskip("opentelemetry.exporter.prometheus")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider

    from pycgroup.otel import instrument

    cgroups = live_cgroups("memory", "cpu", "cpuacct")
    limit = 160 * 1024 * 1024
    cgroups.limit_memory(limit)
    child = cgroups.popen([sys.executable, "-c", "while True: pass"])
    registry = prometheus_client.CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(metric_readers=[reader])
    server = prometheus = None
    try:
        instrument(provider, pycgroup.of_pid(child.pid), gpus=False)
        server, _ = prometheus_client.start_http_server(0, "127.0.0.1", registry)
        before_s = kernel_cpu_seconds(cgroups)
        prometheus = Prometheus(tmp_path, {"otel": f"127.0.0.1:{server.server_port}"})
        # OpenTelemetry's exporter: container.cpu.time (s, counter) -> ..._seconds_total
        usage = prometheus.wait_for_samples("container_cpu_time_seconds_total[70s]", 6)
        memory_max = prometheus.query("pycgroup_memory_limit_bytes")
        # one scrape's two series, from one snapshot: they add up to the limit
        memory = prometheus.query("container_memory_available_bytes"
                                  " + on() container_memory_working_set_bytes")
        faults = prometheus.query("container_paging_faults_total")
        after_s = kernel_cpu_seconds(cgroups)
        kernel_limit = kernel_memory_limit(cgroups)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if server is not None:
            server.shutdown()
        provider.shutdown()
        child.kill()
        child.wait()
    assert kernel_limit == limit
    assert [float(r["value"][1]) for r in memory_max] == [limit]
    assert [float(r["value"][1]) for r in memory] == [limit]
    by_type = {r["metric"]["system_paging_fault_type"]: float(r["value"][1]) for r in faults}
    assert by_type.keys() == {"major", "minor"} and by_type["minor"] > 0  # python faulted in
    (series,) = usage
    values = [float(v) for _, v in series["values"]]
    assert before_s <= values[0] and values[-1] <= after_s
    assert all(b >= a for a, b in zip(values, values[1:])) and values[-1] > values[0]
    path = "/" + os.path.relpath(cgroups.leaves["memory"],
                                 os.path.dirname(cgroups.parents["memory"]))
    assert series["metric"]["pycgroup_cgroup_path"] == path
