"""OpenTelemetry instruments read through the SDK's in-memory reader, on fixture trees,
the fake NVML and live cgroups; their names and units checked against the installed
semantic-conventions package."""

import logging
import sys

import pytest

pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402

import pycgroup  # noqa: E402
from pycgroup.export.otel import GPU_INSTRUMENTS, INSTRUMENTS  # noqa: E402
from pycgroup.otel import instrument  # noqa: E402

from test_gpu import fake_builds, fake_nvml  # noqa: E402,F401  (the fake NVML fixtures)

APP = "/system.slice/app.service"


def collect(cg, **options) -> dict:
    """Returns {instrument name: (unit, type name, [(attributes, value), ...])}."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(provider, cg, **options)
    found = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "pycgroup"
            for m in scope.metrics:
                found[m.name] = (m.unit, type(m.data).__name__,
                                 [(dict(p.attributes), p.value) for p in m.data.data_points])
    provider.shutdown()
    return found


@pytest.fixture
def no_ranks(monkeypatch):
    for variable in ("RANK", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)


def test_semantic_convention_names_and_units(tree, no_ranks, caplog):
    procfs, rootfs = tree("v2")
    with caplog.at_level(logging.WARNING):
        got = collect(pycgroup.current(procfs, rootfs), gpus=False)
    # An unlimited value is no point, not an infinity for the SDK to drop with a warning.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    common = {"pycgroup.cgroup.path": APP}
    assert got["container.cpu.time"] == ("s", "Sum", [(common, 5.0)])
    assert got["container.memory.usage"] == ("By", "Sum", [(common, 157286400)])
    assert got["pycgroup.cpu.throttled.time"] == ("s", "Sum", [(common, 4.5)])
    assert got["pycgroup.cpu.throttled.periods"][2] == [(common, 300)]
    assert got["pycgroup.memory.high"] == ("By", "Gauge", [(common, 805306368)])
    assert "pycgroup.memory.limit" not in got or got["pycgroup.memory.limit"][2] == []  # max
    events = {a["pycgroup.memory.event"]: v for a, v in got["pycgroup.memory.events"][2]}
    assert events == {"low": 0, "high": 12, "max": 3, "oom": 1, "oom_kill": 1}
    stalls = {(a["pycgroup.pressure.resource"], a["pycgroup.pressure.scope"]): v
              for a, v in got["pycgroup.pressure.stall.time"][2]}
    assert stalls[("io", "some")] == 0.009 and stalls[("io", "full")] == 0.008
    modes = {a["cpu.mode"] for a, _ in got["process.cpu.time"][2]}
    assert modes == {"user", "system"}
    # memory.stat: pgfault 2000 counts the 3 pgmajfault too
    assert got["container.paging.faults"] == ("{fault}", "Sum", [
        ({**common, "system.paging.fault.type": "major"}, 3),
        ({**common, "system.paging.fault.type": "minor"}, 1997)])
    # memory.max is "max": the conventions omit the available memory
    assert "container.memory.available" not in got or got["container.memory.available"][2] == []


def test_memory_available_is_the_limit_minus_the_working_set(tree, no_ranks):
    procfs, rootfs = tree("v2")
    common = {"pycgroup.cgroup.path": APP}
    working_set = 157286400 - 41943040  # memory.current - memory.stat inactive_file
    for limit, available in ((2**30, 2**30 - working_set), (100 * 2**20, 0)):
        with open(rootfs + "/sys/fs/cgroup" + APP + "/memory.max", "w") as f:
            f.write(f"{limit}\n")
        got = collect(pycgroup.current(procfs, rootfs), gpus=False)
        assert got["container.memory.available"] == ("By", "Sum", [(common, available)])
        assert got["pycgroup.memory.limit"][2] == [(common, limit)]


def test_names_match_the_installed_conventions(fake_nvml, no_ranks):  # noqa: F811
    pytest.importorskip("opentelemetry.semconv._incubating.metrics.container_metrics")
    import inspect

    from opentelemetry import metrics as api
    from opentelemetry.semconv._incubating.metrics import (
        container_metrics, hw_metrics, process_metrics)

    factories = {}  # semantic-convention name -> the source of its create_ function
    for module in (container_metrics, hw_metrics, process_metrics):
        for attr, value in vars(module).items():
            if attr.isupper() and isinstance(value, str):
                factories[value] = inspect.getsource(getattr(module, "create_" + attr.lower()))
    fake_nvml()  # so that the GPU instruments are created too
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    created = instrument(provider)
    provider.shutdown()
    names = {i.name for i in created}
    assert {"container.cpu.usage", "container.paging.faults", "hw.power"} <= names
    assert names >= {i.name for i in INSTRUMENTS} | {v[0] for v in GPU_INSTRUMENTS.values()}
    for made in created:
        if made.name.startswith("pycgroup."):
            assert made.name not in factories, made.name
            continue
        assert made.name in factories, f"{made.name} is not a semantic-convention metric"
        # the unit and instrument kind the conventions' factory gives it
        source = factories[made.name]
        assert f'unit="{made.unit}"' in source, made.name
        kind = ("create_up_down_counter" if isinstance(made, api.ObservableUpDownCounter)
                else "create_counter" if isinstance(made, api.ObservableCounter)
                else "create_observable_gauge")
        assert f"meter.{kind}(" in source, made.name


def test_ranks_and_cpu_limit(tree, monkeypatch):
    procfs, rootfs = tree("v2")
    with open(rootfs + "/sys/fs/cgroup" + APP + "/cpu.max", "w") as f:
        f.write("150000 100000\n")
    monkeypatch.setenv("RANK", "7")
    monkeypatch.setenv("LOCAL_RANK", "3")
    got = collect(pycgroup.current(procfs, rootfs), gpus=False)
    attributes = {"pycgroup.cgroup.path": APP, "pycgroup.rank": "7", "pycgroup.local_rank": "3"}
    assert got["pycgroup.cpu.limit"] == ("{cpu}", "Gauge", [(attributes, 1.5)])


def test_gpu_instruments(fake_nvml, no_ranks):  # noqa: F811
    fake_nvml()
    got = collect(pycgroup.current())
    usage = {a["pycgroup.gpu"]: (a, v) for a, v in got["hw.gpu.memory.usage"][2]}
    attributes, value = usage["0"]
    assert value == 1073741824
    assert attributes["hw.id"] == "GPU-aaaaaaaa-1111-2222-3333-444444444444"
    assert attributes["hw.type"] == "gpu"
    assert got["hw.power"][0] == "W"
    # gpu1 does not support power: no point rather than 0 (gpu2 is scripted with none)
    assert {a["pycgroup.gpu"]: v for a, v in got["hw.power"][2]} == {"0": 612.0, "2": 0.0}
    assert {a["pycgroup.gpu"]: v for a, v in got["hw.gpu.utilization"][2]}["0"] == 0.97
    assert {a["pycgroup.gpu"]: v for a, v in got["hw.energy"][2]}["0"] == 5000.0
    clocks = {a["pycgroup.gpu"]: v for a, v in got["pycgroup.gpu.clock.sm"][2]}
    assert clocks["0"] == 1980 * 10**6
    violations = {(a["pycgroup.gpu"], a["pycgroup.gpu.violation.reason"]): v
                  for a, v in got["pycgroup.gpu.violation.time"][2]}
    assert violations[("0", "power")] == 1.5


def test_live_cpu_usage_follows_a_busy_child(live_cgroups, no_ranks):
    import time

    cgroups = live_cgroups("cpu", "cpuacct")
    cgroups.limit_cpu(50000, 100000)
    child = cgroups.popen([sys.executable, "-c", "while True: pass"])
    try:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        instrument(provider, pycgroup.of_pid(child.pid), gpus=False)
        first = reader.get_metrics_data()
        time.sleep(1.5)
        data = reader.get_metrics_data()
    finally:
        child.kill()
        child.wait()
    metrics = {m.name: m for r in data.resource_metrics for s in r.scope_metrics
               for m in s.metrics}
    cores = metrics["container.cpu.usage"].data.data_points[0].value
    assert 0.05 <= cores <= 0.55  # a busy loop under a 0.5-core quota, on a shared machine
    before = {m.name: m for r in first.resource_metrics for s in r.scope_metrics
              for m in s.metrics}["container.cpu.time"].data.data_points[0].value
    used = metrics["container.cpu.time"].data.data_points[0].value - before
    assert used == pytest.approx(cores * 1.5, rel=0.1)  # usage is Δcpu.time / Δt
    assert metrics["pycgroup.cpu.limit"].data.data_points[0].value == 0.5
    periods = metrics["pycgroup.cpu.periods"].data.data_points[0].value
    throttled = metrics["pycgroup.cpu.throttled.periods"].data.data_points[0].value
    assert periods >= 10 and 0 <= throttled <= periods  # 100 ms periods over >= 1.5 s
    provider.shutdown()


def test_missing_sdk_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    with pytest.raises(pycgroup.MissingExtra, match=r'pip install "pycgroup\[otel\]"'):
        instrument()


def test_every_instrument_is_documented():
    import os

    from pycgroup.export.otel import CPU_LIMIT, CPU_USAGE, MEMORY_AVAILABLE, PAGING_FAULTS

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "docs", "metrics.md")) as f:
        text = f.read()
    names = {i.name for i in INSTRUMENTS} | {v[0] for v in GPU_INSTRUMENTS.values()}
    names |= {CPU_LIMIT[0], CPU_USAGE[0], MEMORY_AVAILABLE[0], PAGING_FAULTS[0]}
    assert sorted(n for n in names if f"| `{n}` |" not in text) == []
