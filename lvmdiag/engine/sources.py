"""Chunked inputs for the engine: a split stored as several ``.npy`` directory shards, opened lazily.

A shard is a directory with ``contexts.npy`` (n, K, D), ``targets.npy`` (n, D) and optionally
``article_ids.npy`` (n,). Only headers are read when a split is opened; a :class:`NpyShard` pickles as
its path, so a Dask worker maps the file itself and no vectors travel through the scheduler. Article
ids are global: the same id in two shards (or two splits) is the same article.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from lvmdiag.errors import InputError

SHARD_FILES = ("contexts.npy", "targets.npy")


def _open(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path / name, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"shard {path}/{name} cannot be read ({exc}); regenerate that shard.") from exc


@dataclass
class NpyShard:
    """One shard directory; arrays are memory-mapped on first use (in whichever process reads it)."""

    path: str
    n: int = 0
    k: int = 0
    d: int = 0
    has_ids: bool = False
    dtypes: tuple[str, str] = ("float32", "float32")  # of contexts.npy and targets.npy
    _maps: dict = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "NpyShard":
        p = Path(os.path.abspath(path))  # absolute: a worker started elsewhere opens the same directory
        if not p.is_dir():
            raise InputError(f"shard {p} is missing (not a directory); list only existing shard directories.")
        missing = [f for f in SHARD_FILES if not (p / f).is_file()]
        if missing:
            raise InputError(f"shard {p} has no {', '.join(missing)}; a shard needs contexts.npy (n, K, D) and "
                             "targets.npy (n, D).")
        c, t = _open(p, "contexts.npy"), _open(p, "targets.npy")
        if c.ndim != 3 or t.shape != (c.shape[0], c.shape[2]):
            raise InputError(f"shard {p}: contexts {c.shape} and targets {t.shape} must be (n, K, D) and (n, D).")
        ids = (p / "article_ids.npy").is_file()
        if ids:
            a = _open(p, "article_ids.npy")
            if a.shape != (c.shape[0],) or a.dtype.kind not in "iu":
                raise InputError(f"shard {p}: article_ids.npy must be ({c.shape[0]},) integers; got {a.dtype} {a.shape}.")
        return cls(str(p), int(c.shape[0]), int(c.shape[1]), int(c.shape[2]), ids, (str(c.dtype), str(t.dtype)))

    def _map(self, name: str) -> np.ndarray:
        if name not in self._maps:
            self._maps[name] = _open(Path(self.path), name)
        return self._maps[name]

    @property
    def contexts(self) -> np.ndarray:
        return self._map("contexts.npy")

    @property
    def targets(self) -> np.ndarray:
        return self._map("targets.npy")

    def article_ids(self) -> np.ndarray | None:
        return np.asarray(self._map("article_ids.npy"), dtype=np.int64) if self.has_ids else None

    def iter_blocks(self, block_rows: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        c, t = self.contexts, self.targets
        if c.shape != (self.n, self.k, self.d):
            raise InputError(f"shard {self.path} changed since it was opened ({c.shape}); rerun.")
        for start in range(0, self.n, block_rows):
            stop = min(start + block_rows, self.n)
            yield start, np.asarray(c[start:stop], np.float32), np.asarray(t[start:stop], np.float32)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}  # a path travels, never the mapped data


class _Rows:
    """Row indexing across shards (slices and sorted index arrays), for the few random reads of planning."""

    def __init__(self, split: "ShardedSplit", attr: str) -> None:
        self.split, self.attr = split, attr

    def __getitem__(self, rows) -> np.ndarray:
        idx = np.arange(self.split.n)[rows]
        order = np.argsort(idx, kind="stable")
        srt = idx[order]
        pieces = []
        for i, sh in enumerate(self.split.shards):
            lo, hi = self.split.offsets[i], self.split.offsets[i + 1]
            sel = srt[(srt >= lo) & (srt < hi)] - lo
            if sel.size:
                pieces.append(np.asarray(getattr(sh, self.attr)[sel]))
        first = getattr(self.split.shards[0], self.attr)
        out = np.empty((idx.size,) + first.shape[1:], dtype=first.dtype)
        if pieces:
            out[order] = np.concatenate(pieces)
        return out


@dataclass
class ShardedSplit:
    """One split made of shards in order; looks enough like a SequenceSet for planning and finalize."""

    shards: list[NpyShard]
    split: str | None = None
    valid: None = None
    id_source: str = "given"
    fmt: str = "npy_shards"

    def __post_init__(self) -> None:
        self.offsets = np.r_[0, np.cumsum([s.n for s in self.shards])].astype(np.int64)
        ids = [s.article_ids() for s in self.shards]
        self.article_ids = np.concatenate(ids) if ids and all(i is not None for i in ids) else None
        if self.article_ids is None:
            self.id_source = "none"

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    @property
    def k(self) -> int:
        return self.shards[0].k

    @property
    def d(self) -> int:
        return self.shards[0].d

    @property
    def name(self) -> str:
        return self.split or self.source

    @property
    def source(self) -> str:
        return f"{Path(self.shards[0].path).parent} ({len(self.shards)} shards)"

    @property
    def contexts(self) -> _Rows:
        return _Rows(self, "contexts")

    @property
    def targets(self) -> _Rows:
        return _Rows(self, "targets")

    def iter_blocks(self, block_rows: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Blocks of every shard in order, with offsets over the whole split."""
        for off, sh in zip(self.offsets[:-1], self.shards):
            for s, c, t in sh.iter_blocks(block_rows):
                yield int(off) + s, c, t


