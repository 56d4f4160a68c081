"""What the framework callbacks cost a training loop, by the interleaved-blocks method of
test_bench_sampler.py: blocks of steps with and without the callback, back to back,
and the median of the ratios (pairing cancels the host's slow drifts). Each pair gives
two ratios: wall time (what the loop waits) and process CPU time (what a CPU quota
pays, the sampler thread included; steadier than wall time on a shared host).

- ``meter``: the step meter every callback (Lightning, transformers, Keras) runs on
  each step, a span, and on each logging step (every 50, Lightning's default), the
  window's metrics, around a 1 ms numpy step.
- ``lightning``, ``transformers``, ``keras``: a real Trainer (or ``model.fit``) on a
  small model, timed from the first to the last training step, with and without the
  framework's PycgroupCallback."""

import os
import time

import numpy as np
import pytest

PAIRS = int(os.environ.get("PYCGROUP_BENCH_PAIRS", "15"))  # fewer for a smoke run
STEPS = 200
LOG_EVERY = 50


def numpy_step(a=np.linspace(0.0, 1.0, 20_000)):
    """About a millisecond of numpy work: a small training step's worth."""
    for _ in range(8):
        a = np.sqrt(a * a + 1.0)
    return a


def median_ratio(ratios, prefix: str = "slowdown") -> dict:
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return {f"{prefix}_median": median, f"{prefix}_q1": q1, f"{prefix}_q3": q3,
            "pairs": len(ratios)}


class Clock:
    """Wall and process CPU time from start() to stop()."""

    def start(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


class ClockFromFirstStep:
    """Mixed into a framework's callback: a Clock from the first training step to the
    end of training (setup and teardown left out)."""

    clock = None

    def first_step(self):
        if self.clock is None:
            self.clock = Clock()
            self.clock.start()

    def training_ended(self):
        self.clock.stop()


def interleaved(benchmark, run) -> None:
    """Runs run(False) and run(True) (each returning a stopped Clock) PAIRS times back to
    back, the one or the other first in turn (a run can leave the next one warmer or
    colder: a fixed order would count that as the callback's); records the median wall
    and CPU ratios of with to without."""

    def pairs():
        walls, cpus = [], []
        for pair in range(PAIRS):
            if pair % 2:
                metered, alone = run(True), run(False)
            else:
                alone, metered = run(False), run(True)
            walls.append(metered.wall / alone.wall)
            cpus.append(metered.cpu / alone.cpu)
        benchmark.extra_info.update(median_ratio(walls))
        benchmark.extra_info.update(median_ratio(cpus, "cpu_ratio"))

    benchmark.pedantic(pairs, rounds=1, iterations=1)


def meter_block(meter) -> Clock:
    clock = Clock()
    clock.start()
    for step in range(STEPS):
        if meter is not None:
            meter.begin()
        numpy_step()
        if meter is not None:
            meter.end()
            if (step + 1) % LOG_EVERY == 0:
                meter.collect()
    clock.stop()
    return clock


@pytest.mark.benchmark(group="callbacks")
def test_meter_overhead_per_step(benchmark):
    from pycgroup.integrations._meter import StepMeter

    meter = StepMeter()
    meter.start()

    def block(with_meter: bool) -> Clock:
        if not with_meter:
            meter.sampler.stop()  # the bare block runs with no sampler at all
            time.sleep(0.002)  # both blocks start after the same sleep (warm caches)
            return meter_block(None)
        meter.sampler.start()
        meter.reset_window()
        time.sleep(0.002)
        return meter_block(meter)

    interleaved(benchmark, block)
    meter.close()


@pytest.mark.benchmark(group="callbacks")
def test_lightning_callback_overhead(benchmark, tmp_path):
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("lightning.pytorch")
    from pycgroup.integrations.lightning import callback_class

    torch.set_num_threads(1)

    class Timer(ClockFromFirstStep, pl.Callback):
        def on_train_batch_start(self, *args):
            self.first_step()

        def on_train_end(self, *args):
            self.training_ended()

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

    def fit(with_callback: bool) -> Clock:
        timer = Timer()
        callbacks = [timer] + ([callback_class("lightning")()] if with_callback else [])
        trainer = pl.Trainer(max_steps=STEPS, accelerator="cpu", devices=1,
                             logger=pl.loggers.CSVLogger(str(tmp_path)),
                             log_every_n_steps=LOG_EVERY, callbacks=callbacks,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False)
        trainer.fit(MLP(), loader)
        return timer.clock

    interleaved(benchmark, fit)


@pytest.mark.benchmark(group="callbacks")
def test_transformers_callback_overhead(benchmark, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from pycgroup.integrations.transformers import PycgroupCallback

    torch.set_num_threads(1)

    class Timer(ClockFromFirstStep, transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.first_step()

        def on_train_end(self, args, state, control, **kwargs):
            self.training_ended()

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 8 * STEPS

        def __getitem__(self, i):
            ids = torch.randint(0, 100, (16,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "attention_mask": torch.ones(16, dtype=torch.long),
                    "labels": int(ids[0] % 2)}

    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=32, num_labels=2)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=8,
        logging_steps=LOG_EVERY, report_to=[], save_strategy="no", use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0)
    data = Tokens()

    def train(with_callback: bool) -> Clock:
        timer = Timer()
        torch.manual_seed(0)
        model = transformers.BertForSequenceClassification(config)
        callbacks = [timer] + ([PycgroupCallback()] if with_callback else [])
        transformers.Trainer(model=model, args=args, train_dataset=data,
                             callbacks=callbacks).train()
        return timer.clock

    interleaved(benchmark, train)


@pytest.mark.benchmark(group="callbacks")
def test_keras_callback_overhead(benchmark, monkeypatch):
    """Keras on the torch backend (set before keras is first imported)."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {keras.backend.backend()} backend")
    from pycgroup.integrations.keras import PycgroupCallback

    class Timer(ClockFromFirstStep, keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.first_step()

        def on_train_end(self, logs=None):
            self.training_ended()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * 32, 64)).astype("float32")
    y = x[:, :1]

    def fit(with_callback: bool) -> Clock:
        timer = Timer()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callbacks = [timer] + ([PycgroupCallback(every_n_steps=LOG_EVERY)]
                               if with_callback else [])
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=callbacks)
        return timer.clock

    interleaved(benchmark, fit)


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
