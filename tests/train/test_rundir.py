import json

import numpy as np
import pytest
import torch

from lvmdiag.errors import InputError
from lvmdiag.train import rundir


def test_metrics_append_read_and_truncate(tmp_path):
    for e in (1, 2, 3):
        rundir.append_metrics(tmp_path, {"epoch": e, "x": np.float32(0.5) * e})
    recs = rundir.read_metrics(tmp_path)
    assert [r["epoch"] for r in recs] == [1, 2, 3] and recs[1]["x"] == 1.0
    rundir.truncate_metrics(tmp_path, 2)
    assert [r["epoch"] for r in rundir.read_metrics(tmp_path)] == [1, 2]
    assert not list(tmp_path.glob("*.tmp"))


def test_non_finite_values_become_null(tmp_path):
    rundir.append_metrics(tmp_path, {"epoch": 1, "loss": float("nan")})
    assert json.loads((tmp_path / rundir.METRICS).read_text())["loss"] is None


def test_upstream_checkpoint_with_numpy_scalars_is_refused_clearly(tmp_path):
    # The upstream trainer stored numpy float64 metrics, which weights_only=True refuses.
    path = tmp_path / "best_model.pt"
    torch.save({"epoch": 1, "model_state_dict": {}, "metrics": {"cos_next": np.float64(0.3)}}, path)
    with pytest.raises(InputError, match="weights_only"):
        rundir.load_checkpoint(path)
    with pytest.raises(InputError, match="does not exist"):
        rundir.load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_round_trip_is_atomic(tmp_path):
    payload = {"model_state_dict": {"w": torch.ones(2)}, "config": {"a": 1}, "epoch": 3}
    rundir.save_checkpoint(tmp_path / "last.pt", payload)
    assert rundir.load_checkpoint(tmp_path / "last.pt")["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_prepare_run_dir_rules(tmp_path):
    assert rundir.prepare_run_dir(tmp_path / "new", resume=False, force=False).is_dir()
    with pytest.raises(InputError, match="no config.json"):
        rundir.prepare_run_dir(tmp_path / "new", resume=True, force=False)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        rundir.prepare_run_dir(f, resume=False, force=True)
