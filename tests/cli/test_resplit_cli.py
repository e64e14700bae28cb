"""`lvmdiag resplit`: thin command over lvmdiag.resplit.resplit; bad input exits 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lvmdiag.data.writers import save_sequences
from lvmdiag.synthetic import make_splits, make_store
from lvmdiag_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_in")
    store = make_store(n_articles=60, d=16, length=(8, 30), rng=0)
    paths = []
    for name, s in make_splits(store, k=5, ratios=(0.8, 0.2), by="window", rng=1).items():
        p = d / f"{name}.npz"
        save_sequences(s, p)
        paths.append(str(p))
    return paths


def test_resplit_writes_splits_and_json(inputs, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["resplit", *inputs, "--out", str(out), "--ratios", "0.7,0.3", "--names", "tr,te", "--stratify", "length",
         "--seed", "3", "--no-analyses", "--no-progress", "--json", "-"],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["names"] == ["tr", "te"]
    assert all(c["passed"] for c in payload["verification"]["checks"])
    assert abs(payload["achieved"][0] - 0.7) <= payload["tolerance"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "resplit_report.md", "te.npz", "tr.npz"]


def test_summary_on_stdout(inputs, tmp_path):
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(tmp_path / "o"), "--no-analyses", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "all guarantees PASS" in res.stdout and "resplit_report.md" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ratios", "0.8,0.3"], "sum to 1"),
        (["--ratios", "a,b"], "comma-separated numbers"),
        (["--names", "a,b"], "one split name per ratio"),
        (["--by", "colour"], "no per-window column"),
        (["--stratify", "colour"], "colour"),
    ],
)
def test_bad_input_exits_2_with_one_line(inputs, tmp_path, args, message):
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(tmp_path / "o"), "--no-analyses", "--no-progress", *args])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert err.startswith("error:") and message in err and "\n" not in err and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_non_empty_out_is_refused_without_force(inputs, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "x").write_text("keep")
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(out), "--no-analyses", "--no-progress"])
    assert res.exit_code == 2 and "--force" in res.stderr
    assert (out / "x").read_text() == "keep"
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(out), "--force", "--no-analyses", "--no-progress"])
    assert res.exit_code == 0 and not (out / "x").exists()


def test_out_holding_the_inputs_is_refused(inputs):
    from pathlib import Path

    res = runner.invoke(app, ["resplit", *inputs, "--out", str(Path(inputs[0]).parent), "--force", "--no-progress"])
    assert res.exit_code == 2 and "never overwritten" in res.stderr
    assert all(Path(p).exists() for p in inputs) and np.load(inputs[0])["contexts"].shape[0] > 0
