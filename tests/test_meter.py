"""The step meter every framework callback runs on, on a fixture tree whose files the
test writes: what a report covers and how fresh its ends are."""

import os
import time

import pytest

import pycgroup
from pycgroup.integrations._meter import StepMeter


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
    cg, meter = meter
    meter.reset_window()
    total = 0.0
    for i in range(1, 6):
        time.sleep(0.03)
        write(cg, "cpu.pressure", pressure(1_000_000 + i * 10_000))
        began = meter._window_start_ns
        report = meter.collect()
        total += report["psi_cpu_some"] * (meter._window_start_ns - began) / 1e9
    assert total == pytest.approx(0.05, rel=1e-9)  # 5 x 10 ms, each counted once
