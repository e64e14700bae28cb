"""End-to-end resplit on small synthetic files: guarantees on disk, determinism, safety, planted skew."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lvmdiag.data.readers import load_sequences
from lvmdiag.data.writers import save_sequences
from lvmdiag.errors import InputError
from lvmdiag.resplit import GuaranteeError, plain_group_split, resplit
from lvmdiag.resplit.writing import SLEEP_ENV
from lvmdiag.resplit.strata import window_delta
from lvmdiag.synthetic import SyntheticStore, make_splits, make_store

K = 4
RATIOS = (0.8, 0.1, 0.1)
NAMES = ("train", "val", "ood")


def _skewed_store(n_long: int = 80, n_short: int = 240, d: int = 64, seed: int = 0) -> SyntheticStore:
    """Planted skew: the long articles all have high Delta = rho - rho^K (rho 0.65: 0.47), the short
    ones low Delta (rho 0.97: 0.08). With 320 articles and two stratification variables the
    binning uses quartiles, so the long articles are exactly the top (length, Delta) cell."""
    long_ = make_store(n_articles=n_long, d=d, rho=0.65, length=(50, 70), rng=seed)
    short = make_store(n_articles=n_short, d=d, rho=0.97, length=(K + 2, K + 14), first_article_id=n_long, rng=seed + 1)
    return SyntheticStore(
        np.concatenate([long_.vectors, short.vectors]),
        np.concatenate([long_.article_ids, short.article_ids]),
        np.concatenate([long_.chunk_index, short.chunk_index]),
    )


def _write_inputs(tmp: Path, keep_ids: bool = True, store: SyntheticStore | None = None) -> list[Path]:
    """Upstream mistake: train/val/ood cut by window, written as .npz files."""
    store = store or _skewed_store()
    splits = make_splits(store, k=K, ratios=RATIOS, names=NAMES, by="window", keep_ids=keep_ids, rng=5)
    paths = []
    tmp.mkdir(parents=True, exist_ok=True)
    for name, s in splits.items():
        p = tmp / f"in_{name}.npz"
        save_sequences(s, p)
        paths.append(p)
    return paths


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    return _write_inputs(tmp_path_factory.mktemp("inputs"))


def test_rebuilt_inputs_end_to_end(inputs, tmp_path):
    before = {p: _sha(p) for p in inputs}
    res = resplit(inputs, out_dir=tmp_path / "out", seed=1, analyses=False)
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == ["manifest.json", "ood.npz", "resplit_report.md", "train.npz", "val.npz"]
    assert res.verification.passed and res.group_method == "given"
    # read back independently: article ids disjoint, every input window present once
    back = {n: load_sequences(out / f"{n}.npz") for n in NAMES}
    ids = {n: set(np.unique(s.article_ids).tolist()) for n, s in back.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["ood"]) and not (ids["val"] & ids["ood"])
    n_in = sum(load_sequences(p).n for p in inputs)
    assert sum(s.n for s in back.values()) == n_in
    shares = np.array([s.n for s in back.values()]) / n_in
    assert np.all(np.abs(shares - RATIOS) <= res.tolerance)
    # manifest: every article -> one split, parameters, input hashes, version, no timestamps
    man = json.loads((out / "manifest.json").read_text())
    assert man["parameters"]["seed"] == 1 and man["parameters"]["ratios"] == list(RATIOS)
    assert [f["sha256"] for i in man["inputs"] for f in i["files"]] == [before[p] for p in inputs]
    assert man["lvmdiag_version"]
    assert len(man["articles"]) == res.assignment.sizes.size == 320
    per_split = {n: sum(a[2] for a in man["articles"] if a[1] == n) for n in NAMES}
    assert per_split == {n: s.n for n, s in back.items()}
    assert "time" not in json.dumps({k: v for k, v in man.items() if k != "articles"}).lower()
    # inputs untouched
    assert {p: _sha(p) for p in inputs} == before


def test_arxiv_inputs_without_ids_are_grouped_by_recovery(tmp_path):
    inputs = _write_inputs(tmp_path / "in", keep_ids=False, store=_skewed_store(n_long=6, n_short=40))
    res = resplit(inputs, out_dir=tmp_path / "out", seed=0, stratify="none", analyses=False)
    assert res.group_method.startswith("recovered")
    assert res.fmt == "arxiv" and res.assignment.sizes.size == 46
    assert res.verification.passed  # includes: no chunk vector in two splits, read back from disk


def test_same_seed_gives_byte_identical_outputs(tmp_path):
    inputs = _write_inputs(tmp_path / "in", store=_skewed_store(n_long=20, n_short=60, d=16))
    kw = dict(seed=7, stratify=("length", "delta", "topic"), analyses=True, n_resamples=30)
    resplit(inputs, out_dir=tmp_path / "a", **kw)
    resplit(inputs, out_dir=tmp_path / "b", **kw)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name
    report = a["resplit_report.md"].decode()
    for section in ("Guarantees", "Per-stratum shares", "Temporal bias", "Divergence and leakage"):
        assert section in report
    resplit(inputs, out_dir=tmp_path / "c", **dict(kw, seed=8, analyses=False))
    assert _tree_bytes(tmp_path / "c")["manifest.json"] != a["manifest.json"]


def test_planted_skew_is_balanced_by_stratify_and_not_by_a_plain_group_split(inputs, tmp_path):
    res = resplit(inputs, out_dir=tmp_path / "out", seed=2, stratify=("length", "delta"), analyses=False)
    out = tmp_path / "out"
    # the long, high-Delta articles are ids < 80; share of their windows per split, read from disk
    long_windows, mean_delta = [], []
    for n in NAMES:
        s = load_sequences(out / f"{n}.npz")
        long_windows.append(int((s.article_ids < 80).sum()))
        d, ok = window_delta(np.asarray(s.contexts), np.asarray(s.targets))
        mean_delta.append(d[ok].mean())
    ours = np.abs(np.array(long_windows) / sum(long_windows) - RATIOS).max()
    assert ours <= 0.01, long_windows
    ours_delta_spread = max(mean_delta) - min(mean_delta)
    # the same articles under a plain group shuffle (GroupShuffleSplit-like), 20 seeds: val gets a
    # hypergeometric number of long articles (mean 8, sd 2.3 of 80), so |share - 0.1| ~ 0.02-0.03
    man = json.loads((out / "manifest.json").read_text())
    in_sets = [load_sequences(p) for p in inputs]
    sizes = res.assignment.sizes
    is_long = np.zeros(sizes.size, np.int64)
    for g, _, _, _, i, row in man["articles"]:  # the manifest locates each article in the inputs
        is_long[g] = int(in_sets[i].article_ids[row] < 80)
    assert is_long.sum() == 80
    plain = [
        np.abs(plain_group_split(sizes, RATIOS, is_long, rng=s).stratum_shares[1] - RATIOS).max() for s in range(20)
    ]
    assert np.mean(plain) >= 0.015 and np.mean(plain) >= 5 * ours, (np.mean(plain), ours)
    assert sum(p > 0.01 for p in plain) >= 15
    # mean Delta per split (a mix of ~0.47 long and ~0.08 short windows): spread across splits
    delta_sum = np.zeros(sizes.size)
    for seq in in_sets:
        d, ok = window_delta(np.asarray(seq.contexts), np.asarray(seq.targets))
        delta_sum += np.bincount(seq.article_ids, weights=np.where(ok, d, 0.0), minlength=sizes.size)
    spreads = []
    for s in range(20):
        sp = plain_group_split(sizes, RATIOS, is_long, rng=s).split_of_group
        means = [delta_sum[sp == j].sum() / sizes[sp == j].sum() for j in range(3)]
        spreads.append(max(means) - min(means))
    assert ours_delta_spread < 0.5 * np.median(spreads), (ours_delta_spread, np.median(spreads))


def test_refusals_and_force(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(InputError, match="not empty"):
        resplit(inputs, out_dir=out, analyses=False)
    with pytest.raises(InputError, match="holds the input"):
        resplit(inputs, out_dir=inputs[0].parent, force=True, analyses=False)
    with pytest.raises(InputError, match="holds the input|lies inside"):
        resplit(inputs, out_dir=inputs[0], force=True, analyses=False)
    with pytest.raises(InputError, match="one split name per ratio"):
        resplit(inputs, out_dir=tmp_path / "x", ratios=(0.5, 0.5), names=NAMES, analyses=False)
    with pytest.raises(InputError, match="no per-window column"):
        resplit(inputs, out_dir=tmp_path / "x", by="colour", analyses=False)
    assert not (tmp_path / "x").exists()
    # --force replaces only an earlier resplit output, never an arbitrary directory (e.g. a home directory)
    with pytest.raises(InputError, match="no manifest.json of an earlier resplit"):
        resplit(inputs, out_dir=out, force=True, analyses=False)
    assert (out / "keep.txt").read_text() == "old"
    resplit(inputs, out_dir=out / "earlier", analyses=False)
    earlier = out / "earlier"
    (earlier / "keep.txt").write_text("old")
    resplit(inputs, out_dir=earlier, force=True, analyses=False)
    assert not (earlier / "keep.txt").exists() and (earlier / "manifest.json").exists()
    assert not list(out.glob(".earlier.resplit-*"))


def test_same_input_twice_tiny_splits_and_bad_numbers_are_refused(inputs, tmp_path):
    with pytest.raises(InputError, match="given twice"):
        resplit([inputs[0], inputs[0]], out_dir=tmp_path / "o", analyses=False)
    with pytest.raises(InputError, match="given twice"):
        resplit([inputs[0], inputs[0].parent / ".." / inputs[0].parent.name / inputs[0].name],
                out_dir=tmp_path / "o", analyses=False)
    # a share smaller than the smallest article leaves a split without any article
    with pytest.raises(InputError, match="would get no article"):
        resplit(inputs, out_dir=tmp_path / "o", ratios=(0.9999, 0.0001), names=("a", "b"), analyses=False)
    for kwargs in ({"n_bins": 0}, {"n_bins": -3}, {"block_rows": 0}, {"min_articles": 0}):
        with pytest.raises(InputError, match="whole number >= 1"):
            resplit(inputs, out_dir=tmp_path / "o", analyses=False, **kwargs)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.resplit-*"))


def test_npy_dir_input_streams_to_npy_dir_output_and_groups_by_a_column(tmp_path):
    store = _skewed_store(n_long=4, n_short=60)
    splits = make_splits(store, k=K, ratios=(0.5, 0.5), names=("a", "b"), by="window", rng=1)
    dirs = []
    for name, s in splits.items():
        d = tmp_path / f"in_{name}"
        d.mkdir()
        np.save(d / "contexts.npy", np.asarray(s.contexts))
        np.save(d / "targets.npy", np.asarray(s.targets))
        np.save(d / "source.npy", (s.article_ids % 13).astype(np.int64))  # a user grouping column
        dirs.append(d)
    res = resplit(dirs, out_dir=tmp_path / "out", by="source", ratios=(0.6, 0.4), names=("tr", "te"),
                  stratify="none", analyses=False, block_rows=17)
    assert res.fmt == "npy_dir" and res.group_method.startswith("key:source")
    tr = load_sequences(tmp_path / "out" / "tr")
    te = load_sequences(tmp_path / "out" / "te")
    assert isinstance(tr.contexts, np.memmap)
    assert not np.intersect1d(np.asarray(tr.extras["source"]), np.asarray(te.extras["source"])).size
    assert tr.n + te.n == sum(s.n for s in splits.values())


def test_failed_guarantee_is_an_error_and_leaves_nothing(inputs, tmp_path, monkeypatch):
    import lvmdiag.data.writers as writers

    real = writers.save_sequences

    def drop_last_row(seqset, path, **kw):
        return real(seqset.subset(np.arange(seqset.n - 1)), path, **kw)

    monkeypatch.setattr(writers, "save_sequences", drop_last_row)
    with pytest.raises(GuaranteeError, match="every input window in exactly one output"):
        resplit(inputs, out_dir=tmp_path / "out", analyses=False)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.resplit-*"))


_RUN = (
    "import sys; from lvmdiag.resplit import resplit; "
    "resplit(sys.argv[1:-1], out_dir=sys.argv[-1], force=True, analyses=False)"
)


def _kill_during_write(inputs: list[Path], out: Path) -> None:
    """Start a resplit that sleeps after each output file; SIGKILL it once a file is in its temp dir."""
    env = dict(os.environ, **{SLEEP_ENV: "30"})
    proc = subprocess.Popen([sys.executable, "-c", _RUN, *map(str, inputs), str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tmps = list(out.parent.glob(f".{out.name}.resplit-*.tmp"))
            if tmps and any(f.suffix == ".npz" for f in tmps[0].iterdir()):
                break
            assert proc.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("no output file appeared in the temporary directory")
    finally:
        proc.kill()
        proc.wait()


def test_sigkill_during_writing_leaves_output_absent_or_old_and_inputs_untouched(inputs, tmp_path):
    before = {p: _sha(p) for p in inputs}
    out = tmp_path / "out"
    _kill_during_write(inputs, out)
    assert not out.exists()  # absent, never half-written
    assert {p: _sha(p) for p in inputs} == before
    # a complete earlier output survives a killed --force run unchanged
    resplit(inputs, out_dir=out, seed=0, analyses=False)
    assert not list(tmp_path.glob(".out.resplit-*"))  # the killed run's temp dir was cleaned up
    complete = _tree_bytes(out)
    _kill_during_write(inputs, out)
    assert _tree_bytes(out) == complete
    assert {p: _sha(p) for p in inputs} == before


def test_wikipedia_form_with_metadata_groups_and_user_strata(tmp_path):
    # Wikipedia form: context_sequences / target_vectors / metadata dicts (article_index, source).
    store = _skewed_store(n_long=10, n_short=110, d=16)
    splits = make_splits(store, k=K, ratios=(0.8, 0.2), names=("train", "val"), by="window", rng=3)
    paths = []
    for name, s in splits.items():
        meta = np.array(
            [{"article_index": int(a), "source_dataset": "news" if a % 3 == 0 else "wiki", "crosses_article": False}
             for a in s.article_ids],
            dtype=object,
        )
        p = tmp_path / f"wiki_{name}.npz"
        np.savez(p, context_sequences=np.asarray(s.contexts), target_vectors=np.asarray(s.targets), metadata=meta)
        paths.append(p)
    res = resplit(paths, out_dir=tmp_path / "out", ratios=(0.5, 0.5), names=("a", "b"), allow_pickle=True,
                  stratify=("source_dataset",), analyses=False)
    assert res.fmt == "wikipedia" and res.group_method == "given"
    assert set(res.strata.labels) == {"source_dataset=news", "source_dataset=wiki"}
    assert np.all(np.abs(res.assignment.stratum_shares - 0.5) <= 0.05)
    back = {n: load_sequences(tmp_path / "out" / f"{n}.npz", allow_pickle=True) for n in ("a", "b")}
    arts = {n: {m["article_index"] for m in s.extras["metadata"]} for n, s in back.items()}
    assert arts["a"] and arts["b"] and not arts["a"] & arts["b"]
    # grouping by a metadata key instead of the article
    res2 = resplit(paths, out_dir=tmp_path / "out2", ratios=(0.5, 0.5), names=("a", "b"), allow_pickle=True,
                   by="source_dataset", stratify="none", analyses=False)
    assert res2.assignment.sizes.size == 2 and res2.group_method.startswith("key:source_dataset")
    # without --allow-pickle the metadata is skipped; --by a metadata key then says how to fix it
    with pytest.warns(Warning), pytest.raises(InputError, match="allow-pickle"):
        resplit(paths, out_dir=tmp_path / "out3", by="source_dataset", analyses=False)


def test_article_store_and_two_split_inputs(tmp_path):
    store = make_store(n_articles=40, d=16, length=(8, 30), rng=4)
    p_store = tmp_path / "store.npz"
    np.savez(p_store, vectors=store.vectors, article_indices=store.article_ids.astype(np.int32),
             chunk_indices=store.chunk_index.astype(np.int32))
    res = resplit([p_store], out_dir=tmp_path / "o1", k=K, ratios=(0.5, 0.5), names=("a", "b"), analyses=False)
    assert res.verification.passed and res.group_method == "given"
    assert load_sequences(tmp_path / "o1" / "a.npz").fmt == "rebuilt"  # windows written with their ids
    # the summary and the manifest name the form on disk, not the input's
    assert res.fmt == "rebuilt (from article_store inputs)"
    assert json.loads((tmp_path / "o1" / "manifest.json").read_text())["output_format"] == "rebuilt"
    assert sum(res.n_windows) == int(np.sum(np.maximum(np.bincount(store.article_ids) - K, 0)))
    # a two-split file contributes both of its splits to the pool
    sp = make_splits(store, k=K, ratios=(0.7, 0.3), names=("train", "val"), by="window", keep_ids=False, rng=0)
    p_two = tmp_path / "two.npz"
    np.savez(p_two, context_sequences=np.asarray(sp["train"].contexts), target_vectors=np.asarray(sp["train"].targets),
             val_context_sequences=np.asarray(sp["val"].contexts), val_target_vectors=np.asarray(sp["val"].targets))
    res2 = resplit([p_two], out_dir=tmp_path / "o2", ratios=(0.5, 0.5), names=("a", "b"), analyses=False)
    assert res2.verification.passed and set(res2.before) == {"train", "val"}
    assert sum(res2.n_windows) == sp["train"].n + sp["val"].n
