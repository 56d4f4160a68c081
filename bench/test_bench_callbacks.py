"""What the framework callbacks cost a training loop, by interleaved blocks: blocks of
steps with and without the callback, back to back, and the median of the ratios of
each pair (pairing cancels the host's slow drifts). Each pair gives two ratios: wall
time (what the loop waits) and process CPU time (what a CPU quota pays, the sampler
thread included).

- ``meter``: the step meter every callback (Lightning, transformers, Keras) runs on
  each step, a span, and on each logging step (every 50, Lightning's default), the
  window's metrics, around a 1 ms numpy step.
- ``lightning``, ``transformers``, ``keras``: one real Trainer (or ``model.fit``) run on
  a small model, whose steps are cut into blocks of 100 (two logging intervals, so
  that each block with the callback makes two reports). Between blocks the framework's list
  of callbacks is swapped for one with or without PycgroupCallback, so a block without
  it pays nothing for it, not even the framework's dispatch of its hooks. Comparing
  blocks of one run, rather than whole runs, leaves out what varies from run to run
  (model initialisation, allocator state): whole runs differed by ±10%. The garbage
  collector runs, as in a training program.
- ``[empty]``: the same with an empty callback in PycgroupCallback's place, whose
  per-step hooks do nothing: what the framework charges any callback that has them,
  the floor of PycgroupCallback's figure."""

import gc
import os
import time

import numpy as np
import pytest

from stats import median_with_interval

PAIRS = int(os.environ.get("PYCGROUP_BENCH_PAIRS", "30"))  # fewer for a smoke run
STEPS = 200
LOG_EVERY = 50
#: Two logging intervals: each block with the callback makes two reports, and each
#: block holds one flush of Lightning's CSVLogger (every 100 steps), which in blocks
#: of 50 fell in every other block and split the ratios in two.
BLOCK = 2 * LOG_EVERY
WARMUP_BLOCKS = 2


def numpy_step(a=np.linspace(0.0, 1.0, 20_000)):
    """About a millisecond of numpy work: a small training step's worth."""
    for _ in range(8):
        a = np.sqrt(a * a + 1.0)
    return a


def summarize(walls, cpus) -> dict:
    """The median wall and CPU ratios with their 95% intervals and quartiles."""
    out: dict = {"pairs": len(walls)}
    for prefix, ratios in (("slowdown", walls), ("cpu_ratio", cpus)):
        median, low, high = median_with_interval(ratios)
        q1, q3 = np.percentile(ratios, [25, 75])
        out.update({f"{prefix}_median": median, f"{prefix}_ci_low": low,
                    f"{prefix}_ci_high": high, f"{prefix}_q1": q1, f"{prefix}_q3": q3})
    return out


