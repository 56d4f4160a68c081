"""pytest plugin: what each test's call phase cost its cgroup, and whether benchmarks ran
CPU-throttled.

Inert unless enabled with ``--pycgroup`` or ``pycgroup = true`` in the ini file. Then a
Sampler thread (``pycgroup_hz``, 100 by default) records the cgroup of the pytest
process, and each test's call phase is an exact span of it: two rows read at its
boundaries, the peak working set from the rows between. The figures go to the test's
``user_properties`` (so junitxml carries them), to ``benchmark.extra_info`` for
pytest-benchmark's benchmarks, and to a summary of the worst tests at the end. A
benchmark throttled in more than ``pycgroup_throttle_threshold`` of its CFS periods is
reported ("its timings are not comparable"); ``--pycgroup-fail-on-throttle`` fails it.

The figures cover the whole cgroup: other processes in it count too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

if TYPE_CHECKING:
    from pluggy import Result

    from pycgroup.cgroup import CGroup
    from pycgroup.sampler import Sampler
    from pycgroup.spans import Span

#: What the sampler records (those this cgroup does not have are left out).
METRICS = (
    "cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
    "cpu.stat.throttled_usec", "memory.current", "memory.stat.inactive_file",
    "memory.events.oom_kill", "cpu.pressure.some.total", "memory.pressure.some.total",
    "io.pressure.some.total",
)
PREFIX = "pycgroup."
SPAN_LABEL = "pytest"
WORST = 5  # tests listed per table of the terminal summary


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pycgroup", "cgroup CPU, throttling and memory per test")
    group.addoption("--pycgroup", action="store_true", default=False,
                    help="record each test's cgroup CPU use, throttling, peak working set, "
                         "OOM kills and pressure stalls (also: ini pycgroup = true)")
    group.addoption("--pycgroup-fail-on-throttle", action="store_true", default=False,
                    help="fail benchmarks that ran CPU-throttled (implies --pycgroup)")
    parser.addini("pycgroup", type="bool", default=False,
                  help="enable the pycgroup plugin (as --pycgroup)")
    parser.addini("pycgroup_fail_on_throttle", type="bool", default=False,
                  help="fail benchmarks that ran CPU-throttled")
    parser.addini("pycgroup_hz", default="100",
                  help="rows a second the sampler takes for peak working set (default 100)")
    parser.addini("pycgroup_throttle_threshold", default="0",
                  help="flag benchmarks throttled in more than this fraction of their CFS "
                       "periods (default 0: any)")


def pytest_configure(config: pytest.Config) -> None:
    fail = config.getoption("pycgroup_fail_on_throttle") or config.getini(
        "pycgroup_fail_on_throttle")
    if config.getoption("pycgroup") or config.getini("pycgroup") or fail:
        config.pluginmanager.register(CgroupRecorder(config, fail), "pycgroup-recorder")


def _float_ini(config: pytest.Config, name: str) -> float:
    value = config.getini(name)
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"ini option {name} must be a number, not {value!r}") from None


class CgroupRecorder:
    """The enabled plugin: one Sampler for the session, one exact span per test call."""

    def __init__(self, config: pytest.Config, fail_on_throttle: bool):
        import pycgroup

        self.config = config
        self.fail_on_throttle = fail_on_throttle
        self.threshold = _float_ini(config, "pycgroup_throttle_threshold")
        self.sampler = new_sampler(pycgroup.current(), _float_ini(config, "pycgroup_hz"))
        self.results: dict[str, dict[str, Any]] = {}  # nodeid -> {property: value}
        self.throttled: dict[str, float] = {}  # nodeid of a benchmark -> throttled fraction

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.sampler.start()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.sampler.close()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        with self.sampler.span(SPAN_LABEL, exact=True) as span:
            yield
        figures = measure(span)
        item.user_properties.extend((PREFIX + k, v) for k, v in figures.items())
        benchmark = item.funcargs.get("benchmark") if hasattr(item, "funcargs") else None
        extra_info = getattr(benchmark, "extra_info", None)
        if isinstance(extra_info, dict):
            extra_info.update({PREFIX + k: v for k, v in figures.items()})
            fraction = figures.get("cpu_throttled_fraction")
            if fraction is not None and fraction > self.threshold:
                self.throttled[item.nodeid] = fraction

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, Result[pytest.TestReport], None]:
        outcome = yield
        report = outcome.get_result()
        if (call.when == "call" and self.fail_on_throttle and report.passed
                and item.nodeid in self.throttled):
            report.outcome = "failed"
            report.longrepr = throttle_message(item.nodeid, self.throttled[item.nodeid])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            figures = {k[len(PREFIX):]: v for k, v in report.user_properties
                       if isinstance(k, str) and k.startswith(PREFIX)}
            if figures:
                self.results[report.nodeid] = figures

    @pytest.hookimpl(optionalhook=True)
    def pytest_benchmark_update_machine_info(self, config: pytest.Config,
                                             machine_info: dict[str, Any]) -> None:
        machine_info["pycgroup"] = container_limits(self.sampler.cgroup)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write = terminalreporter.write_line
        if self.results or self.throttled:
            terminalreporter.section("pycgroup")
        for nodeid, fraction in self.throttled.items():
            write(throttle_message(nodeid, fraction), yellow=True, bold=True)
        show: Callable[[float], str]
        for title, key, show in (
                ("most CPU-throttled (fraction of CFS periods)", "cpu_throttled_fraction",
                 lambda v: f"{v:.0%}"),
                ("most memory (peak working set)", "peak_working_set_bytes",
                 lambda v: f"{v / 2**20:.1f} MiB"),
                ("most CPU time", "cpu_seconds", lambda v: f"{v:.3f} s")):
            ranked = sorted(((r[key], nodeid) for nodeid, r in self.results.items()
                             if r.get(key)), reverse=True)[:WORST]
            if ranked:
                write(f"{title}:")
                for value, nodeid in ranked:
                    write(f"  {show(value):>12}  {nodeid}")


def new_sampler(cg: CGroup, hz: float) -> Sampler:
    """Returns the session's Sampler of cg, on the METRICS that cg can read now. A metric
    whose file is absent (the root cgroup has no memory.current or memory.events, a
    kernel without PSI no pressure files) is left out here: a Sampler given one has
    rows wider than its columns, and a span of it mislabels its figures."""
    from pycgroup.sampler import Sampler

    readable = cg.read(METRICS)
    names = [name for name in METRICS if readable.get(name) is not None]
    return Sampler(names, hz=hz, cgroup=cg, capacity=4096, every={"memory.stat.*": 1})


def throttle_message(nodeid: str, fraction: float) -> str:
    return (f"benchmark {nodeid} was CPU-throttled for {fraction:.0%} of its run; its "
            "timings are not comparable")


def measure(span: Span) -> dict[str, float]:
    """Returns a span's figures, units in the names; those not measurable are left out."""
    delta, t = span.delta, span.throttling
    figures: dict[str, float | None] = {
        "duration_seconds": span.duration_s,
        "cpu_seconds": _scaled(delta.get("cpu.stat.usage_usec"), 1e-6),
        "cpu_cores_used": t.cpu_cores_used,
        "cpu_periods": delta.get("cpu.stat.nr_periods"),
        "cpu_throttled_periods": delta.get("cpu.stat.nr_throttled"),
        "cpu_throttled_fraction": t.cpu_throttled_fraction,
        "cpu_throttled_seconds": _scaled(delta.get("cpu.stat.throttled_usec"), 1e-6),
        "peak_working_set_bytes": span.peak.get("memory.working_set"),
        "oom_kills": delta.get("memory.events.oom_kill"),
        "psi_cpu_some_seconds": _scaled(delta.get("cpu.pressure.some.total"), 1e-6),
        "psi_memory_some_seconds": _scaled(delta.get("memory.pressure.some.total"), 1e-6),
        "psi_io_some_seconds": _scaled(delta.get("io.pressure.some.total"), 1e-6),
    }
    return {k: v for k, v in figures.items() if v is not None}


def _scaled(value: int | None, scale: float) -> float | None:
    return None if value is None else value * scale


def container_limits(cg: CGroup) -> dict[str, Any]:
    """Returns the limits pytest-benchmark records in machine_info["pycgroup"] (saved as
    JSON: "unlimited" where there is no limit, null where it could not be read)."""
    from pycgroup.export.labels import cgroup_path
    from pycgroup.limits import limits
    from pycgroup.values import to_json

    lim = limits(cg)
    found: dict[str, Any] = to_json({
        "cgroup_mode": cg.mode,
        "cgroup": cgroup_path(cg),
        "cpu_quota_cores": lim.cpu_quota_cores,
        "cpuset_cpus": list(lim.cpuset_cpus),
        "effective_cpus": lim.effective_cpus,
        "cpu_count": lim.cpu_count,
        "memory_max_bytes": lim.memory_max_bytes,
        "memory_high_bytes": lim.memory_high_bytes,
        "host_memory_bytes": lim.host_memory_bytes,
        "pids_max": lim.pids_max,
    })
    return found
