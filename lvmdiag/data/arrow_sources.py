"""Parquet files and shard directories, Arrow IPC / Feather files and ``datasets`` directories as
blocks of rows (row groups / record batches) readable column by column, and the conversion of
list columns to numpy (zero-copy where the layout allows) with one-line errors for bad columns.
pyarrow is imported only when such an input is opened."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.data.columnar import COLUMN_ALIASES
from lvmdiag.data.lazy import BlockRows
from lvmdiag.data.store import string_key
from lvmdiag.errors import InputError

PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")
#: data files that a folder of Parquet shards may also hold, and that are then not read (said in a warning)
_OTHER_DATA_SUFFIXES = (".npz", ".npy", ".safetensors", ".arrow", ".feather", ".ipc", ".arrows", ".csv", ".jsonl")
_PARQUET_MAGIC = b"PAR1"
_ARROW_FILE_MAGIC = b"ARROW1"


def _pyarrow(fname: str) -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError(f"{fname} is a Parquet/Arrow input and reading it needs pyarrow: install lvmdiag[parquet].") from None
    return pyarrow


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


def _folder_files(path: Path) -> tuple[list[Path], list[Path]]:
    """(Parquet files, other data files) under a folder, each sorted, from one walk; hidden and
    ``_``-prefixed files (``_SUCCESS``, ``.crc``) are skipped."""
    parquet, other = [], []
    for p in path.rglob("*"):
        if not p.is_file() or p.name.startswith((".", "_")):
            continue
        suffix = p.suffix.lower()
        if suffix in PARQUET_SUFFIXES:
            parquet.append(p)
        elif suffix in _OTHER_DATA_SUFFIXES:
            other.append(p)
    return sorted(parquet), sorted(other)


def _parquet_files(path: Path) -> list[Path]:
    return _folder_files(path)[0]


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

    def first_row_in_file(self) -> np.ndarray:
        """(blocks,) row of each block's first row within its own file (error messages name the file)."""
        starts = np.r_[0, np.cumsum(self.sizes)].astype(np.int64)[:-1]
        part = np.asarray(self.block_part, dtype=np.int64)
        if part.size == 0:
            return starts
        new_file = np.r_[True, part[1:] != part[:-1]]
        return starts - np.maximum.accumulate(np.where(new_file, starts, 0))

    def check_column_everywhere(self, col: str) -> None:
        """Every file of the source has ``col`` (the first one has it: that is where it was found)."""
        for label, schema in zip(self.part_labels, self.part_schemas):
            if schema.get_field_index(col) < 0:
                raise InputError(f"shard {label} has no column `{col}` (the first shard has it); all shards need the same columns.")


class _ParquetFiles:
    """Open ``ParquetFile`` handles that pickle as their absolute paths: a Dask task (or any process the
    source is sent to) reopens each file where it runs, on first use (pyarrow's readers cannot be pickled)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [str(Path(p).resolve()) for p in paths]
        self._open: dict[int, Any] = {}

    def __getitem__(self, i: int) -> Any:
        handle = self._open.get(i)
        if handle is None:
            import pyarrow.parquet as pq

            handle = self._open[i] = pq.ParquetFile(self.paths[i], memory_map=True)
        return handle

    def __getstate__(self) -> dict:
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.paths, self._open = state["paths"], {}


def _open_parquet(path: Path, fname: str) -> _Source:
    pa = _pyarrow(fname)
    import pyarrow.parquet as pq

    files, others = _folder_files(path) if path.is_dir() else ([path], [])
    if not files:
        raise InputError(f"directory {fname} holds no .parquet files.")
    if others:
        from lvmdiag.data.validate import warn

        other = [p.relative_to(path).as_posix() for p in others]
        warn(f"{fname}: read as {len(files)} Parquet shard(s); {len(other)} other data file(s) in it are not read "
             f"({', '.join(other[:3])}{', ...' if len(other) > 3 else ''}).")
    handles = _ParquetFiles(files)
    labels, schemas, block_part, sizes, index = [], [], [], [], []
    for i, f in enumerate(files):
        label = str(f) if not path.is_dir() else f"{fname}/{f.relative_to(path)}"
        try:
            pf = handles[i]
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{label} cannot be read as Parquet ({str(exc).splitlines()[0]}); the file looks truncated or corrupt.") from None
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

    return _Source(fname, "parquet", schemas[0], labels, schemas, block_part, sizes, read, [handles])


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
    matches = [a for a in COLUMN_ALIASES[role] if a in names]
    if len(matches) > 1:  # guessing would silently analyse whichever comes first
        raise InputError(
            f"{src.label} has {len(matches)} columns that could be the {what} column "
            f"({', '.join(f'`{m}`' for m in matches)}); say which with the global option "
            f"`lvmdiag --columns {role}=NAME COMMAND ...` (API: columns={{'{role}': NAME}})."
        )
    found = matches[0] if matches else None
    if found is None and required:
        raise InputError(
            f"{src.label} has no {what} column (looked for {', '.join(COLUMN_ALIASES[role])}); columns: "
            f"{', '.join(f'`{n}`' for n in names) or 'none'}. Name it with the global option `lvmdiag --columns {role}=NAME COMMAND ...` (API: columns={{'{role}': NAME}})."
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
        if pa.types.is_fixed_size_list(cur.type):  # the values slice: flatten() would import pyarrow.compute
            cur = cur.values.slice(cur.offset * size, len(cur) * size)
        else:
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
    src.check_column_everywhere(col)
    for label, schema in zip(src.part_labels, src.part_schemas):
        other = _fixed_shape(schema.field(schema.get_field_index(col)).type, depth)
        for a, b in zip(fixed, other):
            if a is not None and b is not None and a != b:
                raise InputError(
                    f"shard {label} has `{col}` of shape {other} per row but {src.part_labels[0]} has {fixed}; "
                    "every shard must come from the same encoder and window length."
                )
    starts = src.first_row_in_file()  # errors name the file, so rows count within it
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
    rows.travels_by_path = src.kind == "parquet"  # Arrow batches pickle by value
    if first is not None:
        first.flags.writeable = False
        rows._cache[0] = first
    return rows


def _plain_column(src: _Source, col: str) -> np.ndarray:
    """A scalar (or fixed-size list of scalars) column read whole, as numpy (ids, positions, extras)."""
    import pyarrow as pa

    src.check_column_everywhere(col)
    row0 = src.first_row_in_file()
    parts = []
    for b in range(len(src.sizes)):
        arr = src.read(b, col)
        if arr.null_count:
            bad = int(np.flatnonzero(np.asarray(arr.is_null()))[0]) + int(row0[b])
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
