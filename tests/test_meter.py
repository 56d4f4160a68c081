"""The step meter every framework callback runs on, on a fixture tree whose files the
test writes: what a report covers and how fresh its ends are."""

import os
import time

import pytest

import pycgroup
from pycgroup.integrations._meter import WINDOW_LABEL, StepMeter


def write(cg, name, text):
    with open(os.path.join(cg.paths["unified"], name), "w") as f:
        f.write(text)


def pressure(some_us, full_us=0):
    return (f"some avg10=0.00 avg60=0.00 avg300=0.00 total={some_us}\n"
            f"full avg10=0.00 avg60=0.00 avg300=0.00 total={full_us}\n")


@pytest.fixture
def meter(tree):
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    write(cg, "cpu.pressure", pressure(1_000_000))
    # The default rates: the thread reads PSI every 10th tick at 100 Hz.
    sampler = pycgroup.Sampler(["cpu.pressure.some.total", "cpu.stat.usage_usec"],
                               cgroup=cg, hz=100)
    meter = StepMeter(sampler)
    assert meter.start()
    time.sleep(0.05)
    yield cg, meter
    meter.close()
    sampler.close()


def test_a_report_ends_at_a_row_taken_then(meter):
    """A change written just before collect() is in that report and not in the next,
    though the thread reads the pressure file only every 100 ms: the window's ends are
    rows taken on the spot."""
    cg, meter = meter
    meter.reset_window()
    began = time.monotonic_ns()
    time.sleep(0.03)  # the thread's rows fall inside the window
    write(cg, "cpu.pressure", pressure(1_050_000))  # 50 ms of stall
    first = meter.collect()
    elapsed_s = (time.monotonic_ns() - began) / 1e9
    assert first["psi_cpu_some"] >= 0.05 / elapsed_s * 0.99
    second = meter.collect()
    assert second["psi_cpu_some"] == 0.0


def test_reports_tile_the_run_with_no_gap_or_overlap(meter):
    """Each report window is an exact span starting at the row the one before ended at:
    the windows' ends meet, and every change is counted once."""
    cg, meter = meter
    meter.reset_window()
    total = 0.0
    for i in range(1, 6):
        time.sleep(0.03)
        write(cg, "cpu.pressure", pressure(1_000_000 + i * 10_000))
        report = meter.collect()
        window = meter.sampler.steps(WINDOW_LABEL).to_numpy()
        total += report["psi_cpu_some"] * window["duration_s"][-1]
    windows = meter.sampler.steps(WINDOW_LABEL).to_numpy()
    assert len(windows["start_ns"]) == 5
    assert (windows["start_ns"][1:] == windows["end_ns"][:-1]).all()
    assert total == pytest.approx(0.05, rel=1e-9)  # 5 x 10 ms, each counted once


def test_two_meters_on_one_sampler_keep_their_windows_apart(meter):
    """A second meter over the same steps (Keras' every_n_steps windows beside the
    epoch's) labels its windows apart: each label's windows tile the run on their own."""
    cg, meter = meter
    other = StepMeter(meter.sampler, label=None, window_label="other_windows")
    assert other.start()
    meter.reset_window()
    for i in range(4):
        time.sleep(0.01)
        other.collect()
        if i % 2:
            meter.collect()
    ours = meter.sampler.steps(WINDOW_LABEL).to_numpy()
    theirs = meter.sampler.steps("other_windows").to_numpy()
    assert (len(ours["start_ns"]), len(theirs["start_ns"])) == (2, 4)
    for windows in (ours, theirs):
        assert (windows["start_ns"][1:] == windows["end_ns"][:-1]).all()


def test_a_report_has_the_peak_working_set_of_the_rows_inside_its_window(tree):
    """The C core folds the thread's rows into the window's peak: a working set that rose
    and fell back between two reports is in the report."""
    procfs, rootfs = tree("v2")
    cg = pycgroup.current(procfs, rootfs)
    write(cg, "memory.current", "50000000\n")
    sampler = pycgroup.Sampler(["memory.current", "memory.stat.inactive_file"], cgroup=cg,
                               hz=200, every={})
    meter = StepMeter(sampler)
    assert meter.start()
    time.sleep(0.03)
    write(cg, "memory.current", "90000000\n")
    time.sleep(0.05)  # the thread reads it several times
    write(cg, "memory.current", "60000000\n")
    time.sleep(0.03)
    report = meter.collect()
    inactive = int(cg.read(["memory.stat.inactive_file"])["memory.stat.inactive_file"])
    assert report["memory_working_set_bytes"] == 90_000_000 - inactive
    meter.close()
    sampler.close()
