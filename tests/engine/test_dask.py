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
def cluster():
    """One real LocalCluster (2 single-threaded worker processes) for the module's Dask tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


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


def test_dask_on_a_local_cluster_equals_the_local_runner(splits, one_pass, tmp_path, cluster):
    sharded = {n: write_shards(s, tmp_path / n, [s.n // 3, 2 * s.n // 3]) for n, s in splits.items()}
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
    np.save(train[1] / "contexts.npy", np.asarray(splits["train"].contexts[100:], np.float16))  # another dtype:
    np.save(train[1] / "targets.npy", np.asarray(splits["train"].targets[100:], np.float16))  # other chunk hashes
    np.save(train[1] / "article_ids.npy", np.asarray(splits["train"].article_ids[100:], np.int64))
    with pytest.raises(InputError, match=r"shard-001 stores float16/float16 vectors but .*shard-000 stores "
                                         r"float32/float32 .* write every shard of a split in one dtype"):
        analyze_data({"train": train, "val": val}, **FAST)


def test_relative_shard_paths_are_opened_as_absolute_paths(splits, tmp_path, monkeypatch):
    """A worker started in another directory (an external scheduler) must find the shard: paths are absolute."""
    from lvmdiag.engine.sources import open_sharded

    write_shards(splits["val"], tmp_path / "val", [30])
    monkeypatch.chdir(tmp_path)
    split = open_sharded(["val/shard-000", "val/shard-001"], "val")
    assert all(sh.path == str(tmp_path / "val" / f"shard-00{i}") for i, sh in enumerate(split.shards))


def _store_table(store, id_offset=0):
    """An article store as a pyarrow table: embedding (fixed_size_list<float32>), article_id, chunk_index."""
    pa = pytest.importorskip("pyarrow")
    d = store.vectors.shape[1]
    return pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(store.vectors.astype(np.float32).ravel()), d),
                     "article_id": pa.array(store.article_ids + id_offset), "chunk_index": pa.array(store.chunk_index)})


def _parquet_store(store, path, shards=1, id_offset=0):
    """The store written by pyarrow as one Parquet file, or as a folder of ``shards`` files."""
    pq = pytest.importorskip("pyarrow.parquet")
    table = _store_table(store, id_offset)
    if shards == 1:
        pq.write_table(table, path, row_group_size=50)
        return path
    path.mkdir()
    cuts = np.linspace(0, table.num_rows, shards + 1).astype(int)
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        pq.write_table(table.slice(a, b - a), path / f"part-{i:03d}.parquet", row_group_size=40)
    return path


def test_parquet_inputs_run_on_dask_like_locally(tmp_path, cluster):
    """A Parquet store (one file, and a folder of shards cutting articles) is sent to the workers by path
    and reopened there (pyarrow's readers cannot be pickled), the train split as several window ranges
    read in parallel; the report equals the local one."""
    train = make_store(n_articles=24, d=10, rho=0.8, length=(8, 14), rng=11)
    val = make_store(n_articles=8, d=10, rho=0.8, length=(8, 14), rng=12)
    inputs = {"train": _parquet_store(train, tmp_path / "train", shards=3),
              "val": _parquet_store(val, tmp_path / "val.parquet", id_offset=1000)}
    local = analyze_data(inputs, **FAST).to_dict()
    remote = analyze_data(inputs, engine="dask", scheduler=cluster.scheduler_address, **FAST).to_dict()
    assert remote["engine"]["rows_read"] == local["engine"]["rows_read"]
    assert remote["engine"]["n_parts"] > local["engine"]["n_parts"] == 2  # train cut into window ranges
    assert_same_report(remote, local)


class Faulty:
    """A row source whose read fails on the worker: ``"die_once"`` kills the worker process the first time
    (a marker file remembers: a node lost mid-run), ``"die"`` every time (a shard that crashes any node),
    ``"bad"`` raises InputError (a reader finding bad data)."""

    def __init__(self, seq, fault, marker=None):
        self.seq, self.fault, self.marker = seq, fault, None if marker is None else str(marker)

    @property
    def n(self):
        return self.seq.n

    def iter_blocks(self, block_rows=8192):
        import os
        from pathlib import Path

        if self.fault == "bad":
            if self.marker:  # one line per attempt to read it
                with open(self.marker, "a") as fh:
                    fh.write("read\n")
            raise InputError("shard gone-bad.npy has NaN in its header")
        if self.fault == "die" or not Path(self.marker).exists():
            if self.marker:
                Path(self.marker).touch()
            os._exit(1)
        yield from self.seq.iter_blocks(block_rows)


def _bias_plan(splits, faulty=None, **fault):
    """The bias analyzer of the splits and one whole-split Part each, split ``faulty`` read through Faulty."""
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.engine.block import Part
    from lvmdiag.engine.sections import BiasAnalyzer

    groups = resolve_groups(list(splits.values()))
    an = [BiasAnalyzer("train", 3, 10, groups.method, groups.note, 20)]
    parts = [Part(n, 0, Faulty(s, **fault) if n == faulty else s, lab) for (n, s), lab in zip(splits.items(), groups.labels)]
    return an, parts, groups


def test_a_worker_that_dies_mid_run_is_replaced_and_the_result_is_complete(splits, tmp_path, cluster):
    from lvmdiag.engine.dask_runner import run_dask
    from lvmdiag.engine.runner import run_local

    an, flaky, _ = _bias_plan(splits, "val", fault="die_once", marker=tmp_path / "died")
    prepared, states, summary = run_dask(flaky, an, scheduler=cluster.scheduler_address)
    assert (tmp_path / "died").exists()  # a worker did die
    assert summary.rows_read == {n: s.n for n, s in splits.items()}
    _, ref, _ = run_local(_bias_plan(splits)[1], an)
    for n in splits:
        np.testing.assert_allclose(states["bias"][n].inner.sums, ref["bias"][n].inner.sums, atol=1e-9)
        assert (states["bias"][n].inner.counts == ref["bias"][n].inner.counts).all()


def test_dask_progress_ticks_as_parts_finish_and_a_part_that_always_kills_its_worker_fails_in_one_line(splits):
    """Progress: one tick per part, monotone, ending at every window. A part that kills every worker it
    runs on: an EngineError naming what finished, never a result from the other parts."""
    import dask

    distributed = pytest.importorskip("distributed")
    from lvmdiag.engine.block import Part
    from lvmdiag.engine.dask_runner import run_dask
    from lvmdiag.errors import EngineError

    an, _, groups = _bias_plan(splits)
    parts = []
    for (n, s), lab in zip(splits.items(), groups.labels):
        cuts = [0, s.n // 2, s.n]
        parts += [Part(n, a, s.subset(np.arange(a, b)), lab[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    total = sum(p.n for p in parts)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cl:
            ticks = []
            _, _, summary = run_dask(parts, an, scheduler=cl.scheduler_address, progress=lambda d, t: ticks.append((d, t)))
            assert summary.rows_read == {n: s.n for n, s in splits.items()}
            assert ticks[0] == (0, total) and ticks[-1] == (total, total) and len(ticks) == len(parts) + 1
            assert all(a[0] < b[0] for a, b in zip(ticks, ticks[1:]))
            bad = parts[:-1] + [Part(parts[-1].split, parts[-1].start, Faulty(parts[-1].source, "die"), parts[-1].labels)]
            with pytest.raises(EngineError, match=r"the Dask run failed \(KilledWorker.*; the part lost was '(train|val)' "
                                                  r"rows \d+-\d+.*\).*no result is reported") as err:
                run_dask(bad, an, scheduler=cl.scheduler_address, retries=0)
            assert "\n" not in str(err.value)


def test_an_input_error_raised_on_a_worker_comes_back_as_itself_and_is_not_retried(splits, cluster, tmp_path):
    """A bad input fails the same way every time: it is read once, not once per retry, and raised as itself."""
    from lvmdiag.engine.dask_runner import run_dask

    for faulty in ("val", "train"):  # a phase-0 part, and a phase-1 part (after the prepare task)
        marker = tmp_path / f"reads-{faulty}"
        an, parts, _ = _bias_plan(splits, faulty, fault="bad", marker=marker)
        with pytest.raises(InputError, match="gone-bad.npy has NaN in its header"):
            run_dask(parts, an, scheduler=cluster.scheduler_address, retries=2)
        assert marker.read_text().count("read") == 1


def test_arrow_inputs_run_on_dask_as_one_part_per_split(tmp_path, cluster):
    """Arrow record batches pickle by value: an Arrow split is not cut (that would ship it once per part)."""
    pa = pytest.importorskip("pyarrow")
    train = make_store(n_articles=16, d=10, rho=0.8, length=(8, 12), rng=13)
    val = make_store(n_articles=6, d=10, rho=0.8, length=(8, 12), rng=14)
    inputs = {}
    for name, st, off in (("train", train, 0), ("val", val, 1000)):
        table = _store_table(st, off)
        inputs[name] = tmp_path / f"{name}.arrow"
        with pa.ipc.new_file(str(inputs[name]), table.schema) as w:
            for batch in table.to_batches(max_chunksize=20):
                w.write_batch(batch)
    local = analyze_data(inputs, **FAST).to_dict()
    remote = analyze_data(inputs, engine="dask", scheduler=cluster.scheduler_address, **FAST).to_dict()
    assert remote["engine"]["n_parts"] == 2
    assert_same_report(remote, local)


def test_a_lone_worker_that_dies_is_replaced_and_the_plans_are_sent_again(splits, tmp_path):
    """With one worker, everything it held dies with it: the plans travel as a task, so they are
    recomputed on its replacement (scattered data would be lost for good)."""
    distributed = pytest.importorskip("distributed")
    from lvmdiag.engine.dask_runner import run_dask

    an, parts, _ = _bias_plan(splits, "val", fault="die_once", marker=tmp_path / "died")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        _, states, summary = run_dask(parts, an, scheduler=cl.scheduler_address)
    assert (tmp_path / "died").exists() and summary.rows_read == {n: s.n for n, s in splits.items()}


def test_the_approximate_leakage_search_runs_on_dask_like_locally(cluster):
    pytest.importorskip("faiss")
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.engine.block import Part
    from lvmdiag.engine.dask_runner import run_dask
    from lvmdiag.engine.leakage import LeakageAnalyzer
    from lvmdiag.engine.runner import finalize_all, run_local
    from tests.engine.test_ann import planted

    splits = planted(np.random.default_rng(3), n_train=2000, n_val=400)
    groups = resolve_groups(list(splits.values()))
    an = [LeakageAnalyzer(list(splits), "train", 48, groups, n_reference=2000, search="ann")]
    parts = [Part("val", 0, splits["val"], groups.labels[1])]
    parts += [Part("train", lo, splits["train"].subset(np.arange(lo, lo + 500)), groups.labels[0][lo : lo + 500])
              for lo in range(0, 2000, 500)]
    local = finalize_all(*run_local(parts, an)[:2], splits)[0]["leakage"]
    prepared, states, _ = run_dask(parts, an, scheduler=cluster.scheduler_address)
    remote = finalize_all(prepared, states, splits)[0]["leakage"]
    assert remote.search == "ann" and remote.splits[0].n_near_chunks >= 0.99 * 150
    assert_same_report(remote.to_dict(), local.to_dict())


def test_id_less_shards_are_recovered_on_the_workers_hashing_and_linking(splits, tmp_path, cluster, monkeypatch):
    """Without ids, the whole recovery runs on the workers (the two-round join): the client neither hashes a
    vector nor links keys, and the report equals the local one, articles cut across shards included."""
    from dataclasses import replace

    from lvmdiag.analyzers import data_report  # noqa: F401  (imports the engine modules before patching)
    from lvmdiag.data import groups, recover

    bare = {n: replace(s, article_ids=None) for n, s in splits.items()}
    sharded = {n: write_shards(s, tmp_path / n, [s.n // 3, 2 * s.n // 3]) for n, s in bare.items()}
    local = analyze_data(sharded, **FAST)
    assert local.grouping.startswith("recovered")

    def client_side(*args, **kwargs):
        raise AssertionError("the client hashed or linked")

    # the workers are other processes: unaffected
    monkeypatch.setattr(recover, "slot_keys", client_side)
    monkeypatch.setattr(groups, "recover_articles", client_side)
    rep = analyze_data(sharded, engine="dask", scheduler=cluster.scheduler_address, **FAST)
    assert rep.grouping == local.grouping
    assert_same_report(rep.to_dict(), local.to_dict())


def test_recovery_on_workers_equals_recover_articles_for_shards_and_a_client_side_file(splits, tmp_path, cluster):
    """Shards (some articles cut across them) and an in-memory split pooled: labels and every diagnostic equal
    the one-machine recovery exactly, for any number of key buckets."""
    from dataclasses import replace

    distributed = pytest.importorskip("distributed")
    from lvmdiag.data.recover import recover_articles
    from lvmdiag.engine.dask_recovery import recover_on_workers
    from lvmdiag.engine.sources import open_sharded

    train = replace(splits["train"], article_ids=None)
    val = replace(splits["val"], article_ids=None)
    train = train.subset(np.r_[np.arange(train.n), np.arange(40)])  # 40 windows twice: duplicates across shards
    sources = [open_sharded(write_shards(train, tmp_path / "train", [100, 101, 350]), "train"), val]
    want = recover_articles([train, val])
    assert want.n_duplicate_windows >= 40 and want.share_linked > 0.9
    ticks = []
    with distributed.Client(cluster.scheduler_address) as client:
        for n_buckets in (None, 1, 3):
            got = recover_on_workers(sources, client, n_buckets=n_buckets, progress=lambda d, t: ticks.append((d, t)))
            assert got.to_dict() == want.to_dict()
            for a, b in zip(got.labels, want.labels):
                np.testing.assert_array_equal(a, b)
    assert ticks[-1] == (train.n + val.n, train.n + val.n)


def test_a_bad_shard_in_the_recovery_fails_once_in_one_line(splits, tmp_path, cluster):
    """The recovery's hashing task returns a bad shard's InputError instead of raising it: read once, not per retry."""
    from dataclasses import replace

    distributed = pytest.importorskip("distributed")
    from lvmdiag.engine.dask_recovery import recover_on_workers
    from lvmdiag.engine.sources import ShardedSplit, open_sharded

    val = replace(splits["val"], article_ids=None)
    good = open_sharded(write_shards(val, tmp_path / "val", [20]), "val")
    marker = tmp_path / "reads"
    split = ShardedSplit([good.shards[0], BadShard(good.shards[1].path, marker)], split="val")
    with distributed.Client(cluster.scheduler_address) as client:
        with pytest.raises(InputError, match="cannot be read: planted"):
            recover_on_workers([split], client, retries=2)
    assert marker.read_text().count("read") == 1


class BadShard:
    """A shard whose vectors cannot be read (counted in ``marker``, one line per attempt)."""

    def __init__(self, path, marker):
        self.path, self.marker, self.n, self.k, self.d = str(path), str(marker), 5, 3, 10

    def article_ids(self):
        return None

    @property
    def contexts(self):
        with open(self.marker, "a") as fh:
            fh.write("read\n")
        raise InputError(f"shard {self.path}/contexts.npy cannot be read: planted")

    targets = contexts


def test_a_refused_scheduler_address_fails_at_once_in_one_line():
    """Nothing listening at a tcp:// address: one InputError now, not after distributed's 30 s of retries."""
    import socket

    pytest.importorskip("distributed")
    from lvmdiag.engine.dask_runner import CONNECT_TIMEOUT_S, _refused, dask_client

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert CONNECT_TIMEOUT_S == 30  # the wait this check spares (the test itself never waits for it)
    with pytest.raises(InputError, match=rf"--scheduler tcp://127.0.0.1:{port}: cannot connect \(connection refused"):
        with dask_client(f"tcp://127.0.0.1:{port}"):
            pass
    assert _refused("inproc://x") is None and _refused("tcp://no-port-given") is None
