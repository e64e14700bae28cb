"""`lvmdiag direction` end to end on files."""

import json

import numpy as np
from typer.testing import CliRunner

from lvmdiag import synthetic as syn
from lvmdiag_cli.app import app

runner = CliRunner()


def _write(path, seq):
    np.savez(path, contexts=seq.contexts, targets=seq.targets, article_ids=seq.article_ids,
             target_indices=np.arange(seq.n), context_indices=np.zeros((seq.n, seq.k), np.int64))
    return path


def test_direction_detects_drift_and_writes_report_with_plot(tmp_path):
    st = syn.make_store(n_articles=50, d=16, drift=0.03, rng=1)
    sp = syn.make_splits(st, k=5, rng=2)
    tr, va = _write(tmp_path / "train.npz", sp["train"]), _write(tmp_path / "val.npz", sp["val"])
    out = tmp_path / "dir.md"
    res = runner.invoke(app, ["direction", "--train", str(tr), "--val", str(va), "--out", str(out),
                              "--json", str(tmp_path / "d.json"), "--seed", "3", "--permutations", "99",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "## Direction" in md and "order is detectable" in md
    png = tmp_path / "dir_direction.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG" and png.name in md
    payload = json.loads((tmp_path / "d.json").read_text())
    train = [s for s in payload["splits"] if s["split"] == "train"][0]
    assert train["classifier"]["pvalue"] <= 0.05 and payload["group_method"] == "given"


def test_train_only_json_to_stdout_and_bad_input(tmp_path):
    st = syn.make_store(n_articles=20, d=16, rng=1)
    tr = _write(tmp_path / "train.npz", syn.store_windows(st, k=5))
    res = runner.invoke(app, ["direction", "--train", str(tr), "--json", "-", "--permutations", "19", "--no-progress"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [s["split"] for s in payload["splits"]] == ["train"] and payload["splits"][0]["signed"] is None
    res = runner.invoke(app, ["direction", "--train", str(tmp_path / "nope.npz"), "--no-progress"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["direction", "--train", str(tr), "--permutations", "0", "--no-progress"])
    assert res.exit_code == 2
