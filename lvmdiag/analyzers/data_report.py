"""`lvmdiag data`: one report on a set of splits: temporal bias, direction, divergence and leakage.

The four analyzers run on the same splits with one article grouping (resolved once). Their tests
are corrected for multiple testing within one family per question and split (direction of val,
divergence of val vs train, bias differences val − train, contamination of val, ...), exactly as
each analyzer's own command does, so `lvmdiag data` and `lvmdiag direction` give the same verdict on
the same data and adding an ood file never changes a verdict about train or val. The report opens
with a short verdict and a list of findings that a CI job can gate on (``--fail-on``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag._validate import check_options
from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt_p
from lvmdiag.stats.multiple_testing import adjust_by_family, family_sizes, iter_tests
from lvmdiag.stats.resampling import as_rng
from lvmdiag.stats.sequential import undecided_note

SECTIONS = ("bias", "direction", "divergence", "leakage")
#: finding kinds ``--fail-on`` accepts ("any" = every kind)
FINDING_KINDS = ("leakage", "shared-ids", "divergence", "contamination", "bias", "direction", "no-direction")


@dataclass(frozen=True)
class Finding(Result):
    """One thing the user must know, with the section it came from."""

    kind: str  # one of FINDING_KINDS
    message: str

    def to_markdown(self) -> str:
        return f"**{self.kind}**: {self.message}"


@dataclass(frozen=True)
class DataReport(Result):
    """The composed data report.

    Attributes
    ----------
    splits : split names in report order (reference first)
    n_windows : windows per split
    grouping : how windows were grouped into articles (method and note), shared by every section
    findings : what the report found, by kind (see :data:`FINDING_KINDS`)
    bias, direction, divergence, leakage : the section results (None when not run; see ``skipped``)
    skipped : section -> reason it is missing (not requested, module unavailable, or input too small)
    n_tests : tests in the report (every TestResult)
    alpha : level of the findings
    families : Benjamini-Hochberg family name -> number of tests in it
    engine : the streaming pass that fed every section (:class:`lvmdiag.engine.runner.RunSummary`:
        engine, windows read per split, parts, blocks, state bytes shipped)
    """

    splits: tuple[str, ...]
    n_windows: dict[str, int]
    grouping: str
    findings: tuple[Finding, ...]
    bias: Any
    direction: Any
    divergence: Any
    leakage: Any
    skipped: dict[str, str]
    n_tests: int
    alpha: float
    families: dict[str, int] | None = None
    engine: Any = None

    def finding_kinds(self) -> set[str]:
        return {f.kind for f in self.findings}

    def verdict(self) -> list[str]:
        """Short lines for the top of the report: one per section."""
        lines = []
        if self.leakage is not None:
            lines.append(f"Leakage: {self.leakage.verdict()}.")
        if self.divergence is not None:
            pooled = [t for t in self.divergence.tests() if t.family.startswith("divergence")]
            n = sum(1 for t in pooled if t.status(self.alpha) == "significant")
            nominal = sum(1 for t in pooled if t.status(self.alpha) == "nominal")
            undecided = undecided_note(pooled, self.alpha)
            line = (f"Divergence: {n} of {len(pooled)} split-difference tests significant after correction."
                    if n else f"Divergence: {undecided}." if undecided
                    else "Divergence: no difference between splits after correction.")
            if nominal:
                line = line.rstrip(".") + f" ({nominal} more with an interval excluding chance or p ≤ {self.alpha} " \
                                          "before correction; see the divergence section)."
            lines.append(line)
            for c in self.divergence.comparisons:
                if c.contamination is not None:
                    lines.append(f"Contamination: {c.contamination.verdict()}.")
        if self.direction is not None:
            lines.append(f"Direction: {self.direction.verdict()}.")
        if self.bias is not None:
            n = sum(1 for f in self.findings if f.kind == "bias")
            missing = [nm for nm in self.splits[1:] if nm not in getattr(self.bias, "differences", {})]
            diffs = [t for ts in getattr(self.bias, "differences", {}).values() for t in ts]
            undecided = undecided_note(diffs, self.alpha)
            line = (f"Temporal bias: {n} statistic(s) differ from {self.splits[0]}." if n
                    else f"Temporal bias: differences from {self.splits[0]} {undecided}." if undecided
                    else f"Temporal bias: no statistic differs from {self.splits[0]}.")
            if missing:  # too few articles for the comparison: not tested is not "no difference"
                line = line.rstrip(".") + f" (not compared for {', '.join(missing)}: see the bias notes)."
                if len(missing) == len(self.splits) - 1:
                    line = (f"Temporal bias: differences from {self.splits[0]} not computed "
                            f"({', '.join(missing)}: see the bias notes).")
            lines.append(line)
        return lines

    def to_markdown(self, images: Mapping[str, str] | None = None) -> str:
        """The report; ``images`` maps a section name to a PNG path written beside the markdown."""
        images = images or {}
        head = ", ".join(f"{n} ({self.n_windows[n]} windows)" for n in self.splits)
        lines = ["# Data report", "", f"Splits: {head}. Articles: {self.grouping.rstrip('.')}.", "", "## Verdict", ""]
        if self.engine is not None:  # how many windows entered the statistics: every one, read once
            lines[3:3] = ["", self.engine.to_markdown()]
        lines += [f"- {v}" for v in self.verdict()]
        if self.findings:
            lines += ["", f"**Findings ({len(self.findings)})**", ""] + [f"- {f.to_markdown()}" for f in self.findings]
        else:
            lines += ["", "**No findings.**"]
        fams = self.families or {}
        fam_text = "; ".join(f"{k} ({v})" for k, v in fams.items())
        lines += [
            "",
            f"Test p-values are Benjamini–Hochberg adjusted within one family per question and split (shown as "
            f"BH p): {fam_text}. Findings use adjusted p ≤ {self.alpha}; a result whose interval excludes "
            "the null without surviving its family's correction is reported as such, never as chance. Each "
            "permutation test draws until it can no longer reach α, up to a cap that lets a lone effect reach "
            "α/m in its family (replicates used per test in the JSON). The lag-matched offsets of the direction "
            "section are a symmetry check, not part of a family.",
        ]
        if self.skipped:
            lines += ["", "Sections not included: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()) + "."]
        for name in ("leakage", "divergence", "direction", "bias"):
            res = getattr(self, name)
            if res is None:
                continue
            lines += ["", _demote(res.to_markdown()).rstrip()]
            if name in images:
                lines += ["", f"![{name}]({images[name]})"]
        return "\n".join(lines) + "\n"


def _demote(markdown: str) -> str:
    """Push a section's headings one level down so they nest under the report's sections."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.splitlines())


