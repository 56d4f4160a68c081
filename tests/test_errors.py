"""The error family: each situation raises a pycgroup.Error that is also the builtin a
caller would otherwise catch, with a message that says what to do."""

import os
import subprocess
import sys
import textwrap

import pytest

import pycgroup
from pycgroup import errors

BUILTIN_BASE = {
    errors.ParseError: ValueError, errors.CgroupGone: OSError,
    errors.NotRegularFile: OSError, errors.SamplerClosed: RuntimeError,
    errors.SpanNotFinished: RuntimeError,
    errors.MetricUnavailable: LookupError, errors.UnknownMetric: KeyError,
    errors.OutOfMemory: MemoryError, errors.MissingExtra: ImportError,
    errors.RecordingError: ValueError, errors.NotARecording: ValueError,
    errors.TruncatedRecording: ValueError, errors.NewerRecordingFormat: ValueError,
}


def test_every_error_class_is_a_pycgroup_error_and_its_builtin():
    declared = {obj for obj in vars(errors).values()
                if isinstance(obj, type) and issubclass(obj, Exception) and obj is not errors.Error}
    assert declared == set(BUILTIN_BASE)  # a new error class needs its line here
    for cls, builtin in BUILTIN_BASE.items():
        assert issubclass(cls, pycgroup.Error) and issubclass(cls, builtin), cls
        assert getattr(pycgroup, cls.__name__) is cls


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_an_unknown_metric_names_close_matches(backend):
    with pytest.raises(pycgroup.UnknownMetric) as raised:
        pycgroup.Sampler(["cpu.usage_usec"], backend=backend)
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, pycgroup.MetricUnavailable)
    # Not KeyError's quoted repr: the message reads as a sentence.
    assert str(raised.value).startswith("unknown metric 'cpu.usage_usec'; did you mean ")
    assert "cpu.stat.usage_usec" in str(raised.value)
    with pytest.raises(KeyError, match="unknown metric 'bogus'"):
        pycgroup.current().read(["bogus"], backend)


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_a_ring_that_does_not_fit_names_the_bytes(backend):
    """Under an address-space limit of 512 MiB above what the interpreter has mapped, a
    ring of 2**26 rows (several GiB) cannot be had: the error says how much was asked."""
    program = textwrap.dedent(f"""
        import resource
        import pycgroup
        metrics = ["proc.rss_bytes", "host.mem.available"]
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * resource.getpagesize()
        limit = mapped + 512 * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            pycgroup.Sampler(metrics, capacity=2**26, backend={backend!r})
        except pycgroup.OutOfMemory as e:
            assert isinstance(e, MemoryError)
            print(e)
        else:
            raise SystemExit("the ring was allocated")
        # Memory is still there for a ring that fits.
        s = pycgroup.Sampler(metrics, capacity=1024, backend={backend!r})
        s.sample()
        print(len(s.data()))
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    message, rows = done.stdout.strip().splitlines()
    assert message == (f"a ring of {2**26} rows of 3 int64 columns ({2**26 * 3 * 8} bytes) "
                       "could not be allocated; ask for a smaller capacity")
    assert rows == "1"


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_available_memory_that_cannot_be_known_says_why(tree, backend):
    """No MemAvailable (kernels before 3.14) and no readable working set: there is no
    figure to give, and 0 or the host's total would both be wrong."""
    procfs, rootfs = tree("v1")
    cg = pycgroup.current(procfs, rootfs)
    meminfo = os.path.join(procfs, "meminfo")
    with open(meminfo) as f:
        lines = [line for line in f if not line.startswith("MemAvailable:")]
    with open(meminfo, "w") as f:
        f.writelines(lines)
    assert pycgroup.available_memory(cg, backend) > 0  # the working set still serves
    os.remove(os.path.join(cg.paths["memory"], "memory.stat"))
    cg = pycgroup.current(procfs, rootfs)  # read() keeps the files it opened
    with pytest.raises(pycgroup.MetricUnavailable, match="available memory cannot be known"
                       ) as raised:
        pycgroup.available_memory(cg, backend)
    assert "memory.stat" in str(raised.value) and "MemAvailable" in str(raised.value)


def test_a_span_read_before_it_ends_says_so():
    s = pycgroup.Sampler(["proc.rss_bytes"])
    with s.span("step") as sp:
        with pytest.raises(pycgroup.SpanNotFinished, match="'step' has not finished"):
            sp.delta
    assert sp.delta == {} and sp.duration_s > 0  # a gauge has a peak, not a delta
    assert sp.peak["proc.rss_bytes"] > 0
    s.close()


def test_an_engine_takes_a_reader_of_its_own_shape_only_while_idle(backend):
    if backend == "native":
        from pycgroup._native import Engine, Reader
    else:
        from pycgroup._pure import Reader
        from pycgroup._pure_sampler import PureEngine as Engine
    engine = Engine(Reader([], 2), 8, 1_000_000)
    with pytest.raises(ValueError, match="new reader has 3 columns, the sampler's rows 2"):
        engine.replace_reader(Reader([], 3))
    engine.start()
    with pytest.raises(RuntimeError, match="running sampler"):
        engine.replace_reader(Reader([], 2))
    engine.close()
    with pytest.raises(pycgroup.SamplerClosed):
        engine.replace_reader(Reader([], 2))


def test_the_binding_refuses_none_for_its_objects():
    """The compiled classes take their readers and NVML handles as typed arguments: None
    must be a TypeError, not a NULL dereference (run in a child, so a crash is seen)."""
    program = textwrap.dedent("""
        from pycgroup import _native
        reader = _native.Reader([], 0)
        engine = _native.Engine(reader, 8, 1_000_000)
        for call in (lambda: _native.Engine(None, 8, 1_000_000),
                     lambda: engine.replace_reader(None),
                     lambda: _native.GpuGroup(None, 0, [], 0, 0)):
            try:
                call()
            except TypeError as e:
                print("TypeError", e)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all("got NoneType" in line for line in lines), lines


def test_the_binding_checks_the_positions_and_columns_a_span_passes_it():
    """A span's end crosses the binding with its start row and two working-set columns:
    None, a start shorter than a row, or a column outside the row must raise, not read
    past the start or the ring's row (run in a child, so a crash is seen)."""
    program = textwrap.dedent("""
        from pycgroup import _native
        from pycgroup.formats import Field, Format, SourceSpec
        spec = SourceSpec("/proc/self/stat", Format.PID_STAT, [Field("14", 0), Field("15", 1)])
        engine = _native.Engine(_native.Reader([spec], 2), 8, 1_000_000)
        start = engine.boundary(True)
        print("ok", len(engine.span_end(start, True, 0, 10**9, 1, 2)))
        for call in (lambda: engine.span_end(None, True, 0, 10**9, 0, 0),
                     lambda: engine.span_end(start[:4], True, 0, 10**9, 0, 0),
                     lambda: engine.span_end(start, True, 0, 10**9, 3, 1),
                     lambda: engine.span_end(start, True, 0, 10**9, 1, -1),
                     lambda: _native.Engine(_native.Reader([spec], 2), 8, 1_000_000, [])):
            try:
                call()
            except (TypeError, ValueError) as e:
                print(type(e).__name__, e)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"ok {(2 * 3 + 3) * 8}", lines
    assert [line.split()[0] for line in lines[1:]] == ["TypeError"] + ["ValueError"] * 4, lines
