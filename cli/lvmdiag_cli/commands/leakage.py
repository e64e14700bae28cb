"""`lvmdiag leakage`: what val/OOD share with train (articles, chunks, whole windows, near-duplicates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import emit, handle_errors, progress_bar, refuse_overwrite_input


def load_named_splits(train: Path, val: Optional[Path], ood: Optional[Path], k: int, allow_pickle: bool) -> dict:
    """Read the given files as {"train", "val", "ood"} (a two-split file may serve --train and --val)."""
    from lvmdiag.data.readers import load_sequences

    return {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
            for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}


def leakage_cmd(
    train: Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store).")],
    val: Annotated[Path, typer.Option("--val", help="Validation sequences (may be the same two-split file).")],
    ood: Annotated[Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, also compared with train.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Cosine at or above which a chunk is a near-duplicate.")] = 0.98,
    max_examples: Annotated[int, typer.Option("--max-examples", help="Examples listed per kind and split.")] = 10,
    k: Annotated[int, typer.Option("--k", help="Window length K when reading an article store.")] = 5,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Windows read per block (memory bound).")] = 4096,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown report here (a PNG plot goes beside it).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Count the articles, chunk vectors, windows and near-duplicate chunks that val (and OOD) share with train."""
    with handle_errors():
        from lvmdiag.analyzers.leakage import analyze_leakage

        for output in (out, json_path):
            refuse_overwrite_input(output, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("leakage", enabled=not no_progress) as bar:
            result = analyze_leakage(splits, threshold=threshold, max_examples=max_examples,
                                     block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        if out is not None:
            from lvmdiag.plots.leakage import plot_leakage

            png = out.with_name(out.stem + "_leakage.png")  # same naming as `lvmdiag data` and `diverge`
            refuse_overwrite_input(png, [train, val, ood])
            plot_leakage(result, png)
            markdown += f"\n![leakage]({png.name})\n"
        emit(markdown, out, result.to_dict(), json_path)


def register(app: typer.Typer) -> None:
    app.command("leakage")(leakage_cmd)
