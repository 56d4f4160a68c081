"""Concurrency and hostile-input scenarios, each run in a child process by
tests/test_concurrency.py (and by tests/test_sanitizers.py under AddressSanitizer):
``python stress_scenarios.py NAME BACKEND WORKDIR`` prints ``ok NAME`` and exits 0, or
fails with a traceback. A hang is caught by the parent's hard timeout, so a scenario
never needs a timeout of its own for the call it tests.

Every scenario goes through the public API only."""

import errno
import os
import resource
import shutil
import sys
import threading
import time

import numpy as np

import pycgroup
import pycgroup._pure
from pycgroup.formats import MISSING

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
V2_METRICS = ["memory.current", "memory.stat.inactive_file", "cpu.stat.usage_usec",
              "cpu.pressure.some.total", "proc.rss_bytes"]
SCENARIOS = {}


def scenario(function):
    SCENARIOS[function.__name__] = function
    return function


def fixture_cgroup(workdir, name="v2"):
    """Returns the CGroup of a fresh copy of a fixture tree under workdir."""
    root = os.path.join(workdir, name)
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(os.path.join(FIXTURES, name), root, symlinks=True)
    return pycgroup.current(os.path.join(root, "proc"), root)


def run_threads(targets):
    """Starts one thread per callable at once (a barrier); returns their exceptions."""
    barrier = threading.Barrier(len(targets))
    failures = []

    def wrap(target):
        barrier.wait()
        try:
            target()
        except BaseException as e:  # reported by the scenario
            failures.append(e)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


# --- lifecycle --------------------------------------------------------------------

@scenario
def stop_twice(backend, workdir):
    """Two threads stop() (or stop() and close()) one running sampler at the same moment:
    both return, and the sampler is stopped."""
    cg = fixture_cgroup(workdir)
    for trial in range(24):
        s = pycgroup.Sampler(V2_METRICS, cgroup=cg, hz=2000, backend=backend).start()
        time.sleep(0.002)
        second = s.close if trial % 3 == 2 else s.stop
        assert run_threads([s.stop, second]) == []
        assert not s.running
        if trial % 3 != 2:  # still usable: a stopped sampler starts again
            s.start()
            assert s.running
            s.close()
        assert not s.running


@scenario
def close_races_readers(backend, workdir):
    """close() while 4 threads call sample(), data(), mark() and stats in a loop: each call
    either works or raises SamplerClosed, and once close() returned every call raises."""
    cg = fixture_cgroup(workdir)
    for trial in range(12):
        s = pycgroup.Sampler(V2_METRICS, cgroup=cg, hz=5000, backend=backend)
        if trial % 2:
            s.start()
        closed = threading.Event()
        unexpected = []

        def hammer(call):
            def loop():
                calls_after_close = 0
                while calls_after_close < 3:
                    was_closed = closed.is_set()
                    try:
                        call()
                    except pycgroup.SamplerClosed:
                        pass
                    except BaseException as e:
                        unexpected.append(e)
                        return
                    else:
                        if was_closed:
                            unexpected.append(AssertionError(f"{call} worked after close()"))
                            return
                    calls_after_close += was_closed
            return loop

        def closer():
            time.sleep(0.01 + 0.002 * trial)
            s.close()
            closed.set()

        calls = [s.sample, lambda: s.data(last=64), lambda: s.mark("step"), lambda: s.stats]
        assert run_threads([hammer(c) for c in calls] + [closer]) == []
        assert unexpected == [], unexpected


@scenario
def calls_after_close(backend, workdir):
    """After close() every method raises SamplerClosed (no stale row is ever recorded);
    stop() and close() are harmless."""
    cg = fixture_cgroup(workdir)
    s = pycgroup.Sampler(V2_METRICS, cgroup=cg, hz=1000, backend=backend).start()
    time.sleep(0.01)
    s.close()
    for call in (s.start, s.sample, s.data, lambda: s.stats, lambda: s.mark("x"),
                 lambda: s.span("x"), lambda: s.steps("x"), lambda: s.marks(),
                 lambda: s.gpu_history(0)):
        try:
            call()
        except pycgroup.SamplerClosed as e:
            assert isinstance(e, RuntimeError) and isinstance(e, pycgroup.Error)
        else:
            raise AssertionError(f"{call} after close() did not raise SamplerClosed")
    s.stop()
    s.close()
    assert not s.running
    with pycgroup.Sampler(V2_METRICS, cgroup=cg, backend=backend) as s:
        s.sample()
        s.close()  # __exit__ then stops a closed sampler: nothing to do


