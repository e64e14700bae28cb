"""The model against the trivial predictors (copy-last, mean-of-context, chance) on the same data.

Every metric logged for the model that a reference predictor also has is compared, in its own direction
(:data:`METRICS`: cos_next, margin and recall@1 higher is better, mean rank lower is better), against the
best trivial predictor on it: copy-last, mean-of-context and *chance* (a random direction: cos_next and
margin 0 by symmetry, recall@1 ``1 / n_candidates``, mean rank ``(n_candidates + 1) / 2``). Chance is a
trivial predictor too: copy-last scores recall@1 = 0 by construction (its own c_last is a candidate and
outranks the target) and a negative margin by construction, so beating it there proves nothing.

What the loss targets decides how a loss is read (:func:`objective`): the InfoNCE ranking loss
(``loss_rank``) targets retrieval (recall@1, mean rank), the prev-repel hinge (``loss_margin``) the margin,
a teacher pull or a cosine/MSE regression loss cos_next. A term counts when its weight is not 0 and it
is still active at the last epoch (a warmup-only teacher is not). Rules, on the judged split at the last
epoch (``min_skill`` moves the cos_next bar: skill S = (model - baseline) / (1 - baseline)):

- ``below_baseline`` (critical): the model beats the trivial predictors on no metric its loss targets
  (every compared metric when the objective is unknown);
- ``below_baseline_mixed`` (warning): it wins on some targeted metrics and loses on others; the wins
  contradict "no better than trivial", so this cause ranks after uncontradicted ones;
- ``untargeted_below_baseline`` (warning, no root cause): it wins on every targeted metric compared
  (or none could be compared) and loses only on metrics its loss does not target: a symptom, not a cause;
- a negative model margin that at least one trivial predictor shares is *expected* (prev = c_last is
  itself a context vector, so any predictor near the context has cos_prev > cos_next; copy-last's
  margin is cos(c_last, t) - 1 <= 0 by construction): "the model predicts backward" is ruled out;
- ``backward_margin`` (warning): a negative model margin while every trivial predictor's margin is >= 0.

Comparisons are of point values on the same rows (no interval: the logs hold means only). Baselines come
from the run's ``baselines.json`` or from the run's data (:func:`from_bias_result`, plus retrieval by
:func:`lvmdiag.train.evaluate.evaluate`); without either the detector is skipped and says what to run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lvmdiag.report.detectors._common import config_number, primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import Result, fmt, md_table

NAME = "baselines"
LABELS = {"copy_last": "copy-last", "mean_context": "mean-of-context", "ridge": "ridge", "chance": "chance"}
TRIVIAL = ("copy_last", "mean_context")
#: compared metrics: name -> (label, +1 higher is better / -1 lower is better)
METRICS: dict[str, tuple[str, int]] = {"cos_next": ("cos_next", 1), "margin": ("margin", 1),
                                       "recall_at_1": ("recall@1", 1), "rank_mean": ("mean rank", -1)}
RETRIEVAL = ("recall_at_1", "rank_mean")
#: loss term -> (config weight key, metrics it targets, what it is)
LOSS_TARGETS: dict[str, tuple[str | None, tuple[str, ...], str]] = {
    "loss_rank": ("w_rank", RETRIEVAL, "the InfoNCE ranking loss"),
    "loss_infonce": (None, RETRIEVAL, "the InfoNCE loss"),
    "loss_contrastive": (None, RETRIEVAL, "the contrastive loss"),
    "loss_margin": ("w_margin", ("margin",), "the prev-repel margin loss"),
    "loss_teacher": ("w_teacher", ("cos_next",), "the teacher-pull loss"),
    "loss_cos": (None, ("cos_next",), "the cosine loss"),
    "loss_cosine": (None, ("cos_next",), "the cosine loss"),
    "loss_mse": (None, ("cos_next",), "the MSE loss"),
}
_TIE = 1e-9


@dataclass(frozen=True)
class BaselineMetrics(Result):
    """cos_next, cos_prev and margin of one reference predictor on one split (CIs when known)."""

    predictor: str
    split: str
    cos_next: float
    cos_prev: float
    margin: float
    cos_next_ci: tuple[float, float] | None = None
    margin_ci: tuple[float, float] | None = None
    source: str = ""
    recall_at_1: float | None = None
    rank_mean: float | None = None
    n_candidates: int | None = None

    def value(self, metric: str) -> float | None:
        """The predictor's value of a :data:`METRICS` name (None when not computed)."""
        value = getattr(self, metric, None)
        return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None

    def to_markdown(self) -> str:
        ci = f" [{fmt(self.cos_next_ci[0])}, {fmt(self.cos_next_ci[1])}]" if self.cos_next_ci else ""
        retrieval = (f", recall@1 {fmt(self.recall_at_1)}, mean rank {fmt(self.rank_mean, 2)} of {self.n_candidates}"
                     if self.recall_at_1 is not None and self.rank_mean is not None else "")
        return (f"{LABELS.get(self.predictor, self.predictor)}: cos_next {fmt(self.cos_next)}{ci}, "
                f"margin {fmt(self.margin)}{retrieval}")


