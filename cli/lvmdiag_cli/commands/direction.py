"""`lvmdiag direction`: can the data tell forward from reversed order, and does each split run the same way?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import emit, handle_errors, progress_bar, refuse_overwrite_input
from lvmdiag_cli.commands.leakage import load_named_splits


def direction_cmd(
    train: Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store); the reference orientation.")],
    val: Annotated[Optional[Path], typer.Option("--val", help="Validation sequences (may be the same two-split file).")] = None,
    ood: Annotated[Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences.")] = None,
    k: Annotated[int, typer.Option("--k", help="Window length K when reading an article store.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed for folds, permutations and bootstraps.")] = 0,
    permutations: Annotated[int, typer.Option("--permutations", help="Article-flip permutations per test.")] = 499,
    max_windows: Annotated[int, typer.Option("--max-windows", help="At most this many windows per split feed the classifier.")] = 100_000,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown report here (a PNG plot goes beside it).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")] = False,
) -> None:
    """Direction classifier (true vs reversed order, CV by article), signed score vs train, lag-matched offsets."""
    with handle_errors():
        from lvmdiag.analyzers.direction import analyze_direction

        for output in (out, json_path):
            refuse_overwrite_input(output, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("direction", enabled=not no_progress) as bar:
            result = analyze_direction(splits, n_permutations=permutations, max_windows=max_windows,
                                       rng=seed, progress=bar)
        markdown = result.to_markdown()
        if out is not None:
            from lvmdiag.plots.direction import plot_direction

            png = out.with_name(out.stem + "_direction.png")  # same naming as `lvmdiag data` and `diverge`
            refuse_overwrite_input(png, [train, val, ood])
            plot_direction(result, png)
            markdown += f"\n![direction]({png.name})\n"
        emit(markdown, out, result.to_dict(), json_path)


def register(app: typer.Typer) -> None:
    app.command("direction")(direction_cmd)
