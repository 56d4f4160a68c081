"""Tiny real training runs for the framework tests: models built in code, synthetic
data, nothing downloaded. Importable by the tests, and runnable as a program for the
runs that must happen in another process (a child cgroup, another Keras backend, a
second rank):

    python tiny.py lightning OUT_DIR MAX_STEPS LOG_EVERY [PACKAGE]
    python tiny.py keras STEPS_PER_EXECUTION        (KERAS_BACKEND set by the caller)
    python tiny.py rank RANK WORLD_SIZE PORT BUSY   (one rank of a gloo group)

Each program prints one JSON line with what it measured."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def join_cgroups_from_env():
    """Moves this process into the cgroups named by PYCGROUP_TEST_JOIN (directories
    separated by ":"), once its imports are done: importing torch under a small CPU quota
    would take most of a test's time, and only the training is meant to be throttled."""
    for directory in filter(None, os.environ.get("PYCGROUP_TEST_JOIN", "").split(":")):
        with open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write("0")


def lightning_mlp(out_dir, max_steps=20, log_every=5, package="lightning", hidden=64,
                  batch=32, threads=1, accumulate=1):
    """Trains a 2-layer MLP with PycgroupCallback and a CSVLogger; returns the rows of
    the CSV (a list of dicts of str) and the callback."""
    import csv
    import importlib

    import torch

    torch.set_num_threads(threads)
    pl = importlib.import_module("lightning.pytorch" if package == "lightning"
                                 else "pytorch_lightning")
    from pycgroup.integrations.lightning import callback_class

    class MLP(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(32, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch * 16, 32, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=batch)
    join_cgroups_from_env()
    callback = callback_class(package)()
    logger = pl.loggers.CSVLogger(str(out_dir), name="run", version=0)
    trainer = pl.Trainer(max_steps=max_steps, accelerator="cpu", devices=1, logger=logger,
                         log_every_n_steps=log_every, callbacks=[callback],
                         accumulate_grad_batches=accumulate,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(MLP(), loader)
    with open(os.path.join(logger.log_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f)), callback


def hf_trainer(out_dir, max_steps=10, logging_steps=3):
    """Trains a 2-layer BertConfig model (sizes of a few dozen) on synthetic tokens with
    PycgroupCallback between two capturing callbacks; returns (log_history, what the
    callback before it saw, what the callback after it saw, the PycgroupCallback)."""
    import torch
    from transformers import (BertConfig, BertForSequenceClassification, Trainer,
                              TrainerCallback, TrainingArguments)

    from pycgroup.integrations.transformers import PycgroupCallback

    torch.set_num_threads(1)

    class Capture(TrainerCallback):
        def __init__(self):
            self.seen = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append((state.global_step, dict(logs or {})))

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            ids = torch.randint(0, 100, (16,), generator=g)
            return {"input_ids": ids, "attention_mask": torch.ones(16, dtype=torch.long),
                    "labels": int(ids[0] % 2)}

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    args = TrainingArguments(output_dir=str(out_dir), max_steps=max_steps,
                             per_device_train_batch_size=8, logging_steps=logging_steps,
                             report_to=[], save_strategy="no", use_cpu=True,
                             disable_tqdm=True, dataloader_num_workers=0)
    before, ours, after = Capture(), PycgroupCallback(), Capture()
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(),
                      callbacks=[before, ours, after])
    trainer.train()
    return trainer.state.log_history, before.seen, after.seen, ours


def keras_fit(steps_per_execution, epochs=2, steps_per_epoch=10):
    """Fits a small Dense model with PycgroupCallback; returns what it logged."""
    import keras
    import numpy as np

    from pycgroup.integrations.keras import PycgroupCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps_per_epoch * 16, 16)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    callback = PycgroupCallback(every_n_steps=4)
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[callback])
    steps, summary = callback.steps(), callback.summary()
    return {"backend": keras.backend.backend(), "epochs": history.history,
            "reports": callback.history, "step_rows": len(steps),
            "step_durations_s": steps["duration_s"].tolist(), "summary_count": summary.count}


def rank(rank_, world_size, port, busy_seconds):
    """One rank of a gloo group: steps of busy work (with a PycgroupCallback-style
    meter's sampler recording spans), then reduce_steps; rank 0 prints the table."""
    import time

    import torch.distributed as dist

    import pycgroup
    from pycgroup.integrations.ranks import reduce_steps

    os.environ.update(RANK=str(rank_), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank_))
    join_cgroups_from_env()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_,
                            world_size=world_size)
    sampler = pycgroup.Sampler(hz=100)
    with sampler:
        deadline = time.monotonic() + busy_seconds
        while time.monotonic() < deadline:
            with sampler.span("step"):
                end = time.monotonic() + 0.05
                while time.monotonic() < end:
                    pass
        reduced = reduce_steps(sampler.steps("step"))
    dist.destroy_process_group()
    sampler.close()
    if rank_ == 0:
        print(json.dumps({"world_size": reduced.world_size, "steps": reduced.steps,
                          "table": str(reduced),
                          "columns": {name: {"min": c.min, "max": c.max, "mean": c.mean,
                                             "worst_rank": c.worst_rank,
                                             "per_rank": c.per_rank}
                                      for name, c in reduced.columns.items()}}), flush=True)


def main(argv):
    what = argv[0]
    if what == "lightning":
        rows, _ = lightning_mlp(argv[1], int(argv[2]), int(argv[3]),
                                *(argv[4:5] or ["lightning"]))
        print(json.dumps(rows))
    elif what == "keras":
        print(json.dumps(keras_fit(int(argv[1]))))
    elif what == "rank":
        rank(int(argv[1]), int(argv[2]), int(argv[3]), float(argv[4]))
    else:
        raise SystemExit(f"unknown program {what!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
