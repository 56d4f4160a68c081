# mypy: disallow-any-expr
"""A program using pycgroup's public API as a user whose code is checked with
``mypy --strict --disallow-any-expr`` would: every value it touches has a precise type.
tests/test_typing.py type-checks it and also runs it."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

import pycgroup


class Report(NamedTuple):
    cpu_count: int
    quota_cores: float
    memory_headroom: int | float | None
    read: dict[str, int | float | None]
    step_durations: list[float | None]
    cpu_deltas: list[int | None]
    rows: int
    t_ns: NDArray[np.int64]
    rates: NDArray[np.float64]
    steps: int
    step_columns: tuple[str, ...]
    summary_count: int
    p99: float | None
    samples_taken: int
    marks: list[pycgroup.Mark]
    throttled: float | None


def headroom(cg: pycgroup.CGroup) -> int | float | None:
    """Memory left before the cgroup's limit: None when either side is unknown."""
    values = cg.read(["memory.current", "memory.max"])
    current, limit = values["memory.current"], values["memory.max"]
    if current is None or limit is None:
        return None
    return limit - current


def main(cg: pycgroup.CGroup) -> Report:
    lim: pycgroup.Limits = pycgroup.limits(cg)
    quota = lim.cpu_quota_cores
    durations: list[float | None] = []
    deltas: list[int | None] = []
    throttled: float | None = None
    with pycgroup.Sampler(["cpu.stat.usage_usec", "memory.current"], capacity=1024, hz=200.0,
                          cgroup=cg) as sampler:
        for _ in range(3):
            with sampler.span("step", exact=True) as span:
                sampler.mark("inside")
            durations.append(span.duration_s)
            deltas.append(span.delta.get("cpu.stat.usage_usec"))
            t: pycgroup.Throttling = span.throttling
            throttled = t.cpu_throttled_fraction
        data: pycgroup.Samples = sampler.data(last=100)
        steps: pycgroup.Steps = sampler.steps("step")
        summary: pycgroup.StepSummary = sampler.summary("step")
        stats: pycgroup.SamplerStats = sampler.stats
        marks = sampler.marks("inside")
    return Report(
        cpu_count=lim.cpu_count,
        quota_cores=math.inf if quota is None else float(quota),
        memory_headroom=headroom(cg),
        read=cg.read("memory.current"),
        step_durations=durations,
        cpu_deltas=deltas,
        rows=len(data),
        t_ns=data.t_ns,
        rates=data.rate("cpu.stat.usage_usec"),
        steps=len(steps),
        step_columns=steps.columns,
        summary_count=summary.duration_s.count,
        p99=summary.duration_s.p99,
        samples_taken=stats.samples,
        marks=marks,
        throttled=throttled,
    )
