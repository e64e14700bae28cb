"""Read Parquet, Arrow IPC / Feather, Hugging Face ``save_to_disk`` directories and ``.safetensors``.

Layouts (README "Input files"):

- **article store**, one row per chunk: a vector column (``embedding``, ``embeddings``, ``vector``,
  ``vectors`` or ``emb``; ``fixed_size_list<float>`` or ``list<float>``), an article id column
  (``article_id``, ``article_ids``, ``doc_id``, ``article_index``; integer or string) and optionally a
  chunk position column (``chunk_index``, ``position``, ...; without it row order is chunk order).
- **window file**: ``contexts`` as ``fixed_size_list<fixed_size_list<float32, D>, K>`` (or nested
  ``list``), ``targets`` as ``fixed_size_list<float32, D>``, optional ``article_id``; other numeric
  columns are carried as per-window extras. Any context / target alias of the npz forms works.
- Text columns (``text``, titles, ...) are ignored. Column names are guessed, or given with
  ``columns={"vector": ..., "id": ..., "position": ..., "contexts": ..., "targets": ...}`` (CLI:
  ``lvmdiag --columns vector=emb,id=doc_id ...``).

Parquet (one file, or a directory of shards read in sorted order) is read one row group at a time,
Arrow files one record batch at a time (memory-mapped, zero-copy); a ``fixed_size_list`` column
without nulls becomes a numpy view of its values buffer. Sequences are :class:`~lvmdiag.data.lazy.BlockRows`
(decoded on demand, a couple of blocks cached) and windows of a store are gathered lazily from the
chunk vectors, so memory stays bounded by a few row groups. ``.safetensors`` tensors are
memory-mapped from the file (the format is a JSON header then raw little-endian data).

pyarrow is imported only here and only when such a file is read; without it the reader says
"install lvmdiag[parquet]" in one line.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.data.lazy import BlockRows, GatherRows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import ArticleStore, _check_chunk_order, store_summary, store_windows_rows, string_key
from lvmdiag.data.validate import (
    CONTEXT_ALIASES,
    TARGET_ALIASES,
    check_sequence_shapes,
    require_float,
    scan_sequences,
    warn,
)
from lvmdiag.errors import InputError

__all__ = [
    "COLUMN_ROLES",
    "arrow_kind",
    "load_arrow_sequences",
    "load_arrow_store",
    "parse_columns",
    "set_default_columns",
]

#: roles a column can play, and the names guessed for each (first match wins)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "vector": ("embedding", "embeddings", "vector", "vectors", "emb"),
    "id": ("article_id", "article_ids", "doc_id", "article_index", "article_indices"),
    "position": ("chunk_index", "chunk_indices", "position", "chunk_idx", "chunk_position"),
    "contexts": CONTEXT_ALIASES,
    "targets": TARGET_ALIASES,
}
COLUMN_ROLES = tuple(COLUMN_ALIASES)
PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")
_PARQUET_MAGIC = b"PAR1"
_ARROW_FILE_MAGIC = b"ARROW1"

_default_columns: dict[str, str] = {}


def set_default_columns(columns: Mapping[str, str] | None) -> None:
    """Column names used when a reader is not given ``columns`` (the CLI's global ``--columns``)."""
    _default_columns.clear()
    _default_columns.update(_check_roles(dict(columns or {}), "--columns"))


def parse_columns(text: str) -> dict[str, str]:
    """``"vector=emb,id=doc_id"`` -> ``{"vector": "emb", "id": "doc_id"}`` (roles checked)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, sep, name = part.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--columns takes role=name pairs, e.g. vector=emb,id=doc_id; got {part!r}.")
        out[role.strip()] = name.strip()
    return _check_roles(out, "--columns")


def _check_roles(columns: dict[str, str], where: str) -> dict[str, str]:
    bad = [r for r in columns if r not in COLUMN_ALIASES]
    if bad:
        raise InputError(f"{where}: unknown column role {', '.join(map(repr, bad))}; roles are {', '.join(COLUMN_ROLES)}.")
    return columns


def _pyarrow(fname: str) -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError(f"{fname} is a Parquet/Arrow input and reading it needs pyarrow: install lvmdiag[parquet].") from None
    return pyarrow


# ---------------------------------------------------------------------------------------------
# what a path is


def arrow_kind(path: Path) -> str | None:
    """"parquet", "arrow", "hf_dataset", "hf_dict", "safetensors" or None (not a columnar input)."""
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if "dataset_dict.json" in names:
            return "hf_dict"
        if "state.json" in names and any(n.endswith(".arrow") for n in names):
            return "hf_dataset"
        if "contexts.npy" in names or "targets.npy" in names:
            return None
        if _parquet_files(path):
            return "parquet"
        return None
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in ARROW_SUFFIXES:
        return "arrow"
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return None
    if head[:4] == _PARQUET_MAGIC:
        return "parquet"
    if head == _ARROW_FILE_MAGIC:
        return "arrow"
    return None


def _parquet_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES and not p.name.startswith((".", "_")))


# ---------------------------------------------------------------------------------------------
# a columnar source: blocks (row groups / record batches) over one or more files


@dataclass
class _Source:
    """Blocks of rows of one logical table, each readable by column."""

    label: str
    kind: str
    schema: Any  # pyarrow.Schema of the first part
    part_labels: list[str]
    part_schemas: list[Any]
    block_part: list[int]
    sizes: list[int]
    read: Callable[[int, str], Any]  # (block, column) -> pyarrow.Array
    keep: list[Any] = field(default_factory=list)  # open readers / memory maps

    @property
    def n_rows(self) -> int:
        return int(sum(self.sizes))

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def where(self, block: int) -> str:
        return self.part_labels[self.block_part[block]] if self.part_labels else self.label


def _open_parquet(path: Path, fname: str) -> _Source:
    pa = _pyarrow(fname)
    import pyarrow.parquet as pq

    files = _parquet_files(path) if path.is_dir() else [path]
    if not files:
        raise InputError(f"directory {fname} holds no .parquet files.")
    handles, labels, schemas, block_part, sizes, index = [], [], [], [], [], []
    for i, f in enumerate(files):
        label = str(f) if not path.is_dir() else f"{fname}/{f.relative_to(path)}"
        try:
            pf = pq.ParquetFile(f, memory_map=True)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{label} cannot be read as Parquet ({str(exc).splitlines()[0]}); the file looks truncated or corrupt.") from None
        handles.append(pf)
        labels.append(label)
        schemas.append(pf.schema_arrow)
        for rg in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            if n:
                block_part.append(i)
                sizes.append(int(n))
                index.append(rg)

    def read(block: int, column: str) -> Any:
        part = block_part[block]
        try:
            table = handles[part].read_row_group(index[block], columns=[column])
        except (pa.ArrowInvalid, pa.ArrowKeyError, OSError, KeyError) as exc:
            raise InputError(f"column `{column}` of {labels[part]} cannot be read ({str(exc).splitlines()[0]}).") from None
        col = table.column(0)
        return col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)

    return _Source(fname, "parquet", schemas[0], labels, schemas, block_part, sizes, read, handles)


def _ipc_table(f: Path, label: str) -> Any:
    """An Arrow IPC file or stream, memory-mapped (buffers point into the map: zero-copy)."""
    pa = _pyarrow(label)
    try:
        source = pa.memory_map(str(f), "r")
        with open(f, "rb") as fh:
            head = fh.read(6)
        reader = pa.ipc.open_file(source) if head == _ARROW_FILE_MAGIC else pa.ipc.open_stream(source)
        return reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{label} cannot be read as an Arrow IPC file or stream ({str(exc).splitlines()[0]}).") from None


def _open_tables(files: list[Path], labels: list[str], fname: str, kind: str) -> _Source:
    _pyarrow(fname)
    batches: list[Any] = []
    block_part, sizes, schemas = [], [], []
    for i, (f, label) in enumerate(zip(files, labels)):
        table = _ipc_table(f, label)
        schemas.append(table.schema)
        for batch in table.to_batches():
            if batch.num_rows:
                batches.append(batch)
                block_part.append(i)
                sizes.append(batch.num_rows)

    def read(block: int, column: str) -> Any:
        batch = batches[block]
        idx = batch.schema.get_field_index(column)
        if idx < 0:
            raise InputError(f"{labels[block_part[block]]} has no column `{column}`.")
        return batch.column(idx)

    if not schemas:
        raise InputError(f"{fname} holds no Arrow data.")
    return _Source(fname, kind, schemas[0], labels, schemas, block_part, sizes, read, batches)


def _open_hf_dataset(path: Path, fname: str) -> _Source:
    """A ``Dataset.save_to_disk`` directory: Arrow stream files listed in ``state.json``."""
    files: list[Path] = []
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        files = [path / d["filename"] for d in state.get("_data_files", [])]
    except (OSError, ValueError, KeyError, TypeError):
        files = []
    if not files:
        files = sorted(path.glob("*.arrow"))
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{fname}/state.json lists {', '.join(missing)}, which is missing: copy the whole dataset directory.")
    return _open_tables(files, [f"{fname}/{f.name}" for f in files], fname, "hf_dataset")


def _hf_splits(path: Path, fname: str) -> list[str]:
    try:
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{fname}/dataset_dict.json cannot be read ({exc}); save the DatasetDict again.") from None
    return [str(s) for s in splits]


def open_source(path: Path, fname: str, kind: str) -> _Source:
    if kind == "parquet":
        return _open_parquet(path, fname)
    if kind == "arrow":
        return _open_tables([path], [fname], fname, "arrow")
    if kind == "hf_dataset":
        return _open_hf_dataset(path, fname)
    raise InputError(f"{fname}: unsupported columnar input kind {kind!r}.")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# columns


def _resolve(src: _Source, role: str, columns: Mapping[str, str], required: bool, what: str) -> str | None:
    names = src.names
    given = columns.get(role)
    if given is not None:
        if given not in names:
            raise InputError(
                f"{src.label} has no column `{given}` (given for {role}); columns: {', '.join(f'`{n}`' for n in names)}."
            )
        return given
    found = next((a for a in COLUMN_ALIASES[role] if a in names), None)
    if found is None and required:
        raise InputError(
            f"{src.label} has no {what} column (looked for {', '.join(COLUMN_ALIASES[role])}); columns: "
            f"{', '.join(f'`{n}`' for n in names) or 'none'}. Name it with --columns {role}=NAME (columns={{'{role}': NAME}})."
        )
    return found


def _list_depth(t: Any) -> tuple[int, Any]:
    """(levels of list nesting, leaf type) of an Arrow type."""
    import pyarrow as pa

    depth = 0
    while pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        t = t.value_type
        depth += 1
    return depth, t


def _check_leaf(leaf: Any, where: str, col: str) -> np.dtype:
    import pyarrow as pa

    if not pa.types.is_floating(leaf):
        raise InputError(
            f"column `{col}` in {where} holds {leaf} values, not floats; store the vectors as float32 "
            "(e.g. pa.list_(pa.float32(), D))."
        )
    return np.dtype({16: np.float16, 32: np.float32, 64: np.float64}[leaf.bit_width])


def _fixed_shape(t: Any, depth: int) -> tuple[int | None, ...]:
    """The list sizes of each level (None for a variable-length list)."""
    import pyarrow as pa

    out: list[int | None] = []
    for _ in range(depth):
        out.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
        t = t.value_type
    return tuple(out)


def vectors_to_numpy(arr: Any, where: str, col: str, row0: int, expect: tuple[int, ...] | None) -> np.ndarray:
    """A (nested) list column as a float array of shape (n,) + dims; zero-copy when there are no nulls.

    Raises one-line InputErrors for nulls, ragged lists (rows of different lengths), non-float
    values and a row shape other than ``expect`` (e.g. a shard with another D).
    """
    import pyarrow as pa

    n = len(arr)
    dims: list[int] = []
    cur = arr
    level = 0
    while pa.types.is_fixed_size_list(cur.type) or pa.types.is_list(cur.type) or pa.types.is_large_list(cur.type):
        if cur.null_count:
            bad = int(np.flatnonzero(np.asarray(cur.is_null()))[0])
            row = row0 + (bad if level == 0 else bad // max(1, int(np.prod(dims))))
            raise InputError(
                f"column `{col}` in {where} has {cur.null_count} null {'vectors' if level == 0 else 'entries'} "
                f"(first in row {row}); drop or re-embed those rows (a missing vector cannot be analysed)."
            )
        rows_here = n * int(np.prod(dims)) if dims else n
        if pa.types.is_fixed_size_list(cur.type):
            size = int(cur.type.list_size)
        else:
            lengths = np.diff(np.asarray(cur.offsets))
            size = int(lengths[0]) if lengths.size else (expect[level] if expect else 0)
            odd = np.flatnonzero(lengths != size)
            if odd.size:
                bad = int(odd[0])
                row = row0 + (bad if level == 0 else bad // max(1, int(np.prod(dims))))
                raise InputError(
                    f"column `{col}` in {where} is ragged: row {row} has a list of length {int(lengths[bad])} where "
                    f"earlier rows have {size}; every vector must have the same dimension D."
                )
        if expect is not None and level < len(expect) and size != expect[level] and rows_here:
            what = "D" if level == len(expect) - 1 else "K"
            raise InputError(
                f"column `{col}` in {where} has {what} = {size} but earlier rows have {what} = {expect[level]}; "
                "every shard must come from the same encoder and window length."
            )
        dims.append(size)
        cur = cur.flatten()
        level += 1
    _check_leaf(cur.type, where, col)
    if cur.null_count:
        first = int(np.flatnonzero(np.asarray(cur.is_null()))[0]) // max(1, int(np.prod(dims)))
        raise InputError(
            f"column `{col}` in {where} has {cur.null_count} null values inside vectors (first in row {row0 + first}); "
            "drop or re-embed those rows."
        )
    return _buffer_view(cur).reshape((n, *dims))


_NUMPY_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64"}


def _buffer_view(arr: Any) -> np.ndarray:
    """A null-free numeric Arrow array as a read-only numpy view of its data buffer (zero-copy).

    ``Array.to_numpy`` would do the same but imports pandas on first use (a second of start-up).
    """
    name = str(arr.type)
    dtype = np.dtype(_NUMPY_NAMES.get(name, name))
    buf = arr.buffers()[1]
    if buf is None or len(arr) == 0:
        return np.empty(0, dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _vector_rows(src: _Source, col: str, depth: int) -> BlockRows:
    """A lazy (N, D) or (N, K, D) view of a vector column, validated block by block as it is read."""
    where0 = src.where(0) if src.sizes else src.label
    field_type = src.schema.field(col).type
    got_depth, leaf = _list_depth(field_type)
    if got_depth != depth:
        shape = "(N, D): a list of floats per row" if depth == 1 else "(N, K, D): a list of K lists of D floats per row"
        raise InputError(f"column `{col}` in {where0} must hold {shape}; its type is {field_type}.")
    dtype = _check_leaf(leaf, where0, col)
    fixed = _fixed_shape(field_type, depth)
    for label, schema in zip(src.part_labels, src.part_schemas):
        idx = schema.get_field_index(col)
        if idx < 0:
            raise InputError(f"shard {label} has no column `{col}` (the first shard has it); all shards need the same columns.")
        other = _fixed_shape(schema.field(idx).type, depth)
        for a, b in zip(fixed, other):
            if a is not None and b is not None and a != b:
                raise InputError(
                    f"shard {label} has `{col}` of shape {other} per row but {src.part_labels[0]} has {fixed}; "
                    "every shard must come from the same encoder and window length."
                )
    starts = np.r_[0, np.cumsum(src.sizes)].astype(np.int64)
    expect: list[tuple[int, ...] | None] = [None if None in fixed else tuple(int(x) for x in fixed)]  # type: ignore[arg-type]
    first = None
    if expect[0] is None:
        if not src.sizes:
            raise InputError(f"{src.label} has no rows.")
        first = vectors_to_numpy(src.read(0, col), src.where(0), col, 0, None)
        expect[0] = tuple(first.shape[1:])

    def read_block(b: int) -> np.ndarray:
        return vectors_to_numpy(src.read(b, col), src.where(b), col, int(starts[b]), expect[0])

    rows = BlockRows(src.sizes, read_block, expect[0], dtype)
    if first is not None:
        first.flags.writeable = False
        rows._cache[0] = first
    return rows


def _plain_column(src: _Source, col: str) -> np.ndarray:
    """A scalar (or fixed-size list of scalars) column read whole, as numpy (ids, positions, extras)."""
    import pyarrow as pa

    parts = []
    for b in range(len(src.sizes)):
        arr = src.read(b, col)
        if arr.null_count:
            bad = int(np.flatnonzero(np.asarray(arr.is_null()))[0]) + int(sum(src.sizes[:b]))
            raise InputError(f"column `{col}` in {src.where(b)} has {arr.null_count} nulls (first in row {bad}); fill or drop them.")
        if pa.types.is_fixed_size_list(arr.type):
            flat = arr.flatten()
            vals = _buffer_view(flat) if pa.types.is_integer(flat.type) or pa.types.is_floating(flat.type) else (
                np.asarray(flat.to_numpy(zero_copy_only=False)))
            parts.append(vals.reshape(len(arr), arr.type.list_size))
        elif pa.types.is_dictionary(arr.type):
            parts.append(np.asarray(arr.cast(arr.type.value_type).to_numpy(zero_copy_only=False)))
        elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            parts.append(_buffer_view(arr))  # no nulls: a view of the buffer
        else:
            parts.append(np.asarray(arr.to_numpy(zero_copy_only=False)))
    if not parts:
        return np.empty(0)
    return np.concatenate(parts)


def _ids(src: _Source, col: str) -> tuple[np.ndarray, dict[int, str]]:
    """Raw article keys (int64) of an id column, hashing string ids; names for string ids."""
    raw = _plain_column(src, col)
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64), {}
    if raw.dtype.kind in "OSU":
        text = raw.astype(str)
        uniq, inv = np.unique(text, return_inverse=True)
        ukeys = np.array([string_key(s) for s in uniq], dtype=np.int64)
        return ukeys[inv.reshape(-1)], {int(kk): str(s) for kk, s in zip(ukeys, uniq)}
    raise InputError(
        f"article id column `{col}` in {src.label} holds {raw.dtype} values; ids must be integers or strings "
        "(floats cannot be compared exactly)."
    )


def _is_scalar_numeric(t: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_fixed_size_list(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


# ---------------------------------------------------------------------------------------------
# public readers (dispatched from readers.load_sequences / store.load_article_store)


def load_arrow_store(
    path: Path, fname: str, kind: str, columns: Mapping[str, str] | None = None
) -> ArticleStore:
    """An article store (one row per chunk) from Parquet / Arrow / an HF dataset directory / safetensors."""
    cols = {**_default_columns, **(columns or {})}
    if kind == "safetensors":
        return _safetensors_store(path, fname, cols)[0]
    if kind == "hf_dict":
        raise InputError(f"{fname} is a DatasetDict of {', '.join(_hf_splits(path, fname))}: pass one split's directory as the store.")
    src = open_source(path, fname, kind)
    return _store_from_source(src, cols, kind)[0]


def _store_from_source(src: _Source, cols: Mapping[str, str], kind: str) -> tuple[ArticleStore, dict[str, Any]]:
    """The store, and which columns were used / ignored (for provenance)."""
    vcol = _resolve(src, "vector", cols, True, "vector")
    idcol = _resolve(src, "id", cols, True, "article id")
    pcol = _resolve(src, "position", cols, False, "chunk position")
    assert vcol is not None and idcol is not None
    if src.n_rows == 0:
        raise InputError(f"`{vcol}` in {src.label} has no rows: the store is empty; regenerate it.")
    vectors = _vector_rows(src, vcol, 1)
    if vectors.shape[1] == 0:
        raise InputError(f"`{vcol}` in {src.label} has vectors of dimension D = 0: regenerate the store.")
    raw_keys, names_by_key = _ids(src, idcol)
    chunk_index = None
    if pcol is not None:
        pos = _plain_column(src, pcol)
        if pos.dtype.kind not in "iu":
            raise InputError(f"chunk position column `{pcol}` in {src.label} must hold integers; got {pos.dtype}.")
        chunk_index = pos.astype(np.int64)
        _check_chunk_order(raw_keys, chunk_index, src.label)
    ukeys, codes = np.unique(raw_keys, return_inverse=True)
    names = np.array([names_by_key.get(int(kk), str(int(kk))) for kk in ukeys], dtype=str)
    info = {"kind": kind, "columns": {"vector": vcol, "id": idcol, "position": pcol}, "blocks": len(src.sizes),
            "ignored_columns": [n for n in src.names if n not in (vcol, idcol, pcol)]}
    return ArticleStore(
        vectors=vectors,
        article_ids=codes.reshape(-1).astype(np.int64),
        chunk_index=chunk_index,
        article_names=names,
        source=src.label,
        fmt=f"{kind}_store",
        article_keys=ukeys.astype(np.int64),
    ), info


def load_arrow_sequences(
    path: Path,
    fname: str,
    kind: str,
    *,
    k: int,
    want: str | None,
    single: bool,
    scan: str,
    columns: Mapping[str, str] | None = None,
) -> dict[str, SequenceSet]:
    """Window files or article stores in a columnar format, as validated (lazy) SequenceSets."""
    cols = {**_default_columns, **(columns or {})}
    if kind == "hf_dict":
        splits = _hf_splits(path, fname)
        if want is not None and want in splits:
            chosen = [want]
        elif single and want is None and len(splits) > 1:
            raise InputError(
                f"{fname} holds {len(splits)} splits ({', '.join(splits)}): pass one split's directory "
                f"(e.g. {fname}/{splits[0]}), or read all with load_split_files."
            )
        elif want is not None and single and len(splits) > 1:
            raise InputError(f"{fname} has no split {want!r}; it holds {', '.join(splits)}: pass {fname}/<split>.")
        else:
            chosen = splits
        out = {}
        for s in chosen:
            sub = path / s
            seq = _sequences_from(open_source(sub, f"{fname}/{s}", "hf_dataset"), cols, k, want or s, scan, "hf_dataset")
            out[want or s] = seq
        return out
    name = want or (path.name if path.is_dir() else path.stem)
    if kind == "safetensors":
        return {name: _safetensors_sequences(path, fname, cols, k, want, scan)}
    return {name: _sequences_from(open_source(path, fname, kind), cols, k, want, scan, kind)}


def _sequences_from(src: _Source, cols: Mapping[str, str], k: int, split: str | None, scan: str, kind: str) -> SequenceSet:
    ccol = _resolve(src, "contexts", cols, False, "contexts")
    tcol = _resolve(src, "targets", cols, False, "targets")
    if ccol is None or tcol is None:
        if ccol is None and tcol is None and _resolve(src, "vector", cols, False, "vector") is not None:
            return store_to_lazy_windows(*_store_from_source(src, cols, kind), k, src.label, split, scan)
        present = ccol or tcol
        what = (f"`{present}` but no {'targets' if ccol else 'contexts'} column" if present else
                f"no contexts/targets columns and no vector column (looked for {', '.join(COLUMN_ALIASES['vector'])})")
        raise InputError(
            f"{src.label} has {what}; columns: {', '.join(f'`{n}`' for n in src.names) or 'none'}. A window file needs "
            "contexts and targets columns, an article store a vector and an article id column: name them with "
            "--columns vector=NAME,id=NAME (or contexts=NAME,targets=NAME)."
        )
    if src.n_rows == 0:
        raise InputError(f"`{ccol}` in {src.label} has no rows (N = 0): the file is empty; regenerate it.")
    contexts = _vector_rows(src, ccol, 2)
    targets = _vector_rows(src, tcol, 1)
    notes = [n for n in (require_float(contexts.dtype, ccol, src.label), require_float(targets.dtype, tcol, src.label)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, src.label, ccol, tcol)
    idcol = _resolve(src, "id", cols, False, "article id")
    article_ids = None
    names_by_key: dict[int, str] = {}
    if idcol is not None:
        article_ids, names_by_key = _ids(src, idcol)
    extras: dict[str, np.ndarray] = {}
    ignored = []
    for f in src.schema:
        if f.name in (ccol, tcol, idcol):
            continue
        if _is_scalar_numeric(f.type):
            extras[f.name] = _plain_column(src, f.name)
        else:
            ignored.append(f.name)
    report = scan_sequences(contexts, targets, src.label, ccol, tcol, notes, scan=scan)
    attrs: dict[str, Any] = {
        "keys": {"contexts": ccol, "targets": tcol, "article_ids": idcol},
        "validation": report.summary(),
        "dtype": str(contexts.dtype),
        "columnar": {"kind": kind, "blocks": len(src.sizes), "ignored_columns": ignored},
    }
    if names_by_key:
        attrs["article_names"] = names_by_key
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=src.label,
        split=split,
        fmt=kind if kind in ("parquet", "arrow", "hf_dataset") else "parquet",
        extras=extras,
        attrs=attrs,
        valid=report.valid,
    )


#: a store whose windows reach further than this many rows apart (in more than 1% of windows) is
#: read into memory once: gathering scattered rows block by block would re-read the file per block
_SCATTER_ROWS = 1 << 16


def store_to_lazy_windows(
    store: ArticleStore, info: dict[str, Any], k: int, fname: str, split: str | None, scan: str
) -> SequenceSet:
    """Stride-1 windows of a store as lazy gathers of its chunk vectors (no (K + 1)-fold copy).

    Windows are ordered by file position (within an article, chunk order), so a streaming pass
    reads the file about once. A store whose articles are scattered over the file is read into
    memory first (its vectors, not its windows).
    """
    if k < 1:
        raise InputError(f"window length k must be >= 1; got {k}.")
    ctx_rows, tgt_rows, codes = store_windows_rows(store, k)
    if tgt_rows.size == 0:
        raise InputError(
            f"{fname}: no article has more than k = {k} chunks, so no window of {k} context chunks plus a target "
            "exists; use a smaller k."
        )
    order = np.argsort(ctx_rows[:, 0], kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        ctx_rows, tgt_rows, codes = ctx_rows[order], tgt_rows[order], codes[order]
    vectors = store.vectors
    span = np.maximum(ctx_rows.max(axis=1), tgt_rows) - np.minimum(ctx_rows.min(axis=1), tgt_rows)
    note = None
    # a window of a grouped store spans K + 1 neighbouring rows; "far" is beyond a typical block
    # (small trailing row groups or shards must not count) and well beyond one window
    far = max(min(_SCATTER_ROWS, int(np.median(vectors.sizes))), 8 * (k + 1)) if isinstance(vectors, BlockRows) else 0
    if isinstance(vectors, BlockRows) and np.mean(span > far) > 0.01:
        vectors = np.asarray(vectors)
        note = "articles are scattered over the file: chunk vectors were read into memory"
        info = {**info, "in_memory": True}
    contexts = GatherRows(vectors, ctx_rows)
    targets = GatherRows(vectors, tgt_rows)
    report = scan_sequences(contexts, targets, fname, "vectors", "vectors", [note] if note else [], scan=scan)
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=store.article_keys[codes].astype(np.int64),
        id_source="given",
        source=fname,
        split=split,
        fmt="article_store",
        extras={"context_indices": ctx_rows.astype(np.int64), "target_indices": tgt_rows.astype(np.int64)},
        attrs={
            "keys": {"contexts": "vectors", "targets": "vectors", "article_ids": "article_ids"},
            "store": store_summary(store),
            "article_names": {int(key): str(name) for key, name in zip(store.article_keys, store.article_names)},
            "k": k,
            "validation": report.summary(),
            "dtype": str(store.vectors.dtype),
            "columnar": info,
        },
        valid=report.valid,
    )


# ---------------------------------------------------------------------------------------------
# safetensors: memory-mapped tensors


_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def _safetensors_arrays(path: Path, fname: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file, memory-mapped (its header is read; no data is copied)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than its 8-byte header length")
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > min(size - 8, 100 * 2**20):
                raise ValueError("header length exceeds the file")
            header = json.loads(fh.read(hlen).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{fname} cannot be read as safetensors ({exc}); the file looks truncated or corrupt.") from None
    base = 8 + hlen
    out: dict[str, np.ndarray] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        code = info.get("dtype")
        if code not in _ST_DTYPES:
            raise InputError(f"tensor `{key}` in {fname} is {code}, which numpy cannot read; save it as F32.")
        dtype = np.dtype(_ST_DTYPES[code])
        shape = tuple(int(x) for x in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize or base + end > size:
            raise InputError(f"tensor `{key}` in {fname} is cut short or inconsistent with its header: the file is corrupt.")
        if int(np.prod(shape, dtype=np.int64)) == 0:
            out[key] = np.empty(shape, dtype)
        else:
            out[key] = np.memmap(path, dtype=dtype, mode="r", offset=base + begin, shape=shape)
    return out


def _pick(arrays: Mapping[str, np.ndarray], role: str, cols: Mapping[str, str], fname: str) -> str | None:
    given = cols.get(role)
    if given is not None:
        if given not in arrays:
            raise InputError(f"{fname} has no tensor `{given}` (given for {role}); tensors: {', '.join(f'`{n}`' for n in arrays)}.")
        return given
    return next((a for a in COLUMN_ALIASES[role] if a in arrays), None)


def _safetensors_sequences(path: Path, fname: str, cols: Mapping[str, str], k: int, split: str | None, scan: str) -> SequenceSet:
    arrays = _safetensors_arrays(path, fname)
    ckey, tkey = _pick(arrays, "contexts", cols, fname), _pick(arrays, "targets", cols, fname)
    if ckey is None or tkey is None:
        if _pick(arrays, "vector", cols, fname) is not None:
            return store_to_lazy_windows(*_safetensors_store(path, fname, cols, arrays), k, fname, split, scan)
        raise InputError(
            f"{fname} has no contexts/targets or vector tensors: tensors {', '.join(f'`{n}`' for n in arrays) or 'none'}; "
            f"expected contexts as one of {', '.join(CONTEXT_ALIASES)} and targets as one of {', '.join(TARGET_ALIASES)}, "
            "or `vectors`/`embedding` with `article_ids`."
        )
    contexts, targets = arrays[ckey], arrays[tkey]
    notes = [n for n in (require_float(contexts.dtype, ckey, fname), require_float(targets.dtype, tkey, fname)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, fname, ckey, tkey)
    n = contexts.shape[0]
    idkey = _pick(arrays, "id", cols, fname)
    article_ids = None
    if idkey is not None:
        ids = arrays[idkey]
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise InputError(f"`{idkey}` in {fname} must be an integer tensor of shape ({n},); got {ids.dtype} {ids.shape}.")
        article_ids = np.asarray(ids, dtype=np.int64)
    extras = {key: np.asarray(a) for key, a in arrays.items() if key not in (ckey, tkey, idkey) and a.ndim >= 1 and a.shape[0] == n}
    report = scan_sequences(contexts, targets, fname, ckey, tkey, notes, scan=scan)
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=fname,
        split=split,
        fmt="safetensors",
        extras=extras,
        attrs={"keys": {"contexts": ckey, "targets": tkey, "article_ids": idkey}, "validation": report.summary(),
               "dtype": str(contexts.dtype)},
        valid=report.valid,
    )


def _safetensors_store(
    path: Path, fname: str, cols: Mapping[str, str], arrays: dict[str, np.ndarray] | None = None
) -> tuple[ArticleStore, dict[str, Any]]:
    arrays = arrays if arrays is not None else _safetensors_arrays(path, fname)
    vkey = _pick(arrays, "vector", cols, fname)
    idkey = _pick(arrays, "id", cols, fname)
    if vkey is None or idkey is None:
        raise InputError(
            f"{fname} is not an article store: tensors {', '.join(f'`{n}`' for n in arrays) or 'none'}; a store needs a "
            f"vector tensor ({', '.join(COLUMN_ALIASES['vector'])}) and an article id tensor ({', '.join(COLUMN_ALIASES['id'])})."
        )
    vectors = arrays[vkey]
    require_float(vectors.dtype, vkey, fname)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InputError(f"`{vkey}` in {fname} must have shape (N, D) with N, D >= 1; got {vectors.shape}.")
    n = vectors.shape[0]
    raw = np.asarray(arrays[idkey])
    if raw.shape != (n,) or raw.dtype.kind not in "iu":
        raise InputError(f"`{idkey}` in {fname} must be an integer tensor of shape ({n},); got {raw.dtype} {raw.shape}.")
    raw_keys = raw.astype(np.int64)
    pkey = _pick(arrays, "position", cols, fname)
    chunk_index = None
    if pkey is not None:
        pos = np.asarray(arrays[pkey])
        if pos.shape != (n,) or pos.dtype.kind not in "iu":
            raise InputError(f"`{pkey}` in {fname} must be an integer tensor of shape ({n},); got {pos.dtype} {pos.shape}.")
        chunk_index = pos.astype(np.int64)
        _check_chunk_order(raw_keys, chunk_index, fname)
    ukeys, codes = np.unique(raw_keys, return_inverse=True)
    return ArticleStore(
        vectors=vectors,
        article_ids=codes.reshape(-1).astype(np.int64),
        chunk_index=chunk_index,
        article_names=np.array([str(int(x)) for x in ukeys], dtype=str),
        source=fname,
        fmt="safetensors_store",
        article_keys=ukeys.astype(np.int64),
    ), {"kind": "safetensors", "columns": {"vector": vkey, "id": idkey, "position": pkey}}


def is_columnar_path(path: str | os.PathLike[str]) -> str | None:
    """The columnar kind of an existing path, or None (npz, .npy directories)."""
    p = Path(path)
    return arrow_kind(p) if p.exists() else None
