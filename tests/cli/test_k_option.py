"""--k: which commands accept K = 1, and an explicit --k that a window file does not have is an error.

A window file fixes its own K; --k only cuts windows from an article store. Before this check a
window file with K = 5 read with --k 3 was silently analysed with K = 5.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lvmdiag.data.window_k import declared_k
from lvmdiag_cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("k")
    rng = np.random.default_rng(0)
    vec = rng.standard_normal((240, 8)).astype(np.float32)
    ids = np.repeat(np.arange(24), 10)
    np.savez(d / "store_a.npz", vectors=vec[:120], article_ids=ids[:120])
    np.savez(d / "store_b.npz", vectors=vec[120:], article_ids=ids[120:])
    ctx = rng.standard_normal((60, 3, 8)).astype(np.float32)
    tgt = rng.standard_normal((60, 8)).astype(np.float32)
    np.savez(d / "win3.npz", contexts=ctx, targets=tgt, article_ids=np.repeat(np.arange(12), 5))
    npy = d / "win3_npy"
    npy.mkdir()
    np.save(npy / "contexts.npy", ctx)
    np.save(npy / "targets.npy", tgt)
    shards = d / "win3_shards"
    for i in range(2):
        (shards / f"s{i}").mkdir(parents=True)
        np.save(shards / f"s{i}" / "contexts.npy", ctx[30 * i: 30 * i + 30])
        np.save(shards / f"s{i}" / "targets.npy", tgt[30 * i: 30 * i + 30])
    return d


def test_declared_k_reads_window_files_and_not_stores(files):
    assert declared_k(files / "win3.npz") == 3
    assert declared_k(files / "win3_npy") == 3
    assert declared_k(files / "win3_shards") == 3
    assert declared_k(files / "store_a.npz") is None
    assert declared_k(files / "missing.npz") is None  # the loader reports it


def test_declared_k_of_parquet_windows_and_store(files, tmp_path):
    pytest.importorskip("pyarrow")
    from lvmdiag.data.parquet_writer import write_article_store_parquet, write_sequences_parquet
    from lvmdiag.data.readers import load_sequences

    write_sequences_parquet(load_sequences(files / "win3.npz"), tmp_path / "w.parquet")
    z = np.load(files / "store_a.npz")
    write_article_store_parquet(tmp_path / "s.parquet", z["vectors"], z["article_ids"],
                                np.tile(np.arange(10), 12))
    assert declared_k(tmp_path / "w.parquet") == 3
    assert declared_k(tmp_path / "s.parquet") is None


FAST = {"bias": ["--n-resamples", "20", "--no-direction", "--quiet"],
        "direction": ["--n-permutations", "20", "--quiet"],
        "diverge": ["--n-permutations", "20", "--n-bootstrap", "20", "--quiet"],
        "leakage": ["--quiet"],
        "data": ["--n-permutations", "20", "--n-bootstrap", "20", "--quiet"]}


@pytest.mark.parametrize("cmd", sorted(FAST))
def test_explicit_k_that_a_window_file_lacks_exits_2_before_any_output(files, tmp_path, cmd):
    out = tmp_path / "r.md"
    res = runner.invoke(app, [cmd, "--train", str(files / "store_a.npz"), "--val", str(files / "win3.npz"),
                              "--k", "4", "--out", str(out), *FAST[cmd]])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--k 4" in lines[0] and "--val win3.npz" in lines[0] and "K = 3" in lines[0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_resplit_and_report_check_explicit_k_too(files, tmp_path):
    res = runner.invoke(app, ["resplit", str(files / "win3_npy"), "--out", str(tmp_path / "rs"), "--k", "5",
                              "--no-progress"])
    assert res.exit_code == 2 and "--k 5 does not apply to input win3_npy" in res.stderr
    run = Path(__file__).resolve().parents[2] / "fixtures" / "runs" / "lvmdiag_healthy"
    res = runner.invoke(app, ["report", str(run), "--train", str(files / "win3.npz"), "--k", "5", "--quiet"])
    assert res.exit_code == 2 and "--k 5 does not apply to --train win3.npz" in res.stderr


def test_default_k_never_triggers_and_a_matching_k_is_fine(files):
    for extra in ([], ["--k", "3"]):  # no --k: the window file's own K = 3, not the default 5
        res = runner.invoke(app, ["bias", "--train", str(files / "win3.npz"), "--json", "-", *FAST["bias"], *extra])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["k"] == 3
    # on an article store --k is used as given
    res = runner.invoke(app, ["bias", "--train", str(files / "store_a.npz"), "--k", "4", "--json", "-", *FAST["bias"]])
    assert res.exit_code == 0 and json.loads(res.stdout)["k"] == 4


def test_k_1_refused_by_bias_and_data_at_parse_accepted_by_the_others(files):
    for cmd in ("bias", "data"):
        res = runner.invoke(app, [cmd, "--train", str(files / "store_a.npz"), "--val", str(files / "store_b.npz"),
                                  "--k", "1", *FAST[cmd]])
        assert res.exit_code == 2 and "must be an integer >= 2; got 1" in res.stderr, res.output
        assert "K >= 2" in " ".join(runner.invoke(app, [cmd, "--help"]).stdout.split())
    for cmd in ("direction", "diverge", "leakage"):
        res = runner.invoke(app, [cmd, "--train", str(files / "store_a.npz"), "--val", str(files / "store_b.npz"),
                                  "--k", "1", "--json", "-", *FAST[cmd]])
        assert res.exit_code == 0, (cmd, res.output)
        help_text = " ".join(runner.invoke(app, [cmd, "--help"]).stdout.split())
        assert "(an integer >= 1)" in help_text and "K >= 2" not in help_text
