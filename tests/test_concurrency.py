"""Concurrency and hostile input through the public API, each scenario in a child process
with a hard timeout so that a hang fails the test instead of stalling the run. The
scenarios themselves are in tests/stress_scenarios.py; tests/test_sanitizers.py runs the
same ones against an AddressSanitizer build of the extension."""

import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "stress_scenarios.py")
# Seconds a scenario may take before it counts as hung. Each takes 1-10 s on an idle
# 2-core machine; the margin is for a loaded one, not for a slow fix.
HARD_TIMEOUT = 120

LIFECYCLE = ["stop_twice", "close_races_readers", "calls_after_close", "extreme_rates",
             "file_grows_while_sampling"]
HOSTILE = ["fifo_in_place_of_a_file", "hostile_files_read_once", "endless_and_huge_files",
           "distinct_read_lists"]


def run_scenario(name, backend, workdir, env=None, timeout=HARD_TIMEOUT, prefix=()):
    """Runs one scenario in a child process; fails the test if it fails or hangs (with
    every thread's Python stack, which faulthandler prints on SIGABRT)."""
    child = subprocess.Popen([*prefix, sys.executable, "-X", "faulthandler", SCRIPT, name,
                              backend, str(workdir)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd="/", env=env)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        try:
            out, err = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
        pytest.fail(f"{name} ({backend}) hung: no end after {timeout} s\n{err[-6000:]}")
    assert child.returncode == 0, f"{name} ({backend}): exit {child.returncode}\n{err[-4000:]}"
    assert out.strip().endswith(f"ok {name}"), out[-2000:]


@pytest.mark.parametrize("name", LIFECYCLE + HOSTILE)
def test_scenario(name, backend, tmp_path):
    run_scenario(name, backend, tmp_path)


def test_gpu_history_copies_are_consistent_while_the_thread_drains(tmp_path):
    from test_gpu import SCRIPT as NVML_SCRIPT, build_fake
    from pycgroup import gpu

    library = build_fake(str(tmp_path))
    script = tmp_path / "script.txt"
    script.write_text(NVML_SCRIPT.format(pid=gpu.driver_pid()))
    env = dict(os.environ, FAKE_NVML_SCRIPT=str(script), **{gpu.LIBRARY_VARIABLE: library})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    run_scenario("gpu_history_while_sampling", "native", tmp_path, env=env)
