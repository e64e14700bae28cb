"""Optional data evidence: path resolution, baselines from the bias analyzer, leakage signals."""

import json
import shutil

import numpy as np
import pytest

from lvmdiag.errors import InputError
from lvmdiag.report import build_run_report
from lvmdiag.report.data import gather_data, resolve_data_paths
from lvmdiag.report.history import read_run_history

from .conftest import RUNS


def test_missing_config_paths_are_reported_not_fatal():
    h = read_run_history(RUNS / "p7_baseline")
    ctx = gather_data(h)
    assert ctx.paths == {"train": None, "val": None} and not ctx.baselines
    assert any("val_npz = 'artifacts/lvm/arxiv_val_sequences.npz' does not exist here" in n and "--val" in n for n in ctx.notes)


def test_explicit_missing_path_is_an_input_error():
    h = read_run_history(RUNS / "p7_baseline")
    with pytest.raises(InputError, match="--val"):
        resolve_data_paths(h, None, "/nonexistent/val.npz")


def test_unreadable_config_data_is_a_note_but_an_unreadable_explicit_file_is_an_error(tmp_path, p7_data):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "p7_baseline", run)
    (run / "val.npz").write_bytes(b"not an archive")
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "val_npz": "val.npz", "train_npz": str(p7_data[0])}))
    ctx = gather_data(read_run_history(run))
    assert ctx.paths == {"train": str(p7_data[0]), "val": None}
    assert any("val_npz" in n and "could not be read" in n and "not an .npz archive" in n for n in ctx.notes)
    assert [b.split for b in ctx.baselines] == ["train", "train"]  # train data still used
    with pytest.raises(InputError, match="not an .npz archive"):
        gather_data(read_run_history(run), val=run / "val.npz")


def test_config_paths_relative_to_the_run_dir(tmp_path, p7_data):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "p7_baseline", run)
    (run / "data").mkdir()
    shutil.copy(p7_data[1], run / "data" / "val.npz")
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "val_npz": "data/val.npz"}))
    paths, notes = resolve_data_paths(read_run_history(run), None, None)
    assert paths["val"] == run / "data" / "val.npz" and paths["train"] is None


def test_bias_baselines_and_no_leakage_on_article_split(p7_data):
    h = read_run_history(RUNS / "p7_baseline")
    ctx = gather_data(h, train=p7_data[0], val=p7_data[1], rng=0)
    names = {(b.predictor, b.split) for b in ctx.baselines}
    assert names == {(p, s) for p in ("copy_last", "mean_context") for s in ("train", "val")}
    assert all(b.cos_next_ci is not None for b in ctx.baselines)
    assert {b.split for b in ctx.bias} == {"train", "val"}
    (leak,) = ctx.signals
    assert leak.analysis == "leakage" and not leak.detected  # split by article: nothing shared


def test_leakage_detected_on_window_split(tmp_path):
    from lvmdiag.synthetic import make_splits, make_store

    store = make_store(n_articles=30, d=16, rho=0.5, length=(10, 14), rng=1)
    splits = make_splits(store, k=5, by="window", rng=1)
    paths = {}
    for name, s in splits.items():
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], contexts=s.contexts, targets=s.targets)
    h = read_run_history(RUNS / "p7_baseline")
    ctx = gather_data(h, train=paths["train"], val=paths["val"], analyses=("leakage",))
    (leak,) = ctx.signals
    assert leak.detected and "of val windows share" in leak.summary
    assert not ctx.baselines  # bias not requested


def test_run_with_baselines_json_skips_data_unless_asked():
    h = read_run_history(RUNS / "lvmdiag_healthy")
    ctx = gather_data(h)
    assert {b.source for b in ctx.baselines} == {"baselines.json"}
    assert not ctx.signals


def _save(path, seqs):
    np.savez(path, contexts=seqs.contexts, targets=seqs.targets)
    return path


