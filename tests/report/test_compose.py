"""Report composition: verdict, ranked causes, tables, next steps, markdown and JSON twin."""

import json
import math
import re

from lvmdiag.report import build_run_report

from .conftest import RUNS


def test_p7_report_identifies_the_warmup_collapse_with_its_drops():
    r = build_run_report(RUNS / "p7_baseline")
    assert r.status == "failed"
    f = r.finding("collapse_at_event")
    assert f.epochs == (2, 3) and "warmup_end" in f.title
    md = r.to_markdown()
    for drop in ("-39.1%", "-33.0%", "-33.5%"):
        assert drop in r.verdict and drop in md
    assert r.causes[0].key == "schedule_transition"
    # the other findings of the hand-written report, each with its number
    # raw cos(q, c) from cos_anchor 0.588 / 0.391 at lambda 0.8, solved here by bisection on the forward map
    # cos(q', c) = (lam a + 1 - lam) / |lam q + (1 - lam) c| (the hand-written report says ~0.41 and ~0.17)
    from scipy.optimize import brentq

    def raw(y, lam=0.8):
        return brentq(lambda a: (lam * a + 1 - lam) / (lam**2 + (1 - lam) ** 2 + 2 * lam * (1 - lam) * a) ** 0.5 - y, -1, 1)

    message = r.finding("context_drift").message
    assert f"{raw(0.588):.3f}" in message and f"{raw(0.391):.3f}" in message
    assert r.finding("learnable_lambda_frozen") is not None
    assert r.finding("loss_term_flat") is not None and "-23.9%" in r.finding("loss_term_flat").message
    assert r.finding("margin_definition_mismatch") is not None
    hyps = [x.hypothesis for x in r.ruled_out]
    assert any("Train is forward, val is backward" in h for h in hyps)
    assert any("InfoNCE at chance" in h for h in hyps)


def test_every_claim_is_backed_by_a_number():
    r = build_run_report(RUNS / "p7_baseline")
    number = re.compile(r"\d")
    for f in r.findings:
        assert number.search(f.message), f.title
        assert f.evidence and any(number.search(str(e.value)) for e in f.evidence), f.title
    for x in r.ruled_out:
        assert x.evidence and any(number.search(e.to_markdown()) for e in x.evidence), x.hypothesis
    for c in r.causes:
        assert all(number.search(m) for m in c.evidence)
    assert number.search(r.verdict)


def test_epoch_table_has_relative_changes_and_events():
    md = build_run_report(RUNS / "p7_baseline").to_markdown()
    row3 = next(line for line in md.splitlines() if line.startswith("| 3 |"))
    assert "warmup_end" in row3 and "0.241 (-39%)" in row3 and "0.305 (-33%)" in row3


def test_json_twin_round_trips():
    r = build_run_report(RUNS / "p7_baseline")
    payload = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert payload["status"] == "failed"
    codes = [f["code"] for d in payload["detectors"] for f in d["findings"]]
    assert "collapse_at_event" in codes


def test_next_steps_are_runnable_commands_with_the_run_paths():
    r = build_run_report(RUNS / "p7_baseline")
    assert all(s.startswith("lvmdiag ") for s in r.next_steps)
    assert "lvmdiag bias --train artifacts/lvm/arxiv_train_sequences.npz --val artifacts/lvm/arxiv_val_sequences.npz" in r.next_steps
    assert any(s.startswith("lvmdiag resplit") and "--by article" in s for s in r.next_steps)
    assert any("--warmup-epochs" in s for s in r.next_steps)
    assert not any("{" in s for s in r.next_steps)


def test_crashed_run_reports_finished_epochs():
    r = build_run_report(RUNS / "p7_crashed")
    assert r.n_epochs == 4 and not r.complete and r.planned_epochs == 10
    md = r.to_markdown()
    assert "did not finish" in md and "epoch 5 did not finish" in md
    assert r.finding("collapse_at_event") is not None


def test_healthy_run_is_healthy():
    r = build_run_report(RUNS / "lvmdiag_healthy")
    assert r.status == "healthy" and r.findings == () and "No problem" in r.verdict
    assert any("no better than copying" in x.hypothesis for x in r.ruled_out)


