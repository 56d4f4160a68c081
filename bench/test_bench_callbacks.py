"""What the framework callbacks cost a training loop, by the interleaved-blocks method of
test_bench_sampler.py: blocks of steps with and without the callback, back to back,
and the median of the ratios (pairing cancels the host's slow drifts).

- ``meter``: the step meter every callback (Lightning, transformers, Keras) runs on
  each step, two clock reads, and on each logging step (every 50, Lightning's default),
  a row and the window's metrics, around a 1 ms numpy step.
- ``lightning``: a real Lightning Trainer on a small MLP, timed from the first to the
  last training batch, with and without PycgroupCallback."""

import time

import numpy as np
import pytest

PAIRS = 15
STEPS = 200
LOG_EVERY = 50


def numpy_step(a=np.linspace(0.0, 1.0, 20_000)):
    """About a millisecond of numpy work: a small training step's worth."""
    for _ in range(8):
        a = np.sqrt(a * a + 1.0)
    return a


def median_ratio(ratios) -> dict:
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {"slowdown_median": median, "slowdown_q1": q1, "slowdown_q3": q3,
            "pairs": len(ratios)}


def meter_block(meter) -> float:
    began = time.perf_counter()
    for step in range(STEPS):
        if meter is not None:
            meter.begin()
        numpy_step()
        if meter is not None:
            meter.end()
            if (step + 1) % LOG_EVERY == 0:
                meter.collect()
    return time.perf_counter() - began


@pytest.mark.benchmark(group="callbacks")
def test_meter_overhead_per_step(benchmark):
    from pycgroup.integrations._meter import StepMeter

    meter = StepMeter()
    meter.start()

    def pairs():
        ratios = []
        for _ in range(PAIRS):
            meter.sampler.stop()  # the bare block runs with no sampler at all
            alone = meter_block(None)
            meter.sampler.start()
            meter.reset_window()
            ratios.append(meter_block(meter) / alone)
        benchmark.extra_info.update(median_ratio(ratios))

    benchmark.pedantic(pairs, rounds=1, iterations=1)
    meter.close()


@pytest.mark.benchmark(group="callbacks")
def test_lightning_callback_overhead(benchmark, tmp_path):
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("lightning.pytorch")
    from pycgroup.integrations.lightning import callback_class

    torch.set_num_threads(1)

    class Timer(pl.Callback):
        def on_train_batch_start(self, *args):
            if getattr(self, "first", None) is None:
                self.first = time.perf_counter()

        def on_train_end(self, *args):
            self.seconds = time.perf_counter() - self.first

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                           torch.nn.Linear(256, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    x = torch.randn(64 * STEPS, 64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, :1]),
                                         batch_size=64)

    def fit(with_callback: bool) -> float:
        timer = Timer()
        callbacks = [timer] + ([callback_class("lightning")()] if with_callback else [])
        trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=1,
                             logger=pl.loggers.CSVLogger(str(tmp_path)),
                             log_every_n_steps=LOG_EVERY, callbacks=callbacks,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        trainer.fit(MLP(), loader)
        return timer.seconds

    def pairs():
        ratios = []
        for _ in range(PAIRS):
            alone = fit(False)
            ratios.append(fit(True) / alone)
        benchmark.extra_info.update(median_ratio(ratios))

    benchmark.pedantic(pairs, rounds=1, iterations=1)


@pytest.fixture(scope="module")
def meter():
    from pycgroup.integrations._meter import StepMeter

    meter = StepMeter()
    meter.start()
    yield meter
    meter.close()


@pytest.mark.benchmark(group="callbacks-parts")
def test_meter_step_hooks(benchmark, meter):
    """begin() + end(): what every training step pays."""

    def step():
        meter.begin()
        meter.end()

    benchmark(step)


@pytest.mark.benchmark(group="callbacks-parts")
def test_meter_collect_after_50_steps(benchmark, meter):
    """collect() over a window of 50 ~1 ms steps: what a logging step pays."""

    def setup():
        meter.reset_window()
        for _ in range(50):
            meter.begin()
            numpy_step()
            meter.end()

    benchmark.pedantic(meter.collect, setup=setup, rounds=20, iterations=1)
