"""The run report: detectors' results composed into a verdict, tables, ranked causes and next steps.

Composition is separate from detection (detectors never format a report) and from writing
(:mod:`lvmdiag.report.__init__` writes files). :class:`RunReport` renders markdown in the shape
of a hand-written failure report and has a JSON twin (``to_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lvmdiag.report.data import DataContext
from lvmdiag.report.detectors import baselines as baselines_detector
from lvmdiag.report.detectors.baselines import BaselineComparison
from lvmdiag.report.detectors.data_evidence import HYPOTHESES as DATA_HYPOTHESES
from lvmdiag.report.events import NOT_SCHEDULE, ScheduleEvent
from lvmdiag.report.findings import CAUSES, SEVERITY_WEIGHT, DetectorResult, Finding, RuledOut, pct, rel_change
from lvmdiag.report.history import RunHistory
from lvmdiag.results import Result, fmt, md_table

# What each logged quantity is, so a reader never compares a loss with a margin.
DEFINITIONS = {
    "cos_next": "mean cos(prediction, next chunk)",
    "cos_prev": "mean cos(prediction, c_last = the chunk before the target)",
    "margin": "cos_next − cos_prev (signed)",
    "cos_anchor": "mean cos(prediction, normalised context mean)",
    "raw_cos_next": "cos_next of the raw output before anchoring",
    "raw_cos_prev": "cos_prev of the raw output before anchoring",
    "raw_margin": "margin of the raw output (signed)",
    "raw_cos_anchor": "cos_anchor of the raw output",
    "cosine": "mean cos(prediction, target)",
    "loss": "total training loss (train mode)",
    "loss_rank": "InfoNCE ranking loss",
    "loss_margin": "prev-repel hinge loss mean max(0, m − cos_next + cos_prev) (≥ 0, a loss, not a margin)",
    "loss_teacher": "teacher-pull loss (warmup only)",
    "gate_weight_mean": "mean directional-gate weight per sample",
    "anchor_lambda": "anchoring weight λ in q' = normalize(λq + (1−λ)c)",
    "teacher_violations_per_batch": "samples per batch under the teacher threshold",
    "rank_mean": "mean retrieval rank of the true next chunk",
    "recall_at_1": "share of windows whose next chunk ranks first",
    "n_candidates": "retrieval candidates per query",
    "effective_rank": "effective rank of the predictions",
    "target_effective_rank": "effective rank of the targets",
    "lr": "learning rate",
}
CONFIG_KEYS = ("model_type", "context_length", "d_model", "num_layers", "anchor_lambda", "anchor_learnable",
               "w_rank", "w_margin", "w_teacher", "margin", "temperature", "batch_size", "epochs", "lr",
               "warmup_epochs", "train_npz", "val_npz",
               "warmup_steps", "num_warmup_steps", "warmup_ratio", "max_steps")  # step-based schedules (Lightning, HF)
PLACEHOLDER = {"train": "TRAIN.npz", "val": "VAL.npz"}
# config key -> `lvmdiag train` flag, to re-run an upstream config with one change
TRAIN_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "model_type": "--model",
               "d_model": "--d-model", "num_layers": "--layers", "nhead": "--nhead", "w_rank": "--w-rank",
               "w_margin": "--w-margin", "w_teacher": "--w-teacher", "margin": "--margin",
               "temperature": "--temperature", "anchor_lambda": "--anchor-lambda", "warmup_epochs": "--warmup-epochs"}
# Hypotheses a skipped detector leaves open, and what would test them.
UNTESTED = {
    "baselines": ("The model is no better than copying the context, or its negative margin means backward prediction",
                  "trivial-predictor baselines on the same data: `lvmdiag report RUN_DIR --val VAL.npz` or `lvmdiag bias`"),
    "data_evidence": ("Train and val share articles or are differently distributed",
                      "`lvmdiag leakage` and `lvmdiag diverge` on the run's data"),
    "overfitting": ("Overfitting (a growing train-eval vs val gap)",
                    "cosine metrics on a fixed train subsample each epoch (`lvmdiag train` logs them)"),
}


@dataclass(frozen=True)
class RankedCause(Result):
    """A root cause with the findings that support it; ``score`` = sum of their severity weights.

    ``contradicted_by`` is non-empty when every supporting finding is contradicted by other numbers of
    the report (e.g. a metric the loss does not target is low while the targeted ones beat the
    baselines): such a cause is ranked after every uncontradicted cause, whatever its score.
    """

    key: str
    title: str
    score: int
    findings: tuple[str, ...]  # finding titles
    evidence: tuple[str, ...]  # finding messages (each with its numbers)
    contradicted_by: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        text = f"{self.title} (score {self.score})"
        return text + (f"; contradicted by {'; '.join(self.contradicted_by)}" if self.contradicted_by else "")


@dataclass(frozen=True)
class RunReport(Result):
    """A run failure report.

    Attributes
    ----------
    run_dir, source_format, source_files : what was read
    n_epochs, planned_epochs, complete : finished epochs vs the config's plan
    status : ``"failed"`` (a critical finding), ``"problems"`` (warnings), ``"healthy"``, or ``"no-metrics"``
        (no loss or metric holds a single finite value: nothing could be checked, so nothing is called healthy)
    verdict : one paragraph with the top findings and their numbers
    config : the settings that matter for diagnosis
    events : schedule events
    final_metrics : rows ``(quantity, split, value, definition)`` at the last epoch
    epoch_columns, epoch_values : the per-epoch table (numbers; relative changes are rendered)
    detectors : every detector's result (rule, findings, ruled-out hypotheses, skip reason)
    causes : root causes ranked by evidence
    ruled_out : hypotheses the numbers contradict
    untested : ``(hypothesis, what would test it)`` for detectors that could not run
    next_steps : runnable commands
    data : data paths, baselines, notes
    baseline_comparison : the model vs the trivial predictors, metric by metric (None without baselines)
    notes : reader notes (e.g. an unfinished epoch in a crashed run's log)
    figure_files : PNG file names relative to the markdown (filled when written; ``"figures"`` in the JSON).
        The figures themselves, as matplotlib objects: :meth:`figures` / :meth:`plot`
    """

    run_dir: str
    source_format: str
    source_files: tuple[str, ...]
    n_epochs: int
    planned_epochs: int | None
    complete: bool
    status: str
    verdict: str
    config: dict[str, Any]
    events: tuple[ScheduleEvent, ...]
    final_metrics: tuple[tuple[str, str, float, str], ...]
    epoch_columns: tuple[str, ...]
    epoch_values: tuple[tuple[float, ...], ...]
    detectors: tuple[DetectorResult, ...]
    causes: tuple[RankedCause, ...]
    ruled_out: tuple[RuledOut, ...]
    untested: tuple[tuple[str, str], ...]
    next_steps: tuple[str, ...]
    data: DataContext
    baseline_comparison: BaselineComparison | None = None
    notes: tuple[str, ...] = ()
    figure_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for d in self.detectors for f in d.findings)

    def finding(self, code: str) -> Finding | None:
        """The first finding with ``code`` (None when absent)."""
        return next((f for f in self.findings if f.code == code), None)

    def to_markdown(self) -> str:
        return render_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON twin: every field, plus ``findings`` flattened across detectors (severity order)."""
        out = super().to_dict()
        out["figures"] = out.pop("figure_files")  # the JSON key since schema 1
        order = {"critical": 0, "warning": 1, "info": 2}
        out["findings"] = [f.to_dict() for f in sorted(self.findings, key=lambda f: order[f.severity])]
        return out


# ----------------------------------------------------------------------------------------------
# composition


def _fill(command: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        command = command.replace("{" + key + "}", value)
    return command


def _with_run_settings(command: str, history: RunHistory) -> str:
    """Make a suggested ``lvmdiag train`` re-run keep the failed run's settings except the one it changes."""
    if not command.startswith("lvmdiag train "):
        return command
    if history.source_format == "lvmdiag-run" and (Path(history.run_dir) / "config.json").is_file():
        return command.replace("lvmdiag train ", f"lvmdiag train --config {Path(history.run_dir) / 'config.json'} ", 1)
    given = set(command.split())
    flags = []
    for key, flag in TRAIN_FLAGS.items():
        value = history.config.get(key)
        if flag in given or value is None or isinstance(value, (dict, list)):
            continue
        flags.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    learnable = history.config.get("anchor_learnable")
    if isinstance(learnable, bool):
        flags.append("--anchor-learnable" if learnable else "--no-anchor-learnable")
    return command + (" " + " ".join(flags) if flags else "")


def _rank_causes(findings: list[Finding]) -> tuple[RankedCause, ...]:
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.cause:
            groups.setdefault(f.cause, []).append(f)
    ranked = []
    for key, items in groups.items():
        score = sum(SEVERITY_WEIGHT[f.severity] for f in items)
        # contradicted only when every supporting finding is: one uncontradicted finding keeps the cause open
        against = tuple(dict.fromkeys(c for f in items for c in f.contradicted_by)) if all(
            f.contradicted_by for f in items) else ()
        ranked.append(RankedCause(key, CAUSES.get(key, key), score, tuple(f.title for f in items),
                                  tuple(f.message for f in items), against))
    # ranking rule: evidence that contradicts a cause outranks its score
    return tuple(sorted(ranked, key=lambda c: (bool(c.contradicted_by), -c.score, -len(c.findings), c.key)))


def _epoch_table(history: RunHistory) -> tuple[tuple[str, ...], tuple[tuple[float, ...], ...]]:
    cols: list[tuple[str, np.ndarray]] = []
    for split in history.splits():
        metrics = history.eval[split]
        for name in ("cos_next", "cos_prev", "cos_anchor", "margin", "raw_cos_anchor", "cosine", "loss"):
            if name in metrics and not np.all(np.isnan(metrics[name])):
                cols.append((f"{split} {name}", metrics[name]))
    for name in ("loss", *sorted(n for n in history.train_log if n.startswith("loss_")), "anchor_lambda", "gate_weight_mean", "lr"):
        values = history.train_log.get(name)
        if values is not None and not np.all(np.isnan(values)):
            if name == "lr" and np.nanmax(values) == np.nanmin(values):
                continue
            cols.append((f"train {name}", values))
    names = ("epoch", *(c for c, _ in cols))
    rows = tuple(tuple([float(e), *(float(v[i]) for _, v in cols)]) for i, e in enumerate(history.epochs))
    return names, rows


def _final_metrics(history: RunHistory) -> tuple[tuple[str, str, float, str], ...]:
    rows = []
    for split in history.splits():
        for name, values in history.eval[split].items():
            finite = values[np.isfinite(values)]
            if finite.size:  # the last value logged: an epoch that did not validate is skipped, a logged NaN is not
                logged = np.isfinite(values) | history.logged_nonfinite_mask(f"{split}.{name}", values)
                definition = (f"loss on the {split} split (evaluation pass)" if name == "loss"
                              else DEFINITIONS.get(name, ""))
                rows.append((name, split, float(values[np.flatnonzero(logged)[-1]]), definition))
    for name, values in history.train_log.items():
        if name in {"time_s", "time"} or np.all(np.isnan(values)):
            continue
        label = history.label(f"train_log.{name}")
        definition = DEFINITIONS.get(name, "")
        if label != name and label not in {f"train.{name}", f"train_loss.{name}"}:
            definition += f" — logged as '{label}'"
        rows.append((name, "train (training loop)", float(values[-1]), definition))
    return tuple(rows)


def _verdict(history: RunHistory, findings: list[Finding], causes: tuple[RankedCause, ...], n_detectors: int,
             n_skipped: int = 0) -> tuple[str, str]:
    critical = [f for f in findings if f.severity == "critical"]
    warnings_ = [f for f in findings if f.severity == "warning"]
    status = "failed" if critical else "problems" if warnings_ else "healthy"
    scope = f"{history.n_epochs} epoch(s)" + ("" if history.complete else
                                               f" of {history.planned_epochs} planned (the run did not finish)")
    series = [*(v for k, v in history.train_log.items() if k != "lr"),
              *(v for metrics in history.eval.values() for v in metrics.values())]
    if status == "healthy" and not any(np.isfinite(v).any() for v in series):
        return "no-metrics", (f"**NO METRICS** ({scope}): no loss or evaluation metric was logged with a value, so "
                              "nothing could be checked. Log a training loss and run an evaluation (for the Hugging "
                              "Face Trainer: an eval_strategy, and logging_strategy with a loss).")
    if status == "healthy":
        if not n_skipped:
            return status, f"No problem found by the {n_detectors} detectors over {scope}."
        # "healthy" only means what the detectors that ran could see: say how many could not run
        return status, (f"No problem found by the {n_detectors - n_skipped} of {n_detectors} detectors that could run "
                        f"over {scope}; {n_skipped} {'was' if n_skipped == 1 else 'were'} skipped for lack of logged series "
                        "or data (see Detectors).")
    # lead with a finding nothing contradicts, when there is one
    lead = sorted(critical or warnings_, key=lambda f: bool(f.contradicted_by))[0]
    head = "FAILED" if critical else "PROBLEMS FOUND"
    text = f"**{head}** ({scope}): {lead.message}"
    if causes and not causes[0].contradicted_by:
        text += f" Most supported root cause: {causes[0].title} (score {causes[0].score})."
    elif causes:
        text += (f" No root cause stands uncontradicted; the most supported, {causes[0].title} (score "
                 f"{causes[0].score}), is contradicted by {'; '.join(causes[0].contradicted_by)}.")
    return status, text


def compose_report(history: RunHistory, events: tuple[ScheduleEvent, ...], detectors: tuple[DetectorResult, ...],
                   data: DataContext) -> RunReport:
    """Assemble a :class:`RunReport` from a history, its events, detector results and data context."""
    findings = [f for d in detectors for f in d.findings]
    findings.sort(key=lambda f: -SEVERITY_WEIGHT[f.severity])
    causes = _rank_causes(findings)
    status, verdict = _verdict(history, findings, causes, len(detectors), sum(1 for d in detectors if d.skipped))
    ruled = tuple(r for d in detectors for r in d.ruled_out)
    run_dir = Path(history.run_dir)
    checkpoint = next((str(run_dir / n) for n in ("best.pt", "best_model.pt", "last.pt", "final_model.pt")
                       if (run_dir / n).is_file()), str(run_dir / "best.pt"))
    values = {"run_dir": str(run_dir), "run_name": run_dir.name or "run", "checkpoint": checkpoint}
    for split in ("train", "val"):
        values[split] = data.paths.get(split) or str(history.config.get(f"{split}_npz") or PLACEHOLDER[split])
    steps: list[str] = []
    cause_order = {c.key: i for i, c in enumerate(causes)}
    for f in sorted(findings, key=lambda f: cause_order.get(f.cause or "", 99)):
        steps += [_with_run_settings(_fill(s, values), history) for s in f.next_steps]
    ran = {s.analysis for s in data.signals}
    if not data.baselines:
        steps.append(_fill("lvmdiag bias --train {train} --val {val}", values))
    if "leakage" not in ran:
        steps.append(_fill("lvmdiag leakage --train {train} --val {val}", values))
    if "divergence" not in ran:
        steps.append(_fill("lvmdiag diverge --train {train} --val {val}", values))
    leaked = any(s.analysis == "leakage" and s.detected for s in data.signals)
    if leaked or ("leakage" not in ran and status != "healthy"):
        steps.append(_fill("lvmdiag resplit {train} {val} --by article --ratios 0.9,0.1 --names train,val --out resplit/", values))
    steps = list(dict.fromkeys(steps))
    columns, rows = _epoch_table(history)
    config = {k: history.config[k] for k in CONFIG_KEYS if k in history.config}
    untested = [UNTESTED[d.detector] for d in detectors if d.skipped and d.detector in UNTESTED]
    if ran:
        # data was read, but not every analysis ran on it (divergence is opt-in): its hypothesis stays open
        for analysis, command in (("leakage", "leakage"), ("divergence", "diverge")):
            if analysis not in ran:
                untested.append((DATA_HYPOTHESES[analysis],
                                 f"`lvmdiag report RUN_DIR --analyses {','.join(sorted(ran | {analysis} | ({'bias'} if data.bias else set())))}` or "
                                 f"`lvmdiag {command}` on the run's data"))
    return RunReport(
        run_dir=str(history.run_dir), source_format=history.source_format, source_files=history.source_files,
        n_epochs=history.n_epochs, planned_epochs=history.planned_epochs, complete=history.complete,
        status=status, verdict=verdict, config=config, events=events, final_metrics=_final_metrics(history),
        epoch_columns=columns, epoch_values=rows, detectors=detectors, causes=causes, ruled_out=ruled,
        untested=tuple(untested),
        next_steps=tuple(steps), data=data, baseline_comparison=baselines_detector.compare(history, data.baselines),
        notes=history.notes + tuple(
            f"the trainer flagged '{name}' at epoch {epoch}." for epoch, names in sorted(history.logged_events.items())
            for name in names if name in NOT_SCHEDULE))


# ----------------------------------------------------------------------------------------------
# markdown


def _cell(column: str, values: list[float], i: int) -> str:
    v = values[i]
    text = fmt(v)
    if i == 0 or not np.isfinite(v):
        return text
    prev = values[i - 1]
    if column.endswith("margin") and not column.startswith("train loss"):
        return f"{text} (Δ {fmt(v - prev)})" if np.isfinite(prev) else text
    change = rel_change(prev, v)
    return f"{text} ({pct(change, 0)})" if np.isfinite(change) and change != 0 else text


def render_markdown(r: RunReport) -> str:
    """Render a :class:`RunReport` as markdown (verdict, tables, findings, causes, next steps)."""
    name = Path(r.run_dir).name or r.run_dir
    lines = [f"# Run report: {name}", ""]
    # the verdict of a failed / problem run already opens with its status in bold ("**FAILED** ...")
    lines += [f"**Status:** {r.verdict}" if r.verdict.startswith("**") else f"**Status:** {r.status}. {r.verdict}", ""]
    lines += [f"Read {r.source_format} from {', '.join(Path(f).name for f in r.source_files)}; "
              f"{r.n_epochs} finished epoch(s)" + (f" of {r.planned_epochs} planned." if r.planned_epochs else ".")]
    if not r.complete:
        lines += ["", f"**The run did not finish** (stopped early, or still running): this report covers the "
                      f"{r.n_epochs} epoch(s) it finished of {r.planned_epochs} planned."]
    for note in r.notes:
        lines.append(f"- {note}")
    if r.config:
        lines += ["", "Settings: " + ", ".join(f"{k} = {v}" for k, v in r.config.items()) + "."]
    if r.events:
        lines += ["", "Schedule events: " + "; ".join(e.to_markdown() for e in r.events) + "."]
    for fig in r.figure_files:
        lines += ["", f"![training curves with schedule events]({fig})"]

    lines += ["", "## Summary", ""]
    if r.causes:
        lines.append("Root causes, most supported first (score = sum of severity weights: critical 3, warning 2, info 1):")
        lines.append("")
        for i, c in enumerate(r.causes, 1):
            lines.append(f"{i}. **{c.title}** (score {c.score}): {'; '.join(c.findings)}." + (
                f" Contradicted by: {'; '.join(c.contradicted_by)}." if c.contradicted_by else ""))
    else:
        lines.append("No detector fired.")
    if r.ruled_out:
        lines += ["", "Ruled out by the numbers:", ""]
        lines += [f"- {x.to_markdown()}" for x in r.ruled_out]
    if r.untested:
        lines += ["", "Not tested (the logs cannot answer these):", ""]
        lines += [f"- {h}: needs {what}." for h, what in r.untested]

    lines += ["", "## Final metrics (last epoch)", ""]
    lines.append(md_table(["quantity", "split", "value", "what it is"],
                          [[q, s, fmt(v), d] for q, s, v, d in r.final_metrics]))

    lines += ["", "## Epochs", "", "Each cell: value (relative change from the previous epoch; margins: absolute change Δ).", ""]
    event_at = {}
    for e in r.events:
        event_at.setdefault(e.epoch, []).append(e.name)
    header = ["epoch", "event", *r.epoch_columns[1:]]
    cols = [list(col) for col in zip(*r.epoch_values)] if r.epoch_values else []
    rows = []
    for i, row in enumerate(r.epoch_values):
        epoch = int(row[0])
        rows.append([str(epoch), ", ".join(event_at.get(epoch, [])) or ""] +
                    [_cell(c, cols[j + 1], i) for j, c in enumerate(r.epoch_columns[1:])])
    lines.append(md_table(header, rows))

    lines += ["", "## Findings", ""]
    any_finding = False
    for d in r.detectors:
        for f in d.findings:
            any_finding = True
            lines += [f"### {f.title} ({f.severity})", "", f.message, ""]
            lines += [f"- {e.to_markdown()}" for e in f.evidence]
            lines += ["", f"Rule ({d.detector}): {d.rule}.", ""]
    if not any_finding:
        lines += ["No finding.", ""]

    lines += ["## Data", ""]
    if r.baseline_comparison is not None:
        lines += [r.baseline_comparison.to_markdown(), ""]
    if r.data.baselines:
        lines.append(md_table(["predictor", "split", "cos_next", "cos_prev", "margin", "source"],
                              [[b.predictor, b.split, fmt(b.cos_next), fmt(b.cos_prev), fmt(b.margin), b.source]
                               for b in r.data.baselines]))
        lines.append("")
    for b in r.data.bias:
        lines.append(f"- {b.split} data: Δ = cos(c_last, t) − cos(c_0, t) = {b.delta.to_markdown()} over "
                     f"{b.n_windows} windows (95% CI: article-cluster bootstrap, articles {b.group_method}); adjacent coherence "
                     f"{b.adjacent_coherence.to_markdown()}. Δ is a lag gradient, not a direction.")
    for note in r.data.notes:
        lines.append(f"- {note}")
    if not (r.data.baselines or r.data.bias or r.data.notes):
        lines.append("- no data used.")

    lines += ["", "## Next steps", "", "```bash", *r.next_steps, "```", ""]

    lines += ["## Detectors", "", md_table(["detector", "outcome", "rule"], [
        [d.detector, ("skipped: " + d.skipped) if d.skipped else
         (f"{len(d.findings)} finding(s)" if d.findings else "silent"), d.rule] for d in r.detectors]), ""]
    return "\n".join(lines)
