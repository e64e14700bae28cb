"""Shared helpers for report tests: an in-memory history builder and small data for the P7 fixture."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lvmdiag.report.history import RunHistory

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "fixtures" / "runs"


def build_history(*, val: dict | None = None, train_eval: dict | None = None, train_log: dict | None = None,
                  config: dict | None = None, events: dict | None = None, labels: dict | None = None,
                  baselines: dict | None = None, run_dir: str = "<memory>") -> RunHistory:
    """A RunHistory from plain lists (one value per epoch, epochs 1..E)."""
    series = [*(val or {}).values(), *(train_eval or {}).values(), *(train_log or {}).values()]
    n = len(series[0])
    ev = {}
    if val:
        ev["val"] = {k: np.asarray(v, float) for k, v in val.items()}
    if train_eval:
        ev["train"] = {k: np.asarray(v, float) for k, v in train_eval.items()}
    return RunHistory(epochs=np.arange(1, n + 1), train_log={k: np.asarray(v, float) for k, v in (train_log or {}).items()},
                      eval=ev, labels=labels or {}, config=config or {}, logged_events=events or {},
                      baselines=baselines, source_format="test", run_dir=run_dir)


@pytest.fixture
def make_history():
    return build_history


def _make_runs_module():
    """fixtures/runs/make_runs.py, the generator of the run fixtures and of the P7 companion data."""
    spec = importlib.util.spec_from_file_location("make_runs", RUNS / "make_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def p7_data(tmp_path_factory) -> tuple[Path, Path]:
    return _make_runs_module().write_p7_data(tmp_path_factory.mktemp("p7_data"))
