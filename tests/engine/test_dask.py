"""Sharded inputs: shard-then-merge equals one pass, and the Dask path on a real LocalCluster equals the local one."""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lvmdiag.analyzers.data_report import analyze_data
from lvmdiag.errors import InputError
from lvmdiag.synthetic import make_splits, make_store
from tests.engine.shards import assert_same_report, write_shards

FAST = dict(n_permutations=20, n_bootstrap=20)


@pytest.fixture(scope="module")
def splits():
    store = make_store(n_articles=30, d=10, rho=0.8, article_rho_sd=0.05, rng=7)
    return make_splits(store, k=3, by="window", rng=2)


@pytest.fixture(scope="module")
def one_pass(splits):
    return analyze_data(splits, **FAST).to_dict()


@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sharding_then_merge_equals_one_pass(splits, one_pass, tmp_path_factory, data):
    root = tmp_path_factory.mktemp("shards")
    sharded = {}
    for name, seq in splits.items():
        cuts = data.draw(st.lists(st.integers(1, seq.n - 1), max_size=4), label=f"{name} cuts")
        sharded[name] = write_shards(seq, root / name, cuts)
    rep = analyze_data(sharded, **FAST).to_dict()
    assert_same_report(rep, one_pass)


def test_dask_on_a_local_cluster_equals_the_local_runner(splits, one_pass, tmp_path):
    distributed = pytest.importorskip("distributed")
    sharded = {n: write_shards(s, tmp_path / n, [s.n // 3, 2 * s.n // 3]) for n, s in splits.items()}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rep = analyze_data(sharded, engine="dask", scheduler=cluster.scheduler_address, **FAST).to_dict()
    assert_same_report(rep, one_pass)  # == the local runner on the same rows (the sharding property above)


def test_bad_shards_fail_in_one_line(splits, tmp_path):
    val = write_shards(splits["val"], tmp_path / "val", [])
    train = write_shards(splits["train"], tmp_path / "train", [100])
    np.save(train[1] / "contexts.npy", np.zeros((5, 3, 11), np.float32))  # a shard from another encoder
    np.save(train[1] / "targets.npy", np.zeros((5, 11), np.float32))
    np.save(train[1] / "article_ids.npy", np.zeros(5, np.int64))
    with pytest.raises(InputError, match=r"shard-001 has K=3, D=11 .* K=3, D=10"):
        analyze_data({"train": train, "val": val}, **FAST)
    with pytest.raises(InputError, match="shard .*gone is missing"):
        analyze_data({"train": [train[0], tmp_path / "gone"], "val": val}, **FAST)
