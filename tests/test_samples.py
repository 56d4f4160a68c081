"""Samples arithmetic on hand-made rows, and spans and steps on a fixture tree."""

import math
import os

import numpy as np
import pytest

import pycgroup
from pycgroup.formats import MISSING, UNLIMITED
from pycgroup.samples import Samples

S = 1_000_000_000
COLUMNS = ["cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
           "cpu.stat.throttled_usec", "memory.current", "memory.stat.inactive_file",
           "cpu.pressure.some.total", "memory.events.max", "memory.events.oom_kill"]


def samples(rows, **kw):
    return Samples(np.array(rows, dtype=np.int64), COLUMNS, **kw)


# t, usage, periods, throttled, throttled_usec, current, inactive_file, psi some, max, oom_kill
ROWS = [
    [0 * S, 1_000_000, 100, 10, 100_000, 500, 100, 0, 0, 0],
    [1 * S, 1_500_000, 110, 20, 600_000, 700, 100, 250_000, 2, 0],
    [2 * S, 2_000_000, 120, 30, 1_100_000, 900, 50, 500_000, 2, 1],
]


def test_delta_and_rate():
    s = samples(ROWS)
    assert s.delta("cpu.stat.usage_usec").tolist() == [500_000, 500_000]
    assert s.rate("cpu.stat.usage_usec").tolist() == [500_000, 500_000]
    assert s.delta("memory.current").tolist() == [200, 200]


def test_rate_of_a_gauge_is_refused():
    with pytest.raises(ValueError, match="memory.current is a gauge"):
        samples(ROWS).rate("memory.current")


def test_counter_going_backwards_and_bad_time_steps_are_excluded():
    rows = [list(r) for r in ROWS] + [[3 * S, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # recreated cgroup
                                      [3 * S, 20, 0, 0, 0, 0, 0, 0, 0, 0],  # Δt = 0
                                      [4 * S, 520_010, 0, 0, 0, 0, 0, 0, 0, 0]]
    s = samples(rows)
    rate = s.rate("cpu.stat.usage_usec")
    assert rate[:2].tolist() == [500_000, 500_000]
    assert math.isnan(rate[2]) and math.isnan(rate[3])
    assert rate[4] == 519_990
    assert not np.isinf(rate).any() and not (rate < 0).any()
    assert s.total("cpu.stat.usage_usec") == 500_000 * 2 + 519_990


def test_missing_values_are_nan_and_excluded():
    rows = [list(r) for r in ROWS]
    rows[1][1] = MISSING
    s = samples(rows)
    assert all(math.isnan(x) for x in s.delta("cpu.stat.usage_usec"))
    assert math.isnan(s.as_float("cpu.stat.usage_usec")[1])
    assert s.total("cpu.stat.usage_usec") is None
    rows[1][5] = UNLIMITED
    assert samples(rows).as_float("memory.current")[1] == math.inf


def test_working_set_is_derived_per_row():
    s = samples(ROWS)
    assert s["memory.working_set"].tolist() == [400, 600, 850]
    rows = [list(r) for r in ROWS]
    rows[0][6] = MISSING
    rows[1][6] = 10_000  # inactive_file above current: floored at 0
    assert samples(rows)["memory.working_set"].tolist() == [MISSING, 0, 850]


def test_throttling():
    t = samples(ROWS, effective_memory_bytes=2000, cpu_limit_cores=0.5).throttling()
    assert t.interval_s == 2.0
    assert t.cpu_throttled_fraction == 20 / 20
    assert t.cpu_throttled_seconds_per_second == pytest.approx(0.5)
    assert t.cpu_cores_used == pytest.approx(0.5)
    assert t.cpu_limit_cores == 0.5
    assert t.psi_cpu_some == pytest.approx(0.25)
    assert t.psi_io_full is None  # not sampled
    assert (t.memory_max_events, t.oom_kills, t.memory_high_events) == (2, 1, None)
    assert t.memory_headroom_bytes == 2000 - 850


def test_throttled_fraction_is_none_when_no_period_elapsed():
    rows = [[0, 1, 5, 0, 0, 1, 0, 0, 0, 0], [S, 2, 5, 0, 0, 1, 0, 0, 0, 0]]
    assert samples(rows).throttling().cpu_throttled_fraction is None


def test_empty_and_single_row():
    assert samples(np.zeros((0, 10))).throttling().cpu_cores_used is None
    one = samples(ROWS[:1])
    assert one.throttling().cpu_cores_used is None and one.total("memory.events.max") is None


def test_to_numpy_and_pandas():
    s = samples(ROWS)
    arr = s.to_numpy()
    assert arr.shape == (3, 10) and arr[:, 0].tolist() == [0, S, 2 * S]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pycgroup.pandas."):
            s.to_pandas()
    else:
        frame = s.to_pandas()
        assert list(frame.columns) == ["t_ns", "time", *COLUMNS]
        assert frame["memory.current"].tolist() == [500.0, 700.0, 900.0]


def test_unsampled_name_raises_key_error():
    with pytest.raises(KeyError, match="was not sampled"):
        samples(ROWS)["pids.current"]


# --- spans and steps on a fixture tree --------------------------------------------

def set_usage(cg, usage_usec, throttled):
    with open(os.path.join(cg.paths["unified"], "cpu.stat"), "w") as f:
        f.write(f"usage_usec {usage_usec}\nnr_periods {throttled * 2}\n"
                f"nr_throttled {throttled}\nthrottled_usec {throttled * 1000}\n")


def test_span_measures_its_block(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    s = pycgroup.Sampler(cgroup=cg, backend=backend, every={})
    set_usage(cg, 1000, 1)
    with s.span("step") as sp:
        set_usage(cg, 251_000, 5)
    assert sp.delta["cpu.stat.usage_usec"] == 250_000
    assert sp.delta["cpu.stat.nr_throttled"] == 4
    assert sp.peak["memory.current"] == 157286400
    assert sp.peak["memory.working_set"] == 157286400 - 41943040
    assert sp.throttling.cpu_throttled_fraction == 4 / 8
    assert sp.throttling.cpu_limit_cores == 0.5  # the parent's cpu.max in this tree
    assert sp.duration_s > 0 and len(sp.samples) == 2
    assert [m.label for m in s.marks()] == ["step"]


def test_steps_table(tree, backend):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    s = pycgroup.Sampler(["cpu.stat.usage_usec", "memory.current"], cgroup=cg, backend=backend)
    usage = 0
    set_usage(cg, usage, 0)
    for step in range(4):
        s.mark("batch")
        s.sample()
        usage += 1000 * (step + 1)
        set_usage(cg, usage, 0)
        s.sample()
    s.mark("batch")
    s.mark("other")
    table = s.steps("batch")
    assert len(table["start_ns"]) == 4
    assert table["cpu.stat.usage_usec"].tolist() == [1000, 2000, 3000, 4000]
    assert table["memory.current.peak"].tolist() == [157286400] * 4
    assert np.all(table["duration_s"] > 0)
    assert np.array_equal(table["start_ns"][1:], table["end_ns"][:-1])
    assert len(s.steps("other")["start_ns"]) == 0
