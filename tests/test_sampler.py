"""The Sampler: arguments, rows, divisors, faults and lifecycle, on both backends."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import pycgroup
from pycgroup.formats import MISSING, UNLIMITED

from background import sample_while

V2_METRICS = ["memory.current", "memory.stat.inactive_file", "memory.events.high",
              "cpu.stat.usage_usec", "cpu.stat.nr_periods", "cpu.stat.nr_throttled",
              "cpu.stat.throttled_usec", "cpu.pressure.some.total", "memory.max",
              "proc.rss_bytes"]


def fixture_cgroup(tree, name="v2"):
    procfs, rootfs = tree(name)
    return pycgroup.current(procfs, rootfs)


def write(cg, name, text):
    with open(os.path.join(cg.paths["unified"], name), "w") as f:
        f.write(text)


# --- arguments --------------------------------------------------------------------

@pytest.mark.parametrize("hz", [0, -5, float("nan"), float("inf"), 1e9, "fast", None])
def test_bad_hz(hz, backend):
    with pytest.raises(ValueError, match="hz"):
        pycgroup.Sampler(hz=hz, backend=backend)


@pytest.mark.parametrize("capacity", [0, 1, -3, 2**40, 3.5, True, "big"])
def test_bad_capacity(capacity, backend):
    with pytest.raises(ValueError, match="capacity"):
        pycgroup.Sampler(capacity=capacity, backend=backend)


def test_unknown_metric_raises_key_error(backend):
    with pytest.raises(KeyError, match="memory.current"):
        pycgroup.Sampler(["memory.curent"], backend=backend)


def test_bad_every(backend):
    with pytest.raises(ValueError, match="every"):
        pycgroup.Sampler(every={"memory.stat.*": 0}, backend=backend)


def test_capacity_rounds_up_to_a_power_of_two(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, capacity=1000, cgroup=fixture_cgroup(tree), backend=backend)
    assert s.capacity == 1024
    assert s._engine.width == len(s.columns) + 1  # memory: capacity × (columns + 1) × 8 bytes


def test_default_metrics_leave_out_what_the_cgroup_lacks(tree, backend):
    s = pycgroup.Sampler(cgroup=fixture_cgroup(tree, "v1"), backend=backend)
    assert "cpu.pressure.some.total" not in s.columns  # v1 has no PSI
    assert "memory.events.high" not in s.columns
    assert {"memory.current", "cpu.stat.nr_throttled", "proc.rss_bytes"} <= set(s.columns)


def test_explicit_unavailable_metric_is_left_out_with_its_reason(tree, backend):
    s = pycgroup.Sampler(["memory.high", "memory.current"], cgroup=fixture_cgroup(tree, "v1"),
                         backend=backend)
    assert s.unavailable == {"memory.high": "cgroup v1 has no memory.high"}
    assert s.columns == ("memory.current",)
    s.sample()
    assert s.data()["memory.current"].tolist() == [157286400]


# --- rows -------------------------------------------------------------------------

def test_native_and_pure_take_the_same_rows_from_a_changing_tree(tree):
    cg = fixture_cgroup(tree)
    native = pycgroup.Sampler(V2_METRICS, cgroup=cg, backend="native", every={})
    pure = pycgroup.Sampler(V2_METRICS, cgroup=cg, backend="pure", every={})
    steps = [
        lambda: write(cg, "memory.current", "200000000\n"),
        lambda: write(cg, "cpu.stat", "nr_periods 5\nusage_usec 99\n"),  # keys moved and gone
        lambda: write(cg, "memory.max", "max\n"),
        lambda: write(cg, "memory.events", "low 0\nhigh junk\n"),  # malformed: columns missing
        lambda: os.remove(os.path.join(cg.paths["unified"], "cpu.pressure")),
        lambda: write(cg, "memory.stat", "inactive_file 18446744073709551615\n"),
    ]
    for step in [lambda: None, *steps]:
        step()
        native.sample()
        pure.sample()
    a, b = native.data(), pure.data()
    assert a.columns == b.columns
    assert np.array_equal(a.to_numpy()[:, 1:], b.to_numpy()[:, 1:])
    assert a["cpu.stat.nr_throttled"].tolist()[-5:] == [MISSING] * 5
    assert a["memory.max"].tolist()[-4:] == [UNLIMITED] * 4
    assert a["memory.events.high"].tolist()[-3:] == [MISSING] * 3
    assert a["memory.stat.inactive_file"][-1] == 2**63 - 2  # saturated
    assert native.stats.read_errors == pure.stats.read_errors == 3  # memory.events, 3 rows
    assert isinstance(native.stats.last_error, pycgroup.ParseError)


def test_timestamps_are_the_monotonic_clock(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), backend=backend)
    before = time.monotonic_ns()
    t = s.sample()
    after = time.perf_counter_ns()
    assert before <= t <= after
    assert s.data().t_ns.tolist() == [t]


def test_data_last_and_since(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, capacity=8, cgroup=fixture_cgroup(tree), backend=backend)
    times = [s.sample() for _ in range(20)]
    assert s.data().t_ns.tolist() == times[-8:]  # the ring holds the newest 8
    assert s.data(last=3).t_ns.tolist() == times[-3:]
    assert s.data(since_ns=times[15]).t_ns.tolist() == times[15:]
    assert s.data(last=2, since_ns=times[15]).t_ns.tolist() == times[-2:]
    assert len(s.data(last=0)) == 0
    assert s.stats.dropped == 12  # overwritten before any data() call reached them
    s.sample()
    assert s.stats.dropped == 12  # data() had read up to the end


def test_every_reads_expensive_files_every_nth_tick(tree):
    """The thread reads memory.stat every 3rd tick: the column changes only on those rows
    while a writer keeps rewriting both files."""
    cg = fixture_cgroup(tree)
    write(cg, "memory.current", "%010d\n" % 0)  # fixed widths: pwrite replaces in place
    write(cg, "memory.stat", "inactive_file %010d\n" % 0)
    s = pycgroup.Sampler(["memory.current", "memory.stat.inactive_file"], cgroup=cg, hz=2000,
                         every={"memory.stat.*": 3})
    fds = [os.open(os.path.join(cg.paths["unified"], f), os.O_WRONLY)
           for f in ("memory.current", "memory.stat")]

    def rewrite(n):
        os.pwrite(fds[0], b"%010d\n" % n, 0)
        os.pwrite(fds[1], b"inactive_file %010d\n" % n, 0)

    data = sample_while(s, rewrite, 0.5)
    for fd in fds:
        os.close(fd)
    changed = np.flatnonzero(np.diff(data["memory.stat.inactive_file"])) + 1
    assert len(changed) > 10
    assert set(changed % 3) == {0}
    assert len(np.flatnonzero(np.diff(data["memory.current"]))) > len(changed)
    # memory.current matches no pattern: it is read on every tick, odd ones included.
    assert set((np.flatnonzero(np.diff(data["memory.current"])) + 1) % 2) == {0, 1}


# --- the background thread --------------------------------------------------------

def test_start_stop_running_and_context_manager(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), hz=1000, backend=backend)
    assert not s.running
    with s as same:
        assert same is s and s.running
        deadline = time.monotonic() + 5
        while s.stats.samples < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert not s.running
    n = s.stats.samples
    assert n >= 20
    assert np.all(np.diff(s.data().t_ns) > 0)
    time.sleep(0.05)
    assert s.stats.samples == n  # stopped means stopped
    s.start()
    s.start()  # starting twice is harmless
    s.stop()
    s.stop()


def test_stop_returns_within_about_one_period(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), hz=2, backend=backend).start()
    time.sleep(0.1)
    began = time.monotonic()
    s.stop()
    assert time.monotonic() - began < 1.5  # three periods of 0.5 s


def test_removed_cgroup_while_sampling_counts_errors_and_keeps_going(live_cgroups, backend):
    """The sampler's cgroup is removed under it (v1 or v2, whichever the kernel offers):
    the thread keeps going, counts the failed reads, and stores MISSING, never a value.
    It waits on the sampler's own counters, not on the clock, so a slow host only slows
    it down."""
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    from live import wait_until

    live = live_cgroups("memory")
    cg = pycgroup.CGroup(live.version["memory"], {live.key("memory"): live.leaves["memory"]})
    s = pycgroup.Sampler(["memory.current", "memory.events.max"], cgroup=cg, hz=1000,
                         backend=backend).start()
    try:
        wait_until(lambda: s.stats.samples >= 5, "five rows before the removal")
    finally:
        removing_at = time.monotonic_ns()  # a row stamped before this read before the rmdir
        os.rmdir(live.leaves["memory"])
    removed_at = time.monotonic_ns()
    errors = s.stats.read_errors
    wait_until(lambda: s.stats.read_errors >= errors + 40, "forty failed reads")
    assert s.running
    s.stop()
    stats = s.stats
    assert isinstance(stats.last_error, OSError) and stats.last_error.errno in (19, 2)
    data = s.data()
    after = data["memory.current"][data.t_ns > removed_at]  # begun after the removal
    # Begun before it: all read, but the last, which may have read after the removal.
    before = data["memory.current"][data.t_ns < removing_at][:-1]
    assert len(after) >= 10 and set(after.tolist()) == {MISSING}
    assert len(before) >= 4 and MISSING not in before.tolist()


def in_fork_child(check, parent_grows_mib=0) -> None:
    """Runs check() in a forked child; fails unless it returns True there. With
    parent_grows_mib the parent first touches that much more memory, so that a figure
    read through the parent's /proc/self files stands out in the child."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(20)  # a deadlock must not hang the suite
            os.read(ready_r, 1)
            code = 0 if check() else 3
        finally:
            os._exit(code)
    grown = np.ones(parent_grows_mib * 2**20 // 8)
    os.write(ready_w, b"x")
    _, status = os.waitpid(pid, 0)
    os.close(ready_r)
    os.close(ready_w)
    assert os.waitstatus_to_exitcode(status) == 0
    del grown


def own_rss_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_fork_child_has_no_thread_and_can_start_its_own(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), hz=1000, backend=backend).start()
    time.sleep(0.05)

    def check():
        ok = not s.running
        parent_reader = s._plan.reader
        s.sample()
        ok = ok and s._plan.reader is not parent_reader  # reopened: /proc/self is ours
        s.start()
        n = s.stats.samples
        time.sleep(0.05)
        ok = ok and s.running and s.stats.samples > n
        s.stop()
        return ok

    in_fork_child(check)
    assert s.running  # the parent's thread goes on
    s.stop()


