"""Group "sample": one row of the default metric set, by every contender, and the floor
(the same system calls from C: a pread of each file and the process clocks' calls, no
parsing). Check the readers agree before timing them. Group "sample-sets": sample()
over its floor for every metric set the benchmarks use."""

import time

import numpy as np
import pytest

import pycgroup
from readers import NaiveReader, TunedReader

STABLE = ("memory.max", "host.mem.total")


@pytest.fixture(scope="module")
def pure_sampler(cgroup):
    sampler = pycgroup.Sampler(cgroup=cgroup, backend="pure")
    yield sampler
    sampler.close()


def test_readers_read_what_pycgroup_reads(default_sampler):
    plan = default_sampler._plan
    native = dict(zip(default_sampler.columns, plan.reader.read()))
    for reader in (NaiveReader(plan), TunedReader(plan)):
        values = reader.read()
        files = {n for n in default_sampler.columns if hasattr(plan.sources[n], "path")}
        assert set(values) == files  # the process clocks are not files
        for name in ("cpu.max.period_usec", "proc.utime_usec"):
            if name in values:
                assert values[name] >= 0 and native[name] >= 0


@pytest.mark.benchmark(group="sample")
def test_floor_pread_only(benchmark, default_sampler):
    benchmark(default_sampler._engine.fill)


@pytest.mark.benchmark(group="sample")
def test_native_sample(benchmark, default_sampler):
    benchmark(default_sampler.sample)


@pytest.mark.benchmark(group="sample")
def test_pure_twin_sample(benchmark, pure_sampler):
    benchmark(pure_sampler.sample)


@pytest.mark.benchmark(group="sample")
def test_tuned_python_reader(benchmark, default_sampler):
    reader = TunedReader(default_sampler._plan)
    benchmark(reader.read)
    reader.close()


@pytest.mark.benchmark(group="sample")
def test_naive_python_reader(benchmark, default_sampler):
    benchmark(NaiveReader(default_sampler._plan).read)


def paired_ratio(slow, fast, calls=200, pairs=40):
    """Returns the median over back-to-back blocks of (time of `calls` calls of slow) /
    (time of `calls` calls of fast): alternating blocks cancels the drifts of a shared
    machine that separate runs cannot."""
    ratios = []
    for _ in range(pairs):
        began = time.perf_counter_ns()
        for _ in range(calls):
            slow()
        middle = time.perf_counter_ns()
        for _ in range(calls):
            fast()
        ratios.append((middle - began) / (time.perf_counter_ns() - middle))
    return float(np.median(ratios))


@pytest.mark.benchmark(group="sample-paired")
def test_paired_ratios(benchmark, default_sampler, pure_sampler):
    plan = default_sampler._plan
    tuned, naive = TunedReader(plan), NaiveReader(plan)

    def measure():
        benchmark.extra_info.update(
            native_over_floor=paired_ratio(default_sampler.sample, default_sampler._engine.fill),
            tuned_over_native=paired_ratio(tuned.read, default_sampler.sample, calls=50),
            naive_over_native=paired_ratio(naive.read, default_sampler.sample, calls=20),
            pure_over_native=paired_ratio(pure_sampler.sample, default_sampler.sample, calls=20),
        )

    benchmark.pedantic(measure, rounds=1, iterations=1)
    tuned.close()


#: Every metric set the benchmarks sample (None: the default set; an int: the first N
#: default columns, as test_metric_count), and a memory.stat-heavy one.
METRIC_SETS = {
    "default": None,
    "first 1": 1,
    "first 5": 5,
    "first 10": 10,
    "memory.current + 3 memory.stat + 4 cpu.stat": [
        "memory.current", "memory.stat.inactive_file", "memory.stat.anon", "memory.stat.file",
        "cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
        "cpu.stat.throttled_usec"],
    "sibling cgroup's 6": [
        "memory.current", "memory.stat.inactive_file", "memory.events.max",
        "cpu.stat.usage_usec", "cpu.stat.nr_throttled", "cpu.stat.throttled_usec"],
    "process and host": [
        "proc.utime_usec", "proc.stime_usec", "proc.rss_bytes", "host.mem.total",
        "host.mem.available"],
}


@pytest.mark.parametrize("name", list(METRIC_SETS))
@pytest.mark.benchmark(group="sample-sets")
def test_sample_over_floor(benchmark, cgroup, name):
    """sample() against its floor, in interleaved blocks (the median block ratio)."""
    metrics = METRIC_SETS[name]
    if isinstance(metrics, int):
        metrics = list(pycgroup.Sampler(cgroup=cgroup).columns)[:metrics]
    sampler = pycgroup.Sampler(metrics, cgroup=cgroup)
    if not sampler.columns:
        pytest.skip(f"this cgroup has none of {name}")

    def measure():
        benchmark.extra_info.update(
            metrics=len(sampler.columns),
            ratio=paired_ratio(sampler.sample, sampler._engine.fill, calls=100, pairs=60))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    sampler.close()