def _load_all(splits: Mapping[str, Any], k: int, allow_pickle: bool) -> dict[str, SequenceSet]:
    from lvmdiag.data.readers import load_sequences

    from lvmdiag.engine.sources import ShardedSplit, open_sharded, shard_paths

    out = {}
    for name, value in splits.items():
        if value is None:
            continue
        shards = None if isinstance(value, (SequenceSet, ShardedSplit)) else shard_paths(value)
        if shards is not None:  # a list of .npy shard directories, or a directory of them
            out[name] = open_sharded(shards, name)
            continue
        # scan="none": validation runs inside the engine's single pass (lvmdiag.engine.validation)
        out[name] = value if isinstance(value, (SequenceSet, ShardedSplit)) else load_sequences(
            value, split=name, k=k, allow_pickle=allow_pickle, scan="none")
    return out


def _iv(splits: dict[str, SequenceSet], sections: Sequence[str], reference: str) -> None:
    if reference not in splits:
        raise InputError(f"the data report needs a {reference!r} split; got {sorted(splits)}.")
    if len(splits) < 2:
        raise InputError("the data report compares splits: give --train and --val (and optionally --ood).")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise InputError(f"unknown report sections {sorted(unknown)}; choose from {list(SECTIONS)}.")


def parse_fail_on(text: str | None) -> set[str]:
    """Parse ``--fail-on leakage,divergence``; "any" means every kind. Unknown kinds are an InputError."""
    if not text:
        return set()
    kinds = {t.strip() for t in text.split(",") if t.strip()}
    if "any" in kinds:
        return set(FINDING_KINDS)
    unknown = kinds - set(FINDING_KINDS)
    if unknown:
        raise InputError(f"--fail-on: unknown finding kind(s) {sorted(unknown)}; choose from "
                         f"{', '.join(FINDING_KINDS)} or any.")
    return kinds


