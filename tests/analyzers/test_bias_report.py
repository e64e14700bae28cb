"""The bias report carries the direction test that Δ cannot replace, resolved on the same articles."""

import json

from lvmdiag.analyzers.bias_report import analyze_bias_report
from lvmdiag.synthetic import make_store, reverse_articles, store_windows


def _drift_splits(reverse_val: bool = False, drift: float = 0.15):
    """Train and val from independent stores with the same planted drift; val optionally reversed."""
    train = store_windows(make_store(60, d=16, rho=0.7, length=(15, 25), drift=drift, rng=11), k=5, split="train")
    val_store = make_store(40, d=16, rho=0.7, length=(15, 25), drift=drift, first_article_id=1000, rng=12)
    val = store_windows(reverse_articles(val_store) if reverse_val else val_store, k=5, split="val")
    return {"train": train, "val": val}


def test_direction_section_and_json_twin():
    report = analyze_bias_report(_drift_splits(), n_resamples=200, n_permutations=99, rng=0)
    assert report.direction is not None and report.direction.detected("train")
    md = report.to_markdown()
    assert "cannot show forward vs backward direction" in md and "## Direction (arrow of time)" in md
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(payload["results"]) == {"train", "val"} and payload["direction"]["reference"] == "train"


def test_reversed_val_is_flagged_backwards():
    forward = analyze_bias_report(_drift_splits(), n_resamples=200, n_permutations=99, rng=0)
    backward = analyze_bias_report(_drift_splits(reverse_val=True), n_resamples=200, n_permutations=99, rng=0)
    assert "val" in backward.direction.reversed_splits() and "val" not in forward.direction.reversed_splits()
    assert "BACKWARDS" in backward.to_markdown()


def test_delta_is_blind_to_reversal_on_a_stationary_walk():
    # with drift the walk is non-stationary and reversal changes which chunk pairs end a window,
    # so Δ's reversal invariance is checked where it holds: a stationary walk
    forward = analyze_bias_report(_drift_splits(drift=0.0), n_resamples=200, n_permutations=99, rng=0)
    backward = analyze_bias_report(_drift_splits(True, drift=0.0), n_resamples=200, n_permutations=99, rng=0)
    assert not backward.direction.reversed_splits()
    d_fwd = forward.bias.results["val"].delta
    d_bwd = backward.bias.results["val"].delta
    assert d_fwd.ci.contains(d_bwd.value) or d_bwd.ci.contains(d_fwd.value)


def test_direction_can_be_switched_off():
    report = analyze_bias_report({"train": _drift_splits()["train"]}, direction=False, n_resamples=100)
    assert report.direction is None and report.to_dict()["direction"] is None


def test_progress_runs_through_bias_then_direction_to_the_end():
    calls = []
    analyze_bias_report(_drift_splits(), n_resamples=50, n_permutations=19, rng=0,
                        progress=lambda done, total: calls.append((done, total)))
    totals = {t for _, t in calls}
    done = [d for d, _ in calls]
    assert totals == {2000} and done == sorted(done)  # one bar, never moving backwards
    assert max(d for d in done if d <= 1000) == 1000 and done[-1] == 2000  # both halves complete