def test_other_fixtures():
    assert build_run_report(RUNS / "legacy_overfit").finding("overfitting") is not None
    assert build_run_report(RUNS / "csv_diverged").finding("diverged").epochs == (5,)
    assert build_run_report(RUNS / "jsonl_chance").finding("chance_plateau") is not None
    assert build_run_report(RUNS / "legacy_list").status == "healthy"


def test_p7_with_data_rules_out_backward_prediction(p7_data):
    r = build_run_report(RUNS / "p7_baseline", train=p7_data[0], val=p7_data[1])
    f = r.finding("below_baseline")
    assert f is not None and f.severity == "critical"
    assert any("predicts backward" in x.hypothesis for x in r.ruled_out)
    md = r.to_markdown()
    assert "## Data" in md and "copy_last" in md and "Δ = cos(c_last, t)" in md


def test_real_trainer_run_is_compared_with_its_baselines():
    r = build_run_report(RUNS / "lvmdiag_trained")
    # cos_next 0.144 vs copy-last 0.800 (baselines.json), but recall@1 0.035 beats every trivial predictor
    # (chance 0.015): a mixed warning, contradicted, never a critical "learned nothing" ranked first
    assert r.finding("below_baseline") is None
    f = r.finding("below_baseline_mixed")
    assert f is not None and f.severity == "warning" and "0.800" in f.message and f.contradicted_by
    assert r.status == "problems" and "has not learned anything" not in r.verdict
    assert [c.key for c in r.causes] == ["loss_balance", "below_baseline"] and r.causes[1].contradicted_by
    md = r.to_markdown()
    assert "| recall@1 | higher | loss_rank | 0.035 | 0.000 | 0.005 | 0.015 | 0.000 | **wins** |" in md
    assert "| mean rank | lower | loss_rank | 19.32 | 2.30 | 3.47 | 33.00 | 2.58 | **loses** |" in md
    assert r.to_dict()["baseline_comparison"]["split"] == "val"
    assert r.finding("constant_weight") is None  # its gate is per-sample, data-determined


