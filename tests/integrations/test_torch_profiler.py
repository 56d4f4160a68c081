"""torch.profiler traces with pycgroup's counter tracks merged in, from a real profiled
loop of matrix products."""

import json
import time

import pytest

torch = pytest.importorskip("torch",
                            reason="the framework tests need pip install '.[frameworks-test]'")

import pycgroup  # noqa: E402
from pycgroup.integrations.torch import realtime_offset_ns, trace_handler  # noqa: E402


def test_trace_handler_adds_aligned_counter_tracks(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    sampler = pycgroup.Sampler(hz=1000).start()
    handler = trace_handler(sampler, tmp_path)
    a = torch.randn(128, 128)
    bounds = []
    schedule = torch.profiler.schedule(wait=1, warmup=1, active=3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                schedule=schedule, on_trace_ready=handler) as prof:
        for _ in range(5):
            before = time.monotonic_ns()
            with torch.profiler.record_function("busy"):
                end = time.monotonic() + 0.03
                while time.monotonic() < end:
                    a = torch.tanh(a @ a)
            bounds.append((before, time.monotonic_ns()))
            prof.step()
    sampler.close()
    assert len(handler.paths) == 1
    assert not [r.getMessage() for r in caplog.records if r.name == "pycgroup.integrations"]
    with open(handler.paths[0]) as f:
        trace = json.load(f)
    events = trace["traceEvents"]
    ours = [e for e in events if e.get("cat") == "pycgroup"]
    theirs = [e for e in events if e.get("cat") != "pycgroup" and e.get("ph") != "M"]
    busy = sorted((e for e in theirs if e.get("name") == "busy"), key=lambda e: e["ts"])
    assert len(busy) == 3  # the active steps
    # The clock mapping: each profiled "busy" lies within the monotonic bounds taken
    # around it (1 ms for the offset's reading and Kineto's own clock conversion).
    offset = realtime_offset_ns() - trace["baseTimeNanoseconds"]
    for event, (lo, hi) in zip(busy, bounds[2:]):
        start = event["ts"] * 1000 - offset
        assert lo - 1e6 <= start <= hi + 1e6
        assert start + event["dur"] * 1000 <= hi + 1e6
    tracks = {e["name"] for e in ours if e["ph"] == "C"}
    assert "pycgroup: CPU (cores)" in tracks and "pycgroup: memory (bytes)" in tracks
    first = min(e["ts"] for e in theirs)
    last = max(e["ts"] + e.get("dur", 0) for e in theirs)
    # Rows inside the window, plus the nearest one on either side (a loaded host may
    # leave the sampler thread unscheduled for a while, so no count inside is certain).
    counters = sorted((e for e in ours if e["ph"] == "C"), key=lambda e: e["ts"])
    assert sum(e["ts"] < first for e in counters) <= len(tracks)
    assert sum(e["ts"] > last for e in counters) <= len(tracks)
    cores = [e for e in counters if e["name"] == "pycgroup: CPU (cores)"]
    assert cores and max(e["args"]["used"] for e in cores) > 0
    names = [e["args"]["name"] for e in events if e.get("name") == "process_name"
             and "pycgroup" in e["args"]["name"]]
    assert len(names) == 1 and "rank 0 of 1" in names[0]
    assert trace["pycgroup"] == {"rank": 0, "world_size": 1}
