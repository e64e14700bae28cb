"""Shared CLI plumbing: error-to-exit-code mapping, progress bars on stderr, atomic output."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from lvmdiag._atomic import write_json_atomic, write_text_atomic
from lvmdiag.errors import LvmdiagError, LvmdiagWarning

ProgressCallback = Callable[[int, int], None]

EXIT_OK = 0
EXIT_FINDING = 1  # a --fail-on finding was present
EXIT_BAD_INPUT = 2


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    prefix = "warning" if issubclass(category, LvmdiagWarning) else category.__name__
    typer.echo(f"{prefix}: {message}", err=True)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn library errors into a one-line message and exit code 2; show warnings as one line each."""
    old = warnings.showwarning
    warnings.showwarning = _print_warning
    try:
        yield
    except LvmdiagError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except FileNotFoundError as exc:
        typer.echo(f"error: file not found: {exc.filename or exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except OSError as exc:  # permission denied, a directory where a file was expected, disk full, ...
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except MemoryError:
        typer.echo("error: out of memory; use a memory-mapped .npy directory or smaller --block-rows.", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    finally:
        warnings.showwarning = old


@contextmanager
def progress_bar(description: str, enabled: bool = True) -> Iterator[ProgressCallback]:
    """Yield a ``callback(done, total)`` that drives a progress bar on stderr (no-op when disabled)."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def emit(markdown: str, out: Path | None, payload: Any | None = None, json_path: Path | None = None) -> None:
    """Write the markdown to ``out`` (atomically) or stdout, and the JSON twin to ``json_path`` ('-' = stdout)."""
    if json_path is not None and str(json_path) == "-":
        if out is not None:
            write_text_atomic(out, markdown)
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    if out is not None:
        write_text_atomic(out, markdown)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(markdown)
    if json_path is not None:
        write_json_atomic(json_path, payload)
        typer.echo(f"wrote {json_path}", err=True)


def refuse_overwrite_input(output: Path | None, inputs: list[Path | None]) -> None:
    """Never overwrite an input file with an output."""
    if output is None or str(output) == "-":
        return
    out = output.resolve()
    for p in inputs:
        if p is not None and Path(p).resolve() == out:
            raise LvmdiagError(f"output {output} is also an input; choose another path (inputs are never overwritten).")


# ---- options shared by the data commands (one definition, the same help everywhere) ----
TrainOption = Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store).")]
ValOption = Annotated[Path, typer.Option("--val", help="Validation sequences (may be the same two-split file).")]
OptionalValOption = Annotated[
    Optional[Path], typer.Option("--val", help="Validation sequences (may be the same two-split file).")
]
OodOption = Annotated[
    Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, also compared with train.")
]
KOption = Annotated[int, typer.Option("--k", help="Window length K when reading an article store.")]
AllowPickleOption = Annotated[
    bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")
]
OutOption = Annotated[
    Optional[Path], typer.Option("--out", help="Write the markdown report here (PNG plots go beside it).")
]
JsonOption = Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "--no-progress", help="No progress bar on stderr.")]
HtmlOption = Annotated[
    Optional[Path], typer.Option("--html", help="Also write one self-contained HTML report here (figures embedded, "
                                                "no network, no JavaScript).")
]


def emit_html(result: Any, html_path: Path | None, inputs: list[Path | None]) -> None:
    """Write ``result.to_html()`` atomically to ``html_path`` (when given); inputs are never overwritten."""
    if html_path is None:
        return
    refuse_overwrite_input(html_path, inputs)
    write_text_atomic(html_path, result.to_html())
    typer.echo(f"wrote {html_path}", err=True)


def load_named_splits(
    train: Path, val: Path | None, ood: Path | None, k: int, allow_pickle: bool
) -> dict[str, Any]:
    """Read the given files as {"train", "val", "ood"} (a two-split file may serve --train and --val)."""
    from lvmdiag.data.readers import load_sequences

    return {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
            for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}


def sibling_png(out: Path | None, section: str) -> Path | None:
    """``<stem>_<section>.png`` beside the markdown output, the naming every command shares (None without --out)."""
    return None if out is None else out.with_name(f"{out.stem}_{section}.png")


def attach_plot(markdown: str, png: Path, out: Path | None, alt: str, draw: Callable[[Path], None]) -> str:
    """Draw ``png`` and, when the markdown goes to a file, link it (by name when it sits beside the report)."""
    draw(png)
    if out is None:
        return markdown
    rel = png.name if png.parent.resolve() == out.parent.resolve() else str(png)
    return markdown + f"\n![{alt}]({rel})\n"

# engine options of the data commands (issue 9): where the single streaming pass runs
EngineOption = Annotated[str, typer.Option(
    "--engine", help="Where the streaming pass runs: local (this process) or dask (a LocalCluster sized to the "
                     "machine, or --scheduler). Shard directories (a folder of .npy dirs) become one task each.")]
SchedulerOption = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Dask scheduler address (tcp://host:8786) for --engine dask; default: a LocalCluster.")]


def check_engine(engine: str, scheduler: str | None) -> None:
    """--engine must be local or dask; --scheduler only with dask."""
    from lvmdiag.errors import InputError

    if engine not in ("local", "dask"):
        raise InputError(f"--engine must be local or dask; got {engine!r}.")
    if scheduler and engine != "dask":
        raise InputError("--scheduler needs --engine dask.")