@scenario
def extreme_rates(backend, workdir):
    """Rates outside 1/hour .. 100 kHz are refused naming the bounds; at the bounds the
    thread starts, and stop() wakes it at once even with an hour to sleep."""
    cg = fixture_cgroup(workdir)
    for hz in (1e-9, 1e-10, 1e-300, 1e5 * 1.01):
        try:
            pycgroup.Sampler(V2_METRICS, cgroup=cg, hz=hz, backend=backend)
        except ValueError as e:
            assert "0.000277778" in str(e) and "100000" in str(e), e
        else:
            raise AssertionError(f"hz={hz} was accepted")
    for hz in (1 / 3600, 1e-3, 1.0, 1e5):
        for _ in range(3):
            s = pycgroup.Sampler(V2_METRICS, cgroup=cg, hz=hz, backend=backend).start()
            while s.stats.samples == 0:  # the first row is due at once, whatever the rate
                time.sleep(0.001)
            s.stop()  # asleep until the next deadline, up to an hour away: must wake now
            assert not s.running
            s.close()


# --- buffers --------------------------------------------------------------------

@scenario
def file_grows_while_sampling(backend, workdir):
    """A keyed file grows far past its buffer while the thread runs: the thread regrows
    the buffer itself, and rows taken after the growth are complete. Nothing but the
    thread touches the sampler until it is stopped."""
    cg = fixture_cgroup(workdir)
    path = os.path.join(cg.paths["unified"], "memory.stat")
    s = pycgroup.Sampler(["memory.stat.inactive_file"], cgroup=cg, hz=1000, backend=backend,
                         every={"memory.stat.*": 1}).start()
    time.sleep(0.05)
    extra = "".join(f"padding_{i:05d} {i}\n" for i in range(800)).encode()  # 16 KiB: 4x the buffer
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    grown_at = time.monotonic_ns()
    os.write(fd, extra)
    os.close(fd)
    time.sleep(0.3)
    s.stop()
    data = s.data()
    after = data["memory.stat.inactive_file"][data.t_ns > grown_at + 20_000_000]
    assert len(after) > 5, len(after)
    assert MISSING not in after.tolist(), f"{(after == MISSING).sum()} of {len(after)} missing"
    s.close()


# --- hostile files --------------------------------------------------------------

def heartbeat():
    """Starts a thread counting beats every millisecond; returns (beats, stop)."""
    beats = [0]
    done = threading.Event()

    def beat():
        while not done.wait(0.001):
            beats[0] += 1

    threading.Thread(target=beat, daemon=True).start()
    return beats, done.set


@scenario
def fifo_in_place_of_a_file(backend, workdir):
    """A FIFO (no writer) where memory.current should be: reads and samplers refuse it at
    once with NotRegularFile naming the path, and other threads run meanwhile."""
    cg = fixture_cgroup(workdir)
    path = os.path.join(cg.paths["unified"], "memory.current")
    os.unlink(path)
    os.mkfifo(path)
    beats, stop = heartbeat()
    started = beats[0]
    for _ in range(20):
        for call in (lambda: cg.read(["memory.current"], backend),
                     lambda: pycgroup.Sampler(["memory.current"], cgroup=cg, backend=backend)):
            try:
                call()
            except pycgroup.NotRegularFile as e:
                assert isinstance(e, OSError) and e.filename == path, e
                assert "FIFO" in str(e), e
            else:
                raise AssertionError("a FIFO was read as a kernel file")
        time.sleep(0.002)
    stop()
    assert beats[0] > started, "the heartbeat thread never ran"
    cg.close()


@scenario
def hostile_files_read_once(backend, workdir):
    """The files read once, outside a reader (io.max and cpuset.cpus.effective by
    limits(), memory.stat's keys by metrics(), cgroup.procs by discovery), as a FIFO or
    /dev/zero: refused at once with NotRegularFile naming the path, or left out."""
    # /dev/zero read to its end would take the machine's memory: fail with MemoryError first.
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    cg = fixture_cgroup(workdir)
    unified = cg.paths["unified"]
    io_max = os.path.join(unified, "io.max")
    os.mkfifo(io_max)
    for call in (lambda: pycgroup.limits(cg, backend),
                 lambda: pycgroup.Sampler(V2_METRICS, cgroup=cg, backend=backend)):
        try:
            call()
        except pycgroup.NotRegularFile as e:
            assert e.filename == io_max and "FIFO" in str(e), e
        else:
            raise AssertionError("a FIFO was read as io.max")
    os.unlink(io_max)
    cpuset = os.path.join(unified, "cpuset.cpus.effective")
    os.unlink(cpuset)
    os.symlink("/dev/zero", cpuset)
    try:
        pycgroup.limits(cg, backend)
    except pycgroup.NotRegularFile as e:
        assert e.filename == cpuset and "character device" in str(e), e
    else:
        raise AssertionError("/dev/zero was read as cpuset.cpus.effective")
    os.unlink(cpuset)
    assert pycgroup.limits(cg, backend).cpu_count >= 1  # no cpuset file: the host's CPUs
    stat_path = os.path.join(unified, "memory.stat")
    os.unlink(stat_path)
    os.mkfifo(stat_path)
    names = cg.metrics()
    assert "memory.current" in names and not any(n.startswith("memory.stat.") for n in names)
    # A cgroup found by the cgroup.procs that lists its PID, which is a FIFO here: it
    # lists nothing, and discovery falls back to the mount point as when none lists it.
    root = os.path.join(workdir, "dotdot")
    shutil.copytree(os.path.join(FIXTURES, "dotdot"), root, symlinks=True)
    procs = os.path.join(root, "sys/fs/cgroup/kubepods/pod1/other/cgroup.procs")
    os.unlink(procs)
    os.mkfifo(procs)
    found = pycgroup.current(os.path.join(root, "proc"), root)
    assert found.paths == {"unified": os.path.join(root, "sys/fs/cgroup")}, found.paths
    assert "no cgroup.procs below the mount point lists PID 4242" in found.problems[0]