def shard_paths(value: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path] | None:
    """The shard directories of an input, or None when it is a single file/directory.

    A list of paths is a list of shards; a directory without contexts.npy whose subdirectories hold
    them is a sharded split (subdirectories in name order).
    """
    if isinstance(value, (list, tuple)):
        return [Path(v) for v in value]
    p = Path(value)
    if p.is_dir() and not (p / "contexts.npy").exists():
        subs = sorted(x for x in p.iterdir() if x.is_dir())
        # only .npy shard directories: a datasets DatasetDict or a partitioned Parquet directory is read
        # by the ordinary readers
        if subs and all((x / "contexts.npy").exists() for x in subs):
            return subs
    return None


def open_sharded(paths: Sequence[str | os.PathLike[str]], split: str) -> ShardedSplit:
    """Open every shard of a split (headers only) and check they agree on K and D."""
    if not paths:
        raise InputError(f"split {split!r}: no shards given.")
    shards = [NpyShard.open(p) for p in paths]
    k, d = shards[0].k, shards[0].d
    for sh in shards[1:]:
        if (sh.k, sh.d) != (k, d):
            raise InputError(f"shard {sh.path} has K={sh.k}, D={sh.d} but {shards[0].path} has K={k}, D={d}; "
                             "every shard of a run must come from the same encoder and window length.")
    odd = next((sh for sh in shards if sh.dtypes != shards[0].dtypes), None)
    if odd is not None:  # chunk hashes are of the stored bytes: one chunk in two dtypes would be two chunks
        raise InputError(f"shard {odd.path} stores {'/'.join(odd.dtypes)} vectors but {shards[0].path} stores "
                         f"{'/'.join(shards[0].dtypes)} (contexts/targets); write every shard of a split in one dtype.")
    if len({s.has_ids for s in shards}) > 1:
        without = [s.path for s in shards if not s.has_ids]
        raise InputError(f"shard {without[0]} has no article_ids.npy while other shards of {split!r} do; "
                         "give ids in every shard or in none.")
    return ShardedSplit(shards, split=split)


def shard_parts(split: ShardedSplit, labels: np.ndarray) -> list:
    """One engine Part per shard, with the shard's slice of the split's article codes."""
    from lvmdiag.engine.block import Part

    labels = np.asarray(labels, dtype=np.int64)
    return [Part(split.split or split.name, int(lo), sh, labels[lo:hi])
            for sh, lo, hi in zip(split.shards, split.offsets[:-1], split.offsets[1:])]


#: a columnar split on Dask is cut into about one part per this many row groups (at most MAX_WINDOW_PARTS):
#: each part decodes its row groups plus at most one at each end (windows straddle the cut)
BLOCKS_PER_PART = 4
MAX_WINDOW_PARTS = 64


def window_range_parts(seq: Any, split: str, labels: np.ndarray) -> list | None:
    """A split read lazily from Parquet (a store's windows: gathers over row groups) as contiguous window
    ranges, one engine Part each, so Dask workers read it in parallel; None for any other split.

    Each part carries only its windows' chunk rows and the file plan (a Parquet source travels as paths
    and is reopened on the worker), never vectors. The windows are in file order, so a range reads a
    run of row groups.
    """
    from dataclasses import replace

    from lvmdiag.data.lazy import BlockRows, GatherRows
    from lvmdiag.engine.block import Part

    c, t = getattr(seq, "contexts", None), getattr(seq, "targets", None)
    if not (isinstance(c, GatherRows) and isinstance(t, GatherRows) and isinstance(c.source, BlockRows)
            and c.source.travels_by_path):
        return None  # in memory, or Arrow record batches (pickled by value): one part, sent once
    n_parts = max(1, min(c.source.n_blocks // BLOCKS_PER_PART, MAX_WINDOW_PARTS, seq.n))
    cuts = np.linspace(0, seq.n, n_parts + 1).astype(np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    valid = None if seq.valid is None else np.asarray(seq.valid, bool)
    parts = []
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
        if b <= a:
            continue
        sub = replace(seq, contexts=GatherRows(c.source, c.index[a:b]), targets=GatherRows(t.source, t.index[a:b]),
                      article_ids=None if seq.article_ids is None else np.asarray(seq.article_ids)[a:b],
                      extras={k: np.asarray(v)[a:b] for k, v in seq.extras.items()},
                      valid=None if valid is None else valid[a:b])
        parts.append(Part(split, a, sub, labels[a:b], sub.valid))
    return parts
