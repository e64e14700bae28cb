"""A tiny learnable next-vector task shared by the monitor tests: windows of synthetic random-walk
articles (lvmdiag.synthetic, rho = 0.9, so the next chunk is predictable from c_last), a small MLP, and
the planted failure: the learning rate jumps x``JUMP`` when a ``WARMUP_EPOCHS``-epoch warmup ends."""

from __future__ import annotations

import numpy as np

from lvmdiag.synthetic import make_splits, make_store

K, D = 3, 16
BATCH = 32
LR = 3e-3
JUMP = 50.0
WARMUP_EPOCHS = 2


def windows(seed: int = 0):
    """(train_contexts, train_targets, val_contexts, val_targets) as float32 arrays."""
    store = make_store(n_articles=24, d=D, rho=0.9, length=(20, 24), rng=seed)
    splits = make_splits(store, k=K, ratios=(0.75, 0.25), rng=seed)
    tr, va = splits["train"], splits["val"]
    f = np.float32
    return (np.asarray(tr.contexts, f), np.asarray(tr.targets, f), np.asarray(va.contexts, f), np.asarray(va.targets, f))


def steps_per_epoch(n_train: int) -> int:
    return -(-n_train // BATCH)


def make_model(seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(K * D, 64), nn.ReLU(), nn.Linear(64, D))


def loss_fn(pred, target):
    """Mean squared error to the (unit) next vector: unlike a cosine loss it is not scale-invariant, so a
    learning rate that is far too large throws the weights away instead of only growing their norm."""
    return ((pred - target) ** 2).sum(-1).mean()


def lr_factor(warmup_steps: int, jump: float):
    """The planted schedule: 1 during warmup, ``jump`` after it (per optimiser step)."""
    return lambda step: 1.0 if step < warmup_steps else jump


def cli_findings(path) -> list[tuple]:
    """``lvmdiag report PATH --json -``, through the CLI: its findings as (detector, code, severity, epochs)."""
    import json

    from typer.testing import CliRunner

    from lvmdiag_cli.app import app

    result = CliRunner().invoke(app, ["report", str(path), "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    return sorted((f["detector"], f["code"], f["severity"], tuple(f["epochs"])) for f in report["findings"]), report
