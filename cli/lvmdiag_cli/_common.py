"""Shared CLI plumbing: error-to-exit-code mapping, progress bars on stderr, checked options and outputs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from lvmdiag import _validate as V
from lvmdiag._atomic import copy_into, is_special_file, write_json_atomic, write_text_atomic
from lvmdiag.errors import InputError, LvmdiagError, LvmdiagWarning
from lvmdiag.results import with_schema

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


def emit(markdown: str, out: Path | None, payload: Any | None = None, json_path: Path | None = None,
         outputs: "OutputSet | None" = None) -> None:
    """Write the markdown to ``out`` (atomically) or stdout, and the JSON twin to ``json_path`` ('-' = stdout).

    The JSON carries ``schema_version`` and ``lvmdiag_version`` at the top (see docs/JSON.md). With
    ``outputs`` the files are staged in its temporary directory and appear together when it commits.
    """
    stage = outputs.stage if outputs is not None else (lambda p: p)
    if payload is not None:
        payload = with_schema(payload)
    extra = list(outputs.announce) if outputs is not None else []
    if json_path is not None and str(json_path) == "-":
        if out is not None:
            write_text_atomic(stage(out), markdown)
        if outputs is not None:
            outputs.commit()
        for path in ([out] if out is not None else []) + extra:
            typer.echo(f"wrote {path}", err=True)
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    if out is not None:
        write_text_atomic(stage(out), markdown)
    else:
        typer.echo(markdown)
    if json_path is not None:
        write_json_atomic(stage(json_path), payload)
    if outputs is not None:
        outputs.commit()
    for path in [p for p in (out, json_path) if p is not None] + extra:
        typer.echo(f"wrote {path}", err=True)


def refuse_overwrite_input(output: Path | None, inputs: list[Path | None]) -> None:
    """Never overwrite an input file with an output."""
    if output is None or str(output) == "-":
        return
    out = output.resolve()
    for p in inputs:
        if p is not None and Path(p).resolve() == out:
            raise LvmdiagError(f"output {output} is also an input; choose another path (inputs are never overwritten).")


def check_outputs(outputs: dict[str, Path | None], inputs: list[Path | None]) -> None:
    """Check every output path before any work: not a directory, not under a regular file, not an input,
    no two outputs the same. Messages name the user's path and option (``{"--out": path, ...}``)."""
    seen: dict[Path, str] = {}
    real_inputs = [Path(p) for p in inputs if p is not None]
    for label, path in outputs.items():
        if path is None or str(path) == "-":
            continue
        path = Path(path)
        if path.is_dir():
            raise InputError(f"{label} {path} is a directory; give a file path (e.g. {path / _example(label)}).")
        if is_special_file(path):  # /dev/null, /dev/stdout, a pipe: written into, not replaced
            if not os.access(path, os.W_OK):
                raise InputError(f"{label} {path}: cannot write to it (permission denied).")
            continue
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise InputError(f"{label} {path}: {parent} is a file, not a directory; choose another path.")
                if not os.access(parent, os.W_OK | os.X_OK):
                    raise InputError(f"{label} {path}: cannot write in {parent} (permission denied).")
                break
        resolved = path.resolve()
        for p in real_inputs:
            if p.resolve() == resolved:
                raise InputError(f"{label} {path} is also an input; choose another path (inputs are never overwritten).")
            if p.is_dir() and p.resolve() in resolved.parents:
                raise InputError(f"{label} {path} lies inside the input directory {p}; choose another path.")
        if resolved in seen:
            raise InputError(f"{label} {path} is also {seen[resolved]}; give two different files.")
        seen[resolved] = label