@dataclass(frozen=True)
class BaselineParams:
    """``min_skill``: skill below which the model is flagged as no better than a trivial predictor."""

    min_skill: float = 0.0
    split: str | None = None


def rule(p: BaselineParams) -> str:
    return ("each metric logged for the model and a reference (cos_next, margin, recall@1 higher is better; mean rank "
            "lower) vs the best trivial predictor (copy-last, mean-of-context, chance) at the last epoch, cos_next "
            f"by skill = (model - baseline) / (1 - baseline) < {p.min_skill:g}; critical when the model wins on no "
            "metric its loss targets (ranking loss: recall@1, mean rank; margin loss: margin; teacher/cosine loss: "
            "cos_next), a warning when it loses on some; a negative margin shared by a trivial predictor is expected")


def skill_score(model: float, baseline: float) -> float:
    """(model - baseline) / (1 - baseline): 1 is perfect, 0 is no better than the baseline."""
    return (model - baseline) / (1.0 - baseline) if baseline < 1 else float("nan")


def from_baselines_json(obj: Mapping[str, Any], source: str = "baselines.json") -> tuple[BaselineMetrics, ...]:
    """Read ``{"val": {"copy_last": {"cos_next", "cos_prev", "margin"}, ...}, "train": {...}}``."""
    out = []
    for split, predictors in (obj or {}).items():
        if not isinstance(predictors, Mapping):
            continue
        for name, m in predictors.items():
            if isinstance(m, Mapping) and all(isinstance(m.get(k), (int, float)) for k in ("cos_next", "cos_prev")):
                margin = m.get("margin", m["cos_next"] - m["cos_prev"])
                retrieval = {k: float(m[k]) for k in RETRIEVAL if isinstance(m.get(k), (int, float))
                             and not isinstance(m.get(k), bool)}
                n_cand = m.get("n_candidates")
                out.append(BaselineMetrics(str(name), str(split), float(m["cos_next"]), float(m["cos_prev"]),
                                           float(margin), source=source, **retrieval,
                                           n_candidates=int(n_cand) if isinstance(n_cand, (int, float)) else None))
    return tuple(out)


def from_bias_result(result: Any, split: str, source: str) -> tuple[BaselineMetrics, ...]:
    """Baselines from :func:`lvmdiag.analyzers.temporal_bias.analyze_bias` (``.baselines`` of ``BaselineScore``)."""
    out = []
    for name, score in result.baselines.items():
        ci = score.cos_next.ci
        mci = score.margin.ci
        out.append(BaselineMetrics(name, split, float(score.cos_next.value), float(score.cos_prev.value),
                                   float(score.margin.value), (ci.low, ci.high) if ci is not None else None,
                                   (mci.low, mci.high) if mci is not None else None, source))
    return tuple(out)


