"""Chrome trace export, and merging into a real torch.profiler trace on its clock."""

import json
import math
import os
import time

import numpy as np
import pytest

import pycgroup
from pycgroup.export import merge_into_trace, to_chrome_trace
from pycgroup.samples import ClockAnchor, Origin, Samples

TRACES = os.path.join(os.path.dirname(__file__), "fixtures", "traces")
TORCH_TRACE = os.path.join(TRACES, "torch_cpu_trace.json")
TORCH_RECORDING = os.path.join(TRACES, "torch_cpu_recording.npz")
PHASES = set("BEXiIC" "bne" "sft" "PNOD" "M" "RcV(),")


def check_trace_event_format(trace: dict) -> list:
    """Checks each event against the Trace Event Format's required fields (what
    chrome://tracing and Perfetto's JSON importer need); returns the events."""
    assert isinstance(trace["traceEvents"], list)
    json.dumps(trace, allow_nan=False)  # valid JSON: no NaN or Infinity
    for e in trace["traceEvents"]:
        assert e["ph"] in PHASES, e
        assert isinstance(e["name"], str), e
        assert isinstance(e["pid"], (int, str)) and isinstance(e.get("tid", 0), (int, str)), e
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and math.isfinite(e["ts"]), e
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
        if e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, float)) and math.isfinite(v)
                                     for v in e["args"].values()), e
        if e["ph"] == "i":
            assert e.get("s", "t") in ("g", "p", "t"), e
    return trace["traceEvents"]