@scenario
def endless_and_huge_files(backend, workdir):
    """/dev/zero where memory.stat should be is refused; a regular file of more than
    8 MiB reads as EFBIG, on both backends alike."""
    cg = fixture_cgroup(workdir)
    stat_path = os.path.join(cg.paths["unified"], "memory.stat")
    os.unlink(stat_path)
    os.symlink("/dev/zero", stat_path)
    try:
        cg.read(["memory.stat.inactive_file"], backend)
    except pycgroup.NotRegularFile as e:
        assert e.filename == stat_path and "character device" in str(e), e
    else:
        raise AssertionError("/dev/zero was read as a kernel file")
    current = os.path.join(cg.paths["unified"], "memory.current")
    limit = pycgroup._pure.MAX_FILE_BYTES
    for size, expect in ((limit, "parse"), (limit + 1, "efbig")):
        with open(current, "wb") as f:
            f.write(b"1" * size)
        try:
            pycgroup.CGroup(cg.mode, cg.paths).read(["memory.current"], backend)
        except pycgroup.ParseError:
            assert expect == "parse", size
        except OSError as e:
            assert expect == "efbig" and e.errno == errno.EFBIG and e.filename == current, e
        else:
            raise AssertionError(f"{size} bytes of digits read as a value")


@scenario
def distinct_read_lists(backend, workdir):
    """10,000 read() calls, each with a list never used before: the open fds stay flat."""
    cg = fixture_cgroup(workdir)
    pool = [n for n in cg.metrics() if not n.startswith(("gpu", "host.", "memory.stat."))]
    assert len(pool) >= 12, pool
    fds_before = len(os.listdir("/proc/self/fd"))
    peak = 0
    calls = 10_000 if backend == "native" else 2_000
    for i in range(calls):
        # Files from a few metrics, and a memory.stat key no other list asks for.
        names = [pool[i % len(pool)], pool[(i * 7 + 3) % len(pool)], f"memory.stat.x{i}"]
        values = cg.read(names, backend)
        assert len(values) == len(set(names)) and values[names[-1]] is None
        if i % 500 == 0:
            peak = max(peak, len(os.listdir("/proc/self/fd")) - fds_before)
    peak = max(peak, len(os.listdir("/proc/self/fd")) - fds_before)
    # At most a few lists' files (16 lists of 3 files here), however many lists were used.
    assert peak <= 100, f"{peak} fds held after {calls} distinct lists"
    cg.close()
    assert len(os.listdir("/proc/self/fd")) <= fds_before


# --- GPU history ----------------------------------------------------------------

@scenario
def gpu_history_while_sampling(backend, workdir):
    """The thread drains the driver's samples while another thread copies the history:
    every copy is in time order; a history kind out of range, or a row too short for a
    group's columns, is a ValueError."""
    s = pycgroup.Sampler(["gpu0.power_mw", "gpu0.util.gpu"], hz=20000, backend=backend,
                         every={"gpu*": 1}).start()
    (group,) = s._plan.gpu_groups
    copies = 0
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        history = s.gpu_history(0)
        for t, values in history.values():
            assert len(t) == len(values)
            assert (np.diff(t) >= 0).all(), "history out of order"
        copies += 1
    s.stop()
    assert copies > 10 and len(s.gpu_history(0)["power_mw"][0]) > 0
    if backend == "native":
        for kind in (2, -1, 100000):
            try:
                group.history(kind)
            except ValueError:
                pass
            else:
                raise AssertionError(f"history kind {kind} was accepted")
        try:  # a row too short for the group's columns
            group.read_into(np.zeros(group.row_length - 1, dtype=np.int64))
        except ValueError:
            pass
        else:
            raise AssertionError("a GPU group wrote past the end of a short row")
    s.close()


def main(argv):
    name, backend, workdir = argv
    SCENARIOS[name](backend, workdir)
    print(f"ok {name}", flush=True)
    # No interpreter teardown: a sanitizer's report at exit would be about Python.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
