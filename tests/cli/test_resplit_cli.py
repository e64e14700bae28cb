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
        (["--bins", "0"], "'--bins': must be an integer >= 1"),
        (["--seed", "-1"], "'--seed': must be an integer >= 0"),
        (["--ratios", "1"], "at least two split shares"),
        (["--ratios", "0.9999,0.0001", "--names", "a,b"], "would get no article"),
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
    assert res.exit_code == 2 and "earlier resplit" in res.stderr  # --force never replaces a foreign directory
    assert (out / "x").read_text() == "keep"
    earlier = tmp_path / "earlier"
    assert runner.invoke(app, ["resplit", *inputs, "--out", str(earlier), "--no-analyses", "--no-progress"]).exit_code == 0
    (earlier / "x").write_text("keep")
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(earlier), "--force", "--no-analyses", "--no-progress"])
    assert res.exit_code == 0 and not (earlier / "x").exists()


def test_out_holding_the_inputs_is_refused(inputs):
    from pathlib import Path

    res = runner.invoke(app, ["resplit", *inputs, "--out", str(Path(inputs[0]).parent), "--force", "--no-progress"])
    assert res.exit_code == 2 and "never overwritten" in res.stderr
    assert all(Path(p).exists() for p in inputs) and np.load(inputs[0])["contexts"].shape[0] > 0


def test_same_input_twice_exits_2(inputs, tmp_path):
    res = runner.invoke(app, ["resplit", inputs[0], inputs[0], "--out", str(tmp_path / "o"), "--no-progress"])
    assert res.exit_code == 2 and "given twice" in res.stderr and not (tmp_path / "o").exists()


def test_warnings_about_outputs_name_the_output_not_the_temporary_directory(tmp_path):
    store = make_store(n_articles=40, d=16, length=(8, 20), rng=0)
    src = make_splits(store, k=5, ratios=(0.5, 0.5), by="article", rng=1)["train"]
    doubled = src.subset(np.concatenate([np.arange(src.n), np.arange(src.n)]))  # every window twice
    save_sequences(doubled, tmp_path / "in.npz")
    res = runner.invoke(app, ["resplit", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o"), "--no-analyses",
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "duplicates" in res.stderr and str(tmp_path / "o") in res.stderr
    assert ".resplit-" not in res.stderr


def test_json_path_that_is_a_directory_exits_2_before_any_work(inputs, tmp_path):
    (tmp_path / "adir").mkdir()
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(tmp_path / "o"), "--json", str(tmp_path / "adir"),
                              "--no-analyses", "--no-progress"])
    assert res.exit_code == 2 and "is a directory" in res.stderr and not (tmp_path / "o").exists()


def test_json_path_that_would_overwrite_a_resplit_output_exits_2(inputs, tmp_path):
    out = tmp_path / "o"
    for name in ("manifest.json", "train.npz", "resplit_report.md"):
        res = runner.invoke(app, ["resplit", *inputs, "--out", str(out), "--json", str(out / name), "--no-analyses",
                                  "--no-progress"])
        assert res.exit_code == 2 and "would overwrite the resplit's own" in res.stderr and not out.exists()
    res = runner.invoke(app, ["resplit", *inputs, "--out", str(out), "--json", str(out / "summary.json"), "--no-analyses",
                              "--no-progress"])
    assert res.exit_code == 0 and json.loads((out / "summary.json").read_text())["names"] == ["train", "val", "ood"]
