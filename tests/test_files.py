"""Recordings on disk: exact round trips in both formats, streaming (with a real kill -9),
and the errors for foreign, truncated and newer files."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import pycgroup
from pycgroup.export import files
from pycgroup.formats import MISSING, UNLIMITED
from pycgroup.samples import ClockAnchor, Origin, Samples

FORMATS = ["npz", "parquet"]
COLUMNS = ("memory.current", "cpu.stat.usage_usec", "cpu.stat.nr_periods",
           "cpu.stat.nr_throttled", "memory.stat.inactive_file")


def _needs(fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow", reason="pyarrow is the parquet extra")


@pytest.fixture(params=FORMATS)
def fmt(request):
    _needs(request.param)
    return request.param


def made_samples():
    """Hand-made rows with every kind of value an int64 column holds."""
    rows = np.array([
        [1_000, 5, 10, 1, 0, 2],
        [2_000, MISSING, 20, 2, 1, 2],
        [3_000, UNLIMITED, 2**62 + 7, 3, 1, MISSING],
        [4_000, -2**63 + 1, 40, 4, 2, 9],
    ], dtype=np.int64)
    limits = {"memory_max_bytes": 2**30, "memory_high_bytes": None, "swap_max_bytes": None,
              "host_memory_bytes": 2**34, "effective_memory_bytes": 2**30,
              "cpu_quota_cores": 0.5, "cpuset_cpus": (0, 1), "effective_cpus": 0.5,
              "cpu_count": 1, "pids_max": 64}
    origin = Origin("v2", {"unified": "/sys/fs/cgroup/a b:c"}, 1234, "host-ä", 1_000_000,
                    limits, ClockAnchor(1_700_000_000_123_456_789, 999))
    return Samples(rows, COLUMNS, effective_memory_bytes=2**30, cpu_limit_cores=0.5,
                   origin=origin)


MARKS = [pycgroup.Mark(1_500, "step"), pycgroup.Mark(2_500, "step"),
         pycgroup.Mark(2_500, "ünïcode, \"quoted\""), pycgroup.Mark(3_500, "")]
STEPS = {"start_ns": np.array([1_500, 2_500], dtype=np.int64),
         "end_ns": np.array([2_500, 3_500], dtype=np.int64),
         "duration_s": np.array([1e-6, 1e-6]),
         "cpu_cores_used": np.array([0.1 + 0.2, np.nan])}


def test_round_trip_is_exact(tmp_path, fmt):
    samples = made_samples()
    path = tmp_path / f"run.{fmt}"
    pycgroup.save(path, samples, steps=STEPS, marks=MARKS)
    r = pycgroup.load(path)
    assert r.samples.to_numpy().dtype == np.int64
    assert np.array_equal(r.samples.to_numpy(), samples.to_numpy())
    assert r.metrics == COLUMNS
    assert list(r.marks) == MARKS
    assert set(r.steps) == set(STEPS)
    for column, values in STEPS.items():
        assert r.steps[column].dtype == values.dtype
        assert np.array_equal(r.steps[column], values, equal_nan=True)
    assert r.origin == samples.origin  # mode, paths, pid, host, period, limits, anchor
    assert r.limits["cpuset_cpus"] == (0, 1) and r.limits["pids_max"] == 64
    assert r.clock_anchor == ClockAnchor(1_700_000_000_123_456_789, 999)
    assert r.units == {"memory.current": "bytes", "cpu.stat.usage_usec": "us",
                       "cpu.stat.nr_periods": "count", "cpu.stat.nr_throttled": "count",
                       "memory.stat.inactive_file": "bytes"}
    assert r.kinds["cpu.stat.usage_usec"] == "counter" and r.kinds["memory.current"] == "gauge"
    assert r.pycgroup_version == pycgroup.__version__ and r.format_version == 1
    assert r.complete and r.gaps == ()
    assert r.samples.cpu_limit_cores == 0.5 and r.samples.effective_memory_bytes == 2**30
    # The loaded rows compute what the originals do.
    assert r.samples.throttling() == samples.throttling()


def test_round_trip_of_a_live_sampler(tmp_path, fmt):
    with pycgroup.Sampler(hz=500) as s:
        for _ in range(3):
            with s.span("step"):
                time.sleep(0.02)
    data = s.data()
    path = tmp_path / f"live.{fmt}"
    pycgroup.save(path, data, steps=s.steps("step"), marks=s.marks())
    r = pycgroup.load(path)
    assert np.array_equal(r.samples.to_numpy(), data.to_numpy()) and len(data) > 3
    assert r.metrics == s.columns and list(r.marks) == s.marks()
    assert r.origin.pid == os.getpid() and r.origin.cgroup_mode == pycgroup.current().mode
    assert r.origin.cgroup_paths == pycgroup.current().paths
    assert r.origin.period_ns == 2_000_000
    assert r.limits == {k: v for k, v in pycgroup.limits().__dict__.items()}
    anchor = r.clock_anchor
    assert abs(anchor.to_realtime_ns(time.monotonic_ns()) - time.time_ns()) < 50_000_000
    s.close()


def test_empty_recording_round_trips(tmp_path, fmt):
    empty = Samples(np.zeros((0, 3), dtype=np.int64), COLUMNS[:2])
    pycgroup.save(tmp_path / f"e.{fmt}", empty)
    r = pycgroup.load(tmp_path / f"e.{fmt}")
    assert len(r.samples) == 0 and r.metrics == COLUMNS[:2] and r.origin is None
    assert r.marks == () and r.steps is None


def test_npz_opens_with_numpy_alone(tmp_path):
    pycgroup.save(tmp_path / "r.npz", made_samples(), marks=MARKS)
    with np.load(tmp_path / "r.npz", allow_pickle=False) as z:
        assert np.array_equal(z["rows.000000"], made_samples().to_numpy())
        assert json.loads(str(z["pycgroup"]))["metrics"] == list(COLUMNS)
        assert z["marks_label.000000"].tolist() == [m.label for m in MARKS]


def test_parquet_opens_with_pyarrow_alone(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    pycgroup.save(tmp_path / "r.parquet", made_samples())
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names == ["t_ns", "time", *COLUMNS]
    assert table.column("memory.current").to_pylist()[:2] == [5, None]
    assert table.schema.field("memory.current").metadata[b"unit"] == b"bytes"
    assert str(table.column("time")[0]) .startswith("2023-11-14 22:13:20.1234")


def test_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.npz or \.parquet"):
        pycgroup.save(tmp_path / "r.csv", made_samples())


# --- errors ---------------------------------------------------------------------------

def _raises(path, error, match):
    with pytest.raises(error, match=match) as info:
        pycgroup.load(path)
    assert isinstance(info.value, pycgroup.Error) and isinstance(info.value, ValueError)
    assert info.value.path == str(path)
    return info.value


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        pycgroup.load(tmp_path / "absent.npz")


def test_foreign_files(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello, not a recording\n")
    _raises(text, pycgroup.NotARecording, "neither a zip .* nor a Parquet")
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.arange(3))  # numpy's own npz, without a pycgroup header
    _raises(plain, pycgroup.NotARecording, "without a pycgroup header")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _raises(empty, pycgroup.TruncatedRecording, "empty")


def test_foreign_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    _raises(tmp_path / "other.parquet", pycgroup.NotARecording, "without pycgroup metadata")


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98])
def test_truncated_files(tmp_path, fmt, keep):
    path = tmp_path / f"r.{fmt}"
    pycgroup.save(path, made_samples(), steps=STEPS, marks=MARKS)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    _raises(path, pycgroup.TruncatedRecording, "cut off|damaged|footer")


def test_damaged_member(tmp_path):
    path = tmp_path / "r.npz"
    pycgroup.save(path, made_samples())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("rows.000000.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    _raises(path, pycgroup.TruncatedRecording, "rows.000000.npy is damaged")


def _rewrite_header(path, change):
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(str(files._read_npy(path, "h", members["pycgroup.npy"])))
    change(meta)
    members["pycgroup.npy"] = files._json_npy(meta)
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


def test_newer_format_version(tmp_path):
    path = tmp_path / "r.npz"
    pycgroup.save(path, made_samples())
    _rewrite_header(path, lambda m: m.update(version=files.FORMAT_VERSION + 1,
                                             pycgroup_version="9.0"))
    _raises(path, pycgroup.NewerRecordingFormat,
            r"format version 2 by pycgroup 9\.0; .* upgrade pycgroup")


def test_newer_format_version_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "r.parquet"
    pycgroup.save(path, made_samples())
    table = pq.read_table(path)
    meta = json.loads(pq.ParquetFile(path).metadata.metadata[b"pycgroup"])
    meta["version"] = 7
    pq.write_table(table.replace_schema_metadata({"pycgroup": json.dumps(meta)}), path)
    _raises(path, pycgroup.NewerRecordingFormat, "format version 7")


def test_other_format_name(tmp_path):
    path = tmp_path / "r.npz"
    pycgroup.save(path, made_samples())
    _rewrite_header(path, lambda m: m.update(format="something-else"))
    _raises(path, pycgroup.NotARecording, "not a pycgroup recording")


# --- streaming ------------------------------------------------------------------------

def test_streaming_loses_no_rows(tmp_path, fmt):
    path = tmp_path / f"stream.{fmt}"
    s = pycgroup.Sampler(["memory.current", "cpu.stat.usage_usec"], capacity=256, hz=1000)
    with pycgroup.record(s, path, chunk_s=0.05) as rec:
        for i in range(6):
            s.mark(f"m{i}")
            time.sleep(0.1)
    r = pycgroup.load(path)
    assert r.complete and rec.chunks > 3
    taken = r.stats["samples"]
    assert len(r.samples) == taken == rec.rows  # every row the sampler took, once
    assert np.all(np.diff(r.samples.t_ns) > 0)
    assert r.gaps == () and r.stats["lost_by_writer"] == 0
    assert [m.label for m in r.marks] == [f"m{i}" for i in range(6)]
    assert not s.running  # record() started it, so closing stopped it
    # Memory stays at one chunk: the ring (256 rows) is smaller than the recording.
    assert len(r.samples) > 256


def test_streaming_records_gaps_when_the_writer_falls_behind(tmp_path):
    # At 1 Hz the thread that record() starts takes one row before stop(), however late
    # stop() comes on a loaded host; the writer never wakes (chunk_s): rows below are
    # flushed by hand.
    s = pycgroup.Sampler(["memory.current"], capacity=16, hz=1)
    rec = pycgroup.record(s, tmp_path / "gappy.npz", chunk_s=3600)
    s.stop()
    for _ in range(10):
        s.sample()
    rec.flush()
    first = rec.rows
    for _ in range(40):
        s.sample()  # 40 rows into a 16-row ring: 24 are overwritten before the next flush
    rec.close()
    r = pycgroup.load(tmp_path / "gappy.npz")
    assert len(r.samples) + sum(g.rows for g in r.gaps) == r.stats["samples"]
    (gap,) = r.gaps
    assert gap.rows == r.stats["samples"] - len(r.samples) >= 24
    assert gap.after_ns == r.samples.t_ns[first - 1] and gap.before_ns == r.samples.t_ns[first]


STREAMER = """
import sys, time, pycgroup
s = pycgroup.Sampler(["memory.current", "cpu.stat.usage_usec"], hz=1000)
rec = pycgroup.record(s, sys.argv[1], chunk_s=0.05)
i = 0
while True:
    s.mark(f"m{i}"); i += 1
    if rec.chunks >= 4:
        print("flushed", flush=True)
    time.sleep(0.02)
