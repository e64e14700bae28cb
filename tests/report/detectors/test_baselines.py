"""The model against copy-last and mean-of-context."""

import pytest

from lvmdiag.report.detectors import baselines as bl
from lvmdiag.report.detectors.baselines import BaselineMetrics

P7_VAL = {"cos_next": [0.396, 0.271], "cos_prev": [0.455, 0.338], "margin": [-0.059, -0.067]}
COPY = BaselineMetrics("copy_last", "val", 0.52, 1.0, -0.48, source="test")
MEAN = BaselineMetrics("mean_context", "val", 0.55, 0.83, -0.28, source="test")


def test_below_baseline_and_negative_margin_ruled_out(make_history):
    result = bl.detect(make_history(val=P7_VAL), baselines=[COPY, MEAN])
    (f,) = result.findings
    assert f.code == "below_baseline" and f.severity == "critical" and "mean-of-context" in f.title
    skill = (0.271 - 0.55) / (1 - 0.55)
    assert f"{skill:+.3f}" in f.message
    (r,) = result.ruled_out
    assert "predicts backward" in r.hypothesis
    assert [e.value for e in r.evidence] == [-0.067, -0.48, -0.28]


def test_healthy_model_beats_baselines(make_history):
    val = {"cos_next": [0.5, 0.62], "cos_prev": [0.40, 0.41], "margin": [0.10, 0.21]}
    result = bl.detect(make_history(val=val), baselines=[COPY, MEAN])
    assert not result.fired
    assert any("no better than copying" in r.hypothesis for r in result.ruled_out)


def test_negative_margin_not_shared_is_a_warning(make_history):
    odd = [BaselineMetrics("copy_last", "val", 0.2, 0.1, 0.1), BaselineMetrics("mean_context", "val", 0.2, 0.15, 0.05)]
    result = bl.detect(make_history(val=P7_VAL), baselines=odd)
    assert [f.code for f in result.findings] == ["backward_margin"]


def test_skill_score():
    assert bl.skill_score(0.55, 0.55) == 0
    assert bl.skill_score(1.0, 0.3) == pytest.approx(1.0)
    assert bl.skill_score(0.2, 0.6) == pytest.approx(-1.0)


def test_skipped_without_baselines(make_history):
    assert bl.detect(make_history(val=P7_VAL)).skipped


def test_from_baselines_json():
    rows = bl.from_baselines_json({"val": {"copy_last": {"cos_next": 0.5, "cos_prev": 1.0, "margin": -0.5}},
                                   "train": {"ridge": {"cos_next": 0.6, "cos_prev": 0.7}}})
    assert [(r.predictor, r.split, r.margin) for r in rows] == [("copy_last", "val", -0.5), ("ridge", "train", pytest.approx(-0.1))]


def test_from_bias_result_on_real_analyzer(p7_data):
    from lvmdiag.analyzers.temporal_bias import analyze_bias
    from lvmdiag.data.readers import load_sequences

    seqs = load_sequences(p7_data[1], split="val")
    result = analyze_bias(seqs, n_resamples=200, rng=0)
    rows = {r.predictor: r for r in bl.from_bias_result(result, "val", "test")}
    assert rows["copy_last"].cos_prev == pytest.approx(1.0)
    # copy-last cos_next is mean cos(c_last, t), checked with a plain loop
    import numpy as np

    c, t = seqs.contexts[:, -1], seqs.targets
    direct = np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(c, t)])
    assert rows["copy_last"].cos_next == pytest.approx(direct, abs=1e-6)
    assert rows["copy_last"].cos_next_ci[0] <= rows["copy_last"].cos_next <= rows["copy_last"].cos_next_ci[1]
