"""The local runner: every section through the engine equals its one-shot function, and rows are read once."""

import numpy as np
import pytest

from lvmdiag.analyzers import data_report
from lvmdiag.analyzers.data_report import analyze_data
from lvmdiag.data.groups import resolve_groups
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.engine.data import run_sections
from lvmdiag.synthetic import make_splits, make_store
from _compare import assert_same_result

FAST = dict(n_permutations=40, n_bootstrap=40, threshold=0.98, alpha=0.05)
SEEDS = {"bias": 1, "direction": 2, "divergence": 3, "leakage": 4}


@pytest.fixture(scope="module")
def splits():
    store = make_store(n_articles=40, d=12, rho=0.8, article_rho_sd=0.05, rng=5)
    return make_splits(store, k=4, by="window", rng=1)  # window split: leakage present


def one_shot(splits, groups, name):
    fn = getattr(data_report, f"_run_{name}")
    if name == "bias":
        return fn(splits, groups, "train", FAST["n_bootstrap"], FAST["n_permutations"], FAST["alpha"], SEEDS[name],
                  None)
    if name == "leakage":
        return fn(splits, groups, "train", FAST["threshold"], None)
    return fn(splits, groups, "train", FAST["n_permutations"], FAST["n_bootstrap"], FAST["alpha"], SEEDS[name], None)


def test_every_section_through_the_engine_equals_its_one_shot_function(splits):
    groups = resolve_groups(list(splits.values()))
    results, skipped, summary = run_sections(splits, groups, data_report.SECTIONS, "train", seeds=SEEDS, **FAST)
    assert skipped == {}
    assert summary.rows_read == {n: s.n for n, s in splits.items()}
    for name in data_report.SECTIONS:
        assert_same_result(results[name].to_dict(), one_shot(splits, groups, name).to_dict(), atol=1e-6)
    assert results["leakage"].found()


class CountingArray:
    """Wraps an array and counts how many times each row is read (slices and fancy indices)."""

    def __init__(self, arr):
        self.arr, self.reads = arr, np.zeros(arr.shape[0], np.int64)
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __len__(self):
        return self.arr.shape[0]

    def __getitem__(self, idx):
        rows = idx[0] if isinstance(idx, tuple) else idx
        np.add.at(self.reads, np.arange(self.arr.shape[0])[rows], 1)
        return self.arr[idx]

    def __array__(self, dtype=None, copy=None):
        self.reads += 1
        return np.asarray(self.arr, dtype=dtype)


def counted(seq: SequenceSet) -> SequenceSet:
    from dataclasses import replace

    return replace(seq, contexts=CountingArray(np.asarray(seq.contexts)), targets=CountingArray(np.asarray(seq.targets)))


def test_the_data_report_reads_every_row_once_plus_stated_extras(splits):
    data = {n: counted(s) for n, s in splits.items()}
    analyze_data(data, sections=("bias", "direction", "leakage"), **{k: v for k, v in FAST.items()})
    for s in data.values():  # bias + direction + leakage: exactly one read of every row
        assert (s.contexts.reads == 1).all() and (s.targets.reads == 1).all()
    data = {n: counted(s) for n, s in splits.items()}
    analyze_data(data, **FAST)
    # divergence adds only the median-heuristic sample (<= 1000 random rows per view, not a pass); its
    # classifier is scored from the merged sums (no re-read)
    for name, s in data.items():
        extra = s.contexts.reads - 1
        assert (extra >= 0).all() and extra.sum() <= 1000, name
        assert (s.targets.reads - 1 >= 0).all() and (s.targets.reads - 1).sum() <= 1000, name


def test_files_are_validated_inside_the_single_pass(splits, tmp_path, monkeypatch):
    """From .npy directories: no separate validation scan; the pass reads each row once and still warns."""
    import warnings

    from lvmdiag.data import readers
    from lvmdiag.errors import LvmdiagWarning

    paths = {}
    for name, s in splits.items():
        p = tmp_path / name
        p.mkdir()
        c = np.array(s.contexts)
        if name == "val":
            c[3, 1] = 0.0  # a failed encoder batch
        np.save(p / "contexts.npy", c)
        np.save(p / "targets.npy", s.targets)
        np.save(p / "article_ids.npy", s.article_ids)
        paths[name] = p
    opened = []
    real_load = np.load

    def counting_load(f, *args, **kwargs):
        arr = real_load(f, *args, **kwargs)
        if str(f).endswith(("contexts.npy", "targets.npy")):
            opened.append(CountingArray(arr))
            return opened[-1]
        return arr

    monkeypatch.setattr(readers.np, "load", counting_load)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = analyze_data(paths, sections=("bias", "direction", "leakage"), **FAST)
    assert len(opened) == 4 and all((a.reads == 1).all() for a in opened)
    assert any(issubclass(w.category, LvmdiagWarning) and "1 of" in str(w.message) and "all-zero" in str(w.message)
               for w in caught)
    assert rep.direction.split("val").n_used == splits["val"].n - 1  # the zero row is excluded, not analysed


def test_only_npy_shard_directories_count_as_a_sharded_split(tmp_path):
    """A DatasetDict or partitioned Parquet directory (sub-folders without contexts.npy) goes to the readers."""
    from lvmdiag.engine.sources import shard_paths

    dd = tmp_path / "dataset_dict"
    for name in ("train", "val"):
        (dd / name).mkdir(parents=True)
        (dd / name / "data-00000-of-00001.arrow").write_bytes(b"")
    assert shard_paths(dd) is None
    shards = tmp_path / "shards"
    for name in ("part0", "part1"):
        (shards / name).mkdir(parents=True)
        np.save(shards / name / "contexts.npy", np.zeros((2, 3, 4), np.float32))
    assert shard_paths(shards) == [shards / "part0", shards / "part1"]


def test_finalize_with_release_frees_each_state_and_runs_the_heaviest_last_with_the_same_results(splits):
    """finalize_all(release=True), as run_sections calls it: the same results as keeping every state, each
    state dropped once its section is finalized, and direction/divergence finalized after the others (the
    peak of a 10^6-window run was divergence's finalize on top of every other state)."""
    from lvmdiag.engine.data import parts_of, plan_sections
    from lvmdiag.engine.runner import FINALIZE_LAST, finalize_all, run_local

    groups = resolve_groups(list(splits.values()))
    sections = ["bias", "direction", "divergence", "leakage"]
    an, _ = plan_sections(splits, groups, sections, "train", n_permutations=20, n_bootstrap=20, threshold=0.98,
                          alpha=0.05, seeds={s: 3 for s in sections})
    prepared, states, _ = run_local(parts_of(splits, groups, "train"), an)
    kept, _ = finalize_all(prepared, states, splits)
    calls = []
    for a in prepared:  # record the order finalize runs in, and how many states are alive at that moment
        real = a.finalize

        def spy(state, sources, real=real, name=a.name):
            calls.append((name, len(states)))
            return real(state, sources)

        object.__setattr__(a, "finalize", spy)
    released, _ = finalize_all(prepared, states, splits, release=True)
    assert list(released) == list(kept) == sections
    for name in sections:
        assert_same_result(released[name], kept[name])
    assert [n for n, _ in calls][-2:] == list(FINALIZE_LAST) and calls[-1][1] == 1  # divergence alone at the end
    assert states == {} and prepared == [None] * 4