@pytest.mark.parametrize("exact", [True, False])
def test_a_span_in_a_fork_child_reads_the_childs_own_files(backend, exact):
    """The parent's /proc/self/stat describes the parent: a span taken in the child,
    with no thread running there, must not read through it."""
    s = pycgroup.Sampler(["proc.rss_bytes"], backend=backend)
    s.sample()

    def check():
        with s.span("step", exact=exact) as sp:
            pass
        return abs(sp.peak["proc.rss_bytes"] - own_rss_bytes()) < 64 * 2**20

    in_fork_child(check, parent_grows_mib=512)


def test_threads_in_a_fork_child_wait_for_the_files_to_be_reopened(backend, monkeypatch):
    """The first call in a fork's child reopens the files (slowly here); threads calling
    meanwhile must wait for it, not read the parent's /proc/self/stat, nor reopen again."""
    s = pycgroup.Sampler(["proc.rss_bytes"], backend=backend)
    s.sample()
    builds = []
    build = pycgroup.plan.build

    def slow_build(*args):
        builds.append(1)
        time.sleep(0.2)
        return build(*args)

    monkeypatch.setattr(pycgroup.plan, "build", slow_build)

    def check():
        errors = []

        def sample_many():
            try:
                for _ in range(50):
                    s.sample()
            except Exception as e:  # reported through the exit code
                errors.append(e)

        threads = [threading.Thread(target=sample_many) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rss = s.data()["proc.rss_bytes"][-200:]
        own = own_rss_bytes()
        return (not errors and builds == [1] and len(rss) == 200
                and abs(rss - own).max() < 64 * 2**20)

    in_fork_child(check, parent_grows_mib=512)


@pytest.mark.parametrize("hz", [1000, 10000])
def test_interpreter_exit_with_a_running_sampler(backend, hz):
    code = (f"import pycgroup, time; s = pycgroup.Sampler(hz={hz}, backend={backend!r}).start(); "
            "time.sleep(0.05); print('exiting', flush=True)")
    done = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "exiting\n", "")


