"""`lvmdiag data` with shard directories and the --engine/--scheduler options."""

import json

from typer.testing import CliRunner

from lvmdiag.synthetic import make_splits, make_store
from lvmdiag_cli.app import app
from tests.engine.shards import write_shards

runner = CliRunner()
FAST = ["--n-permutations", "20", "--n-bootstrap", "20", "--quiet"]


def test_data_reads_a_folder_of_shards_and_rejects_bad_engine_options(tmp_path):
    store = make_store(n_articles=30, d=10, rho=0.8, rng=3)
    for name, s in make_splits(store, k=3, by="window", rng=1).items():
        write_shards(s, tmp_path / name, [s.n // 2])
    res = runner.invoke(app, ["data", "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val"), *FAST,
                              "--json", "-"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["leakage"]["splits"][0]["n_shared_chunks"] > 0
    bad = runner.invoke(app, ["data", "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val"), *FAST,
                              "--engine", "spark"])
    assert bad.exit_code == 2 and bad.stderr.strip().count("\n") == 0 and "--engine must be local or dask" in bad.stderr
    bad = runner.invoke(app, ["data", "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val"), *FAST,
                              "--scheduler", "tcp://127.0.0.1:8786"])
    assert bad.exit_code == 2 and "--scheduler needs --engine dask" in bad.stderr
