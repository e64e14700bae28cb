"""`lvmdiag report RUN_DIR`: a failure report of a training run from its per-epoch logs (and its data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag._atomic import is_special_file
from lvmdiag.errors import InputError
from lvmdiag.results import with_schema
from lvmdiag_cli._common import (
    EXIT_FINDING,
    HtmlOption,
    QuietOption,
    SeedOption,
    V,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    output_set,
    progress_bar,
    ranged,
)

FORMAT_HELP = ("History format: auto, lvmdiag-run, p7-history, history-object, history-list, csv, jsonl, p7-log, "
               "lightning-csv, hf-trainer-state, tensorboard.")


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (lvmdiag, upstream P7, older histories, CSV/JSONL, a "
                                                 "stdout log, a Lightning CSVLogger or TensorBoardLogger root, a "
                                                 "Hugging Face output_dir) or one history file.")],
    train: Annotated[Optional[Path], typer.Option("--train", help="Training data (default: the config's train_npz).")] = None,
    val: Annotated[Optional[Path], typer.Option("--val", help="Validation data (default: the config's val_npz).")] = None,
    k: Annotated[Optional[int], ranged(V.COUNT, "--k", help="Window length K when the data is an article store "
                                       "(default 5; the bias analysis needs K >= 2). A window file keeps its own K: "
                                       "an explicit --k that differs from it is an error.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown here; the PNG of the curves goes "
                                                               "beside it (<stem>_curves.png). Default: markdown to stdout, no PNG.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the JSON twin here ('-' = stdout).")] = None,
    html: HtmlOption = None,
    in_run_dir: Annotated[bool, typer.Option("--in-run-dir", help="Write REPORT.md, report.json and REPORT_curves.png "
                                                                  "into RUN_DIR (what the trainer does).")] = False,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
    analyses: Annotated[str, typer.Option("--analyses", help="Data analyses when data is readable, comma-separated: "
                                                             "bias, leakage, divergence, direction.")] = "bias,leakage",
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays in the data (can run code from the file).")] = False,
    seed: SeedOption = 0,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 (after writing the outputs) when a finding of this severity or worse stands: "
                          "critical, or warning; a run that logged no metric value fails too.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Find why a run failed: collapse at schedule events, train/val metric definitions, inert mechanisms, loss imbalance, baselines, context drift, overfitting, divergence, chance-level ranking.

    Output: markdown to stdout unless --out is given; the PNG is written only with --out (beside it) or --in-run-dir. Inputs (the run's files, the data) are never overwritten. Exit 2 on a bad run directory.
    """
    with handle_errors():
        from lvmdiag.report import build_run_report, read_run_history, write_run_report

        if fail_on is not None and fail_on not in FAIL_ON:
            raise InputError(f"--fail-on {fail_on!r}: choose critical or warning.")

        wanted = tuple(a.strip() for a in analyses.split(",") if a.strip())
        history = read_run_history(run_dir, fmt=fmt)  # read once; every file it read is an input never overwritten
        options = dict(train=train, val=val, k=k, allow_pickle=allow_pickle, rng=seed, fmt=fmt, analyses=wanted,
                       history=history)
        inputs = [train, val, *_run_inputs(history)]
        to_stdout = json_path is not None and str(json_path) == "-"
        home = run_dir if run_dir.is_dir() else run_dir.parent
        md = out if out is not None else (home / "REPORT.md" if in_run_dir else None)
        js = None if to_stdout else json_path
        if js is None and in_run_dir and out is None and not to_stdout:
            js = home / "report.json"
        beside = md is not None and not is_special_file(md)  # no figure files beside /dev/null or a pipe
        png = md.with_name(f"{md.stem}_curves.png") if beside else None
        check_outputs({"--out": md, "--json": js, "--html": html, "PNG": png}, inputs)
        options["k"] = resolve_k(k, {"--train": train, "--val": val})
        with output_set() as outputs:
            with progress_bar("report", enabled=not quiet) as bar:
                if md is not None:
                    report = write_run_report(run_dir, out=outputs.stage(md),
                                              json_path=None if js is None else outputs.stage(js),
                                              progress=bar, **options)
                else:
                    report = build_run_report(run_dir, progress=bar, **options)
            emit_html(report, html, inputs, outputs)
            if md is None:  # markdown to stdout; JSON and HTML files staged and moved into place together
                emit(report.to_markdown(), None, report.to_dict(), json_path, outputs)
                _gate(report, fail_on)
                return
            outputs.commit()
            figures = [md.with_name(f) for f in report.figure_files] if beside else []
            written = [md] + figures + ([js] if js is not None else [])
            for path in written + outputs.announce:
                typer.echo(f"wrote {path}", err=True)
            if to_stdout:
                typer.echo(json.dumps(with_schema(report.to_dict()), indent=2, allow_nan=False))
            _gate(report, fail_on)


#: --fail-on value -> the run statuses that fail it
FAIL_ON = {"critical": ("failed", "no-metrics"), "warning": ("failed", "problems", "no-metrics")}


def _gate(report, fail_on: str | None) -> None:  # noqa: ANN001
    """Exit 1 (CI gating) when the report's status fails ``--fail-on``; the outputs are already written."""
    if fail_on is not None and report.status in FAIL_ON[fail_on]:
        typer.echo(f"failing: the run's status is {report.status} (--fail-on {fail_on})", err=True)
        raise typer.Exit(EXIT_FINDING)


def _run_inputs(history) -> list[Path]:  # noqa: ANN001
    """Every file the run's reader read (history, hparams.yaml, training_args.json, event files, config), and
    the run's baselines.json: never overwritten."""
    read = [Path(f) for f in history.source_files]
    return [*read, Path(history.run_dir) / "config.json", Path(history.run_dir) / "baselines.json"]


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
