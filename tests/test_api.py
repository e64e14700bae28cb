"""The notebook API: same JSON as the CLI on the same data on disk, every input form, light import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lvmdiag
from lvmdiag import synthetic as syn
from lvmdiag_cli.app import app

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "fixtures" / "python_docs"
runner = CliRunner()

# fields that name where data came from or how long it took, not what was found
_PLACE = {"source", "sources", "path", "paths", "files", "out_dir", "seconds", "elapsed", "wall_s", "run_dir",
          "stream_seconds", "state_bytes",
          "schema_version", "lvmdiag_version"}  # the CLI's JSON envelope (docs/JSON.md), not a result field


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _PLACE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, str) and ("<" in obj and "in memory>" in obj or obj.endswith(".npz")):
        return "<place>"
    return obj


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    """Small train/val windows with article ids, as arrays and as arXiv-form files."""
    st = syn.make_store(n_articles=14, d=8, rho=0.8, length=(8, 12), rng=4)
    sp = syn.make_splits(st, k=4, ratios=(0.7, 0.3), rng=5)
    root = tmp_path_factory.mktemp("api")
    paths = {}
    for name, s in sp.items():
        paths[name] = root / f"{name}.npz"
        np.savez(paths[name], contexts=s.contexts, targets=s.targets, article_ids=s.article_ids)
    arrays = {n: (s.contexts, s.targets, s.article_ids) for n, s in sp.items()}
    return arrays, paths


def _cli(*args):
    res = runner.invoke(app, [*map(str, args), "--json", "-", "--quiet"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.parametrize("command, cli_args, kwargs", [
    ("leakage", ["--k", 4], {"k": 4}),
    ("bias", ["--k", 4, "--n-resamples", 60], {"k": 4, "n_resamples": 60}),
    ("direction", ["--k", 4, "--n-permutations", 19], {"k": 4, "n_permutations": 19}),
    ("diverge", ["--k", 4, "--n-permutations", 19, "--n-bootstrap", 19, "--rff-features", 32],
     {"k": 4, "n_permutations": 19, "n_bootstrap": 19, "rff_features": 32}),
])
def test_api_on_arrays_equals_cli_on_files(windows, command, cli_args, kwargs, tmp_path):
    arrays, paths = windows
    html = tmp_path / f"{command}.html"
    want = _cli(command, "--train", paths["train"], "--val", paths["val"], *cli_args, "--html", html)
    page = html.read_text()  # --html on every command: one self-contained page with the figure embedded
    assert page.startswith("<!DOCTYPE html>") and "<img" in page and "<script" not in page
    got = getattr(lvmdiag, command)(arrays["train"], arrays["val"], **kwargs).to_dict()
    assert _strip(got) == _strip(want)
    # the same with paths given to the API
    assert _strip(getattr(lvmdiag, command)(paths["train"], paths["val"], **kwargs).to_dict()) == _strip(want)


def test_data_report_on_arrays_equals_cli(windows, tmp_path):
    arrays, paths = windows
    opts = {"k": 4, "n_permutations": 19, "n_bootstrap": 19}
    html = tmp_path / "data.html"
    want = _cli("data", "--train", paths["train"], "--val", paths["val"], "--k", 4, "--n-permutations", 19,
                "--n-bootstrap", 19, "--html", html)
    got = lvmdiag.data(arrays["train"], arrays["val"], **opts)
    assert _strip(got.to_dict()) == _strip(want)
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<img") == 4 and "<script" not in page


def test_every_in_memory_form_gives_the_same_result(windows):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    torch = pytest.importorskip("torch")
    arrays, _ = windows
    ctx, tgt, ids = arrays["val"]
    want = lvmdiag.leakage(arrays["train"], arrays["val"], k=4).to_dict()
    forms = {
        "torch": (torch.from_numpy(ctx), torch.from_numpy(tgt), torch.from_numpy(ids)),
        "dict": {"contexts": ctx, "targets": tgt, "article_ids": ids},
        "pandas": pd.DataFrame({"contexts": list(ctx), "targets": list(tgt), "article_ids": ids}),
        "pyarrow": pa.table({"contexts": [c.tolist() for c in ctx], "targets": [t.tolist() for t in tgt],
                             "article_ids": ids}),
        "SequenceSet": lvmdiag.as_sequences(arrays["val"], "val"),
    }
    for name, val in forms.items():
        assert _strip(lvmdiag.leakage(arrays["train"], val, k=4).to_dict()) == _strip(want), name


def test_article_store_arrays_equal_the_store_file():
    z = np.load(DOCS / "val_store.npz")
    from_file = lvmdiag.as_sequences(DOCS / "val_store.npz", "val")
    from_arrays = lvmdiag.as_sequences({"vectors": z["vectors"], "article_ids": z["article_ids"],
                                        "chunk_index": z["chunk_index"]}, "val")
    np.testing.assert_array_equal(from_arrays.contexts, from_file.contexts)  # gathered copies: exact
    np.testing.assert_array_equal(from_arrays.targets, from_file.targets)
    np.testing.assert_array_equal(from_arrays.article_ids, from_file.article_ids)
    np.testing.assert_array_equal(from_arrays.valid, from_file.valid)


def test_bad_in_memory_input_is_one_clear_error():
    with pytest.raises(lvmdiag.InputError, match="contexts"):
        lvmdiag.leakage((np.zeros((5, 3, 4), np.float32), np.zeros((6, 4), np.float32)), np.zeros((5, 4)))
    with pytest.raises(lvmdiag.InputError, match="give a path"):
        lvmdiag.bias(42)
    with pytest.raises(lvmdiag.InputError, match="must be a float array"):
        lvmdiag.as_sequences((np.zeros((5, 3, 4), int), np.zeros((5, 4), int)))


def test_packages_that_are_also_commands_stay_packages():
    assert callable(lvmdiag.data) and callable(lvmdiag.report) and callable(lvmdiag.resplit)
    from lvmdiag.data import load_sequences  # noqa: F401 - still a package
    from lvmdiag.resplit import resplit  # noqa: F401


def test_report_on_the_p7_run_and_resplit_on_arrays(tmp_path, windows):
    rep = lvmdiag.report(REPO / "fixtures" / "runs" / "p7_baseline")
    assert rep.status == "failed" and rep.to_frame().shape[0] == rep.n_epochs
    arrays, _ = windows
    res = lvmdiag.resplit([arrays["train"], arrays["val"]], tmp_path / "out", ratios=(0.5, 0.5),
                          names=("a", "b"), stratify="none", analyses=False)
    assert res.verification.passed and sum(res.n_windows) == len(arrays["train"][0]) + len(arrays["val"][0])
    assert list(res.to_frame().index) == ["a", "b"]


def test_import_is_light_and_fast():
    code = ("import sys, time; t = time.perf_counter(); import lvmdiag; dt = time.perf_counter() - t; "
            "print(dt); print(sorted(m for m in ('torch', 'matplotlib', 'pandas', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "[]", out  # lvmdiag.bias etc. load on first use
    assert float(out[0]) < 1.0  # ~0.1 s measured; generous bound for a loaded CI machine


def test_report_and_resplit_commands_write_html(tmp_path, windows):
    page = tmp_path / "p7.html"
    res = runner.invoke(app, ["report", str(REPO / "fixtures" / "runs" / "p7_baseline"), "--html", str(page), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Run report: p7_baseline" in page.read_text() and page.read_text().count("<img") == 1
    _, paths = windows
    out, page = tmp_path / "rs", tmp_path / "rs.html"
    res = runner.invoke(app, ["resplit", str(paths["train"]), str(paths["val"]), "--out", str(out), "--ratios", "0.5,0.5",
                              "--names", "a,b", "--stratify", "none", "--no-analyses", "--html", str(page), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "Resplit" in page.read_text() and "<table>" in page.read_text()
    res = runner.invoke(app, ["leakage", "--train", str(paths["train"]), "--val", str(paths["val"]), "--k", "4",
                              "--html", str(paths["val"]), "--quiet"])
    assert res.exit_code == 2 and "is also an input" in res.output  # an input is never overwritten


def test_the_callable_packages_show_their_api_signature():
    """``lvmdiag.report`` / ``lvmdiag.data`` / ``lvmdiag.resplit`` are packages and functions: inspect and help()
    show the function's parameters (they showed ``(*args, **kwargs)``)."""
    import inspect

    import lvmdiag
    from lvmdiag import api

    for name in ("report", "data", "resplit"):
        assert inspect.signature(getattr(lvmdiag, name)) == inspect.signature(getattr(api, name))