def test_divergence_and_direction_signals(tmp_path):
    from lvmdiag.synthetic import make_store, store_windows

    train = store_windows(make_store(n_articles=40, d=16, rho=0.6, length=(10, 14), rng=2), k=5)
    shifted = store_windows(make_store(n_articles=15, d=16, rho=0.6, length=(10, 14), shift=1.0, rng=3), k=5)
    same = store_windows(make_store(n_articles=15, d=16, rho=0.6, length=(10, 14), rng=4), k=5)
    h = read_run_history(RUNS / "p7_baseline")
    tr = _save(tmp_path / "train.npz", train)
    planted = gather_data(h, train=tr, val=_save(tmp_path / "shifted.npz", shifted), analyses=("divergence", "direction"))
    null = gather_data(h, train=tr, val=_save(tmp_path / "same.npz", same), analyses=("divergence",))
    div = {s.analysis: s for s in planted.signals}
    assert div["divergence"].detected and "direction" in div
    assert not null.signals[0].detected
    assert null.signals[0].evidence[0].value.startswith("0 / ")


def test_unknown_analysis_is_an_input_error():
    with pytest.raises(InputError, match="unknown data analysis 'bogus'"):
        build_run_report(RUNS / "p7_baseline", analyses=("bias", "bogus"))


def test_retrieval_baselines_from_data_match_the_trainers(tmp_path):
    """`lvmdiag report --train/--val` on a run without baselines.json scores copy-last and mean-of-context by
    recall@1 and mean rank with the trainer's candidate sets: the same numbers the trainer wrote."""
    from lvmdiag.synthetic import make_splits, make_store

    run = tmp_path / "run"
    shutil.copytree(RUNS / "lvmdiag_trained", run)
    trainer = json.loads((run / "baselines.json").read_text())
    (run / "baselines.json").unlink()
    # the fixture's data, regenerated exactly as fixtures/runs/make_trained_run.py made it
    splits = make_splits(make_store(n_articles=60, d=32, rho=0.8, length=(12, 30), rng=0), k=5, ratios=(0.8, 0.2), rng=0)
    paths = {s: _save(tmp_path / f"{s}.npz", splits[s]) for s in ("train", "val")}
    ctx = gather_data(read_run_history(run), train=paths["train"], val=paths["val"], analyses=("bias",))
    rows = {(b.predictor, b.split): b for b in ctx.baselines}
    for p in ("copy_last", "mean_context"):
        b = rows[(p, "val")]
        assert b.recall_at_1 == pytest.approx(trainer["val"][p]["recall_at_1"], abs=1e-12)
        assert b.rank_mean == pytest.approx(trainer["val"][p]["rank_mean"], abs=1e-12)
        assert b.n_candidates == 65 and b.cos_next == pytest.approx(trainer["val"][p]["cos_next"], abs=1e-6)
        # train_eval_size 2000 > 764 rows: the trainer evaluated all of train, so train is computed too
        assert rows[(p, "train")].rank_mean == pytest.approx(trainer["train"][p]["rank_mean"], abs=1e-12)
    assert any("retrieval baselines (recall@1, mean rank) for val" in n and "65 candidates" in n for n in ctx.notes)
    # on other rows than the model's, nothing is computed and the note says why
    h = read_run_history(run)
    fewer = make_splits(make_store(n_articles=20, d=32, rho=0.8, length=(12, 30), rng=1), k=5, ratios=(0.8, 0.2), rng=0)
    ctx = gather_data(h, val=_save(tmp_path / "other.npz", fewer["val"]), analyses=("bias",))
    assert all(b.recall_at_1 is None for b in ctx.baselines)
    assert any("the model was evaluated on 199 rows" in n for n in ctx.notes)


def test_data_other_than_the_configs_is_used_with_a_note(tmp_path):
    """--val naming another file than the config's val_npz: the baselines describe that file while the run's
    metrics were measured on the config's; a note says so (nothing did)."""
    h = read_run_history(RUNS / "p7_baseline")
    other = tmp_path / "my_val.npz"
    other.write_bytes(b"")
    _, notes = resolve_data_paths(h, None, other)
    assert any("names val_npz = 'artifacts/lvm/arxiv_val_sequences.npz' but" in n and "my_val.npz" in n for n in notes)