def _findings(bias: Any, direction: Any, divergence: Any, leakage: Any, alpha: float) -> list[Finding]:
    out: list[Finding] = []
    if leakage is not None and leakage.found():
        out.append(Finding("leakage", leakage.verdict()))
    if leakage is not None:  # ids without content that the nearest-chunk test links: evidence, not content leakage
        out += [Finding("shared-ids", s.id_warning(leakage.reference, leakage.threshold))
                for s in leakage.splits if s.ids_look_same]
    if divergence is not None:
        for t in divergence.tests():
            if t.family.startswith("divergence") and t.status(alpha) == "significant":
                out.append(Finding("divergence", f"{t.name}: effect {t.evidence(alpha)}"))
        for c in divergence.comparisons:
            ct = c.contamination
            if ct is not None and (ct.global_test.status(alpha) == "significant" or ct.flagged):
                out.append(Finding("contamination", ct.verdict()))
    if direction is not None:
        for name in direction.reversed_splits():
            s = direction.split(name).signed
            out.append(Finding("direction", f"{name} runs backwards relative to {direction.reference} "
                                            f"(signed direction score {s.evidence(alpha)})."))
        for name in direction.aligned_splits():
            s = direction.split(name).signed
            out.append(Finding("direction", f"{name} runs in {direction.reference}'s direction "
                                            f"(signed direction score {s.evidence(alpha)})."))
        tested = [s.split for s in direction.splits if s.classifier is not None or s.signed is not None]
        if tested and not direction.detected():  # untested splits are not evidence of "no direction"
            where = "any split" if len(tested) == len(direction.splits) else ", ".join(tested)
            msg = (f"no arrow of time detected after correction in {where}: neither the direction classifier nor "
                   "the signed score tells given from reversed window order at the family-corrected level.")
            nominal = direction.nominal()
            if nominal:
                msg += " Uncorrected evidence: " + "; ".join(f"{sp}: {t.evidence(alpha)}" for sp, t in nominal) + "."
            out.append(Finding("no-direction", msg))
    if bias is not None:
        for other, tests in bias.differences.items():
            for t in tests:
                if t.status(alpha) == "significant":
                    out.append(Finding("bias", f"{other} − {bias.reference}: {t.name} {t.evidence(alpha)}"))
    return out