def _last(values: np.ndarray | None) -> float:
    if values is None:
        return float("nan")
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def objective(history: RunHistory) -> dict[str, tuple[str, ...]] | None:
    """The metrics the run's loss targets at its last epoch: metric -> the loss terms that target it.

    A term of :data:`LOSS_TARGETS` counts when it is logged or weighted in the config, its weight (when
    known) is not 0, and it is still active at the last epoch: a logged last value of exactly 0 for the
    teacher term, or a last epoch past ``warmup_epochs`` when it is not logged, means it was warmup-only.
    None when no known term is logged or configured (the objective is unknown).
    """
    out: dict[str, list[str]] = {}
    known = False
    last_epoch = int(history.epochs[-1]) if history.n_epochs else 0
    for term, (weight_key, metrics, _) in LOSS_TARGETS.items():
        logged = history.train_log.get(term)
        weight = config_number(history, weight_key) if weight_key else None
        if logged is None and weight is None:
            continue
        known = True
        if weight is not None and weight == 0:
            continue
        last = _last(logged)
        if logged is not None and not np.isfinite(last):
            continue
        if term == "loss_teacher":
            warmup = config_number(history, "warmup_epochs")
            if (logged is not None and last == 0) or (logged is None and warmup is not None and last_epoch > warmup):
                continue
        for metric in metrics:
            out.setdefault(metric, []).append(term)
    return {m: tuple(t) for m, t in out.items()} if known else None


@dataclass(frozen=True)
class ComparisonRow(Result):
    """One metric: the model's value, each reference's, the best trivial one and the outcome.

    ``outcome`` is ``"wins"`` (better than every trivial predictor), ``"loses"`` (worse than the best) or
    ``"ties"``; ``targeted`` names the loss terms that optimise this metric (empty: none).
    """

    metric: str
    label: str
    direction: int
    model: float
    references: tuple[tuple[str, float], ...]
    best: str
    best_value: float
    outcome: str
    targeted: tuple[str, ...] = ()

    def describe(self) -> str:
        """``recall@1 0.118 vs 0.060 (mean-of-context)``."""
        digits = 2 if self.metric == "rank_mean" else 3
        return f"{self.label} {fmt(self.model, digits)} vs {fmt(self.best_value, digits)} ({LABELS.get(self.best, self.best)})"

    def to_markdown(self) -> str:
        return f"{self.describe()}: {self.outcome}"


