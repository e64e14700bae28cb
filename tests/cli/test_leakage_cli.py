"""`lvmdiag leakage` end to end on files: JSON/markdown output, exit codes, no overwrite of inputs."""

import json

import numpy as np
from typer.testing import CliRunner

from lvmdiag import synthetic as syn
from lvmdiag_cli.app import app

runner = CliRunner()


def _write(path, seq):
    np.savez(path, contexts=seq.contexts, targets=seq.targets)  # arXiv form: no article ids
    return path


def _files(tmp_path, by, **kw):
    st = syn.make_store(n_articles=40, d=16, rng=1)
    sp = syn.make_splits(st, k=5, by=by, keep_ids=False, rng=2, **kw)
    return _write(tmp_path / "train.npz", sp["train"]), _write(tmp_path / "val.npz", sp["val"])


def test_window_split_files_leak_json_to_stdout(tmp_path):
    tr, va = _files(tmp_path, "window")
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--json", "-", "--no-progress"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    (val,) = payload["splits"]
    assert val["split"] == "val" and val["share_shared_chunk"] >= 0.98
    assert payload["group_method"] == "recovered"


def test_article_split_markdown_report_and_ood(tmp_path):
    st = syn.make_store(n_articles=40, d=16, rng=1)
    sp = syn.make_splits(st, k=5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), n_duplicated=2,
                         keep_ids=False, rng=3)
    paths = {n: _write(tmp_path / f"{n}.npz", s) for n, s in sp.items()}
    out = tmp_path / "leak.md"
    res = runner.invoke(app, ["leakage", "--train", str(paths["train"]), "--val", str(paths["val"]),
                              "--ood", str(paths["ood"]), "--out", str(out), "--json", str(tmp_path / "l.json"),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "## Leakage" in md and "LEAKAGE" in md and "### ood" in md
    png = tmp_path / "leak_leakage.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.name in md
    payload = json.loads((tmp_path / "l.json").read_text())
    by = {s["split"]: s for s in payload["splits"]}
    assert by["val"]["n_shared_windows"] > 0 and by["ood"]["windows_affected"] == 0


def test_two_split_file_serves_train_and_val(tmp_path):
    st = syn.make_store(n_articles=30, d=16, rng=4)
    sp = syn.make_splits(st, k=5, by="window", keep_ids=False, rng=5)
    both = tmp_path / "both.npz"
    np.savez(both, context_sequences=sp["train"].contexts, target_vectors=sp["train"].targets,
             val_context_sequences=sp["val"].contexts, val_target_vectors=sp["val"].targets)
    res = runner.invoke(app, ["leakage", "--train", str(both), "--val", str(both), "--json", "-", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["splits"][0]["share_shared_chunk"] > 0.9


def test_bad_input_exits_2_with_one_line(tmp_path):
    tr, va = _files(tmp_path, "article")
    res = runner.invoke(app, ["leakage", "--train", str(tmp_path / "missing.npz"), "--val", str(va), "--no-progress"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--threshold", "2", "--no-progress"])
    assert res.exit_code == 2 and "threshold" in res.output
    before = tr.read_bytes()
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--out", str(tr), "--no-progress"])
    assert res.exit_code == 2 and tr.read_bytes() == before
