"""What per-step attribution costs a training loop: marks, spans (cheap and exact),
steps() and summaries, memory per finished span, and the sampler thread's own CPU
against a bare C thread that only wakes and preads one small file."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pytest

import pycgroup
from stats import median_with_interval

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def running(cgroup):
    sampler = pycgroup.Sampler(cgroup=cgroup, hz=1000, spans_capacity=1 << 20).start()
    time.sleep(0.01)
    yield sampler
    sampler.close()


def percentiles(times_ns) -> dict:
    p50, p99 = np.percentile(times_ns, [50, 99])
    return {"median_us": p50 / 1000, "p99_us": p99 / 1000}


@pytest.mark.benchmark(group="steps")
def test_mark(benchmark, running):
    benchmark.extra_info["columns"] = len(running.columns)
    benchmark(running.mark, "step")


@pytest.mark.benchmark(group="steps")
def test_span_enter_exit(benchmark, running):
    """Enter + exit of an empty span with the thread at 1 kHz, timed one by one."""
    clock = time.perf_counter_ns
    times = np.empty(20_000, dtype=np.int64)

    def spans():
        for i in range(len(times)):
            began = clock()
            with running.span("bench"):
                pass
            times[i] = clock() - began
        benchmark.extra_info.update(percentiles(times))

    benchmark.pedantic(spans, rounds=1, iterations=1)


@pytest.mark.benchmark(group="steps")
def test_span_exact(benchmark, running):
    def one():
        with running.span("exact", exact=True):
            pass

    benchmark(one)


@pytest.mark.benchmark(group="steps")
def test_steps_of_10000_spans(benchmark, cgroup):
    sampler = pycgroup.Sampler(cgroup=cgroup, hz=1000).start()
    for _ in range(10_000):
        with sampler.span("step"):
            pass
    sampler.stop()
    table = benchmark(sampler.steps, "step")
    assert len(table) == 10_000
    sampler.close()


@pytest.mark.benchmark(group="steps")
def test_memory_per_finished_span(benchmark, cgroup):
    def measure():
        sampler = pycgroup.Sampler(cgroup=cgroup, hz=1000, spans_capacity=1 << 20).start()
        kept = []
        for _ in range(1000):
            with sampler.span("warm"):
                pass
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(20_000):
            with sampler.span("step") as sp:
                pass
            kept.append(sp)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        sampler.close()
        grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
        benchmark.extra_info.update(bytes_per_span=grown / len(kept),
                                    columns=len(sampler.columns))

    benchmark.pedantic(measure, rounds=1, iterations=1)


def numpy_step(a=np.linspace(0.0, 1.0, 40_000)):
    """About 2 ms of numpy work on this machine class (the bench records the actual)."""
    for _ in range(22):
        a = np.sqrt(a * a + 1.0)
    return a


PAIRS = 150


@pytest.mark.parametrize("wrapper", ["span", "nullcontext"])
@pytest.mark.benchmark(group="steps")
def test_training_loop(benchmark, cgroup, wrapper):
    """A loop of ~2 ms numpy steps, in interleaved blocks alone and with a 1 kHz sampler
    plus a span per step, the one or the other first in turn (a fixed order would count
    a warmer or colder start as the sampler's); the median of the paired block ratios,
    over enough pairs that its 95% interval is a few tenths of a percent wide.

    With ``nullcontext`` the watched blocks wrap each step in contextlib.nullcontext()
    instead, the sampler running: what any ``with`` statement costs a step whose numpy
    work left the caches cold, the floor a span's own cost is measured against."""
    null = contextlib.nullcontext()

    def alone() -> float:
        time.sleep(0.002)  # as before the watched block: the same start for both
        began = time.perf_counter()
        for _ in range(25):
            numpy_step()
        return time.perf_counter() - began

    def watched(sampler) -> float:
        sampler.start()
        time.sleep(0.002)
        began = time.perf_counter()
        for _ in range(25):
            with sampler.span("step") if wrapper == "span" else null:
                numpy_step()
        took = time.perf_counter() - began
        sampler.stop()
        return took

    def measure():
        sampler = pycgroup.Sampler(cgroup=cgroup, hz=1000, spans_capacity=1 << 20)
        ratios, steps = [], []
        for pair in range(PAIRS):
            if pair % 2:
                with_sampler, without = watched(sampler), alone()
            else:
                without, with_sampler = alone(), watched(sampler)
            ratios.append(with_sampler / without)
            steps.append(without / 25)
        sampler.close()
        q1, q3 = np.percentile(ratios, [25, 75])
        median, low, high = median_with_interval(ratios)
        benchmark.extra_info.update(slowdown_median=median, slowdown_q1=q1, slowdown_q3=q3,
                                    slowdown_ci_low=low, slowdown_ci_high=high,
                                    step_ms=float(np.median(steps)) * 1e3, pairs=len(ratios))

    benchmark.pedantic(measure, rounds=1, iterations=1)


@pytest.fixture(scope="module")
def bare_thread():
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    out = os.path.join(tempfile.mkdtemp(), "bare_thread")
    subprocess.run([compiler, "-std=c11", "-O2", "-pthread", "-o", out,
                    os.path.join(HERE, "bare_thread.c")], check=True)
    return out


@pytest.mark.parametrize(("hz", "span_open"), [(1000, False), (10000, False), (1000, True)],
                         ids=["1000", "10000", "1000-span-open"])
@pytest.mark.benchmark(group="steps")
def test_thread_cpu_vs_bare_thread(benchmark, cgroup, bare_thread, hz, span_open):
    """CPU per second of the default-set sampler thread, and of a bare C thread waking at
    the same rate to pread memory.current (or another small file), in seven back-to-back
    pairs of one second each. With a span open the thread also reads the process CPU
    clock on every tick (a system call), which spares the span its own."""
    small = cgroup.resolve("memory.current")
    path = small.path if hasattr(small, "path") and os.path.exists(small.path) else "/proc/loadavg"

    def measure():
        ours, bare = [], []
        for _ in range(7):
            sampler = pycgroup.Sampler(cgroup=cgroup, hz=hz).start()
            span = sampler.span("open").__enter__() if span_open else None
            # the sampler thread's own clock: not the process's, which counts idle
            # threads (numpy's BLAS pool spins after its last use) and this one
            began = sampler._engine.thread_cpu_ns()
            time.sleep(1.0)
            ours.append((sampler._engine.thread_cpu_ns() - began) / 1e9)
            if span is not None:
                span.__exit__(None, None, None)
            sampler.close()
            done = subprocess.run([bare_thread, str(hz), "1.0", path], capture_output=True,
                                  text=True, check=True)
            bare.append(float(done.stdout))
        benchmark.extra_info.update(
            hz=hz, sampler_cpu_s_per_s=float(np.median(ours)),
            bare_cpu_s_per_s=float(np.median(bare)),
            # the median of the back-to-back pairs' ratios: each pair shares the machine's
            # load of the moment, which moves either figure alone by tens of percent
            ratio=float(np.median(np.array(ours) / np.array(bare))),
            ratio_of_minimums=min(ours) / min(bare))

    benchmark.pedantic(measure, rounds=1, iterations=1)
