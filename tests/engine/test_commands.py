"""`lvmdiag bias|direction|diverge|leakage --engine local|dask` and shard folders (issue 9, item 3):
the engine's result equals the one-shot command's, through the CLI and the Python API.

Equality policy: tests/engine/shards.py::assert_same_report (docs/ENGINE.md, "Equality policy").
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import lvmdiag
from lvmdiag.synthetic import make_splits, make_store, store_windows
from lvmdiag_cli.app import app
from tests.engine.shards import assert_same_report, write_shards

runner = CliRunner()
COMMANDS = ("bias", "direction", "diverge", "leakage")
FAST = {"bias": ["--n-resamples", "50", "--n-permutations", "20"], "direction": ["--n-permutations", "20"],
        "diverge": ["--n-permutations", "20", "--n-bootstrap", "20"], "leakage": []}


class Data:
    """Three splits as one .npy directory each (the one-shot input) and as shard folders whose cuts fall
    inside articles (article ids span shards); train has a few all-zero rows (excluded and counted)."""

    def __init__(self, root):
        store = make_store(n_articles=30, d=10, rho=0.8, article_rho_sd=0.05, zero_rows=0.02, rng=7)
        splits = make_splits(store, k=3, by="window", rng=2)  # windows of one article in train and val: leakage
        foreign = make_store(n_articles=8, d=10, rho=0.6, shift=0.5, first_article_id=50_000, rng=9)
        splits["ood"] = store_windows(foreign, 3, "ood")
        self.n = {name: s.n for name, s in splits.items()}
        self.npy, self.shards, self.shard_paths = {}, {}, {}
        for name, s in splits.items():
            d = root / "npy" / name
            d.mkdir(parents=True)
            for key in ("contexts", "targets", "article_ids"):
                np.save(d / f"{key}.npy", np.asarray(getattr(s, key)))
            self.npy[name] = d
            cuts = [s.n // 3 + 1, (2 * s.n) // 3 + 2]
            self.shard_paths[name] = write_shards(s, root / "shards" / name, cuts)
            self.shards[name] = root / "shards" / name
            ids = np.asarray(s.article_ids)
            assert any(ids[c - 1] == ids[c] for c in cuts), "an article must straddle a shard cut"
        assert np.any(np.all(np.load(self.npy["train"] / "targets.npy") == 0, axis=1)), "no zero row planted"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return Data(tmp_path_factory.mktemp("commands"))


@pytest.fixture(scope="module")
def cluster():
    """A real LocalCluster: 2 single-threaded worker processes (the shards are memory-mapped by the workers)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _inputs(paths, command):
    names = ("train", "val", "ood")
    return [a for n in names for a in (f"--{n}", str(paths[n]))]


def _json(args):
    res = runner.invoke(app, [*args, "--quiet", "--json", "-"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def one_shot(data):
    """Today's one-shot command on the .npy directories (no --engine: the default path)."""
    return {c: _json([c, *_inputs(data.npy, c), *FAST[c]]) for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS)
def test_engine_local_and_dask_equal_the_one_shot_command(command, data, one_shot, cluster):
    expected = one_shot[command]
    assert "engine" not in expected  # the default stays the one-shot path
    runs = {
        ("local", 3): _json([command, *_inputs(data.npy, command), *FAST[command], "--engine", "local"]),
        ("local", 9): _json([command, *_inputs(data.shards, command), *FAST[command]]),  # shards: the local engine
        ("dask", 9): _json([command, *_inputs(data.shards, command), *FAST[command], "--engine", "dask",
                            "--scheduler", cluster.scheduler_address]),
    }
    for (engine, parts), rep in runs.items():
        summary = rep.pop("engine")
        assert (summary["engine"], summary["n_parts"]) == (engine, parts)
        assert summary["rows_read"] == data.n  # every window of every split, read once
        assert_same_report(rep, expected)


def test_the_output_states_the_engine_and_the_windows_read(data, cluster, tmp_path):
    out, html = tmp_path / "leak.md", tmp_path / "leak.html"
    res = runner.invoke(app, ["leakage", *_inputs(data.shards, "leakage"), "--engine", "dask", "--scheduler",
                              cluster.scheduler_address, "--quiet", "--out", str(out), "--html", str(html)])
    assert res.exit_code == 0, res.output
    line = (f"Engine: dask (9 part(s), 9 block(s)); windows read in one pass: val {data.n['val']}, "
            f"ood {data.n['ood']}, train {data.n['train']}.")
    markdown = out.read_text()
    assert markdown.splitlines()[:3] == ["## Leakage", "", f"*{line}*"]  # under the title
    assert line in html.read_text()
    plain = runner.invoke(app, ["leakage", *_inputs(data.npy, "leakage"), "--quiet"])
    assert plain.exit_code == 0 and "Engine:" not in plain.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_the_api_takes_engine_and_scheduler_and_equals_the_cli(command, data, one_shot, cluster):
    fn = getattr(lvmdiag, command)
    kwargs = {"bias": dict(n_resamples=50, n_permutations=20), "direction": dict(n_permutations=20),
              "diverge": dict(n_permutations=20, n_bootstrap=20), "leakage": {}}[command]
    cli = {k: v for k, v in one_shot[command].items() if k not in ("schema_version", "lvmdiag_version")}
    shards = [data.shard_paths[n] for n in ("train", "val", "ood")]  # lists of shard directories
    on_dask = fn(*shards, engine="dask", scheduler=cluster.scheduler_address, **kwargs)
    assert_same_report(on_dask.to_dict(), cli)
    default = fn(*(str(data.npy[n]) for n in ("train", "val", "ood")), **kwargs)  # paths, no engine: one-shot
    assert default.to_dict() == json.loads(json.dumps(cli))


def test_bias_of_one_split_through_the_engine_is_the_one_split_result(data):
    one = _json(["bias", "--train", str(data.npy["train"]), "--n-resamples", "50", "--no-direction"])
    eng = _json(["bias", "--train", str(data.shards["train"]), "--n-resamples", "50", "--no-direction"])
    assert eng.pop("engine")["rows_read"] == {"train": data.n["train"]}
    assert "differences" not in one and one["direction"] is None  # a BiasResult, not a comparison
    assert_same_report(eng, one)


# Bad --engine/--scheduler values, an unreachable scheduler and a shard with another D: the bad-input
# table of every command (tests/robustness/test_bad_input.py::_engine_cases).
