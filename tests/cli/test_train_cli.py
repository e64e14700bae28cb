"""`lvmdiag train` / `lvmdiag evaluate` end to end on small .npz files (tiny models, one thread)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
readers = pytest.importorskip("lvmdiag.data.readers")

from typer.testing import CliRunner  # noqa: E402

from lvmdiag.synthetic import make_splits, make_store  # noqa: E402
from lvmdiag_cli.app import app  # noqa: E402

runner = CliRunner()
TINY = ["--d-model", "16", "--nhead", "2", "--layers", "1", "--batch-size", "32", "--no-progress", "--threads", "1"]


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture()
def files(tmp_path):
    sp = make_splits(make_store(n_articles=30, d=16, rho=0.8, length=(10, 20), rng=2), k=5,
                     ratios=(0.7, 0.3), rng=2)
    paths = {}
    for name, s in sp.items():  # arXiv form: contexts and targets only
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], contexts=s.contexts, targets=s.targets)
    return paths


def _train(files, out, *extra):
    return runner.invoke(app, ["train", "--train", str(files["train"]), "--val", str(files["val"]),
                               "--out", str(out), *TINY, *extra])


def test_train_writes_a_run_and_evaluate_reproduces_its_metrics(tmp_path, files):
    out = tmp_path / "run"
    res = _train(files, out, "--epochs", "2", "--anchor-learnable", "--json", str(tmp_path / "summary.json"))
    assert res.exit_code == 0, res.output
    for name in ("config.json", "metrics.jsonl", "baselines.json", "last.pt", "best.pt", "REPORT.md"):
        assert (out / name).exists(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "lvmdiag-run/1" and cfg["d_model"] == 16 and cfg["anchor_learnable"] is True
    assert cfg["train_npz"] == str(files["train"])
    lines = (out / "metrics.jsonl").read_text().splitlines()
    logged = json.loads(lines[-1])["eval"]["val"]
    ev = runner.invoke(app, ["evaluate", str(out / "last.pt"), "--data", str(files["val"]), "--json", "-"])
    assert ev.exit_code == 0, ev.output
    payload = json.loads(ev.stdout)
    assert payload["metrics"] == pytest.approx(logged, abs=1e-6)
    baselines = json.loads((out / "baselines.json").read_text())["val"]
    for name in ("copy_last", "mean_context"):  # shown beside the model, equal to the run's baselines
        assert payload["baselines"][name] == pytest.approx(baselines[name], abs=1e-6)
    assert json.loads((tmp_path / "summary.json").read_text())["epochs_completed"] == 2
    # the logged train-subsample metrics are `lvmdiag evaluate` on exactly those rows
    rows = json.loads((out / "train_eval_rows.json").read_text())["rows"]
    with np.load(files["train"]) as z:
        np.savez(tmp_path / "sub.npz", contexts=z["contexts"][rows], targets=z["targets"][rows])
    ev = runner.invoke(app, ["evaluate", str(out / "last.pt"), "--data", str(tmp_path / "sub.npz"), "--json", "-"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["metrics"] == pytest.approx(json.loads(lines[-1])["eval"]["train"], abs=1e-6)


def test_flags_override_the_config_file_and_resume_continues(tmp_path, files):
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps({"epochs": 5, "lr": 0.002, "w_margin": 1.5, "warmup_epochs": 0}))
    out = tmp_path / "run"
    res = _train(files, out, "--config", str(cfg_path), "--epochs", "1", "--margin", "0.1", "--no-report")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["epochs"], cfg["lr"], cfg["w_margin"], cfg["margin"]) == (1, 0.002, 1.5, 0.1)
    res = _train(files, out, "--resume", "--epochs", "2", "--no-report")
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_loss_and_optimiser_flags_reach_the_config(tmp_path, files):
    out = tmp_path / "run"
    res = _train(files, out, "--epochs", "1", "--no-report", "--weight-decay", "0.05", "--grad-clip", "0.5",
                 "--random-negatives", "4", "--hard-negatives", "none", "--gate-threshold", "0.1",
                 "--gate-weak-weight", "0.5", "--teacher-threshold", "0.3")
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["weight_decay"], cfg["grad_clip"], cfg["n_random_negatives"], cfg["hard_negatives"]) == (
        0.05, 0.5, 4, "none")
    assert (cfg["gate_threshold"], cfg["gate_weak_weight"], cfg["teacher_threshold"]) == (0.1, 0.5, 0.3)
    bad = _train(files, tmp_path / "bad", "--epochs", "1", "--hard-negatives", "bogus")
    assert bad.exit_code == 2 and "hard_negatives" in bad.output and "Traceback" not in bad.output
    no_ids = _train(files, tmp_path / "no_ids", "--epochs", "1", "--hard-negatives", "same_article")
    assert no_ids.exit_code == 2 and "needs article ids" in no_ids.output  # the fixture files carry no ids


def test_refuses_to_clobber_a_run(tmp_path, files):
    out = tmp_path / "run"
    assert _train(files, out, "--epochs", "1", "--no-report").exit_code == 0
    assert not (out / "REPORT.md").exists()
    before = (out / "metrics.jsonl").read_text()
    res = _train(files, out, "--epochs", "1")
    assert res.exit_code == 2
    assert "not empty" in res.output and "Traceback" not in res.output
    assert (out / "metrics.jsonl").read_text() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_without_gpu_is_exit_2(tmp_path, files):
    res = _train(files, tmp_path / "run", "--epochs", "1", "--device", "cuda")
    assert res.exit_code == 2 and "CUDA is not available" in res.output


def test_help_works_and_train_explains_without_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "from lvmdiag_cli.app import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    sys.exit(e.code)\n")
    help_ = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "train" in help_.stdout
    tr = subprocess.run([sys.executable, "-c", code, "train", "--train", "a.npz", "--val", "b.npz", "--out",
                         str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert tr.returncode == 2 and "lvmdiag[train]" in tr.stderr and "Traceback" not in tr.stderr


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "0"], "epochs"),
    (["--lr", "-0.1"], "lr"),
    (["--lr", "nan"], "lr"),
    (["--threads", "0"], "--threads"),
    (["--device", "cuda:x"], "device"),
    (["--config", "MISSING"], "does not exist"),
    (["--config", "K3"], "context_length=3"),
    (["--config", "TYPO"], "unknown key"),
    (["--json", "VAL"], "also an input"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, files, extra, message):
    (tmp_path / "k3.json").write_text(json.dumps({"context_length": 3}))
    (tmp_path / "typo.json").write_text(json.dumps({"d_modle": 8}))
    subst = {"MISSING": str(tmp_path / "nope.json"), "K3": str(tmp_path / "k3.json"),
             "TYPO": str(tmp_path / "typo.json"), "VAL": str(files["val"])}
    before = files["val"].read_bytes()
    res = _train(files, tmp_path / "run", *[subst.get(x, x) for x in extra])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.output
    assert not (tmp_path / "run").exists() and files["val"].read_bytes() == before


def test_threads_option_sets_torch_threads(tmp_path, files):
    out = tmp_path / "run"
    assert _train(files, out, "--epochs", "1", "--no-report").exit_code == 0
    torch.set_num_threads(2)
    res = runner.invoke(app, ["evaluate", str(out / "last.pt"), "--data", str(files["val"]), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 1
