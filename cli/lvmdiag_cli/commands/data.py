"""`lvmdiag data`: bias, direction, divergence and leakage of a set of splits in one report, with a CI gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    EXIT_FINDING,
    EngineOption,
    KOption,
    OodOption,
    OutOption,
    QuietOption,
    SchedulerOption,
    TrainOption,
    ValOption,
    emit,
    emit_html,
    handle_errors,
    progress_bar,
    check_engine,
    refuse_overwrite_input,
)


def data_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    k: KOption = 5,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    html: HtmlOption = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON ('-' = stdout).")] = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when any of these findings is present: comma list of leakage, divergence, bias, "
                          "direction, no-direction, or any.")] = None,
    n_permutations: Annotated[str, typer.Option("--n-permutations", metavar="N|auto", help="Cap on whole-article permutations per test, or auto (each test stops once it cannot reach alpha; auto lets a lone effect reach alpha/m in its family).")] = "auto",
    n_bootstrap: Annotated[int, typer.Option("--n-bootstrap", help="Article-bootstrap replicates per interval.")] = 200,
    threshold: Annotated[float, typer.Option("--threshold", help="Near-duplicate cosine for leakage.")] = 0.98,
    alpha: Annotated[float, typer.Option("--alpha", help="Level of the findings (BH-adjusted p).")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", help="Seed for every resampling in the report.")] = 0,
    quiet: QuietOption = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """One data report (verdict first): temporal bias, arrow of time, split divergence and leakage."""
    with handle_errors():
        from lvmdiag.analyzers.data_report import analyze_data, parse_fail_on, write_plots

        gate = parse_fail_on(fail_on)
        check_engine(engine, scheduler)
        refuse_overwrite_input(out, [train, val, ood])
        refuse_overwrite_input(json_path, [train, val, ood])
        with progress_bar("data report", enabled=not quiet) as bar:
            report = analyze_data({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                  n_permutations=n_permutations, n_bootstrap=n_bootstrap, threshold=threshold,
                                  alpha=alpha, rng=seed, progress=bar, engine=engine,
                                  scheduler=scheduler)
        images = write_plots(report, out) if out is not None else {}
        emit(report.to_markdown(images), out, report.to_dict(), json_path)
        emit_html(report, html, [train, val, ood])
    hit = sorted(gate & report.finding_kinds())
    if hit:
        typer.echo(f"failing: finding(s) present: {', '.join(hit)}", err=True)
        raise typer.Exit(EXIT_FINDING)


def register(app: typer.Typer) -> None:
    app.command("data")(data_cmd)