def test_many_threads_reading_and_marking_at_10khz(backend):
    s = pycgroup.Sampler(hz=10000, capacity=4096, backend=backend).start()
    errors = []

    def hammer(k):
        try:
            for i in range(200):
                s.mark(f"t{k}")
                d = s.data(last=256)
                t = d.t_ns
                assert np.all(np.diff(t) > 0), "rows out of order"
                assert len(d) <= 256
                assert MISSING not in d["proc.rss_bytes"].tolist()
        except Exception as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.stop()
    assert errors == []
    assert len(s.marks()) == 1600 and len(s.marks("t3")) == 200
    assert s.stats.read_errors == 0


def test_a_file_that_outgrows_its_buffer_is_read_after_the_buffer_grows(tree, backend):
    cg = fixture_cgroup(tree)
    s = pycgroup.Sampler(["memory.stat.inactive_file"], cgroup=cg, backend=backend)
    s.sample()
    lines = "".join(f"key{i} {i}\n" for i in range(5000))  # ~60 KiB: far past the buffer
    write(cg, "memory.stat", lines + "inactive_file 77\n")
    s.sample()  # the native reader may find the buffer too small here, and grow it
    s.sample()
    assert s.data()["memory.stat.inactive_file"].tolist()[0] == 41943040
    assert s.data()["memory.stat.inactive_file"].tolist()[-1] == 77