"""


def test_kill_9_leaves_a_loadable_npz(tmp_path):
    path = tmp_path / "crash.npz"
    child = subprocess.Popen([sys.executable, "-c", STREAMER, str(path)], cwd="/",
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "flushed\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    r = pycgroup.load(path)
    assert not r.complete and r.stats is None
    assert len(r.samples) > 0 and np.all(np.diff(r.samples.t_ns) > 0)
    assert r.metrics == ("memory.current", "cpu.stat.usage_usec")
    assert r.origin is not None and r.origin.pid == child.pid
    labels = [m.label for m in r.marks]
    assert labels == [f"m{i}" for i in range(len(labels))] and labels
    assert all(m.t_ns <= r.samples.t_ns[-1] for m in r.marks)
    # A file cut inside its last chunk still loads, up to the chunk before.
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:-7])
    shorter = pycgroup.load(cut)
    assert not shorter.complete and 0 < len(shorter.samples) <= len(r.samples)
    assert np.array_equal(shorter.samples.to_numpy(), r.samples.to_numpy()[:len(shorter.samples)])


def test_parquet_stream_killed_says_why(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "crash.parquet"
    child = subprocess.Popen([sys.executable, "-c", STREAMER, str(path)], cwd="/",
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "flushed\n"
    finally:
        child.kill()
        child.wait()
    _raises(path, pycgroup.TruncatedRecording, "without its footer")


def test_to_pandas_and_arrow():
    pd = pytest.importorskip("pandas")
    samples = made_samples()
    frame = samples.to_pandas()
    assert list(frame.columns) == ["t_ns", "time", *COLUMNS]
    assert frame["t_ns"].tolist() == [1_000, 2_000, 3_000, 4_000]
    assert frame["time"][0] == pd.Timestamp(1_700_000_000_123_456_789 + 1_000 - 999,
                                            unit="ns", tz="UTC")
    assert np.isnan(frame["memory.current"][1]) and np.isinf(frame["memory.current"][2])
    assert frame.attrs["units"]["cpu.stat.usage_usec"] == "us"
    assert frame.attrs["kinds"]["cpu.stat.nr_periods"] == "counter"
    pytest.importorskip("pyarrow")
    table = samples.to_arrow()
    assert table.column("memory.current").to_pylist() == [5, None, UNLIMITED, -2**63 + 1]
    assert table.column("cpu.stat.usage_usec").to_pylist()[2] == 2**62 + 7  # exact
    no_origin = Samples(samples.to_numpy(), COLUMNS).to_pandas()
    assert no_origin["time"].isna().all()
