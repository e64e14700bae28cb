"""`lvmdiag embed`: raw text to an article store; `lvmdiag control reverse`: the reversed-article control store."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from lvmdiag import _validate as V
from lvmdiag.errors import InputError
from lvmdiag_cli._common import (
    check_outputs,
    ranged,
    AllowPickleOption,
    JsonOption,
    QuietOption,
    emit,
    handle_errors,
    progress_bar,
    refuse_overwrite_input,
)


def _word_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--chunk-words must be MIN,MAX words, e.g. 40,120; got {text!r}.") from None
    return lo, hi


@contextmanager
def _chunk_bar(enabled: bool) -> Iterator:
    """A progress bar in chunks with the rate (chunks/s) on stderr."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class _Rate(ProgressColumn):
        def render(self, task) -> Text:  # noqa: ANN001
            return Text(f"{task.speed:.1f} chunks/s" if task.speed else "… chunks/s")

    with Progress(TextColumn("embed"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("embed", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def embed_cmd(
    input_path: Annotated[Path, typer.Argument(
        help="JSONL of {article_id, text} (or {article_id, chunk_index, text}), a directory of .txt/.md files, "
             "or a Parquet file with those columns.")],
    out: Annotated[Path, typer.Option("--out", help="The article store to write (.npz or .parquet); texts and "
                                                    "provenance go beside it.")],
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Local model directory or cached Hugging Face name (default: the bundled all-MiniLM-L6-v2; "
                        "never downloads).")] = None,
    chunk_words: Annotated[str, typer.Option("--chunk-words", help="MIN,MAX words per chunk.")] = "40,120",
    min_chunks: Annotated[int, ranged(V.COUNT, "--min-chunks", help="Drop (and count) articles with fewer chunks; "
                                                                   "6 = one window at K = 5.")] = 6,
    batch_size: Annotated[int, ranged(V.COUNT, "--batch-size", help="Texts per encoder forward pass.")] = 32,
    checkpoint: Annotated[int, ranged(V.COUNT, "--checkpoint-every", help="Chunks per checkpoint (resume unit).")] = 1024,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, ... (default: automatic).")] = None,
    normalize: Annotated[bool, typer.Option("--normalize/--no-normalize", help="L2-normalise the vectors.")] = True,
    reverse: Annotated[bool, typer.Option("--reverse", help="Also write the reversed-article control store "
                                                            "<stem>.reversed.npz (.parquet).")] = False,
    out_format: Annotated[Optional[str], typer.Option(
        "--format", help="Store format: npz or parquet (needs lvmdiag[parquet]); default: from --out's suffix "
                         "(.npz unless it ends in .parquet).")] = None,
    id_column: Annotated[str, typer.Option("--id-column", help="Article id field / column.")] = "article_id",
    text_column: Annotated[str, typer.Option("--text-column", help="Text field / column.")] = "text",
    json_path: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Chunk and embed INPUT_PATH into an article store, resumably (rerun the same command after an interruption)."""
    with handle_errors():
        from lvmdiag.embed import embed_text

        check_outputs({"--out": out, "--json": json_path}, [input_path])
        with _chunk_bar(not quiet) as bar:
            result = embed_text(input_path, out, model=model, chunk_words=_word_range(chunk_words),
                                min_chunks=min_chunks, batch_size=batch_size, checkpoint_chunks=checkpoint,
                                device=device, normalize=normalize, reverse=reverse, fmt=out_format, id_column=id_column,
                                text_column=text_column, progress=bar)
        emit(result.to_markdown(), None, result.to_dict(), json_path)


def reverse_cmd(
    store: Annotated[Path, typer.Argument(help="An article store (.npz, Parquet, ...).")],
    out: Annotated[Path, typer.Option("--out", help="The control store to write (.npz or .parquet).")],
    allow_pickle: AllowPickleOption = False,
    json_path: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write STORE with every article's chunk order reversed (a control for the direction test)."""
    with handle_errors():
        from lvmdiag.embed import reverse_store

        check_outputs({"--out": out, "--json": json_path}, [store])
        with progress_bar("reverse", enabled=not quiet) as bar:
            result = reverse_store(store, out, allow_pickle=allow_pickle, progress=bar)
        emit(result.to_markdown(), None, result.to_dict(), json_path)


control_app = typer.Typer(help="Control datasets: the same data with one property changed.", no_args_is_help=True)
control_app.command("reverse")(reverse_cmd)


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_cmd)
    app.add_typer(control_app, name="control")
