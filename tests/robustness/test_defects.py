"""One test per defect of issue 17 (and issue 14.1, 14.4, 14.5), each failing on the code before its fix."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from corpus import K, snapshot
from lvmdiag.errors import InputError
from lvmdiag_cli.app import app

runner = CliRunner()


def _one_error_line(res, needle: str) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2, (res.exit_code, res.output)
    assert len(lines) == 1 and needle in lines[0], lines
    assert "Traceback" not in res.output
    return lines[0]


def _splits(w, val="val"):
    return ["--train", str(w.good["train"]), "--val", str(w.good[val]), "--k", str(K), "--quiet"]


# ---- 17.1: negative --seed, --block-rows 0 were numpy tracebacks (exit 1) -------------------------------
@pytest.mark.parametrize("command", ["bias", "direction", "diverge", "data"])
def test_negative_seed_is_exit_2_naming_the_option(world, command):
    _one_error_line(runner.invoke(app, [command, *_splits(world), "--seed", "-1"]), "--seed")


@pytest.mark.parametrize("value", ["0", "-1"])
def test_diverge_block_rows_below_one_is_exit_2(world, value):
    _one_error_line(runner.invoke(app, ["diverge", *_splits(world), "--block-rows", value]), "--block-rows")


def test_library_refuses_negative_seed_and_zero_block_rows(world):
    from lvmdiag.analyzers.divergence import analyze_divergence
    from lvmdiag.data.readers import load_sequences
    from lvmdiag.stats.resampling import as_rng

    with pytest.raises(InputError, match="seed"):
        as_rng(-1)
    splits = {n: load_sequences(world.good[n], split=n) for n in ("train", "val")}
    with pytest.raises(InputError, match="block_rows"):
        analyze_divergence(splits, n_permutations=5, n_bootstrap=5, block_rows=0)


# ---- 17.2: train --force overwrote its own --config when it sat inside --out ----------------------------
def test_train_force_never_overwrites_its_config_input(world, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    out.mkdir()
    config = out / "config.json"
    shutil.copy(world.good["config"], config)
    before = config.read_bytes()
    res = runner.invoke(app, ["train", "--train", str(world.good["train"]), "--val", str(world.good["val"]),
                              "--out", str(out), "--config", str(config), "--force", "--no-progress", "--threads", "1"])
    _one_error_line(res, "--config")
    assert config.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["config.json"]


# ---- 17.3: invalid values defeated --fail-on ---------------------------------------------------------------
@pytest.mark.parametrize("extra, option", [
    (["--fail-on", "leakage", "--threshold", "5"], "--threshold"),
    (["--fail-on", "divergence", "--n-bootstrap", "0"], "--n-bootstrap"),
    (["--fail-on", "divergence", "--n-permutations", "-1"], "--n-permutations"),
    (["--alpha", "2"], "--alpha"),
    (["--alpha", "-0.1"], "--alpha"),
])
def test_data_refuses_values_that_would_defeat_fail_on(world, extra, option):
    res = runner.invoke(app, ["data", "--train", str(world.good["train"]), "--val", str(world.good["train"]),
                              "--k", str(K), "--quiet", *extra])
    _one_error_line(res, option)


def test_analyze_data_checks_its_options_before_reading(world):
    from lvmdiag.analyzers.data_report import analyze_data

    for kw in ({"n_bootstrap": 0}, {"n_permutations": -1}, {"alpha": 2.0}, {"threshold": 5.0}, {"rng": -1}):
        name = "seed" if "rng" in kw else next(iter(kw))
        with pytest.raises(InputError, match=name):
            analyze_data({"train": world.good["train"], "val": world.good["val"]}, k=K, **kw)


# ---- 17.4: output paths were checked only after the whole analysis ----------------------------------------
@pytest.fixture()
def no_analysis(monkeypatch):
    """Any analysis that starts fails the test: output checks must come before the work."""
    import lvmdiag.analyzers.bias_report as b
    import lvmdiag.analyzers.data_report as d
    import lvmdiag.analyzers.direction as r
    import lvmdiag.analyzers.divergence as v
    import lvmdiag.analyzers.leakage as lk

    def started(*args, **kwargs):
        raise AssertionError("the analysis ran before the output paths were checked")

    for module, name in ((b, "analyze_bias_report"), (d, "analyze_data"), (r, "analyze_direction"),
                         (v, "analyze_divergence"), (lk, "analyze_leakage")):
        monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize("command", ["bias", "direction", "diverge", "leakage", "data"])
def test_output_directory_is_refused_before_any_work_naming_the_users_path(world, command, tmp_path, no_analysis):
    target = tmp_path / "target"
    target.mkdir()
    for option in ("--json", "--out"):
        res = runner.invoke(app, [command, *_splits(world), option, str(target)])
        line = _one_error_line(res, str(target))
        assert ".tmp" not in line
    assert list(tmp_path.iterdir()) == [target] and not list(target.iterdir())  # no PNG beside it


def test_out_under_a_regular_file_is_refused_before_any_work(world, tmp_path, no_analysis):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["data", *_splits(world), "--out", str(blocker / "report.md")])
    _one_error_line(res, str(blocker))
    assert list(tmp_path.iterdir()) == [blocker]


# ---- 17.5: evaluate --split bogus was silently ignored ---------------------------------------------------
@pytest.mark.parametrize("data, split", [("val", "bogus"), ("val", "val"), ("two_split", "bogus")])
def test_evaluate_split_must_exist(checkpoint, data, split):
    world = checkpoint
    res = runner.invoke(app, ["evaluate", str(world.checkpoint), "--data", str(world.good[data]), "--split", split,
                              "--threads", "1"])
    _one_error_line(res, "--split")


def test_evaluate_split_of_a_two_split_file_still_works(checkpoint):
    world = checkpoint
    res = runner.invoke(app, ["evaluate", str(world.checkpoint), "--data", str(world.good["two_split"]),
                              "--split", "val", "--threads", "1"])
    assert res.exit_code == 0, res.output


# ---- 17.6: usage errors were a 5-6 line box ----------------------------------------------------------------
@pytest.mark.parametrize("args", [["bias", "--train", "x.npz", "--n-resamples", "abc"], ["bogus"], ["report"],
                                  ["data", "--train", "x.npz"], ["bias", "--nope"]])
def test_usage_errors_are_one_line(args):
    res = runner.invoke(app, args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "╭" not in res.stderr


def test_help_stays_rich():
    res = runner.invoke(app, ["bias", "--help"])
    assert res.exit_code == 0 and "╭─ Options" in res.stdout


# ---- 17.7: a killed `data` left temp files; resplit made an empty --out before any work ----------------------
def test_stale_stage_of_a_killed_run_is_removed_and_outputs_appear_together(world, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".lvmdiag-{int(dead.stdout)}-0.tmp"  # what a run killed mid-write leaves behind
    stale.mkdir()
    (stale / "report_bias.png").write_bytes(b"")
    res = runner.invoke(app, ["data", *_splits(world), "--n-permutations", "9", "--n-bootstrap", "9",
                              "--out", str(tmp_path / "report.md"), "--json", str(tmp_path / "report.json")])
    assert res.exit_code in (0, 1), res.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["report.json", "report.md", "report_bias.png", "report_direction.png", "report_divergence.png",
                     "report_leakage.png"], names
    assert json.loads((tmp_path / "report.json").read_text())["schema_version"] == 1


def test_resplit_bad_input_creates_no_out_directory(world, tmp_path):
    out = tmp_path / "new"
    res = runner.invoke(app, ["resplit", str(world.bad["n0.npz"]), "--out", str(out), "--no-progress"])
    _one_error_line(res, "n0.npz")
    assert not out.exists() and list(tmp_path.iterdir()) == []


# ---- 17.8: resplit on all-zero vectors printed a raw RuntimeWarning; train on one window said nothing ---------
def test_resplit_with_all_zero_articles_prints_no_runtime_warning(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(40), 5)
    c = rng.normal(size=(200, K, 8)).astype(np.float32)
    t = rng.normal(size=(200, 8)).astype(np.float32)
    zero = ids < 10  # ten whole articles of all-zero vectors (a failed encoder batch)
    c[zero], t[zero] = 0, 0
    src = tmp_path / "zeros.npz"
    np.savez(src, contexts=c, targets=t, article_ids=ids)
    res = runner.invoke(app, ["resplit", str(src), "--out", str(tmp_path / "out"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "RuntimeWarning" not in res.stderr and "invalid value" not in res.stderr


def test_train_on_a_single_window_is_a_clear_error(world, tmp_path):
    pytest.importorskip("torch")
    one = tmp_path / "one.npz"
    with np.load(world.good["train"]) as z:
        np.savez(one, contexts=z["contexts"][:1], targets=z["targets"][:1])
    res = runner.invoke(app, ["train", "--train", str(one), "--val", str(world.good["val"]), "--out",
                              str(tmp_path / "run"), "--config", str(world.good["config"]), "--no-progress",
                              "--threads", "1"])
    _one_error_line(res, "at least 2")
    assert not (tmp_path / "run").exists()


# ---- issue 14.1, 14.4, 14.5 ------------------------------------------------------------------------------------
def test_resplit_default_names_follow_the_ratios(world, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["resplit", str(world.good["train"]), str(world.good["val"]), "--out", str(out),
                              "--ratios", "0.8,0.2", "--no-analyses", "--no-progress", "--k", str(K)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "resplit_report.md", "train.npz", "val.npz"]
    from lvmdiag.resplit.dataset import default_split_names

    assert default_split_names(5) == ("train", "val", "ood", "split3", "split4")
    assert "train,val" in " ".join(runner.invoke(app, ["resplit", "--help"]).stdout.split())


@pytest.mark.parametrize("command", ["bias", "direction", "diverge", "leakage", "data", "resplit", "report",
                                     "train", "evaluate"])
def test_help_uses_conventional_metavars(command):
    text = runner.invoke(app, [command, "--help"]).stdout
    for odd in ("<list[Path]>", "<str>", "<bool>", "<path>", "<int>", "<float>", "{inputs}", "{run_dir}"):
        assert odd not in text, (command, odd)
    assert "PATH" in text and "--help" in text


def test_every_command_json_carries_schema_and_version(checkpoint, tmp_path):
    import lvmdiag

    world = checkpoint
    ck, tr, va = str(world.checkpoint), str(world.good["train"]), str(world.good["val"])
    runs = {
        "bias": ["bias", *_splits(world), "--n-resamples", "9", "--no-direction"],
        "direction": ["direction", *_splits(world), "--n-permutations", "9"],
        "diverge": ["diverge", *_splits(world), "--n-permutations", "9", "--n-bootstrap", "9"],
        "leakage": ["leakage", *_splits(world)],
        "data": ["data", *_splits(world), "--n-permutations", "9", "--n-bootstrap", "9"],
        "resplit": ["resplit", tr, va, "--out", str(tmp_path / "rs"), "--no-analyses", "--no-progress", "--k", str(K)],
        "report": ["report", str(world.good["run"]), "--quiet"],
        "evaluate": ["evaluate", ck, "--data", va, "--threads", "1"],
        "train": ["train", "--train", tr, "--val", va, "--out", str(tmp_path / "run"), "--config",
                  str(world.good["config"]), "--no-report", "--no-progress", "--threads", "1"],
    }
    for name, args in runs.items():
        res = runner.invoke(app, [*args, "--json", "-"])
        assert res.exit_code in (0, 1), (name, res.output)
        payload = json.loads(res.stdout)
        assert list(payload)[:2] == ["schema_version", "lvmdiag_version"], name
        assert payload["schema_version"] == 1 and payload["lvmdiag_version"] == lvmdiag.__version__
    doc = (Path(__file__).resolve().parents[2] / "docs" / "JSON.md").read_text()
    assert "schema_version" in doc and "lvmdiag_version" in doc
    for name in runs:
        assert f"`{name}`" in doc, name