class Clock:
    """Wall and process CPU time from start() to stop()."""

    def start(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


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

    def pairs():
        walls, cpus = [], []
        for pair in range(PAIRS):
            if pair % 2:
                metered, alone = block(True), block(False)
            else:
                alone, metered = block(False), block(True)
            walls.append(metered.wall / alone.wall)
            cpus.append(metered.cpu / alone.cpu)
        benchmark.extra_info.update(summarize(walls, cpus))

    benchmark.pedantic(pairs, rounds=1, iterations=1)
    meter.close()


def with_collector(run):
    """Runs run() with the garbage collector on, as in a training program (the suite
    turns it off around each benchmark): the collections a callback's objects cause
    in a framework's large heap are part of what it costs."""
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        return run()
    finally:
        if not was_enabled:
            gc.disable()


class Interleaver:
    """Called at the end of every training step (placed after PycgroupCallback, so that
    a report made at a block's last step is in that block), it times blocks of BLOCK
    steps and, between blocks, hands ``use(with_callback)`` the choice for the next:
    after WARMUP_BLOCKS, pairs of blocks, the one with the callback first in every other
    pair."""

    def __init__(self, use):
        self.use = use
        self.steps = 0
        self.clock = None
        self.blocks: list[tuple[bool, float, float]] = []  # (with, wall, cpu)
        self.with_callback = True

    @staticmethod
    def total_steps() -> int:
        return (WARMUP_BLOCKS + 2 * PAIRS) * BLOCK

    def step_ended(self):
        self.steps += 1
        if self.steps % BLOCK:
            return
        now = time.perf_counter(), time.process_time()
        block = self.steps // BLOCK  # blocks ended so far
        if self.clock is not None and block > WARMUP_BLOCKS:
            self.blocks.append((self.with_callback, now[0] - self.clock[0],
                                now[1] - self.clock[1]))
        self.clock = now
        if block == WARMUP_BLOCKS + 2 * PAIRS:
            self.use(True)  # back for the end of training, which closes its sampler
        elif block >= WARMUP_BLOCKS:
            pair, second = divmod(block - WARMUP_BLOCKS, 2)
            self.with_callback = second == pair % 2  # first in even pairs, second in odd
            self.use(self.with_callback)

    def record(self, benchmark) -> None:
        walls, cpus = [], []
        for a, b in zip(self.blocks[::2], self.blocks[1::2]):
            on, off = (a, b) if a[0] else (b, a)
            assert on[0] and not off[0]
            walls.append(on[1] / off[1])
            cpus.append(on[2] / off[2])
        assert len(walls) == PAIRS
        benchmark.extra_info.update(summarize(walls, cpus))


KINDS = ["pycgroup", "empty"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.benchmark(group="callbacks")
def test_lightning_callback_overhead(benchmark, tmp_path, kind):
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("lightning.pytorch")
    from pycgroup.integrations.lightning import callback_class

    torch.set_num_threads(1)

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

    class Empty(pl.Callback):
        def on_train_batch_start(self, *args):
            pass

        def on_train_batch_end(self, *args):
            pass

    # Lightning skips the hooks that are None, as PycgroupCallback's unimplemented ones
    for hook in [h for h in dir(pl.Callback) if h.startswith("on_") and h not in vars(Empty)
                 and h not in ("on_save_checkpoint", "on_load_checkpoint")]:
        setattr(Empty, hook, None)
    pycgroup_callback = callback_class("lightning")() if kind == "pycgroup" else Empty()

    class Blocks(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            interleaver.step_ended()

    timer = Blocks()

    def use(with_callback: bool) -> None:
        # A new list: Lightning is iterating the current one
        trainer.callbacks = [pycgroup_callback, timer] if with_callback else [timer]

    interleaver = Interleaver(use)
    x = torch.randn(64 * interleaver.total_steps(), 64)  # one epoch: no epoch ends
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, :1]),
                                         batch_size=64)
    trainer = pl.Trainer(max_steps=interleaver.total_steps(), accelerator="cpu", devices=1,
                         logger=pl.loggers.CSVLogger(str(tmp_path)),
                         log_every_n_steps=LOG_EVERY, callbacks=[pycgroup_callback, timer],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    benchmark.pedantic(lambda: with_collector(lambda: trainer.fit(MLP(), loader)),
                       rounds=1, iterations=1)
    interleaver.record(benchmark)
    if kind == "pycgroup":
        assert len(pycgroup_callback.steps()) >= PAIRS * BLOCK


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.benchmark(group="callbacks")
def test_transformers_callback_overhead(benchmark, tmp_path, kind):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from pycgroup.integrations.transformers import PycgroupCallback

    torch.set_num_threads(1)

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 8 * Interleaver.total_steps()  # one epoch: no epoch ends

        def __getitem__(self, i):
            ids = torch.randint(0, 100, (16,), generator=torch.Generator().manual_seed(i))
            return {"input_ids": ids, "attention_mask": torch.ones(16, dtype=torch.long),
                    "labels": int(ids[0] % 2)}

    class Blocks(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            interleaver.step_ended()

    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=32, num_labels=2)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=Interleaver.total_steps(),
        per_device_train_batch_size=8, logging_steps=LOG_EVERY, report_to=[],
        save_strategy="no", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0)
    torch.manual_seed(0)
    class Empty(transformers.TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            pass

        def on_step_end(self, *args, **kwargs):
            pass

    pycgroup_callback = PycgroupCallback() if kind == "pycgroup" else Empty()
    timer = Blocks()
    trainer = transformers.Trainer(model=transformers.BertForSequenceClassification(config),
                                   args=args, train_dataset=Tokens(),
                                   callbacks=[pycgroup_callback, timer])
    handler = trainer.callback_handler
    everything = list(handler.callbacks)  # the Trainer's own callbacks, then ours

    def use(with_callback: bool) -> None:
        # A new list: the handler is iterating the current one
        handler.callbacks = [c for c in everything
                             if with_callback or c is not pycgroup_callback]

    interleaver = Interleaver(use)
    benchmark.pedantic(lambda: with_collector(trainer.train), rounds=1, iterations=1)
    interleaver.record(benchmark)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.benchmark(group="callbacks")
def test_keras_callback_overhead(benchmark, monkeypatch, kind):
    """Keras on the torch backend (set before keras is first imported)."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was imported with the {keras.backend.backend()} backend")
    from pycgroup.integrations.keras import PycgroupCallback

    class Blocks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            interleaver.step_ended()

    steps = Interleaver.total_steps()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * 32, 64)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    class Empty(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            pass

        def on_train_batch_end(self, batch, logs=None):
            pass

    pycgroup_callback = PycgroupCallback(every_n_steps=LOG_EVERY) if kind == "pycgroup" \
        else Empty()
    timer = Blocks()
    callbacks = keras.callbacks.CallbackList([pycgroup_callback, timer], add_history=True,
                                             model=model, epochs=1, steps=steps, verbose=0)

    def use(with_callback: bool) -> None:
        # A new list: Keras is iterating the current one
        callbacks.callbacks = [c for c in everything
                               if with_callback or c is not pycgroup_callback]

    everything = list(callbacks.callbacks)  # ours and Keras's History
    interleaver = Interleaver(use)
    benchmark.pedantic(lambda: with_collector(lambda: model.fit(
        x, x[:, :1], batch_size=32, epochs=1, verbose=0, callbacks=callbacks)),
                       rounds=1, iterations=1)
    interleaver.record(benchmark)


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
