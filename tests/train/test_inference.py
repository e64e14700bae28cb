import json

import numpy as np
import pytest
import torch

from lvmdiag.errors import InputError
from lvmdiag.train import rundir
from lvmdiag.train.inference import evaluate_checkpoint, evaluate_file, resolve_device
from lvmdiag.train.trainer import train

from .conftest import rotation_task, tiny_config


def _records(run_dir):
    return rundir.read_metrics(run_dir)


def test_logged_train_metrics_equal_evaluate_on_the_same_rows(tmp_path, walk_splits):
    # dropout > 0: were any split evaluated in training mode, its logged numbers would differ from these
    result = train(tiny_config(epochs=2, dropout=0.2), walk_splits["train"], walk_splits["val"], walk_splits["ood"],
                   out_dir=tmp_path / "run", write_report=False)
    rows = json.loads((tmp_path / "run" / rundir.EVAL_ROWS).read_text())["rows"]
    logged = _records(tmp_path / "run")[-1]["eval"]
    again = evaluate_checkpoint(tmp_path / "run" / "last.pt", walk_splits["train"].subset(np.array(rows)))
    assert again.to_dict() == pytest.approx(logged["train"], abs=1e-6)
    val_again = evaluate_checkpoint(tmp_path / "run" / "last.pt", walk_splits["val"])
    assert val_again.to_dict() == pytest.approx(logged["val"], abs=1e-6)
    assert set(logged) == {"train", "val", "ood"}
    assert result.epochs_completed == 2


def test_evaluate_checkpoint_rejects_mismatched_files(tmp_path, walk_splits):
    train(tiny_config(epochs=1), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run",
          write_report=False)
    ckpt = tmp_path / "run" / "last.pt"
    with pytest.raises(InputError, match="32-d"):
        evaluate_checkpoint(ckpt, rotation_task(50, d=32))
    with pytest.raises(InputError, match="K=3"):
        evaluate_checkpoint(ckpt, rotation_task(50, d=16, k=3))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_resolve_device_names_the_problem():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


def test_evaluate_file_puts_trivial_predictors_beside_the_model(tmp_path, walk_splits):
    train(tiny_config(epochs=1), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run",
          write_report=False)
    path = tmp_path / "val.npz"
    np.savez(path, contexts=walk_splits["val"].contexts, targets=walk_splits["val"].targets)
    result = evaluate_file(tmp_path / "run" / "best.pt", path)
    logged = _records(tmp_path / "run")[-1]["eval"]["val"]
    assert result.metrics.to_dict() == pytest.approx(logged, abs=1e-6)
    assert result.baselines["copy_last"].cos_next == pytest.approx(0.8, abs=1e-4)
    md = result.to_markdown()
    assert "copy_last" in md and "mean_context" in md and result.epoch == 1
