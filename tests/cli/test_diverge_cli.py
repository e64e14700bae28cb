"""`lvmdiag diverge` end to end on small synthetic files: outputs, plot, exit codes, no tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lvmdiag.synthetic import make_splits, make_store
from lvmdiag_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("diverge")
    store = make_store(n_articles=40, d=12, rho=0.8, rng=5)
    splits = make_splits(store, 4, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), rng=1)
    paths = {}
    for name, s in splits.items():
        paths[name] = d / f"{name}.npz"  # arXiv form: no ids, articles recovered across files
        np.savez(paths[name], contexts=s.contexts, targets=s.targets)
    return d, paths


def test_writes_markdown_plot_and_json(files):
    d, p = files
    out, js = d / "div.md", d / "div.json"
    res = runner.invoke(app, ["diverge", "--train", str(p["train"]), "--val", str(p["val"]), "--ood", str(p["ood"]),
                              "--k", "4", "--out", str(out), "--json", str(js), "--n-permutations", "50",
                              "--n-bootstrap", "50", "--quiet"])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "### val vs train" in md and "### ood vs train" in md and "recovered" in md
    png = d / "div_divergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({png.name})" in md
    payload = json.loads(js.read_text())
    assert payload["n_permutations"] == 50 and len(payload["comparisons"]) == 2


def test_json_to_stdout(files):
    _, p = files
    res = runner.invoke(app, ["diverge", "--train", str(p["train"]), "--val", str(p["val"]), "--json", "-",
                              "--n-permutations", "20", "--n-bootstrap", "20", "--quiet"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["comparisons"][0]["other"] == "val"


def test_bad_input_exits_2_with_one_line(files, tmp_path):
    d, p = files
    res = runner.invoke(app, ["diverge", "--train", str(tmp_path / "missing.npz"), "--val", str(p["val"]), "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["diverge", "--train", str(p["train"]), "--val", str(p["val"]), "--out", str(p["val"]),
                              "--quiet"])
    assert res.exit_code == 2 and "input" in res.output
