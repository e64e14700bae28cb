"""Write windows as Parquet: bounded row groups, fixed writer options, byte-identical for equal input.

Layout (the one :mod:`lvmdiag.data.arrow_formats` reads back): ``contexts`` as
``fixed_size_list<fixed_size_list<float, D>, K>``, ``targets`` as ``fixed_size_list<float, D>``
(the input's float type, float32 as a rule), ``article_id`` int64 when ids are known, then the
numeric per-window extras (1-d as plain columns, 2-d as fixed-size lists). Rows are buffered and
written in row groups of exactly ``row_group_rows`` (the last one shorter), so a reader needs at
most one row group in memory. Compression, dictionary encoding and statistics are off (embedding
floats do not compress; statistics of 768 float columns only cost time) and the writer options are
fixed, so the bytes depend only on the rows and the pyarrow version, never on time or host.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag._atomic import atomic_path
from lvmdiag.data.validate import block_rows_for
from lvmdiag.errors import InputError, LvmdiagWarning

__all__ = ["ParquetSink", "fixed_writer", "parquet_row_group_rows", "write_article_store_parquet",
           "write_sequences_parquet"]

#: bytes of vector data per row group (bounded memory for writer and reader)
ROW_GROUP_BYTES = 64 * 2**20


def parquet_row_group_rows(k: int, d: int, itemsize: int = 4) -> int:
    """Rows per row group so one group of windows holds about ``ROW_GROUP_BYTES`` of vectors."""
    return int(max(1, min(1 << 16, ROW_GROUP_BYTES // max(1, (k + 1) * d * itemsize))))


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("writing Parquet needs pyarrow: install lvmdiag[parquet].") from None
    return pyarrow


def _vector_array(pa: Any, arr: np.ndarray) -> Any:
    """(n, *dims) numpy floats -> nested fixed_size_list array (zero-copy over a contiguous buffer)."""
    arr = np.ascontiguousarray(arr)
    out = pa.array(arr.reshape(-1))
    for size in reversed(arr.shape[1:]):
        out = pa.FixedSizeListArray.from_arrays(out, int(size))
    return out


def fixed_writer(path: str | os.PathLike[str], schema: Any) -> Any:
    """A ``pyarrow.parquet.ParquetWriter`` with the fixed options that make the bytes reproducible."""
    _pyarrow()
    import pyarrow.parquet as pq

    return pq.ParquetWriter(
        str(path),
        schema,
        compression="none",
        use_dictionary=False,
        write_statistics=False,
        version="2.6",
        data_page_version="1.0",
        write_page_index=False,
        write_page_checksum=False,
    )


class ParquetSink:
    """Stream window blocks into one Parquet file with fixed-size row groups.

    Parameters
    ----------
    path : file to write (the caller makes it atomic)
    k, d : window length and dimension
    dtype : float dtype of the vectors (written as that Arrow float type)
    with_ids : write an ``article_id`` int64 column
    extras : name -> (dtype, per-row shape) of numeric per-window columns to write
    row_group_rows : rows per row group (default: about 64 MiB of vectors)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        k: int,
        d: int,
        dtype: np.dtype = np.dtype(np.float32),
        with_ids: bool = False,
        extras: Mapping[str, tuple[np.dtype, tuple[int, ...]]] | None = None,
        row_group_rows: int | None = None,
    ) -> None:
        pa = self._pa = _pyarrow()
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise InputError(f"Parquet output holds float vectors; got {dtype}.")
        self.k, self.d, self.dtype, self.with_ids = int(k), int(d), dtype, with_ids
        self.extras = dict(extras or {})
        self.rows = int(row_group_rows or parquet_row_group_rows(k, d, dtype.itemsize))
        leaf = pa.from_numpy_dtype(dtype)
        fields = [
            pa.field("contexts", pa.list_(pa.list_(leaf, self.d), self.k), nullable=False),
            pa.field("targets", pa.list_(leaf, self.d), nullable=False),
        ]
        if with_ids:
            fields.append(pa.field("article_id", pa.int64(), nullable=False))
        for name, (edtype, shape) in self.extras.items():
            t = pa.from_numpy_dtype(np.dtype(edtype))
            for size in reversed(shape):
                t = pa.list_(t, int(size))
            fields.append(pa.field(name, t, nullable=False))
        self.schema = pa.schema(fields)
        self._writer = fixed_writer(path, self.schema)
        self._buf: list[tuple[np.ndarray, ...]] = []
        self._buffered = 0
        self.n_written = 0

    def write(self, contexts: np.ndarray, targets: np.ndarray, ids: np.ndarray | None = None,
              extras: Mapping[str, np.ndarray] | None = None) -> None:
        """Append a block of windows (any number of rows); full row groups are flushed."""
        n = int(contexts.shape[0])
        if n == 0:
            return
        cols: list[np.ndarray] = [np.asarray(contexts, dtype=self.dtype), np.asarray(targets, dtype=self.dtype)]
        if self.with_ids:
            cols.append(np.asarray(ids, dtype=np.int64))
        for name, (edtype, _) in self.extras.items():
            cols.append(np.asarray((extras or {})[name], dtype=edtype))
        start = 0
        while start < n:
            take = min(n - start, self.rows - self._buffered)
            self._buf.append(tuple(c[start : start + take] for c in cols))
            self._buffered += take
            start += take
            if self._buffered == self.rows:
                self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        pa = self._pa
        parts = list(zip(*self._buf))
        merged = [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]
        arrays = [_vector_array(pa, merged[0]), _vector_array(pa, merged[1])]
        i = 2
        if self.with_ids:
            arrays.append(pa.array(merged[2]))
            i = 3
        for j, (name, (edtype, shape)) in enumerate(self.extras.items()):
            arr = merged[i + j]
            arrays.append(_vector_array(pa, arr) if shape else pa.array(np.ascontiguousarray(arr)))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self._writer.write_table(table, row_group_size=self.rows)
        self.n_written += self._buffered
        self._buf, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __enter__(self) -> "ParquetSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._writer.close()


