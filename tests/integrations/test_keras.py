"""The Keras 3 callback in real model.fit runs, each backend in its own process
(KERAS_BACKEND is fixed when keras is imported): torch with steps_per_execution=1 (the
only value Keras allows there) and JAX with 4."""

import importlib.util

import pytest

from conftest import run_tiny

# Not imported here: keras picks its backend on import (tensorflow unless told).
pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None,
                                reason="the framework tests need pip install '.[frameworks-test]'")


@pytest.mark.parametrize("backend, steps_per_execution, report_steps", [
    ("torch", 1, [4, 8, 10, 12, 16, 20, 20]),
    # 10 steps an epoch in executions of 4: 0-3, 4-7, 8-9 (a short last one).
    ("jax", 4, [4, 8, 10, 14, 18, 20, 20]),
])
def test_fit_logs_steps_per_epoch_and_every_n_steps(backend, steps_per_execution,
                                                    report_steps):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"the {backend} backend of Keras is not installed")
    got = run_tiny("keras", steps_per_execution, env={"KERAS_BACKEND": backend})
    assert got["backend"] == backend
    epochs = got["epochs"]
    assert epochs["pycgroup/steps"] == [10.0, 10.0]  # steps, not batch hooks
    # A span per batch hook: 10 a epoch, or 3 in executions of 4 (4, 4 and 2 steps).
    hooks = 2 * -(-10 // steps_per_execution)
    assert got["step_rows"] == got["summary_count"] == hooks
    assert all(d > 0 for d in got["step_durations_s"])
    assert len(epochs["loss"]) == 2
    assert all(v > 0 for v in epochs["pycgroup/cpu_cores_used"])
    assert all(v > 2**20 for v in epochs["pycgroup/memory_working_set_bytes"])
    reports = got["reports"]
    assert [step for step, _ in reports] == report_steps
    # Every report covers the steps since the previous one of its kind.
    every_n = [m["pycgroup/steps"] for step, m in reports][:2]
    assert every_n == [4.0, 4.0]