def test_mid_run_report_notes_the_trainers_collapse_flag(tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(RUNS / "lvmdiag_healthy", run)
    lines = (run / "metrics.jsonl").read_text().splitlines()[:4]
    rec = json.loads(lines[-1])
    rec["events"] = ["collapse"]
    (run / "metrics.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(rec)]) + "\n")
    r = build_run_report(run)
    assert not r.complete and r.n_epochs == 4
    assert any("flagged 'collapse' at epoch 4" in n for n in r.notes)
    assert [e.name for e in r.events] == ["warmup_end"]  # an outcome is not a schedule event


def test_healthy_verdict_says_how_many_detectors_could_not_run(tmp_path):
    (tmp_path / "h.csv").write_text("epoch,loss\n1,0.9\n2,0.8\n3,0.7\n")
    r = build_run_report(tmp_path)
    skipped = sum(1 for d in r.detectors if d.skipped)
    assert r.status == "healthy" and skipped > 0
    assert f"by the {len(r.detectors) - skipped} of {len(r.detectors)} detectors that could run" in r.verdict
    assert f"{skipped} {'was' if skipped == 1 else 'were'} skipped" in r.verdict


def test_data_analyses_that_did_not_run_stay_open_hypotheses(p7_data):
    r = build_run_report(RUNS / "p7_baseline", train=p7_data[0], val=p7_data[1], analyses=("bias", "leakage"))
    open_ = dict(r.untested)
    assert "Train and val are differently distributed (split shift)" in open_
    assert "--analyses bias,divergence,leakage" in open_["Train and val are differently distributed (split shift)"]
    assert not any("share articles" in h for h in open_)  # leakage ran: it is ruled out or found, not open


def test_issue18_run_status_line_follows_the_objective(make_history):
    """A ranking-loss run whose cos_next trails mean-of-context while its retrieval beats every trivial
    predictor: the report must not claim it learned nothing, nor rank the cos_next symptom as a cause."""
    from lvmdiag.report import run_detectors, schedule_events
    from lvmdiag.report.compose import compose_report
    from lvmdiag.report.data import DataContext
    from .detectors.test_baselines import R_COPY, R_MEAN, RANKING_CONFIG, RANKING_LOG, RANKING_VAL

    h = make_history(val=RANKING_VAL, train_log={**RANKING_LOG, "loss": [3.3, 2.7, 2.5]}, config=RANKING_CONFIG)
    events = schedule_events(h)
    r = compose_report(h, events, run_detectors(h, events, DataContext(paths={}, baselines=(R_COPY, R_MEAN))),
                       DataContext(paths={}, baselines=(R_COPY, R_MEAN)))
    assert not any(f.severity == "critical" for f in r.findings)
    assert "has not learned anything" not in r.verdict and "below_baseline" not in [c.key for c in r.causes]
    f = r.finding("untargeted_below_baseline")
    assert f is not None and f.title.startswith("cos_next below") and "recall@1 0.118" in f.message
    md = r.to_markdown()
    assert "The model wins on: margin, recall@1, mean rank; it loses on: cos_next." in md


def test_contradicted_causes_rank_after_uncontradicted_ones():
    from lvmdiag.report.compose import _rank_causes
    from lvmdiag.report.findings import Finding

    symptom = Finding("baselines", "x", "critical", "low cos_next", "m", cause="below_baseline",
                      contradicted_by=("recall@1 wins",))
    other = Finding("imbalance", "y", "warning", "flat term", "m", cause="loss_balance")
    ranked = _rank_causes([symptom, other])
    assert [c.key for c in ranked] == ["loss_balance", "below_baseline"]
    assert ranked[1].score == 3 and ranked[1].contradicted_by == ("recall@1 wins",)
    # one uncontradicted finding keeps the cause in its place by score
    plain = Finding("baselines", "z", "warning", "b", "m", cause="below_baseline")
    assert [c.key for c in _rank_causes([symptom, plain, other])][0] == "below_baseline"


def test_final_metrics_name_a_val_loss_as_an_evaluation_loss_and_skip_epochs_without_validation(tmp_path):
    """A val ``loss`` row read "total training loss (train mode)"; and a run whose last epoch did not validate
    showed NaN as its final val value. Now: the split's evaluation loss, and the last value logged."""
    from lvmdiag.report import build_run_report

    (tmp_path / "h.csv").write_text("epoch,loss,val_loss,val_cos_next\n1,2.0,1.9,0.30\n2,1.8,1.7,0.35\n3,1.7,,\n")
    rows = {(name, split): (value, definition) for name, split, value, definition in
            build_run_report(tmp_path).final_metrics}
    assert rows[("loss", "val")] == (1.7, "loss on the val split (evaluation pass)")
    assert rows[("cos_next", "val")][0] == 0.35


def test_a_run_that_logged_no_metric_is_not_called_healthy(tmp_path):
    """Epochs with no loss or metric value (an HF run with eval_strategy="no" read by the monitor) were
    "healthy ... 2 of 11 detectors"; nothing could be checked, so the status says so."""
    import json

    from lvmdiag.report import build_run_report

    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "lr": 0.001, "train_loss": {}, "eval": {}})
                                                    + "\n" for e in (1, 2)))
    report = build_run_report(tmp_path)
    assert report.status == "no-metrics" and report.verdict.startswith("**NO METRICS**")
    assert "**Status:** **NO METRICS**" in report.to_markdown()


def test_the_final_metric_of_a_series_that_diverged_is_its_logged_nan(tmp_path):
    """Skipping epochs that did not validate must not hide a divergence: a logged nan stays the final value."""
    from lvmdiag.report import build_run_report

    (tmp_path / "h.csv").write_text("epoch,loss,val_cos_next\n1,2.0,0.30\n2,1.8,0.35\n3,nan,nan\n")
    rows = {(name, split): value for name, split, value, _ in build_run_report(tmp_path).final_metrics}
    assert math.isnan(rows[("cos_next", "val")])
