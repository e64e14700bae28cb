"""`lvmdiag bias` end to end on small synthetic files: outputs, exit codes, no tracebacks."""

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
    d = tmp_path_factory.mktemp("bias")
    store = make_store(n_articles=40, d=16, rho=0.8, article_rho_sd=0.05, rng=2)
    splits = make_splits(store, 5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), rng=1)
    paths = {}
    for name, s in splits.items():
        paths[name] = d / f"{name}.npz"  # arXiv form: no ids, so articles are recovered across files
        np.savez(paths[name], contexts=s.contexts, targets=s.targets)
    npy = d / "train_npy"
    npy.mkdir()
    np.save(npy / "contexts.npy", splits["train"].contexts)
    np.save(npy / "targets.npy", splits["train"].targets)
    paths["npy"] = npy
    return paths


def test_train_val_ood_writes_markdown_json_and_png(files, tmp_path):
    out = tmp_path / "report.md"
    js = tmp_path / "report.json"
    r = runner.invoke(app, ["bias", "--train", str(files["train"]), "--val", str(files["val"]), "--ood",
                            str(files["ood"]), "--out", str(out), "--json", str(js), "--n-resamples", "200",
                            "--quiet"])
    assert r.exit_code == 0, r.output
    md = out.read_text()
    assert "Differences val − train" in md and "Differences ood − train" in md
    assert "cannot show forward vs backward direction" in md
    assert "a negative margin is what a trivial predictor gets" in md
    assert "![position and lag profiles](report.png)" in md
    png = tmp_path / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads(js.read_text())
    assert set(payload["results"]) == {"train", "val", "ood"}
    assert payload["group_method"] == "recovered"  # no ids in the files: linked across them
    # K positions, Δ, lags 1..K-1 and the mean-of-context margin; lag K and the copy-last margin would
    # repeat cos(c_0, t) and cos(c_last, t) exactly, so each statistic is tested once
    diffs = payload["differences"]["val"]
    assert len(diffs) == 2 * 5 + 1
    assert len({d["name"] for d in diffs}) == len(diffs)
    assert len({round(d["statistic"], 12) for d in diffs}) == len(diffs)
    for test in payload["differences"]["ood"]:
        assert 0 < test["pvalue"] <= 1


def test_train_alone_json_to_stdout_and_explicit_plot(files, tmp_path):
    png = tmp_path / "fig.png"
    r = runner.invoke(app, ["bias", "--train", str(files["npy"]), "--json", "-", "--plot", str(png),
                            "--n-resamples", "100", "--quiet", "--block-rows", "37"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["k"] == 5 and payload["n_windows"] > 0
    assert len(payload["position_profile"]) == 5 and payload["delta"]["ci"]["low"] <= payload["delta"]["value"]
    assert png.exists()


def test_markdown_to_stdout_by_default(files):
    r = runner.invoke(app, ["bias", "--train", str(files["train"]), "--n-resamples", "50", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "## Temporal bias: train" in r.stdout and "Lag profile" in r.stdout


@pytest.mark.parametrize(
    "case",
    ["missing", "wrong_shape", "k_mismatch", "overwrite"],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(files, tmp_path, case):
    args = ["bias", "--train", str(files["train"]), "--quiet", "--n-resamples", "20"]
    if case == "missing":
        args += ["--val", str(tmp_path / "nope.npz")]
    elif case == "wrong_shape":
        bad = tmp_path / "bad.npz"
        np.savez(bad, contexts=np.ones((10, 16), np.float32), targets=np.ones((10, 16), np.float32))
        args += ["--val", str(bad)]
    elif case == "k_mismatch":
        other = tmp_path / "k3.npz"
        rng = np.random.default_rng(0)
        np.savez(other, contexts=rng.standard_normal((30, 3, 16)).astype(np.float32),
                 targets=rng.standard_normal((30, 16)).astype(np.float32))
        args += ["--val", str(other)]
    elif case == "overwrite":
        args += ["--out", str(files["train"])]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr


def _documented_bias_layouts():
    """The per-split keys and the comparison's top-level keys as docs/JSON.md lists them."""
    from pathlib import Path
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "JSON.md").read_text()
    section = doc.split("### `bias`: one split or a comparison", 1)[1].split("A reader that takes either", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    per_split = {k for line in table for k in re.findall(r"`(\w+)`", line.split("|")[1])}
    comparison = section.split("`--val`/`--ood` given:", 1)[1].split("the objects under", 1)[0]
    top = set(re.findall(r"(\w+)(?:: \{|[,}])", comparison.replace("train: {...}, val: {...}, ...", "")))
    return per_split, top - {"train", "val"}


def test_json_layouts_are_the_documented_ones(files):
    per_split, comparison = _documented_bias_layouts()
    common = {"schema_version", "lvmdiag_version", "direction"}
    args = ["bias", "--train", str(files["train"]), "--json", "-", "--n-resamples", "20", "--quiet", "--no-direction"]
    alone = json.loads(runner.invoke(app, args).stdout)
    assert set(alone) == per_split | common
    both = json.loads(runner.invoke(app, args + ["--val", str(files["val"])]).stdout)
    assert set(both) == comparison | common
    assert set(both["results"]) == {"train", "val"} and all(set(r) == per_split for r in both["results"].values())
    # the reader given in the docs gets the per-split objects from either layout
    for doc, names in ((alone, {"train"}), (both, {"train", "val"})):
        per = doc["results"] if "results" in doc else {doc["name"]: doc}
        assert set(per) == names and all("delta" in r for r in per.values())
