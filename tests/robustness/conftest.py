"""Fixtures of the robustness tests: the corpus directory (corpus.py) and one shared click group."""

from __future__ import annotations

import pytest

from corpus import K, World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """The corpus directory (good inputs, bad inputs, a run directory)."""
    return build_world(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def checkpoint(world) -> World:
    """The corpus with one tiny checkpoint for ``evaluate`` (one epoch, a few hundred weights)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from lvmdiag.data.readers import load_sequences
    from lvmdiag.train import TrainConfig, train

    cfg = TrainConfig(epochs=1, d_model=8, nhead=1, num_layers=1, batch_size=16, context_length=K,
                      eval_pool_size=8, train_eval_size=8)
    sets = [load_sequences(world.good[n], split=n, k=K) for n in ("train", "val")]
    train(cfg, *sets, out_dir=world.root / "trained", write_report=False)
    torch.set_num_threads(threads)
    world.checkpoint = world.root / "trained" / "best.pt"
    return world


@pytest.fixture(scope="session")
def cli_group():
    """typer rebuilds the click commands from the function signatures on every invoke (~0.3 s here);
    the corpus runs hundreds of cases against one unchanging app, so build it once."""
    from typer.main import get_command

    from lvmdiag_cli.app import app

    return get_command(app)


@pytest.fixture(autouse=True)
def _build_the_click_group_once(monkeypatch, cli_group):
    import typer.testing

    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: cli_group)
