"""`lvmdiag data`: one report with plots, --json, and the --fail-on exit codes (1 finding, 0 clean, 2 bad input)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lvmdiag.synthetic import make_splits, make_store
from lvmdiag_cli.app import app

runner = CliRunner()
FAST = ["--n-permutations", "40", "--n-bootstrap", "40", "--quiet", "--k", "4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    store = make_store(n_articles=40, d=12, rho=0.8, rng=6)
    paths = {}
    for by in ("article", "window"):
        for name, s in make_splits(store, 4, by=by, rng=2).items():
            sub = d / by / name
            sub.mkdir(parents=True)
            np.save(sub / "contexts.npy", s.contexts)
            np.save(sub / "targets.npy", s.targets)
            np.save(sub / "article_ids.npy", s.article_ids)
            paths[by, name] = sub
    return d, paths


def _run(paths, by, *extra):
    return runner.invoke(app, ["data", "--train", str(paths[by, "train"]), "--val", str(paths[by, "val"]), *FAST,
                               *extra])


def test_fail_on_leakage_gates_the_window_split_only(files):
    _, p = files
    leaky = _run(p, "window", "--fail-on", "leakage")
    clean = _run(p, "article", "--fail-on", "leakage")
    assert leaky.exit_code == 1 and "failing: finding(s) present: leakage" in leaky.output
    assert clean.exit_code == 0, clean.output
    assert _run(p, "window").exit_code == 0  # without --fail-on a finding is reported, not fatal


def test_report_markdown_with_plots_and_json(files):
    d, p = files
    out, js = d / "report.md", d / "report.json"
    res = _run(p, "article", "--out", str(out), "--json", str(js))
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert md.startswith("# Data report") and "## Verdict" in md
    for section in ("divergence", "direction", "bias", "leakage"):
        assert (d / f"report_{section}.png").exists() and f"](report_{section}.png)" in md
    payload = json.loads(js.read_text())
    assert payload["n_tests"] > 0 and payload["divergence"]["comparisons"][0]["other"] == "val"


def test_unknown_fail_on_kind_exits_2_before_any_work(files):
    _, p = files
    res = _run(p, "article", "--fail-on", "leakge")
    assert res.exit_code == 2 and "leakge" in res.output and "Traceback" not in res.output