def analyze_data(
    splits: Mapping[str, SequenceSet | str | os.PathLike[str] | None],
    *,
    k: int = 5,
    allow_pickle: bool = False,
    sections: Sequence[str] = SECTIONS,
    reference: str = "train",
    n_permutations: int | str = "auto",
    n_bootstrap: int = 200,
    threshold: float = 0.98,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    engine: str = "local",
    scheduler: str | None = None,
) -> DataReport:
    """Run the bias, direction, divergence and leakage analyzers on the same splits and compose them.

    Parameters
    ----------
    splits : {name: SequenceSet or path}; ``reference`` ("train") plus one or more others (val, ood)
    k, allow_pickle : how paths are read (:func:`lvmdiag.data.readers.load_sequences`)
    sections : which analyzers to run (default all four)
    n_permutations : cap on permutations (or flips) per test of every section, or "auto": enough for a
        lone effect to reach alpha/m in its family; each test stops once it cannot reach ``alpha``
    n_bootstrap : bootstrap replicates per confidence interval
    threshold : near-duplicate cosine for the leakage section
    alpha : level of the findings, on BH-adjusted p-values within each question's family
    rng : seed or generator (each section gets its own child seed)
    progress : optional ``callback(done, total)`` over the rows of the shared streaming pass
    engine, scheduler : "local" (one process) or "dask" (a LocalCluster, or the scheduler at ``scheduler``)

    Returns
    -------
    DataReport with the section results (their TestResults carry ``pvalue_adjusted`` within their family),
    the findings, and why any section is missing (``skipped``).
    """
    check_options(n_permutations=n_permutations, n_bootstrap=n_bootstrap, threshold=threshold, alpha=alpha, rng=rng)
    loaded = _load_all(splits, k, allow_pickle)
    _iv(loaded, sections, reference)
    names = [reference] + [n for n in loaded if n != reference]
    loaded = {n: loaded[n] for n in names}
    if rng is None or isinstance(rng, (int, np.integer)):
        # an integer seed goes to every section unchanged, so each section equals its own command run
        # with the same --seed (`lvmdiag data` and `lvmdiag direction` give the same direction verdict)
        seeds = {s: int(rng or 0) for s in SECTIONS}
    else:
        gen = as_rng(rng)
        seeds = {s: int(gen.integers(2**31)) for s in SECTIONS}
    from lvmdiag.engine.session import engine_client, engine_groups

    with engine_client(engine, scheduler) as client:
        groups = engine_groups(loaded, client, progress)
        grouping = f"{groups.method}; {groups.note}".rstrip("; ")
        # one read of every split feeds every section (lvmdiag.engine); finalize runs each section's inference
        from lvmdiag.engine.data import run_sections

        done, skipped, summary = run_sections(loaded, groups, [s for s in SECTIONS if s in sections], reference,
                                              n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                              threshold=threshold, alpha=alpha, seeds=seeds, engine=engine,
                                              scheduler=scheduler, client=client, progress=progress)
    results: dict[str, Any] = {s: done.get(s) for s in SECTIONS}
    skipped = {**{s: "not requested" for s in SECTIONS if s not in sections}, **skipped}
    if all(results[s] is None for s in sections):
        raise InputError("no section of the data report could be computed: " +
                         "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    # BH within each question's family (the analyzers did so already; this keeps the bundle consistent)
    bundle = adjust_by_family(tuple(results[s] for s in SECTIONS))
    results = dict(zip(SECTIONS, bundle))
    if results["leakage"] is not None:  # the chunk texts behind the closest pairs, when texts files sit beside stores
        from lvmdiag.analyzers.leakage import with_texts

        results["leakage"] = with_texts(results["leakage"], loaded)
    findings = _findings(results["bias"], results["direction"], results["divergence"], results["leakage"], alpha)
    return DataReport(
        splits=tuple(names),
        n_windows={n: s.n for n, s in loaded.items()},
        grouping=grouping,
        findings=tuple(findings),
        bias=results["bias"],
        direction=results["direction"],
        divergence=results["divergence"],
        leakage=results["leakage"],
        skipped=skipped,
        n_tests=len(iter_tests(bundle)),
        alpha=alpha,
        families=family_sizes(bundle),
        engine=summary,
    )


def _run_bias(splits, groups, reference, n_bootstrap, n_permutations, alpha, seed, cb):
    from lvmdiag.analyzers.temporal_bias import compare_bias

    labels = dict(zip(splits, groups.labels))
    return compare_bias(splits, groups=labels, group_method=groups.method, group_note=groups.note,
                        reference=reference, n_resamples=n_bootstrap, n_permutations=n_permutations, alpha=alpha,
                        rng=seed, progress=cb)


def _run_direction(splits, groups, reference, n_permutations, n_bootstrap, alpha, seed, cb):
    from lvmdiag.analyzers.direction import analyze_direction

    return analyze_direction(splits, groups=groups, reference=reference, n_permutations=n_permutations,
                             n_bootstrap=n_bootstrap, alpha=alpha, rng=seed, progress=cb)


def _run_divergence(splits, groups, reference, n_permutations, n_bootstrap, alpha, seed, cb):
    from lvmdiag.analyzers.divergence import analyze_divergence

    return analyze_divergence(splits, groups=groups, reference=reference, n_permutations=n_permutations,
                              n_bootstrap=n_bootstrap, alpha=alpha, rng=seed, progress=cb)


def _run_leakage(splits, groups, reference, threshold, cb):
    from lvmdiag.analyzers.leakage import analyze_leakage

    return analyze_leakage(splits, groups=groups, reference=reference, threshold=threshold, progress=cb)


def write_plots(report: DataReport, markdown_path: str | os.PathLike[str]) -> dict[str, str]:
    """Write each section's PNG beside ``markdown_path`` (``<stem>_<section>.png``); returns section -> file name."""
    out = Path(markdown_path)
    images: dict[str, str] = {}
    plotters = {
        "bias": ("lvmdiag.plots.bias", "plot_bias"),
        "direction": ("lvmdiag.plots.direction", "plot_direction"),
        "divergence": ("lvmdiag.plots.divergence", "plot_divergence"),
        "leakage": ("lvmdiag.plots.leakage", "plot_leakage"),
    }
    import importlib

    for section, (module, func) in plotters.items():
        res = getattr(report, section)
        if res is None:
            continue
        png = out.with_name(f"{out.stem}_{section}.png")
        getattr(importlib.import_module(module), func)(res, png)
        images[section] = png.name
    return images