def check_output_dir(label: str, path: Path) -> None:
    """An output *directory* must not be a file nor lie under one (checked before any work)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"lies under the file {p}"
                raise InputError(f"{label} {path} {where}; give a directory path.")
            return


def _example(label: str) -> str:
    return {"--json": "result.json", "--plot": "plot.png"}.get(label, "report.md")


_STAGE_PREFIX = ".lvmdiag-"
#: seconds to sleep before each move into place: a test hook for killing a run mid-commit
COMMIT_SLEEP_ENV = "LVMDIAG_TEST_COMMIT_SLEEP"


class OutputSet:
    """Stage a command's output files (markdown, JSON, PNGs) in a temporary directory beside each target
    and move them into place together at the end, the markdown last.

    A run killed before :meth:`commit` leaves its targets untouched (old or absent) and only a hidden
    ``.lvmdiag-<pid>-<n>.tmp`` directory, which the next run writing beside the same targets removes.
    """

    def __init__(self) -> None:
        self._dirs: dict[Path, Path] = {}
        self._special: dict[Path, Path] = {}  # staged file -> a device or pipe target, written into at commit
        self._scratch: Path | None = None
        self.announce: list[Path] = []  # staged files the command names after commit (beside --out/--json)

    def stage(self, target: Path) -> Path:
        """The temporary path at which to write ``target`` (nothing is created at ``target`` itself)."""
        target = Path(target)
        if is_special_file(target):  # /dev/null, /dev/stdout, a pipe: staged apart, copied into it at commit
            if self._scratch is None:
                self._scratch = Path(tempfile.mkdtemp(prefix="lvmdiag-"))
            staged = self._scratch / f"{len(self._special)}-{target.name}"
            self._special[staged] = target
            return staged
        parent = target.parent.absolute()
        if parent not in self._dirs:
            home = next(p for p in (parent, *parent.parents) if p.exists())  # a missing parent is made at commit
            _remove_stale_stages(home)
            tmp = home / f"{_STAGE_PREFIX}{os.getpid()}-{len(self._dirs)}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            self._dirs[parent] = tmp
        return self._dirs[parent] / target.name

    def commit(self) -> None:
        """Move every staged file into place (PNGs and JSON first, markdown last) and drop the stages."""
        moves = [(f, parent / f.name) for parent, tmp in self._dirs.items()
                 for f in sorted(tmp.iterdir()) if not f.name.startswith(".")]
        moves.sort(key=lambda m: m[0].suffix == ".md")
        delay = float(os.environ.get(COMMIT_SLEEP_ENV) or 0)
        for src, dst in moves:
            if delay:
                time.sleep(delay)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        for staged, target in self._special.items():  # renaming over a device would replace it with a file
            if staged.exists():
                copy_into(staged, target)
        self.discard()

    def discard(self) -> None:
        for tmp in self._dirs.values():
            shutil.rmtree(tmp, ignore_errors=True)
        self._dirs.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._scratch = None
        self._special.clear()


def _remove_stale_stages(parent: Path) -> None:
    """Remove stage directories left in ``parent`` by killed runs (their process no longer exists)."""
    for stale in parent.glob(f"{_STAGE_PREFIX}*.tmp"):
        try:
            pid = int(stale.name[len(_STAGE_PREFIX):].split("-")[0].split(".")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, OSError):  # not ours, or a live process of another user
            continue


@contextmanager
def output_set() -> Iterator[OutputSet]:
    """An :class:`OutputSet` whose stages are removed when the command fails before committing."""
    outputs = OutputSet()
    try:
        yield outputs
    finally:
        outputs.discard()


# ---- numeric options: one range per option, checked while parsing (before any work starts) ----
def ranged(allowed: V.Range, *decls: str, help: str, words: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """A ``typer.Option`` whose value must lie in ``allowed`` (lvmdiag._validate); the help shows the range.

    With ``words`` (e.g. ``("auto",)``) the option is text: one of the words, or a number in range.
    """
    name = decls[0]
    what = allowed.describe() + "".join(f" or '{w}'" for w in words)

    def check(value: Any) -> Any:
        if value is None or (words and str(value).strip().lower() in words):
            return value
        number = value
        if isinstance(value, str):
            try:
                number = int(value) if allowed.integer else float(value)
            except ValueError:
                number = None
        if not allowed.contains(number):
            raise typer.BadParameter(f"must be {what}; got {value!r}.", param_hint=f"'{name}'")
        return value

    check.lvmdiag_range = allowed  # type: ignore[attr-defined]  # lets a test find unchecked options
    from rich.markup import escape  # help text is rich markup: "[0, 1]" would otherwise vanish as a tag

    return typer.Option(*decls, help=escape(f"{help} ({what})"), callback=check, **kwargs)


SeedOption = Annotated[int, ranged(V.SEED, "--seed", help="Seed for every random step (same seed, same numbers).")]
BlockRowsOption = Annotated[int, ranged(V.COUNT, "--block-rows", help="Windows read per block (memory bound).")]
NPermutationsOption = Annotated[str, ranged(
    V.N_PERMUTATIONS, "--n-permutations", "--permutations", words=("auto",), metavar="N|auto",
    help="Cap on whole-article permutations (flips, for direction) per test, or auto (each test stops once it "
         "cannot reach alpha; auto lets a lone effect reach alpha/m in its family).")]
NBootstrapOption = Annotated[int, ranged(V.N_BOOTSTRAP, "--n-bootstrap", help="Article-bootstrap replicates per interval.")]
AlphaOption = Annotated[float, ranged(V.PROBABILITY_OPEN, "--alpha", help="Level of the findings (BH-adjusted p).")]
ThresholdOption = Annotated[float, ranged(V.COSINE_THRESHOLD, "--threshold",
                                          help="Cosine at or above which a chunk is a near-duplicate.")]


# ---- options shared by the data commands (one definition, the same help everywhere) ----
TrainOption = Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store).")]
ValOption = Annotated[Path, typer.Option("--val", help="Validation sequences (may be the same two-split file).")]
OptionalValOption = Annotated[
    Optional[Path], typer.Option("--val", help="Validation sequences (may be the same two-split file).")
]
OodOption = Annotated[
    Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, also compared with train.")
]
from lvmdiag.data.window_k import resolve_k  # noqa: E402,F401  (--k: the default K, or one checked against window files)
_K_HELP = ("Window length K when windows are cut from an article store (default 5). A window file keeps its "
           "own K: an explicit --k that differs from it is an error.")
KOption = Annotated[Optional[int], ranged(V.COUNT, "--k", help=_K_HELP)]
#: bias and data: Δ = cos(c_last, t) − cos(c_0, t) needs two context positions
BIAS_K = V.Range(2, integer=True)
BiasKOption = Annotated[Optional[int], ranged(BIAS_K, "--k", help=_K_HELP + " Temporal bias needs K >= 2.")]


AllowPickleOption = Annotated[
    bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")
]
OutOption = Annotated[
    Optional[Path], typer.Option("--out", help="Write the markdown report here (PNG plots go beside it).")
]
JsonOption = Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", "--no-progress", help="No progress bar on stderr.")]
HtmlOption = Annotated[
    Optional[Path], typer.Option("--html", help="Also write one self-contained HTML report here (figures embedded, "
                                                "no network, no JavaScript).")
]


def emit_html(result: Any, html_path: Path | None, inputs: list[Path | None],
              outputs: "OutputSet | None" = None, note: str = "") -> None:
    """Write ``result.to_html()`` to ``html_path`` (when given): staged in ``outputs`` so it appears with the
    command's other files, else atomically on its own; inputs are never overwritten. ``note``: a markdown
    line shown under the page's title (e.g. which engine read the data)."""
    if html_path is None:
        return
    refuse_overwrite_input(html_path, inputs)  # commands check it up front too; this guards direct callers
    if note:
        from lvmdiag.report_html import result_html

        page = result_html(result, note=note)
    else:
        page = result.to_html()
    if outputs is None:
        write_text_atomic(html_path, page)
        typer.echo(f"wrote {html_path}", err=True)
        return
    write_text_atomic(outputs.stage(html_path), page)
    outputs.announce.append(html_path)  # "wrote" is said once the set is in place


