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
    (r,) = [r for r in result.ruled_out if "no better than copying" in r.hypothesis]
    assert r.reason == "it beats every trivial predictor on cos_next, margin"  # objective unknown: no "targeted"


def test_negative_margin_not_shared_is_a_warning(make_history):
    odd = [BaselineMetrics("copy_last", "val", 0.2, 0.1, 0.1), BaselineMetrics("mean_context", "val", 0.2, 0.15, 0.05)]
    result = bl.detect(make_history(val=P7_VAL), baselines=odd)
    # cos_next 0.271 beats both (0.2) while the margin loses: mixed (objective unknown), plus the margin warning
    assert [f.code for f in result.findings] == ["below_baseline_mixed", "backward_margin"]
    assert not any(f.severity == "critical" for f in result.findings)


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


# --- every metric, direction-aware, read against what the loss targets -------------------------------

# the shape of the issue-18 run: a ranking-loss model (no margin term) whose cos_next is far below
# mean-of-context while its retrieval beats every trivial predictor
RANKING_CONFIG = {"w_rank": 1.0, "w_margin": 0.0, "w_teacher": 0.2, "warmup_epochs": 1}
RANKING_LOG = {"loss_rank": [3.1, 2.6, 2.4], "loss_teacher": [0.8, 0.0, 0.0]}
RANKING_VAL = {"cos_next": [0.15, 0.17, 0.182], "cos_prev": [0.16, 0.17, 0.175], "recall_at_1": [0.05, 0.09, 0.118],
               "rank_mean": [10.0, 8.2, 7.40], "n_candidates": [65, 65, 65]}
R_COPY = BaselineMetrics("copy_last", "val", 0.50, 1.0, -0.50, source="test", recall_at_1=0.0, rank_mean=11.78,
                         n_candidates=65)
R_MEAN = BaselineMetrics("mean_context", "val", 0.582, 0.80, -0.218, source="test", recall_at_1=0.060,
                         rank_mean=11.31, n_candidates=65)


def _rows(result):
    f = result.findings[0]
    return {e.label.split(" (")[0]: e.value for e in f.evidence if e.label.split(" (")[0] in
            ("cos_next", "margin", "recall@1", "mean rank")}


def test_untargeted_loss_with_winning_retrieval_is_not_critical(make_history):
    h = make_history(val=RANKING_VAL, train_log=RANKING_LOG, config=RANKING_CONFIG)
    result = bl.detect(h, baselines=[R_COPY, R_MEAN])
    (f,) = result.findings
    assert f.code == "untargeted_below_baseline" and f.severity == "warning" and f.cause is None
    assert "learned nothing" not in f.message.replace("not evidence that the model learned nothing", "")
    assert "loses on cos_next 0.182 vs 0.582 (mean-of-context), which the InfoNCE ranking loss does not target" in f.message
    assert "recall@1 0.118 vs 0.060 (mean-of-context)" in f.message and "mean rank 7.40 vs 11.31 (mean-of-context)" in f.message
    rows = _rows(result)
    assert rows["cos_next"].endswith("loses") and rows["recall@1"].endswith("wins") and rows["mean rank"].endswith("wins")
    assert "margin" in rows and rows["margin"].endswith("wins")  # +0.007 > chance 0 (untargeted: w_margin 0)
    assert any("no better than copying" in r.hypothesis for r in result.ruled_out)


def test_comparison_table_is_direction_aware(make_history):
    h = make_history(val=RANKING_VAL, train_log=RANKING_LOG, config=RANKING_CONFIG)
    comp = bl.compare(h, [R_COPY, R_MEAN])
    by = {r.metric: r for r in comp.rows}
    # lower mean rank is better: 7.40 beats the best trivial 11.31 (not chance's 33 nor copy-last's 11.78)
    assert by["rank_mean"].best == "mean_context" and by["rank_mean"].outcome == "wins"
    assert dict(by["rank_mean"].references)["chance"] == pytest.approx(33.0)
    assert dict(by["recall_at_1"].references)["chance"] == pytest.approx(1 / 65)
    assert by["recall_at_1"].targeted == ("loss_rank",) and by["cos_next"].targeted == ()  # teacher off after warmup
    md = comp.to_markdown()
    assert "| mean rank | lower | loss_rank | 7.40 | 11.78 | 11.31 | 33.00 | **wins** |" in md
    assert "| cos_next | higher | no | 0.182 | 0.500 | 0.582 | 0.000 | **loses** |" in md
    assert "The model wins on: margin, recall@1, mean rank; it loses on: cos_next." in md


def test_losing_on_every_metric_stays_critical(make_history):
    val = {**RANKING_VAL, "recall_at_1": [0.0, 0.01, 0.02], "rank_mean": [30.0, 25.0, 20.0],
           "cos_prev": [0.3, 0.3, 0.3]}
    h = make_history(val=val, train_log=RANKING_LOG, config=RANKING_CONFIG)
    (f,) = bl.detect(h, baselines=[R_COPY, R_MEAN]).findings
    assert f.code == "below_baseline" and f.severity == "critical" and f.cause == "below_baseline"
    assert "has not learned anything a trivial predictor does not already do" in f.message
    assert not f.contradicted_by


