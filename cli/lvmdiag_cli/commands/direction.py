"""`lvmdiag direction`: can the data tell forward from reversed order, and does each split run the same way?"""

from __future__ import annotations

from typing import Annotated

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    JsonOption,
    KOption,
    NPermutationsOption,
    OodOption,
    OptionalValOption,
    OutOption,
    QuietOption,
    SeedOption,
    TrainOption,
    CommandEngineOption,
    SchedulerOption,
    check_engine,
    V,
    attach_plot,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    output_set,
    progress_bar,
    ranged,
    sibling_png,
)


def direction_cmd(
    train: TrainOption,
    val: OptionalValOption = None,
    ood: OodOption = None,
    k: KOption = None,
    seed: SeedOption = 0,
    permutations: NPermutationsOption = "auto",
    max_windows: Annotated[int, ranged(V.Range(10, integer=True), "--max-windows",
                                       help="At most this many windows per split feed the classifier.")] = 100_000,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    no_progress: QuietOption = False,
    engine: CommandEngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Direction classifier (true vs reversed order, CV by article), signed score vs train (the reference orientation), lag-matched offsets."""
    with handle_errors():
        from lvmdiag.engine.commands import engine_line, run_direction, with_engine_dict, with_engine_line

        check_engine(engine, scheduler)
        png = sibling_png(out, "direction")
        check_outputs({"--out": out, "--json": json_path, "--html": html, "PNG": png}, [train, val, ood])
        k = resolve_k(k, {"--train": train, "--val": val, "--ood": ood})
        with progress_bar("direction", enabled=not no_progress) as bar:
            result, run = run_direction({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                        n_permutations=permutations, max_windows=max_windows, seed=seed,
                                        engine=engine, scheduler=scheduler, progress=bar)
        markdown = with_engine_line(result.to_markdown(), run)
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.direction import plot_direction

                markdown = attach_plot(markdown, png, out, "direction",
                                       lambda p: plot_direction(result, outputs.stage(p)))
            emit_html(result, html, [train, val, ood], outputs, note=engine_line(run) if run else "")
            emit(markdown, out, with_engine_dict(result.to_dict(), run), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("direction")(direction_cmd)