@pytest.mark.parametrize("n", [True, 2.0, "3", -1])
def test_every_divisor_must_be_a_positive_int(n, backend):
    with pytest.raises(ValueError, match=r"every\['memory.stat.\*'\] must be an int >= 1"):
        pycgroup.Sampler(every={"memory.stat.*": n}, backend=backend)


def test_every_divisor_of_one_reads_on_every_tick(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), every={"memory.stat.*": 1},
                         backend=backend)
    s.sample()
    assert len(s.data()) == 1


def test_smallest_and_odd_capacities(tree, backend):
    cg = fixture_cgroup(tree)
    assert pycgroup.Sampler(V2_METRICS, capacity=2, cgroup=cg, backend=backend).capacity == 2
    assert pycgroup.Sampler(V2_METRICS, capacity=3, cgroup=cg, backend=backend).capacity == 4
    assert pycgroup.Sampler(V2_METRICS, capacity=5, cgroup=cg, backend=backend).capacity == 8


def test_defaults_are_65536_rows_at_1_khz(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), backend=backend)
    assert (s.capacity, s.period_ns, s.hz) == (65536, 1_000_000, 1000.0)
    for _ in range(65537):
        s.mark("step")
    assert s.stats.marks_dropped == 1  # the mark store also keeps 65536 by default


@pytest.mark.parametrize("hz, period_ns", [(1, 1_000_000_000), (1 / 3600, 3_600_000_000_000),
                                           (100_000, 10_000), (3, 333_333_333)])
def test_period_of_the_slowest_and_fastest_rates(tree, backend, hz, period_ns):
    s = pycgroup.Sampler(V2_METRICS, hz=hz, cgroup=fixture_cgroup(tree), backend=backend)
    assert s.period_ns == period_ns
    assert s.hz == 1e9 / period_ns


@pytest.mark.parametrize("hz, every, gpu_every", [(1000, None, 10), (250, None, 3), (50, None, 1),
                                                  (1000, {"gpu*": 7}, 7)])
def test_gpu_metrics_are_read_at_most_at_100_hz_unless_every_says(tree, backend, hz, every,
                                                                   gpu_every):
    s = pycgroup.Sampler(V2_METRICS, hz=hz, every=every, cgroup=fixture_cgroup(tree),
                         backend=backend)
    assert s.gpu_every == gpu_every


def test_samples_carry_the_cgroups_limits_and_the_period(tree, backend):
    cg = fixture_cgroup(tree)
    s = pycgroup.Sampler(V2_METRICS, hz=500, cgroup=cg, backend=backend)
    s.sample()
    data = s.data()
    lim = pycgroup.limits(cg)
    assert data.effective_memory_bytes == lim.effective_memory_bytes == 1073741824
    assert data.cpu_limit_cores == lim.cpu_quota_cores == 0.5
    assert data.period_ns == 2_000_000
    assert data.origin is s.origin and s.origin.period_ns == 2_000_000


@pytest.mark.parametrize("last", [-1, True, 1.5])
def test_data_last_must_be_an_int_of_at_least_zero(tree, backend, last):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), backend=backend)
    with pytest.raises(ValueError, match=f"last must be an int >= 0, not {last!r}"):
        s.data(last=last)