def test_losing_on_targeted_metrics_only_stays_critical(make_history):
    # wins on cos_next (untargeted by a ranking loss) but loses recall@1 and mean rank: the objective failed
    val = {**RANKING_VAL, "cos_next": [0.6, 0.65, 0.7], "cos_prev": [0.5, 0.5, 0.5],
           "recall_at_1": [0.0, 0.01, 0.02], "rank_mean": [30.0, 25.0, 20.0]}
    h = make_history(val=val, train_log=RANKING_LOG, config=RANKING_CONFIG)
    (f,) = bl.detect(h, baselines=[R_COPY, R_MEAN]).findings
    assert f.code == "below_baseline" and f.severity == "critical"
    assert "wins on no metric the InfoNCE ranking loss targets" in f.message and "cos_next 0.700" in f.message


def test_mixed_targeted_metrics_are_a_contradicted_warning(make_history):
    config = {**RANKING_CONFIG, "w_margin": 0.5}  # margin now targeted, and -0.05 loses to chance's 0
    val = {**RANKING_VAL, "cos_prev": [0.2, 0.22, 0.232]}
    h = make_history(val=val, train_log=RANKING_LOG, config=config)
    (f,) = bl.detect(h, baselines=[R_COPY, R_MEAN]).findings
    assert f.code == "below_baseline_mixed" and f.severity == "warning" and f.cause == "below_baseline"
    assert len(f.contradicted_by) == 2 and "recall@1 0.118" in f.contradicted_by[0]


def test_unknown_objective_counts_every_metric(make_history):
    # no loss term, no config: every compared metric is treated as targeted (as before for cos_next alone)
    h = make_history(val={"cos_next": RANKING_VAL["cos_next"], "cos_prev": [0.2, 0.2, 0.2]})
    comp = bl.compare(h, [R_COPY, R_MEAN])
    assert not comp.objective_known and [r.metric for r in comp.rows] == ["cos_next", "margin"]
    (f,) = bl.detect(h, baselines=[R_COPY, R_MEAN]).findings
    assert f.code == "below_baseline" and f.severity == "critical"


def test_objective_reads_weights_and_warmup(make_history):
    h = make_history(val=RANKING_VAL, train_log=RANKING_LOG, config=RANKING_CONFIG)
    assert bl.objective(h) == {"recall_at_1": ("loss_rank",), "rank_mean": ("loss_rank",)}
    in_warmup = make_history(val=RANKING_VAL, train_log={"loss_teacher": [0.8, 0.7, 0.6]}, config={"w_teacher": 0.2})
    assert bl.objective(in_warmup) == {"cos_next": ("loss_teacher",)}
    config_only = make_history(val=RANKING_VAL, config={"w_rank": 1.0, "w_teacher": 0.2, "warmup_epochs": 2})
    assert bl.objective(config_only) == {"recall_at_1": ("loss_rank",), "rank_mean": ("loss_rank",)}  # epoch 3 > 2
    assert bl.objective(make_history(val=RANKING_VAL)) is None


def test_retrieval_with_another_candidate_count_is_left_out(make_history):
    h = make_history(val=RANKING_VAL, train_log=RANKING_LOG, config=RANKING_CONFIG)
    other = [BaselineMetrics("copy_last", "val", 0.5, 1.0, -0.5, recall_at_1=0.0, rank_mean=3.0, n_candidates=33)]
    comp = bl.compare(h, other)
    assert [r.metric for r in comp.rows] == ["cos_next", "margin"]
    assert any("33 candidates, the model among 65" in n for n in comp.notes)


def test_from_baselines_json_reads_retrieval():
    (row,) = bl.from_baselines_json({"val": {"mean_context": {"cos_next": 0.5, "cos_prev": 0.8, "recall_at_1": 0.06,
                                                              "rank_mean": 11.31, "n_candidates": 65}}})
    assert (row.recall_at_1, row.rank_mean, row.n_candidates) == (0.06, 11.31, 65)


def test_targeted_metrics_without_baselines_stay_untested(make_history):
    # baselines without retrieval (e.g. from lvmdiag bias): the ranking loss's metrics cannot be compared,
    # so a low cos_next is reported as an untargeted symptom and the targeted metrics as untested
    h = make_history(val=RANKING_VAL, train_log=RANKING_LOG, config=RANKING_CONFIG)
    plain = [BaselineMetrics("copy_last", "val", 0.5, 1.0, -0.5), BaselineMetrics("mean_context", "val", 0.582, 0.8, -0.218)]
    comp = bl.compare(h, plain)
    assert "recall@1 (targeted by loss_rank) not compared: no trivial predictor has it." in comp.notes
    (f,) = bl.detect(h, baselines=plain).findings
    assert f.code == "untargeted_below_baseline" and f.severity == "warning"
    assert "(recall@1, mean rank: not logged for the model, or no baseline has them) stay untested" in f.message
