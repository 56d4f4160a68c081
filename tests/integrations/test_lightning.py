"""The Lightning callback in real Trainer runs: a 2-layer MLP on synthetic data, logged
with a CSVLogger."""

import logging
import math

import pytest

pytest.importorskip("torch", reason="the framework tests need pip install '.[frameworks-test]'")
pytest.importorskip("lightning", reason="the framework tests need pip install '.[frameworks-test]'")

from conftest import cgroup_dirs, root_only, run_tiny  # noqa: E402
import tiny  # noqa: E402


def pycgroup_rows(rows):
    return [r for r in rows if r.get("pycgroup/steps")]


def test_csv_has_pycgroup_columns_every_log_interval(tmp_path):
    rows, callback = tiny.lightning_mlp(tmp_path, max_steps=20, log_every=5)
    logged = pycgroup_rows(rows)
    # Lightning writes step logs after steps 5, 10, 15, 20 (its "step" column counts from 0).
    assert [int(r["step"]) for r in logged] == [4, 9, 14, 19]
    assert [float(r["pycgroup/steps"]) for r in logged] == [5.0] * 4
    for r in logged:
        assert float(r["pycgroup/cpu_cores_used"]) > 0
        assert float(r["pycgroup/step_time_s"]) > 0
        assert float(r["pycgroup/memory_working_set_bytes"]) > 2**20  # torch alone is more
        assert 0 < float(r["pycgroup/memory_working_set_fraction"]) <= 1
        assert float(r["pycgroup/oom_kills"]) == 0
        for name, value in r.items():
            if name.startswith("pycgroup/psi_") and value:
                assert 0 <= float(value) <= 1.05, (name, value)  # stall s per s
    # Each batch was a span: the run's step table and statistics stay after fit().
    steps = callback.steps()
    assert len(steps) == 20 and callback.summary().count == 20
    assert (steps["start_ns"][1:] >= steps["end_ns"][:-1]).all()
    assert (steps["cpu.stat.usage_usec.delta"] >= 0).all()
    windows = steps["duration_s"].reshape(4, 5).mean(axis=1)
    assert [float(r["pycgroup/step_time_s"]) for r in logged] == pytest.approx(windows.tolist())


def test_with_gradient_accumulation_metrics_land_on_the_optimizer_steps_logged(tmp_path):
    """Two batches an optimizer step: Lightning writes step logs every 2 optimizer steps
    (after 4 batches), and each report covers those 4 batches."""
    rows, callback = tiny.lightning_mlp(tmp_path, max_steps=6, log_every=2, accumulate=2)
    logged = pycgroup_rows(rows)
    assert [int(r["step"]) for r in logged] == [1, 3, 5]
    assert [float(r["pycgroup/steps"]) for r in logged] == [4.0] * 3
    assert len(callback.steps()) == 12


def test_pytorch_lightning_trainer_takes_its_own_callback_class(tmp_path):
    pytest.importorskip("pytorch_lightning", reason="pytorch_lightning is not installed")
    rows, _ = tiny.lightning_mlp(tmp_path, max_steps=4, log_every=2,
                                 package="pytorch_lightning")
    assert [float(r["pycgroup/steps"]) for r in pycgroup_rows(rows)] == [2.0, 2.0]


def test_an_unreadable_sampler_is_logged_once_and_training_goes_on(tmp_path, caplog):
    """A sampler over metrics that cannot be made (an unknown name) must not stop
    training: one warning, no pycgroup columns, the loss still logged."""
    from pycgroup.integrations.lightning import callback_class

    callback = callback_class("lightning")(metrics=["no.such.metric"])
    with caplog.at_level(logging.WARNING, logger="pycgroup.integrations"):
        callback.setup(None, None, "fit")
        callback.setup(None, None, "fit")
    warnings = [r for r in caplog.records if r.name == "pycgroup.integrations"]
    assert len(warnings) == 1 and "no.such.metric" in warnings[0].getMessage()
    assert not callback._running


@root_only
def test_live_half_a_core_quota_shows_in_the_logs(tmp_path, live_cgroups):
    """The same MLP trained inside a cgroup with a CFS quota of 0.5 cores. A training
    loop is always runnable, but on a host loaded by others it may get less than half a
    core on average and never use up a long period's quota; with the shortest quota the
    kernel takes (1 ms in each 2 ms period) any period in which it is scheduled for a
    time slice is throttled."""
    cgroups = live_cgroups("cpu", optional=("cpuacct",))
    cgroups.set("cpu", "cpu.cfs_period_us", 2000)
    cgroups.set("cpu", "cpu.cfs_quota_us", 1000)
    rows = run_tiny("lightning", tmp_path, 20, 5, env={"PYCGROUP_TEST_JOIN": cgroup_dirs(cgroups)})
    logged = pycgroup_rows(rows)
    assert [float(r["pycgroup/steps"]) for r in logged] == [5.0] * 4
    fractions = [float(r["pycgroup/cpu_throttled_fraction"]) for r in logged
                 if r.get("pycgroup/cpu_throttled_fraction")]
    assert fractions and max(fractions) > 0, logged
    assert all(0 <= f <= 1 for f in fractions)
    assert sum(float(r["pycgroup/cpu_throttled_s_per_s"]) for r in logged) > 0
    assert not any(math.isnan(float(r["pycgroup/cpu_cores_used"])) for r in logged)


def test_hooks_the_callback_does_not_implement_are_skipped_by_lightning(tmp_path):
    """Lightning calls a callback's hooks only when callable: the no-op ones are None, so
    a step pays for the two hooks the callback uses. A subclass's own hook still runs,
    and checkpointing, which calls its hooks directly, still works."""
    import lightning.pytorch as pl
    import torch

    from pycgroup.integrations.lightning import callback_class

    base = callback_class("lightning")
    assert base.on_before_backward is None and base.on_validation_batch_end is None
    assert callable(base.on_train_batch_start) and callable(base.on_save_checkpoint)

    class Counting(base):
        backward_calls = 0

        def on_before_backward(self, trainer, pl_module, loss):
            self.backward_calls += 1

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x = torch.randn(64, 8)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, :1]),
                                         batch_size=8)
    callback = Counting()
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", devices=1, logger=False,
                         callbacks=[callback], default_root_dir=str(tmp_path),
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(MLP(), loader)
    assert callback.backward_calls == 6
    assert len(callback.steps()) == 6
    trainer.save_checkpoint(str(tmp_path / "last.ckpt"))
    assert (tmp_path / "last.ckpt").stat().st_size > 0