def test_data_from_a_position(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, capacity=4, cgroup=fixture_cgroup(tree), backend=backend)
    times = [s.sample() for _ in range(3)]
    data, first = s.data_from(0)
    assert (data.t_ns.tolist(), first) == (times, 0)
    assert data.effective_memory_bytes == 1073741824 and data.period_ns == s.period_ns
    times += [s.sample() for _ in range(3)]
    data, first = s.data_from(0)  # rows 0 and 1 were overwritten
    assert (data.t_ns.tolist(), first) == (times[2:], 2)
    data, first = s.data_from(5)
    assert (data.t_ns.tolist(), first) == (times[5:], 5)
    for position in (-1, True, 1.0):
        with pytest.raises(ValueError, match=f"position must be an int >= 0, not {position!r}"):
            s.data_from(position)


def test_mark_returns_the_monotonic_time(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), backend=backend)
    before = time.monotonic_ns()
    t = s.mark("x")
    assert isinstance(t, int) and before <= t <= time.monotonic_ns()
    assert [(m.t_ns, m.label) for m in s.marks("x")] == [(t, "x")]


def test_default_metrics_of_the_v2_root_leave_out_the_derived_usage(tree, backend):
    s = pycgroup.Sampler(cgroup=fixture_cgroup(tree, "v2-root"), backend=backend)
    assert "memory.current" not in s.columns  # the root's is derived from /proc/meminfo
    assert "cpu.stat.usage_usec" in s.columns


# --- metrics derived from other files ------------------------------------------

ROOT_USED = (8039424 - 1203456) * 1024  # the v2-root fixture's MemTotal - MemFree


def rewrite(path, old, new):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:  # same inode: the open file sees the new content
        f.write(text.replace(old, new))


def test_a_derived_metric_named_at_the_v2_root_is_a_column(tree, backend):
    cg = fixture_cgroup(tree, "v2-root")
    s = pycgroup.Sampler(["memory.current", "cpu.stat.usage_usec"], cgroup=cg, backend=backend)
    assert "memory.current" in s.columns and "memory.current" not in s.unavailable
    s.sample()
    meminfo = os.path.join(cg.procfs, "meminfo")
    rewrite(meminfo, "MemFree:         1203456", "MemFree:         1203455")
    s.sample()
    rewrite(meminfo, "MemFree:         1203455 kB\n", "")  # an input missing: MISSING
    s.sample()
    data = s.data()
    assert data["memory.current"].tolist() == [ROOT_USED, ROOT_USED + 1024, MISSING]
    assert cg.read(["memory.current"], backend) == {"memory.current": None}
    assert data.columns[-1] == "memory.current" and data.to_numpy().shape == (3, len(s.columns) + 1)
    assert data.peak("memory.current") == ROOT_USED + 1024


def test_the_v2_root_has_no_working_set_in_samples_either(tree, backend):
    cg = fixture_cgroup(tree, "v2-root")
    assert cg.read(["memory.working_set"], backend) == {"memory.working_set": None}
    s = pycgroup.Sampler(["memory.current", "memory.stat.inactive_file", "memory.working_set"],
                         cgroup=cg, backend=backend)
    assert "read memory.current" in s.unavailable["memory.working_set"]
    s.sample()
    data = s.data()
    assert data["memory.current"].tolist() == [ROOT_USED]
    assert "memory.working_set" not in data and data.throttling().memory_headroom_bytes is None
    with pytest.raises(KeyError):
        data["memory.working_set"]


def test_derived_v1_metrics_are_columns_with_the_values_read_gives(tree, backend):
    cg = fixture_cgroup(tree, "v1")
    with open(os.path.join(cg.paths["cpu"], "cpu.shares"), "w") as f:
        f.write("512\n")
    with open(os.path.join(cg.paths["memory"], "memory.memsw.limit_in_bytes"), "w") as f:
        f.write(f"{536870912 + 1048576}\n")
    names = ["cpu.weight", "memory.swap.max"]
    s = pycgroup.Sampler(names, cgroup=cg, backend=backend)
    assert s.unavailable == {} and set(names) <= set(s.columns)
    s.sample()
    with open(os.path.join(cg.paths["memory"], "memory.memsw.limit_in_bytes"), "w") as f:
        f.write("9223372036854771712\n")  # unlimited
    s.sample()
    data = s.data()
    assert data["cpu.weight"].tolist() == [20, 20]  # 1 + 510 * 9999 // 262142
    assert data["memory.swap.max"].tolist() == [1048576, UNLIMITED]
    assert cg.read(names, backend) == {"cpu.weight": 20, "memory.swap.max": float("inf")}