def made_recording(tmp_path):
    s = 1_000_000_000
    rows = []
    for i in range(21):  # 2 s at 10 Hz: 0.5 cores, throttled half the periods
        t = i * s // 10
        rows.append([t, i * 50_000, i * 10, i * 5, 100_000_000 + i * 1_000_000, 0])
    columns = ("cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
               "memory.current", "memory.stat.inactive_file")
    limits = {"memory_max_bytes": 2**30, "memory_high_bytes": None,
              "cpu_quota_cores": 0.5}
    origin = Origin("v2", {"unified": "/x"}, 42, "h", 100_000_000, limits,
                    ClockAnchor(1_700_000_000_000_000_000, 0))
    samples = Samples(np.array(rows, dtype=np.int64), columns, cpu_limit_cores=0.5,
                      effective_memory_bytes=2**30, origin=origin)
    path = tmp_path / "r.npz"
    pycgroup.save(path, samples, marks=[pycgroup.Mark(s // 2, "step"),
                                        pycgroup.Mark(s, "step"),
                                        pycgroup.Mark(3 * s // 2, "checkpoint")])
    return pycgroup.load(path)


def test_chrome_trace_of_a_recording(tmp_path):
    r = made_recording(tmp_path)
    to_chrome_trace(r, tmp_path / "t.json")
    trace = json.load(open(tmp_path / "t.json"))
    events = check_trace_event_format(trace)
    assert trace["baseTimeNanoseconds"] == 1_700_000_000_000_000_000
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert counters == {"Memory (bytes)", "CPU cores used (cores)",
                        "CPU throttled fraction (fraction)"}
    cores = [e for e in events if e["name"] == "CPU cores used (cores)"]
    assert all(e["args"]["cores used"] == pytest.approx(0.5) for e in cores)
    throttled = [e["args"]["throttled periods"] for e in events
                 if e["name"] == "CPU throttled fraction (fraction)"]
    assert throttled and all(v == pytest.approx(0.5) for v in throttled)
    (step,) = [e for e in events if e["ph"] == "X"]
    assert step["name"] == "step" and step["ts"] == 500_000 and step["dur"] == 500_000
    (instant,) = [e for e in events if e["ph"] == "i"]
    assert instant["name"] == "checkpoint" and instant["ts"] == 1_500_000
    ts = [e["ts"] for e in events if e["ph"] == "C"]
    assert min(ts) > 0 and max(ts) <= 2_000_000  # µs after the base, within the rows


def test_a_short_last_window_joins_the_one_before():
    """Rows every 10 ms for 1.005 s in 100 ms windows: the 5 ms tail is no window of its
    own (a rate over it is noise), while a tail of half a window or more is."""
    from pycgroup.export.series import groups

    def cores_used(tail_ms):
        t = np.append(np.arange(0, 1001, 10), 1000 + tail_ms) * 1_000_000
        rows = np.stack([t, t // 2000], axis=1)  # half a core, in µs of CPU
        cpu, = groups(Samples(rows, ("cpu.stat.usage_usec",)), 100_000_000)
        return cpu.series[0]

    series = cores_used(5)
    assert len(series.t_ns) == 10 and series.t_ns[-1] == 1_005_000_000
    assert np.diff(np.concatenate([[0], series.t_ns])).min() >= 100_000_000
    assert np.allclose(series.values, 0.5)
    assert len(cores_used(50).t_ns) == 11  # half a window: a window of its own


def test_chrome_trace_metrics_filter(tmp_path):
    r = made_recording(tmp_path)
    to_chrome_trace(r.samples, tmp_path / "m.json", metrics=["memory.current"])
    events = check_trace_event_format(json.load(open(tmp_path / "m.json")))
    assert {e["name"] for e in events if e["ph"] == "C"} == {"Memory (bytes)"}
    assert not [e for e in events if e["ph"] in "Xi"]  # Samples carry no marks


def _merged_checks(original: dict, merged: dict, mark_label: str, region: str):
    events = check_trace_event_format(merged)
    n = len(original["traceEvents"])
    assert events[:n] == original["traceEvents"]  # every original event, unchanged
    for key in original:
        if key != "traceEvents":
            assert merged[key] == original[key]
    timed = [e for e in original["traceEvents"] if "ts" in e and e["ph"] != "M"]
    start = min(e["ts"] for e in timed)
    end = max(e["ts"] + e.get("dur", 0) for e in timed)
    ours = events[n:]
    pids = {e["pid"] for e in original["traceEvents"]}
    assert ours and all(e["pid"] not in pids for e in ours)
    for e in ours:
        if e["ph"] != "M":
            assert start <= e["ts"] <= end, e
    assert any(e["ph"] == "C" for e in ours)
    (mark,) = [e for e in ours if e["name"] == mark_label]
    (block,) = [e for e in original["traceEvents"] if e.get("name") == region]
    # Same clock: our mark, taken inside the profiled block, lands inside it.
    assert block["ts"] <= mark["ts"] <= block["ts"] + block["dur"]


def test_merge_into_a_torch_profiler_trace_fixture(tmp_path):
    original = json.load(open(TORCH_TRACE))
    assert "baseTimeNanoseconds" in original  # how torch 2.x writes it
    r = pycgroup.load(TORCH_RECORDING)
    merged = merge_into_trace(TORCH_TRACE, r, tmp_path / "merged.json")
    assert json.load(open(tmp_path / "merged.json")) == merged
    _merged_checks(original, merged, "inside-region", "region")


def test_merge_needs_a_clock_anchor(tmp_path):
    bare = Samples(np.zeros((2, 2), dtype=np.int64), ("memory.current",))
    with pytest.raises(ValueError, match="clock anchor"):
        merge_into_trace(TORCH_TRACE, bare, tmp_path / "x.json")
    (tmp_path / "bad.json").write_text('{"foo": 1}')
    with pytest.raises(ValueError, match="no traceEvents"):
        merge_into_trace(tmp_path / "bad.json", pycgroup.load(TORCH_RECORDING),
                         tmp_path / "x.json")


def test_merge_into_a_live_torch_profiler_trace(tmp_path):
    torch = pytest.importorskip("torch", reason="the live trace test needs torch")
    from torch.profiler import ProfilerActivity, profile, record_function
    with pycgroup.Sampler(["cpu.stat.usage_usec", "memory.current"], hz=500) as s:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            x = torch.randn(64, 64)
            with record_function("work"):
                with s.span("step"):
                    for _ in range(10):
                        x = x @ x / 64
                    time.sleep(0.05)
                s.mark("in-work")
            time.sleep(0.05)
    trace_path = tmp_path / "torch.json"
    prof.export_chrome_trace(str(trace_path))
    path = tmp_path / "live.npz"
    pycgroup.save(path, s.data(), marks=s.marks())
    original = json.load(open(trace_path))
    merged = merge_into_trace(trace_path, pycgroup.load(path), tmp_path / "m.json")
    _merged_checks(original, merged, "in-work", "work")
    s.close()


def test_perfetto_trace_processor_reads_it(tmp_path):
    shell = os.environ.get("PYCGROUP_TRACE_PROCESSOR")
    if not shell:
        pytest.skip("set PYCGROUP_TRACE_PROCESSOR to a trace_processor_shell binary (the "
                    "perfetto package downloads one on first use; this machine is offline)")
    from perfetto.trace_processor import TraceProcessor, TraceProcessorConfig
    merge_into_trace(TORCH_TRACE, pycgroup.load(TORCH_RECORDING), tmp_path / "m.json")
    tp = TraceProcessor(trace=str(tmp_path / "m.json"),
                        config=TraceProcessorConfig(bin_path=shell))
    names = {row.name for row in tp.query("select name from counter_track")}
    assert any(name.startswith("CPU cores used") for name in names)
    tp.close()


def test_steps_become_slices(tmp_path):
    with pycgroup.Sampler(["cpu.stat.usage_usec", "memory.current"], hz=500) as s:
        for _ in range(3):
            with s.span("step"):
                time.sleep(0.03)
    steps = s.steps("step")
    pycgroup.save(tmp_path / "steps.npz", s.data(), steps=steps)
    r = pycgroup.load(tmp_path / "steps.npz")
    to_chrome_trace(r, tmp_path / "steps.json")
    trace = json.load(open(tmp_path / "steps.json"))
    slices = [e for e in check_trace_event_format(trace) if e["ph"] == "X"]
    assert len(slices) == len(steps) == 3
    anchor = r.clock_anchor
    for e, start, end in zip(slices, steps["start_ns"], steps["end_ns"]):
        real = anchor.to_realtime_ns(int(start)) - trace["baseTimeNanoseconds"]
        assert e["ts"] == pytest.approx(real / 1000) and e["dur"] == pytest.approx(
            (int(end) - int(start)) / 1000)
    s.close()


def gpu_samples():
    """2 s at 100 Hz of two GPUs: gpu0 busy (97%, 1 GiB, 612 W), gpu1 nearly idle."""
    t = np.arange(201, dtype=np.int64) * 10_000_000
    n = len(t)
    columns = ("memory.current", "gpu0.util.gpu", "gpu0.memory.used", "gpu0.power_mw",
               "gpu1.util.gpu")
    rows = np.stack([t, np.full(n, 2**20), np.full(n, 97), np.full(n, 2**30),
                     np.full(n, 612_000), np.full(n, 5)], axis=1).astype(np.int64)
    origin = Origin("v2", {"unified": "/x"}, 7, "h", 10_000_000, {},
                    ClockAnchor(1_700_000_000_000_000_000, 0))
    return Samples(rows, columns, origin=origin)


def test_gpu_counter_tracks(tmp_path):
    to_chrome_trace(gpu_samples(), tmp_path / "gpu.json")
    events = check_trace_event_format(json.load(open(tmp_path / "gpu.json")))
    counters = {}
    for e in events:
        if e["ph"] == "C":
            counters.setdefault(e["name"], []).append(e["args"])
    assert set(counters) == {"Memory (bytes)", "GPU utilisation (percent)",
                             "GPU power (W)", "GPU memory used (bytes)"}
    assert all(a == {"gpu0": 97.0, "gpu1": 5.0} for a in counters["GPU utilisation (percent)"])
    assert all(a == {"gpu0": 612.0} for a in counters["GPU power (W)"])
    assert all(a == {"gpu0": 2.0**30} for a in counters["GPU memory used (bytes)"])