def load_named_splits(
    train: Path, val: Path | None, ood: Path | None, k: int, allow_pickle: bool
) -> dict[str, Any]:
    """Read the given files as {"train", "val", "ood"} (a two-split file may serve --train and --val)."""
    from lvmdiag.data.readers import load_sequences

    return {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
            for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}


def sibling_png(out: Path | None, section: str) -> Path | None:
    """``<stem>_<section>.png`` beside the markdown output, the naming every command shares (None without --out,
    and None when --out is a device or pipe such as /dev/null: no file is made beside a device)."""
    return None if out is None or is_special_file(out) else out.with_name(f"{out.stem}_{section}.png")


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
CommandEngineOption = Annotated[Optional[str], typer.Option(
    "--engine", help="Run through the streaming engine: local (one read of every split in this process) or dask "
                     "(a LocalCluster sized to the machine, or --scheduler). Default: the one-shot analysis; a "
                     "folder of .npy shard directories runs on the local engine.")]
SchedulerOption = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Dask scheduler address (tcp://host:8786) for --engine dask; default: a LocalCluster.")]


def check_engine(engine: str | None, scheduler: str | None) -> None:
    """--engine must be local or dask; --scheduler only with dask (checked before any file is read)."""
    from lvmdiag.engine.data import check_engine as check

    check(engine, scheduler)
