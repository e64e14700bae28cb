"""Read the text to embed: a JSONL file, a directory of .txt/.md files, or a Parquet text column.

Every reader yields :class:`TextRecord` items in a deterministic order:

- JSONL (``.jsonl``, ``.jsonl.gz``): one object per line, ``{"article_id", "text"}`` (one whole
  article per line) or ``{"article_id", "chunk_index", "text"}`` (pre-chunked: one chunk per line,
  used as given). Articles keep the order of their first line.
- a directory: every ``.txt`` and ``.md`` file below it is one article, named by its path relative
  to the directory, in sorted path order.
- Parquet (``.parquet``): columns ``article_id`` and ``text`` (and ``chunk_index`` when pre-chunked),
  names configurable; read in record batches with pyarrow (``lvmdiag[parquet]``), imported lazily.

:func:`input_sha256` fingerprints the input (for a directory: the sorted names and contents).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lvmdiag._hash import file_sha256
from lvmdiag.errors import InputError

TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class TextRecord:
    """One article (``chunk_index`` None) or one pre-cut chunk of an article (``article_id`` as read: str or int)."""

    article_id: str | int
    text: str
    chunk_index: int | None = None


def input_kind(path: Path) -> str:
    """"dir", "jsonl" or "parquet" (an InputError for anything else)."""
    if path.is_dir():
        return "dir"
    if not path.exists():
        raise InputError(f"input {path} does not exist; give a .jsonl file, a directory of .txt/.md files or a .parquet file.")
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise InputError(
        f"input {path} is neither .jsonl, .jsonl.gz, .parquet nor a directory; convert it to JSONL lines "
        '{"article_id": ..., "text": ...}.'
    )


def read_records(path: str | os.PathLike[str], *, id_column: str = "article_id", text_column: str = "text",
                 chunk_column: str = "chunk_index") -> Iterator[TextRecord]:
    """Yield the input's records in file order (see the module docstring for the forms)."""
    p = Path(path)
    kind = input_kind(p)
    if kind == "dir":
        yield from _read_dir(p)
    elif kind == "jsonl":
        yield from _read_jsonl(p, id_column, text_column, chunk_column)
    else:
        yield from _read_parquet(p, id_column, text_column, chunk_column)


def _text_files(root: Path) -> list[Path]:
    return sorted((f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES),
                  key=lambda f: f.relative_to(root).as_posix())


def _read_dir(root: Path) -> Iterator[TextRecord]:
    files = _text_files(root)
    if not files:
        raise InputError(f"directory {root} holds no .txt or .md file; put one article per file there.")
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{f} is not UTF-8 text (byte {exc.start}); re-encode it as UTF-8.") from None
        yield TextRecord(f.relative_to(root).as_posix(), text)


def _open_text(path: Path):  # noqa: ANN202 - a text file object
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _record(obj: object, where: str, id_column: str, text_column: str, chunk_column: str) -> TextRecord:
    if not isinstance(obj, dict):
        raise InputError(f"{where} is not a JSON object; each line must be {{\"{id_column}\": ..., \"{text_column}\": ...}}.")
    missing = [k for k in (id_column, text_column) if k not in obj]
    if missing:
        raise InputError(f"{where} has no {', '.join(f'`{k}`' for k in missing)}; each line needs "
                         f"`{id_column}` and `{text_column}` (and `{chunk_column}` when pre-chunked).")
    text, aid = obj[text_column], obj[id_column]
    if not isinstance(text, str):
        raise InputError(f"`{text_column}` in {where} must be a string; got {type(text).__name__}.")
    if isinstance(aid, bool) or not isinstance(aid, (str, int)):
        raise InputError(f"`{id_column}` in {where} must be a string or an integer; got {aid!r}.")
    chunk = obj.get(chunk_column)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0):
        raise InputError(f"`{chunk_column}` in {where} must be a non-negative integer; got {chunk!r}.")
    return TextRecord(aid, text, chunk)


def _read_jsonl(path: Path, id_column: str, text_column: str, chunk_column: str) -> Iterator[TextRecord]:
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path} line {lineno} is not valid JSON ({exc.msg}); fix or remove that line.") from None
                yield _record(obj, f"{path} line {lineno}", id_column, text_column, chunk_column)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start}); re-encode it as UTF-8.") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"{path} is not a complete gzip file ({exc}); re-compress it.") from None


def _read_parquet(path: Path, id_column: str, text_column: str, chunk_column: str) -> Iterator[TextRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"reading {path} needs pyarrow: install lvmdiag[parquet].") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError on a non-Parquet file
        raise InputError(f"{path} is not a readable Parquet file ({exc}).") from None
    names = pf.schema_arrow.names
    missing = [c for c in (id_column, text_column) if c not in names]
    if missing:
        raise InputError(f"{path} has no column {', '.join(f'`{c}`' for c in missing)} (columns: {', '.join(names)}); "
                         "name them with --id-column / --text-column.")
    cols = [id_column, text_column] + ([chunk_column] if chunk_column in names else [])
    row = 0
    for batch in pf.iter_batches(columns=cols, batch_size=4096):
        data = batch.to_pydict()
        chunks = data.get(chunk_column, [None] * batch.num_rows)
        for aid, text, chunk in zip(data[id_column], data[text_column], chunks):
            row += 1
            obj = {id_column: aid, text_column: "" if text is None else text}
            if chunk is not None:
                obj[chunk_column] = chunk
            yield _record(obj, f"{path} row {row}", id_column, text_column, chunk_column)


def input_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the input file, or of a directory's sorted (relative name, file SHA-256) list."""
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha256()
        for f in _text_files(p):
            h.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0" + file_sha256(f).encode("ascii") + b"\n")
        return h.hexdigest()
    return file_sha256(p)