def parquet_extras(extras: Mapping[str, np.ndarray], target: Path | str) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """The per-window extras Parquet can hold (numeric, up to 2-d), warning about the others."""
    keep, dropped = {}, []
    for key, value in extras.items():
        head = np.asarray(value[:0])
        if head.dtype.kind in "biuf" and head.ndim <= 2:
            keep[key] = (head.dtype, tuple(head.shape[1:]))
        else:
            dropped.append(key)
    if dropped:
        warnings.warn(
            f"{target}: per-window arrays {', '.join(f'`{k}`' for k in dropped)} are not numeric 1-d/2-d columns and "
            "are not written to Parquet; write an .npz (fmt='wikipedia' or 'rebuilt') to keep them.",
            LvmdiagWarning,
            stacklevel=3,
        )
    return keep


def write_sequences_parquet(seqset: Any, path: str | os.PathLike[str], row_group_rows: int | None = None) -> Path:
    """Write a SequenceSet as one Parquet file, atomically, streaming it in row blocks."""
    target = Path(path)
    extras = parquet_extras(seqset.extras, target)
    ids = None if seqset.article_ids is None else np.asarray(seqset.article_ids, dtype=np.int64)
    step = block_rows_for((seqset.k + 1) * seqset.d * 4)
    with atomic_path(target, suffix=".parquet") as tmp:
        with ParquetSink(tmp, seqset.k, seqset.d, _float_dtype(seqset.contexts.dtype), ids is not None, extras,
                         row_group_rows) as sink:
            for start in range(0, seqset.n, step):
                stop = min(start + step, seqset.n)
                sink.write(
                    np.asarray(seqset.contexts[start:stop]),
                    np.asarray(seqset.targets[start:stop]),
                    None if ids is None else ids[start:stop],
                    {k: np.asarray(seqset.extras[k][start:stop]) for k in extras},
                )
    return target


def _float_dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(np.float32)


def write_article_store_parquet(
    path: str | os.PathLike[str],
    vectors: np.ndarray,
    article_ids: np.ndarray,
    chunk_index: np.ndarray,
    metadata: Mapping[str, str] | None = None,
    row_group_rows: int | None = None,
    row_order: np.ndarray | None = None,
) -> Path:
    """Write an article store (one row per chunk) as one Parquet file, atomically, in bounded row groups.

    Columns ``article_id`` (int64, or string ids: the reader hashes them to the same stable keys),
    ``chunk_index`` int64 and ``vector`` ``fixed_size_list<float, D>``: the article-store layout
    :mod:`lvmdiag.data.arrow_formats` reads. ``metadata`` goes into the schema's key-value metadata
    (e.g. a provenance record). ``vectors`` may be a memory map; it is read one row group at a time.
    ``row_order`` (a permutation of the rows) writes row ``row_order[i]`` of the inputs as row ``i``,
    gathered one row group at a time (bounded memory).
    """
    pa = _pyarrow()
    target = Path(path)
    n, d = int(vectors.shape[0]), int(vectors.shape[1])
    dtype = _float_dtype(vectors.dtype)
    ids = np.asarray(article_ids)
    id_type = pa.int64() if ids.dtype.kind in "iu" else pa.string()
    schema = pa.schema(
        [pa.field("article_id", id_type, nullable=False), pa.field("chunk_index", pa.int64(), nullable=False),
         pa.field("vector", pa.list_(pa.from_numpy_dtype(dtype), d), nullable=False)],
        metadata={str(k): str(v) for k, v in (metadata or {}).items()} or None,
    )
    rows = int(row_group_rows or parquet_row_group_rows(0, d, dtype.itemsize))
    with atomic_path(target, suffix=".parquet") as tmp:
        writer = fixed_writer(tmp, schema)
        try:
            for lo in range(0, n, rows):
                hi = min(n, lo + rows)
                take = slice(lo, hi) if row_order is None else np.asarray(row_order[lo:hi])
                block = ids[take]
                table = pa.Table.from_arrays(
                    [pa.array(block.astype(np.int64) if id_type == pa.int64() else block.astype(str).tolist(), id_type),
                     pa.array(np.asarray(chunk_index[take], np.int64)),
                     _vector_array(pa, np.asarray(vectors[take], dtype=dtype))],
                    schema=schema,
                )
                writer.write_table(table, row_group_size=rows)
        finally:
            writer.close()
    return target