def test_io_files_read_only_by_read_are_unavailable_with_the_reason(tree, backend):
    cg = fixture_cgroup(tree, "v2-root")
    assert cg.read(["io.stat.8:0.rbytes"], backend) == {"io.stat.8:0.rbytes": 90430464}
    s = pycgroup.Sampler(["io.stat.8:0.rbytes", "cpu.stat.usage_usec"], cgroup=cg,
                         backend=backend)
    assert "io.stat.8:0.rbytes" not in s.columns
    assert "io.stat" in s.unavailable["io.stat.8:0.rbytes"]
    assert "read()" in s.unavailable["io.stat.8:0.rbytes"]


def test_spans_and_steps_of_a_sampler_with_a_derived_metric(tree, backend):
    """Span figures come from the columns the thread reads: a derived gauge's peak is not
    a function of its inputs' peaks, so spans and steps give its inputs' figures."""
    cg = fixture_cgroup(tree, "v2-root")
    s = pycgroup.Sampler(["memory.current", "cpu.stat.usage_usec"], cgroup=cg, backend=backend)
    with s.span("step") as sp:
        s.sample()
    assert sp.peak["host.mem.free"] == 1203456 * 1024 and "memory.current" not in sp.peak
    assert sp.throttling.memory_headroom_bytes is None
    steps = s.steps("step")
    assert steps["host.mem.free.peak"].tolist() == [1203456 * 1024]
    assert "memory.current.peak" not in steps


def test_a_derived_metric_is_saved_and_loaded_as_a_column(tree, backend, tmp_path):
    cg = fixture_cgroup(tree, "v2-root")
    s = pycgroup.Sampler(["memory.current", "memory.stat.inactive_file"], cgroup=cg,
                         backend=backend)
    s.sample()
    pycgroup.save(tmp_path / "root.npz", s.data())
    loaded = pycgroup.load(tmp_path / "root.npz").samples
    assert loaded["memory.current"].tolist() == [ROOT_USED]
    assert "memory.working_set" not in loaded


def test_a_derived_metric_reads_its_inputs_at_its_own_rate(tree):
    """memory.current matches no pattern of every: at the v2 root its input, /proc/meminfo,
    is read on every tick although host.* alone would be read every 10th."""
    cg = fixture_cgroup(tree, "v2-root")
    meminfo = os.path.join(cg.procfs, "meminfo")
    rewrite(meminfo, "MemFree:         1203456", "MemFree:      %010d" % 0)
    s = pycgroup.Sampler(["memory.current"], cgroup=cg, hz=2000, every={"host.*": 10})
    with open(meminfo) as f:
        offset = f.read().index("MemFree:") + len("MemFree:      ")
    fd = os.open(meminfo, os.O_WRONLY)
    data = sample_while(s, lambda n: os.pwrite(fd, b"%010d" % (n % 10**9), offset), 0.3)
    os.close(fd)
    changed = np.flatnonzero(np.diff(data["memory.current"])) + 1
    assert len(changed) > 10 and set(changed % 10) != {0}


def test_a_missing_file_leaves_the_other_columns_where_data_says(tree, backend):
    """A named file that does not exist takes no row column: data() and spans find every
    other metric in its own column."""
    cg = fixture_cgroup(tree)
    os.remove(os.path.join(cg.paths["unified"], "memory.events"))
    s = pycgroup.Sampler(["memory.events.high", "memory.current"], cgroup=cg, backend=backend)
    assert s.columns == ("memory.current",) and "memory.events.high" in s.unavailable
    with s.span("step") as sp:  # no thread runs: the span reads a row at enter and exit
        s.sample()
    assert s.data()["memory.current"].tolist() == [157286400] * 3
    assert s.data().to_numpy().shape == (3, 2)
    assert sp.peak == {"memory.current": 157286400}


def test_closed_sampler_refuses_and_says_so(tree, backend):
    s = pycgroup.Sampler(V2_METRICS, cgroup=fixture_cgroup(tree), backend=backend)
    s.close()
    assert s.closed and not s.running
    for call in (s.data, s.sample):  # sample() is the engine's own: it says the same
        with pytest.raises(pycgroup.SamplerClosed,
                           match="^this Sampler is closed; make a new one to sample again$"):
            call()


def test_one_metric_may_be_named_by_a_string(tree, backend):
    s = pycgroup.Sampler("memory.current", cgroup=fixture_cgroup(tree), backend=backend)
    assert s.columns == ("memory.current",)
