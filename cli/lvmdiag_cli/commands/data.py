"""`lvmdiag data`: bias, direction, divergence and leakage of a set of splits in one report, with a CI gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import (
    EXIT_FINDING,
    AllowPickleOption,
    AlphaOption,
    EngineOption,
    HtmlOption,
    BiasKOption,
    NBootstrapOption,
    NPermutationsOption,
    OodOption,
    OutOption,
    QuietOption,
    SchedulerOption,
    SeedOption,
    ThresholdOption,
    TrainOption,
    ValOption,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    output_set,
    progress_bar,
    check_engine,
    sibling_png,
)


def data_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    k: BiasKOption = None,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    html: HtmlOption = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON ('-' = stdout).")] = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when any of these findings is present: comma list of leakage, shared-ids (article "
                          "ids shared without content that a nearest-chunk test links), divergence, contamination, "
                          "bias, direction, no-direction, or any.")] = None,
    n_permutations: NPermutationsOption = "auto",
    n_bootstrap: NBootstrapOption = 200,
    threshold: ThresholdOption = 0.98,
    alpha: AlphaOption = 0.05,
    seed: SeedOption = 0,
    quiet: QuietOption = False,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """One data report (verdict first): temporal bias, arrow of time, split divergence and leakage."""
    with handle_errors():
        from lvmdiag.analyzers.data_report import analyze_data, parse_fail_on, write_plots

        gate = parse_fail_on(fail_on)
        check_engine(engine, scheduler)
        pngs = {f"PNG {s}": sibling_png(out, s) for s in ("bias", "direction", "divergence", "leakage")}
        check_outputs({"--out": out, "--json": json_path, "--html": html, **pngs}, [train, val, ood])
        k = resolve_k(k, {"--train": train, "--val": val, "--ood": ood})
        with progress_bar("data report", enabled=not quiet) as bar:
            report = analyze_data({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                  n_permutations=n_permutations, n_bootstrap=n_bootstrap, threshold=threshold,
                                  alpha=alpha, rng=seed, progress=bar, engine=engine, scheduler=scheduler)
        with output_set() as outputs:
            images = write_plots(report, outputs.stage(out)) if out is not None else {}
            emit_html(report, html, [train, val, ood], outputs)
            emit(report.to_markdown(images), out, report.to_dict(), json_path, outputs)
    hit = sorted(gate & report.finding_kinds())
    if hit:
        typer.echo(f"failing: finding(s) present: {', '.join(hit)}", err=True)
        raise typer.Exit(EXIT_FINDING)


def register(app: typer.Typer) -> None:
    app.command("data")(data_cmd)
