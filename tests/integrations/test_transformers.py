"""The transformers callback in a real Trainer run: a 2-layer BERT of a few dozen units
built from a config, on synthetic tokens, with a capturing callback before and after."""

import pytest

pytest.importorskip("torch", reason="the framework tests need pip install '.[frameworks-test]'")
pytest.importorskip("transformers",
                    reason="the framework tests need pip install '.[frameworks-test]'")

import tiny  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny.hf_trainer(tmp_path_factory.mktemp("hf"), max_steps=10, logging_steps=3)


def test_metrics_are_logged_at_the_trainers_logging_steps(run):
    history, _, _, _ = run
    ours = [e for e in history if "pycgroup/steps" in e]
    assert [e["step"] for e in ours] == [3, 6, 9]
    for entry in ours:
        assert entry["pycgroup/steps"] == 3.0
        assert entry["pycgroup/cpu_cores_used"] > 0
        assert entry["pycgroup/step_time_s"] > 0
        assert entry["pycgroup/memory_working_set_bytes"] > 2**20
        assert 0 < entry["pycgroup/memory_working_set_fraction"] <= 1


def test_each_optimizer_step_is_a_step_of_the_table(run):
    history, _, _, ours = run
    steps = ours.steps()
    assert len(steps) == 10 and ours.summary().count == 10
    logged = [e["pycgroup/step_time_s"] for e in history if "pycgroup/steps" in e]
    windows = steps["duration_s"][:9].reshape(3, 3).mean(axis=1)
    assert logged == pytest.approx(windows.tolist())


def test_the_trainers_own_loss_logs_are_kept(run):
    """Trainer.log() clears control.should_log; the callback must set it again or the
    loss of that step would never be logged."""
    history, _, _, _ = run
    assert [e["step"] for e in history if "loss" in e] == [3, 6, 9]


@pytest.mark.parametrize("position", [1, 2], ids=["before", "after"])
def test_every_callback_sees_the_metrics_whatever_the_order(run, position):
    """Reporters (report_to) come before user callbacks: a callback placed before ours
    must see the metrics as well as one placed after."""
    seen = run[position]
    steps = [step for step, logs in seen if "pycgroup/cpu_cores_used" in logs]
    assert steps == [3, 6, 9]