@pytest.mark.parametrize("name", ["bias", "direction", "diverge", "leakage", "data"])
def test_api_defaults_are_the_cli_defaults(name):
    """The docs promise the CLI's defaults. `data`, `diverge` and `direction` had 200 or 499 permutations against
    the CLI's `auto`: 1/201 is above 0.05/21, so a lone divergence could never be reported from a notebook."""
    import inspect

    from lvmdiag_cli.commands import bias, data, direction, diverge, leakage

    cmd = {"bias": bias.bias_cmd, "direction": direction.direction_cmd, "diverge": diverge.diverge_cmd,
           "leakage": leakage.leakage_cmd, "data": data.data_cmd}[name]
    alias = {"permutations": "n_permutations"}
    cli = {alias.get(p, p): v.default for p, v in inspect.signature(cmd).parameters.items()}
    api = {p: v.default for p, v in inspect.signature(getattr(lvmdiag, name)).parameters.items()
           if v.default is not inspect.Parameter.empty}
    shared = sorted(set(cli) & set(api) - {"engine", "scheduler", "progress", "ood", "val"})
    assert "k" in shared and (name in ("leakage",) or "n_permutations" in shared)
    assert {p: api[p] for p in shared} == {p: cli[p] for p in shared}


def test_an_explicit_k_that_window_inputs_do_not_have_is_an_error_as_on_the_command_line():
    """The CLI refuses `--k 3` on a window file with K = 5; the API ran with K = 5 without a word."""
    from lvmdiag.errors import InputError

    windows = str(REPO / "fixtures" / "arxiv_train.npz")
    assert lvmdiag.leakage(windows, windows).to_dict()["splits"][0]["n_windows"] > 0  # k=None: the file's own K
    with pytest.raises(InputError, match=r"k=3 does not apply to train arxiv_train.npz: it holds windows with K = 5"):
        lvmdiag.leakage(windows, windows, k=3)
    seq = lvmdiag.as_sequences(windows, "train")
    arrays = (np.asarray(seq.contexts), np.asarray(seq.targets))
    with pytest.raises(InputError, match=r"k=3 does not apply to train \(in memory\)"):
        lvmdiag.leakage(arrays, arrays, k=3)
    assert lvmdiag.leakage(windows, windows, k=5).to_dict()["splits"][0]["n_windows"] == seq.n