@dataclass(frozen=True)
class BaselineComparison(Result):
    """The model against the reference predictors on one split at the last epoch, metric by metric.

    ``objective_known`` False: no loss term was recognised, so every metric counts as targeted.
    ``notes``: metrics left out and why (e.g. a different retrieval candidate count).
    """

    split: str
    predictors: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    objective_known: bool
    notes: tuple[str, ...] = ()
    n: int | None = None

    def targeted(self) -> tuple[ComparisonRow, ...]:
        return tuple(r for r in self.rows if r.targeted or not self.objective_known)

    def outcome(self, outcome: str, targeted: bool | None = None) -> tuple[ComparisonRow, ...]:
        """Rows with ``outcome``; ``targeted`` True/False restricts to (un)targeted metrics."""
        pool = self.rows if targeted is None else self.targeted() if targeted else tuple(
            r for r in self.rows if r not in self.targeted())
        return tuple(r for r in pool if r.outcome == outcome)

    def to_markdown(self) -> str:
        header = ["metric", "better", "targeted by the loss", "model", *(LABELS.get(p, p) + (" (reference)" if p not in
                  (*TRIVIAL, "chance") else "") for p in self.predictors), "model vs best trivial"]
        rows = []
        for r in self.rows:
            digits = 2 if r.metric == "rank_mean" else 3
            refs = dict(r.references)
            target = (", ".join(r.targeted) if r.targeted else "no") if self.objective_known else "unknown"
            rows.append([r.label, "higher" if r.direction > 0 else "lower", target, fmt(r.model, digits),
                         *(fmt(refs.get(p), digits) for p in self.predictors),
                         f"**{r.outcome}**" if r.outcome != "ties" else r.outcome])
        over = f", {self.n} windows" if self.n else ""
        lines = [f"Model vs trivial predictors on {self.split} (last epoch{over}; point values on the same rows; "
                 "chance = a random direction):", "", md_table(header, rows)]
        wins = [r.label for r in self.rows if r.outcome == "wins"]
        losses = [r.label for r in self.rows if r.outcome == "loses"]
        lines += ["", f"The model wins on: {', '.join(wins) or 'no metric'}; it loses on: {', '.join(losses) or 'no metric'}."]
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def compare(history: RunHistory, baselines: Sequence[BaselineMetrics], split: str | None = None) -> BaselineComparison | None:
    """Compare the model's last-epoch metrics on ``split`` (default: the judged split) with every reference
    predictor that has them; None when the model has no cos_next there or no trivial predictor is known."""
    split = split or primary_split(history)
    metrics = history.eval.get(split or "", {})
    model = {m: _last(metrics.get(m)) for m in METRICS}
    if not np.isfinite(model["cos_next"]):
        return None
    if not np.isfinite(model["margin"]) and np.isfinite(_last(metrics.get("cos_prev"))):
        model["margin"] = model["cos_next"] - _last(metrics.get("cos_prev"))
    refs = [b for b in baselines if b.split == split]
    if not any(b.predictor in TRIVIAL for b in refs):
        return None
    notes = []
    n_cand = _last(metrics.get("n_candidates"))
    values: dict[str, dict[str, float]] = {}
    for b in refs:
        for m in METRICS:
            v = b.value(m)
            if v is None:
                continue
            if m in RETRIEVAL and b.n_candidates is not None and np.isfinite(n_cand) and b.n_candidates != int(n_cand):
                notes.append(f"{LABELS.get(b.predictor, b.predictor)} {METRICS[m][0]} left out: ranked among "
                             f"{b.n_candidates} candidates, the model among {int(n_cand)}.")
                continue
            values.setdefault(m, {})[b.predictor] = v
    # chance: a random direction, independent of context and target
    chance = {"cos_next": 0.0, "margin": 0.0}
    if np.isfinite(n_cand) and n_cand >= 1:
        r1, rk = _last(metrics.get("recall_at_1_chance")), _last(metrics.get("rank_chance"))
        chance["recall_at_1"] = r1 if np.isfinite(r1) else 1.0 / n_cand
        chance["rank_mean"] = rk if np.isfinite(rk) else (n_cand + 1) / 2
    targets = objective(history)
    rows = []
    for m, (label, direction) in METRICS.items():
        if not np.isfinite(model[m]) or not any(p in TRIVIAL for p in values.get(m, {})):
            continue
        refs_m = dict(values[m])
        if m in chance:
            refs_m["chance"] = chance[m]
        trivial = {p: v for p, v in refs_m.items() if p in (*TRIVIAL, "chance")}
        best = max(trivial, key=lambda p: direction * trivial[p])
        gap = direction * (model[m] - trivial[best])
        if m == "cos_next":
            outcome = "wins" if skill_score(model[m], trivial[best]) > max(0.0, _TIE) else "loses" if gap < -_TIE else "ties"
        else:
            outcome = "wins" if gap > _TIE else "loses" if gap < -_TIE else "ties"
        rows.append(ComparisonRow(m, label, direction, model[m], tuple(refs_m.items()), best, trivial[best], outcome,
                                  (targets or {}).get(m, ())))
    for m, terms in (targets or {}).items():
        if m not in {r.metric for r in rows}:
            why = "not logged for the model" if not np.isfinite(model[m]) else "no trivial predictor has it"
            notes.append(f"{METRICS[m][0]} (targeted by {', '.join(terms)}) not compared: {why}.")
    order = [p for p in (*TRIVIAL, "chance") if any(p in dict(r.references) for r in rows)]
    order += sorted({p for r in rows for p, _ in r.references} - set(order))
    n = _last(metrics.get("n"))
    return BaselineComparison(str(split), tuple(order), tuple(rows), targets is not None, tuple(dict.fromkeys(notes)),
                              int(n) if np.isfinite(n) else None)


