import json

import pytest

from lvmdiag.errors import InputError
from lvmdiag.train.config import RUN_FORMAT, TrainConfig


def test_json_round_trip(tmp_path):
    cfg = TrainConfig(d_model=64, nhead=4, anchor_learnable=True, lr_schedule="cosine", train_npz="a.npz")
    path = tmp_path / "c.json"
    path.write_text(cfg.to_json())
    assert TrainConfig.from_json(path) == cfg
    data = json.loads(path.read_text())
    assert data["format"] == RUN_FORMAT
    # the run documents its own definitions, the deliberate departure from upstream's gate included
    assert "cos(t_i, c_K) - cos(t_i, c_{K-1})" in data["definitions"]["gate"]
    assert data["definitions"]["prev"].startswith("c_last")
    for key in ("context_length", "model_type", "d_model", "nhead", "num_layers", "dropout", "anchor_lambda",
                "anchor_learnable", "w_rank", "w_margin", "w_teacher", "margin", "temperature", "gate_threshold",
                "gate_weak_weight", "batch_size", "epochs", "lr", "warmup_epochs", "device", "train_npz",
                "val_npz", "ood_npz", "seed"):
        assert key in data


def test_upstream_config_loads(tmp_path):
    upstream = {"train_npz": "artifacts/lvm/arxiv_train_sequences.npz", "val_npz": "v.npz", "context_length": 5,
                "model_type": "transformer", "d_model": 512, "nhead": 8, "num_layers": 4, "dropout": 0.1,
                "anchor_lambda": 0.8, "anchor_learnable": False, "w_rank": 1.0, "w_margin": 0.5, "w_teacher": 0.2,
                "margin": 0.07, "temperature": 0.07, "gate_threshold": 0.03, "gate_weak_weight": 0.25,
                "floor_threshold": 0.2, "batch_size": 64, "epochs": 10, "lr": 0.0005, "warmup_epochs": 2,
                "device": "cpu", "output_dir": "runs/p7", "exp_name": "p7_baseline"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(upstream))
    cfg = TrainConfig.from_json(path)
    assert cfg.exp_name == "p7_baseline" and cfg.w_margin == 0.5


def test_unknown_key_is_an_error():
    with pytest.raises(InputError, match="unknown key"):
        TrainConfig.from_dict({"d_modle": 3})


@pytest.mark.parametrize("changes, key", [
    (dict(model_type="gru"), "model_type"),
    (dict(d_model=30, nhead=4), "d_model"),
    (dict(temperature=0.0), "temperature"),
    (dict(anchor_learnable=True, anchor_lambda=1.0), "anchor_lambda"),
    (dict(batch_size=0), "batch_size"),
    (dict(device="tpu"), "device"),
    (dict(lr=float("nan")), "lr"),
    (dict(epochs=0), "epochs"),
    (dict(dim_feedforward=True), "dim_feedforward"),
    (dict(device="cuda:abc"), "device"),
])
def test_invalid_values_name_the_key(changes, key):
    with pytest.raises(InputError, match=key):
        TrainConfig(**changes)


def test_replace_ignores_unset_flags():
    cfg = TrainConfig(epochs=3)
    assert cfg.replace(epochs=None, lr=1e-3) == TrainConfig(epochs=3, lr=1e-3)


def test_config_evaluation_and_baselines_import_without_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import lvmdiag, lvmdiag.train\n"
            "from lvmdiag.train import TrainConfig, EvalMetrics\n"
            "from lvmdiag.train.evaluate import evaluate\n"
            "from lvmdiag.train.baselines import copy_last\n"
            "try:\n    from lvmdiag.train import train\nexcept ImportError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "lvmdiag[train]" in proc.stdout
