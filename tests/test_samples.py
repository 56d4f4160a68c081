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
    assert sp.duration_s > 0 and sp.boundary_error_ns == 0  # no thread: rows read at enter/exit
    assert s.marks() == []  # spans are not marks


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
    assert len(table) == 4
    assert table["cpu.stat.usage_usec.delta"].tolist() == [1000, 2000, 3000, 4000]
    assert table["memory.current.peak"].tolist() == [157286400] * 4
    assert np.all(table["duration_s"] > 0)
    assert np.array_equal(table["start_ns"][1:], table["end_ns"][:-1])
    assert len(s.steps("other")) == 0


# --- windowed rates, resampling and gaps -------------------------------------------

def steady(n, period_ns, per_row, jitter=None):
    """Rows every period_ns of a counter growing per_row a row (jitter: extra per row)."""
    t = np.arange(n, dtype=np.int64) * period_ns
    step = np.full(n, per_row, dtype=np.int64) if jitter is None else per_row + jitter
    usage = np.cumsum(step) - step[0]
    rows = np.zeros((n, len(COLUMNS) + 1), dtype=np.int64)
    rows[:, 0], rows[:, 1] = t, usage
    rows[:, 5] = 1000 + (np.arange(n) % 7) * 10  # memory.current: a saw-tooth
    return Samples(rows, COLUMNS, period_ns=period_ns)


def test_windowed_rate_smooths_a_counter_updated_in_ticks():
    """usage_usec advancing 4000 µs every 4th row of 1 ms (a 250 Hz tick, 1 core busy):
    raw per-row rates read 4 cores or 0; a 20 ms window reads 1 core."""
    jitter = np.where(np.arange(400) % 4 == 0, 4000, 0)
    s = steady(400, 1_000_000, 0, jitter)
    raw = s.rate("cpu.stat.usage_usec") / 1e6
    assert raw.max() == pytest.approx(4.0) and raw.min() == 0
    windowed = s.rate("cpu.stat.usage_usec", window_s=0.02) / 1e6
    assert len(windowed) == len(raw)
    assert windowed[30:] == pytest.approx(1.0, rel=0.06)
    with pytest.raises(ValueError, match="window_s"):
        s.rate("cpu.stat.usage_usec", window_s=0)


def test_resample_keeps_counters_exact_and_gauges_peak():
    s = steady(100, 1_000_000, 500)  # 1 kHz rows
    r = s.resample(0.01)  # 100 Hz
    assert len(r) == 10 and np.all(np.diff(r.t_ns) == 10_000_000)
    assert r["cpu.stat.usage_usec"].tolist() == [500 * 10 * k for k in range(10)]
    assert r.total("cpu.stat.usage_usec") == s["cpu.stat.usage_usec"][90]
    assert r["memory.current"][1:].tolist() == [1060] * 9  # the saw-tooth's top in each bin
    with pytest.raises(ValueError, match="period_s"):
        s.resample(-1)


def test_gaps_are_where_rows_are_missing():
    s = steady(10, 1_000_000, 1)
    assert s.gaps.tolist() == [] and s.throttling().complete
    rows = np.delete(s.to_numpy(), [4, 5, 6], axis=0)  # three rows lost
    holed = Samples(rows, COLUMNS, period_ns=1_000_000)
    assert holed.gaps.tolist() == [4]
    assert holed.total("cpu.stat.usage_usec") == 9  # a delta across a gap is still exact
    assert holed.throttling().complete is False
    assert Samples(rows, COLUMNS).gaps.tolist() == []  # no period: gaps unknown