def _loss_names(targeted: Sequence[ComparisonRow]) -> str:
    terms = list(dict.fromkeys(t for r in targeted for t in r.targeted))
    return " and ".join(LOSS_TARGETS[t][2] if t in LOSS_TARGETS else t for t in terms) or "its loss"


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), baselines: Sequence[BaselineMetrics] = (),
           params: BaselineParams | None = None) -> DetectorResult:
    """Compare the model's last-epoch metrics with the trivial predictors on the same split.

    Returns
    -------
    DetectorResult
        ``below_baseline`` / ``below_baseline_mixed`` / ``untargeted_below_baseline`` / ``backward_margin``
        findings, and ruled-out hypotheses ("the model predicts backward" when a trivial predictor shares the
        negative margin; "no better than copying" when it wins on a metric its loss targets).
    """
    p = params or BaselineParams()
    split = p.split or primary_split(history)
    metrics = history.eval.get(split or "", {})
    model_next = _last(metrics.get("cos_next"))
    if not np.isfinite(model_next):
        return DetectorResult(NAME, rule(p), skipped=f"no {split} cos_next logged" if split else
                              "no evaluation split logged")
    refs = [b for b in baselines if b.split == split and b.predictor in TRIVIAL]
    if not refs:
        return DetectorResult(NAME, rule(p), skipped=f"no trivial-predictor baselines for {split} (no baselines.json "
                                                      "and no readable data: pass --val, or run lvmdiag bias)")
    comp = compare(history, baselines, split)
    if comp is None:  # pragma: no cover - cos_next and a trivial predictor were checked above
        return DetectorResult(NAME, rule(p), skipped=f"nothing to compare on {split}")
    if p.min_skill != 0:
        # the cos_next bar is a skill threshold: re-judge that row against it
        rows = tuple(r if r.metric != "cos_next" else dataclasses.replace(
            r, outcome="wins" if skill_score(r.model, r.best_value) >= p.min_skill else "loses") for r in comp.rows)
        comp = dataclasses.replace(comp, rows=rows)
    model_prev = _last(metrics.get("cos_prev"))
    model_margin = next((r.model for r in comp.rows if r.metric == "margin"), float("nan"))
    if not np.isfinite(model_margin) and np.isfinite(model_prev):
        model_margin = model_next - model_prev
    best = max(refs, key=lambda b: b.cos_next)
    skill = skill_score(model_next, best.cos_next)
    evidence = [Evidence(f"model {split} cos_next / cos_prev / margin (last epoch)",
                         f"{fmt(model_next)} / {fmt(model_prev)} / {fmt(model_margin)}")]
    for b in refs:
        ci = f" (95% CI {fmt(b.cos_next_ci[0])} .. {fmt(b.cos_next_ci[1])})" if b.cos_next_ci else ""
        evidence.append(Evidence(f"{LABELS[b.predictor]} {split} cos_next / cos_prev / margin [{b.source}]",
                                 f"{fmt(b.cos_next)}{ci} / {fmt(b.cos_prev)} / {fmt(b.margin)}"))
        evidence.append(Evidence(f"skill vs {LABELS[b.predictor]}", skill_score(model_next, b.cos_next)))
    for r in comp.rows:
        role = (f"targeted by {', '.join(r.targeted)}" if r.targeted else "not targeted by the loss") if \
            comp.objective_known else "objective unknown"
        evidence.append(Evidence(f"{r.label} ({'higher' if r.direction > 0 else 'lower'} is better; {role})",
                                 f"{r.describe()}: {r.outcome}"))
    findings: list[Finding] = []
    ruled: list[RuledOut] = []
    targeted = comp.targeted()
    wins_t, loses_t = comp.outcome("wins", True), comp.outcome("loses", True)
    losses = comp.outcome("loses")
    untargeted_losses = comp.outcome("loses", False)
    lost = "; ".join(r.describe() for r in losses)
    epochs = (int(history.epochs[-1]),)
    cos_row = next(r for r in comp.rows if r.metric == "cos_next")
    untested = [m for m in METRICS if m in (objective(history) or {}) and m not in {r.metric for r in comp.rows}]
    untested_text = ("; the metrics its loss targets but that could not be compared "
                     f"({', '.join(METRICS[m][0] for m in untested)}: not logged for the model, or no baseline has "
                     "them) stay untested") if untested else ""
    if targeted and not wins_t:
        everything = len(losses) == len(comp.rows)
        if everything and not untested:
            claim = " The model has not learned anything a trivial predictor does not already do."
        elif everything:
            claim = f" It loses on every compared metric{untested_text}."
        else:
            won = ", ".join(r.describe() for r in comp.outcome("wins"))
            claim = (f" It wins on no metric {_loss_names(targeted)} targets; it wins only on {won}, which its "
                     f"loss does not target{untested_text}.")
        title = (f"The model is worse than {LABELS[best.predictor]}" if cos_row.outcome == "loses" else
                 "The model beats no trivial predictor on what its loss targets")
        findings.append(Finding(
            NAME, "below_baseline", "critical", title,
            f"On {split} the model's cos_next is {fmt(model_next)}; predicting {LABELS[best.predictor]} gives "
            f"{fmt(best.cos_next)} on the same data (skill {fmt(skill)}). It loses to the trivial predictors on "
            f"{lost or 'no metric (ties)'}.{claim}",
            tuple(evidence), epochs, "below_baseline", ("lvmdiag bias --train {train} --val {val}",)))
    elif losses:
        won = "; ".join(r.describe() for r in wins_t)
        if loses_t:
            findings.append(Finding(
                NAME, "below_baseline_mixed", "warning", "The model beats the trivial predictors on some targeted metrics only",
                f"On {split} the model wins on {won} but loses on {lost} (the loss targets "
                f"{', '.join(r.label for r in targeted)}). It has learned something the trivial predictors do not "
                "do, but not everything its loss asks for.",
                tuple(evidence), epochs, "below_baseline", ("lvmdiag bias --train {train} --val {val}",),
                contradicted_by=tuple(f"{r.describe()} (targeted by {', '.join(r.targeted)})" for r in wins_t)))
        else:
            beats = (f"; the metrics it targets beat every trivial predictor ({won})") if wins_t else ""
            findings.append(Finding(
                NAME, "untargeted_below_baseline", "warning",
                f"{', '.join(r.label for r in untargeted_losses)} below the trivial predictors (not what the loss optimises)",
                f"On {split} the model loses on {lost}, which {_loss_names(targeted) if targeted else 'its loss'} "
                f"does not target{beats}{untested_text}. A symptom to keep in mind (e.g. when the predictions are "
                "used as vectors), not evidence that the model learned nothing.",
                tuple(evidence), epochs, None,
                contradicted_by=tuple(f"{r.describe()} (targeted by {', '.join(r.targeted)})" for r in wins_t)))
    if wins_t or (not losses and not targeted and cos_row.outcome == "wins"):
        targeted_note = f" ({', '.join(r.label for r in wins_t)} targeted by its loss)" if comp.objective_known else ""
        reason = (f"it beats every trivial predictor on {', '.join(r.label for r in comp.outcome('wins'))}"
                  f"{targeted_note}" if wins_t else
                  f"skill vs {LABELS[best.predictor]} is {fmt(skill)} > {p.min_skill:g}")
        ruled.append(RuledOut(NAME, "The model is no better than copying the context", reason,
                              (evidence[0], *(Evidence(r.label, r.describe()) for r in wins_t or (cos_row,)))))
    if np.isfinite(model_margin) and model_margin < 0:
        shared = [b for b in refs if b.margin < 0]
        if shared:
            ruled.append(RuledOut(
                NAME, "The model predicts backward (its negative margin)",
                "the trivial predictors have negative margins on the same data: prev = c_last is a context vector, "
                "so any prediction near the context scores cos_prev > cos_next; a negative margin is expected, "
                "not a sign of backward prediction",
                (Evidence(f"model {split} margin", model_margin),
                 *(Evidence(f"{LABELS[b.predictor]} margin", b.margin) for b in shared))))
        else:
            findings.append(Finding(
                NAME, "backward_margin", "warning", "Negative margin that the trivial predictors do not share",
                f"The model's {split} margin is {fmt(model_margin)} while every trivial predictor's margin is >= 0 "
                f"({', '.join(f'{LABELS[b.predictor]} {fmt(b.margin)}' for b in refs)}).",
                tuple(evidence), epochs, "below_baseline"))
    return DetectorResult(NAME, rule(p), tuple(findings), tuple(ruled))
