"""write_run_report: files written atomically into the run dir, inputs never overwritten."""

import hashlib
import shutil

import pytest

from lvmdiag.errors import InputError, RunDirError
from lvmdiag.report import build_run_report, write_run_report

from .conftest import RUNS


def _digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_default_writes_into_the_run_dir_and_keeps_inputs(tmp_path):
    run = tmp_path / "p7"
    shutil.copytree(RUNS / "p7_baseline", run)
    before = _digest(run)
    r = write_run_report(run)
    after = _digest(run)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"REPORT.md", "report.json", "REPORT_curves.png"}
    assert r.figure_files == ("REPORT_curves.png",) and r.to_dict()["figures"] == ["REPORT_curves.png"]
    assert "![training curves with schedule events](REPORT_curves.png)" in (run / "REPORT.md").read_text()
    assert not list(run.glob(".*tmp"))


def test_out_and_json_elsewhere(tmp_path):
    write_run_report(RUNS / "p7_crashed", out=tmp_path / "r.md", json_path=tmp_path / "r.json")
    assert {p.name for p in tmp_path.iterdir()} == {"r.md", "r.json", "r_curves.png"}


def test_refuses_to_overwrite_an_input(tmp_path):
    run = tmp_path / "p7"
    shutil.copytree(RUNS / "p7_baseline", run)
    with pytest.raises(InputError, match="never overwritten"):
        write_run_report(run, out=run / "training_history.json")


def test_rewrite_is_idempotent(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "lvmdiag_healthy", run)
    write_run_report(run)
    first = (run / "REPORT.md").read_text()
    write_run_report(run)
    assert (run / "REPORT.md").read_text() == first


def test_empty_dir_is_a_run_dir_error(tmp_path):
    with pytest.raises(RunDirError, match="looked for"):
        build_run_report(tmp_path)


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, lvmdiag.report, lvmdiag.report.figures; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_detectors_never_crash_on_odd_histories():
    """Fuzz: NaNs, constants, zeros, single epochs, missing series -> a report and valid JSON, never an exception."""
    import json
    import warnings

    import numpy as np
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lvmdiag.report import run_detectors, schedule_events
    from lvmdiag.report.compose import compose_report
    from lvmdiag.report.data import DataContext

    from .conftest import build_history

    values = st.one_of(st.floats(-2, 5), st.just(float("nan")), st.just(0.0), st.just(float("inf")))
    names = st.sampled_from(["cos_next", "cos_prev", "margin", "cos_anchor", "raw_cos_anchor", "loss", "cosine"])
    logs = st.sampled_from(["loss", "loss_rank", "loss_margin", "loss_teacher", "anchor_lambda", "gate_weight_mean", "lr"])

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(n=st.integers(1, 6), data=st.data())
    def check(n, data):
        series = st.lists(values, min_size=n, max_size=n)
        val = data.draw(st.dictionaries(names, series, min_size=1, max_size=4))
        tr = data.draw(st.dictionaries(names, series, max_size=3))
        log = data.draw(st.dictionaries(logs, series, max_size=5))
        cfg = data.draw(st.fixed_dictionaries({}, optional={
            "warmup_epochs": st.integers(0, 4), "anchor_lambda": st.floats(0, 1), "anchor_learnable": st.booleans(),
            "w_rank": st.floats(0, 2), "w_margin": st.floats(0, 2), "w_teacher": st.floats(0, 1),
            "margin": st.floats(0, 0.2), "batch_size": st.integers(1, 128), "gate_weak_weight": st.floats(0, 1)}))
        h = build_history(val=val, train_eval=tr or None, train_log=log, config=cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy noise must not leak to users
            events = schedule_events(h)
            report = compose_report(h, events, run_detectors(h, events), DataContext(paths={}))
        assert report.to_markdown().startswith("# Run report")
        json.dumps(report.to_dict(), allow_nan=False)
        assert np.all(h.epochs == np.arange(1, n + 1))

    check()


def test_outputs_must_be_distinct_files_not_directories(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        write_run_report(RUNS / "p7_baseline", out=tmp_path / "adir")
    with pytest.raises(InputError, match="different files"):
        write_run_report(RUNS / "p7_baseline", out=tmp_path / "r.md", json_path=tmp_path / "r.md")
    assert [p.name for p in tmp_path.iterdir()] == ["adir"]


def test_a_run_report_plots_its_curves_from_the_python_api():
    """``plot()`` on a RunReport (docs/PYTHON_API.md promises it on every result): its training curves.
    A field named ``figures`` used to hide the method (TypeError: 'tuple' object is not callable)."""
    import lvmdiag

    r = lvmdiag.report(RUNS / "p7_baseline")
    fig = r.plot()
    assert set(r.figures()) == {"curves"} and fig.axes and fig.axes[0].lines
