"""Read every sequence-file form our users have into a validated :class:`SequenceSet`.

Forms (UPSTREAM_FORMATS.md): arXiv (``contexts``/``targets`` or an alias), Wikipedia
(``context_sequences``/``target_vectors`` with optional object arrays ``metadata``,
``context_texts``, ``target_texts`` and scalar keys), the two-split variant (``val_`` prefixed
keys), the rebuilt form (``article_ids``, ``target_indices``, ``context_indices``, ``manifest``),
article stores (windows of ``k`` chunks built here, stride 1, never across articles) and a directory
of ``.npy`` files (``contexts.npy``, ``targets.npy``, optional ``article_ids.npy``), memory-mapped.
Large uncompressed ``.npz`` members are memory-mapped too; validation streams over row blocks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag.data._npz import NpzArchive
from lvmdiag.data.arrow_formats import arrow_kind, load_arrow_sequences
from lvmdiag.data.lazy import GatherRows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import (
    ArticleStore,
    detect_store_form,
    gather_windows,
    load_article_store,
    store_summary,
    checked_window_rows,
    _read_store,
)
from lvmdiag.data.store_scan import scan_store_windows
from lvmdiag.data.validate import (
    CONTEXT_ALIASES,
    TARGET_ALIASES,
    check_compatible,
    check_sequence_shapes,
    file_label,
    missing_keys_error,
    require_float,
    scan_sequences,
    warn,
)
from lvmdiag.errors import InputError

__all__ = ["load_sequences", "load_split_files", "load_article_store", "ArticleStore", "check_compatible"]

#: names of the per-window article id key in sequence files
ID_KEYS = ("article_ids", "article_id")
#: object arrays of the Wikipedia form (skipped unless allow_pickle)
TEXT_KEYS = ("metadata", "context_texts", "target_texts")
NPY_DIR_FILES = ("contexts.npy", "targets.npy")


# ---------------------------------------------------------------------------------------------
# public entry points


def load_sequences(
    path: str | os.PathLike[str],
    *,
    split: str | None = None,
    k: int = 5,
    allow_pickle: bool = False,
    scan: str = "auto",
    columns: Mapping[str, str] | None = None,
) -> SequenceSet:
    """Read one split of a sequence file, article store or ``.npy`` directory, validated.

    Parameters
    ----------
    path : ``.npz`` file (any sequence form or an article store), a directory of ``.npy`` files, or a
        columnar input (:mod:`lvmdiag.data.arrow_formats`): a Parquet file or directory of shards, an
        Arrow IPC / Feather file, a ``datasets`` ``save_to_disk`` directory or a ``.safetensors`` file,
        holding windows or an article store
    split : for a two-split file, which split to read ("train" or "val"; required there). For any
        other file it only names the result (e.g. "ood").
    k : window length used to build windows from an article store (ignored for sequence files)
    allow_pickle : read object arrays (metadata, texts). Unpickling can run code from the file, so
        this is off unless the user asks for it.
    scan : validation of every row ("full"), of evenly spaced blocks ("sample"; ``valid`` is then
        None), or "auto" (full, except memory-mapped inputs above 8 GiB of vectors, which are sampled
        so that validation does not cost a second pass over data larger than the page cache). A
        columnar article store is validated from one read of its chunks (the 8 GiB count its chunk
        vectors), which also keeps the dot products the bias pass needs
        (:mod:`lvmdiag.data.store_scan`)
    columns : for columnar inputs, column names by role ("vector", "id", "position", "contexts",
        "targets") where the common names are not used

    Returns
    -------
    SequenceSet with ``fmt`` (the form read), ``source``, ``split``, ``extras`` (per-window arrays),
    ``attrs`` (scalar keys, manifest, key names used, validation summary) and ``valid`` (False for
    windows holding a zero-norm or non-finite vector).
    """
    sets = _load(path, k=k, allow_pickle=allow_pickle, want=split, single=True, scan=scan, columns=columns)
    (only,) = sets.values()
    return only if split is None or only.split == split else _rename(only, split)


def load_split_files(
    path: str | os.PathLike[str],
    *,
    k: int = 5,
    allow_pickle: bool = False,
    scan: str = "auto",
    columns: Mapping[str, str] | None = None,
) -> dict[str, SequenceSet]:
    """Every split in ``path``: {"train": ..., "val": ...} for a two-split file, else one entry.

    A single-split file is returned under its own name (``"train"`` is not assumed): the key is the
    file stem. A ``datasets`` DatasetDict directory gives one entry per split.
    """
    return _load(path, k=k, allow_pickle=allow_pickle, want=None, single=False, scan=scan, columns=columns)


def split_names(path: str | os.PathLike[str]) -> list[str]:
    """The split names of a two-split file (e.g. ``["train", "val"]``); ``[]`` for any other form.

    Reads only the archive's key list, so a ``split=`` choice can be checked before any loading.
    """
    p = Path(path)
    if not p.is_file():
        return []
    with NpzArchive(p, file_label(path)) as arc:
        keys = arc.keys
        if not keys or detect_store_form(keys) is not None:
            return []
        layout = _split_layout(keys)
    return list(layout) if len(layout) > 1 else []


# ---------------------------------------------------------------------------------------------
# dispatch


def _load(
    path: str | os.PathLike[str],
    *,
    k: int,
    allow_pickle: bool,
    want: str | None,
    single: bool,
    scan: str,
    columns: Mapping[str, str] | None = None,
) -> dict[str, SequenceSet]:
    fname = file_label(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{fname} does not exist; check the path.")
    kind = arrow_kind(p)
    if kind is not None:
        return load_arrow_sequences(p, fname, kind, k=k, want=want, single=single, scan=scan, columns=columns)
    if p.is_dir():
        seq = _load_npy_dir(p, fname, allow_pickle, scan)
        return {want or p.name: seq}
    with NpzArchive(p, fname) as arc:
        keys = arc.keys
        if not keys:
            raise InputError(f"{fname} is an empty archive (no arrays): regenerate it.")
        if detect_store_form(keys) is not None:
            store = _read_store(arc, fname, allow_pickle)
            return {want or p.stem: _store_to_sequences(store, k, fname, want, scan)}
        layout = _split_layout(keys)
        if not layout:
            raise missing_keys_error(fname, keys, "context/target arrays")
        if len(layout) == 1:
            (prefix, (ckey, tkey)), = layout.items()
            return {want or p.stem: _read_sequences(arc, fname, ckey, tkey, prefix, layout, allow_pickle, want, scan)}
        if single and want is None:
            raise InputError(
                f"{fname} holds {len(layout)} splits ({', '.join(layout)}): choose which one to read "
                f"(split={list(layout)[0]!r} or split={list(layout)[1]!r}), or read both with load_split_files."
            )
        out: dict[str, SequenceSet] = {}
        for name, (ckey, tkey) in layout.items():
            if want is not None and name != want:
                continue
            out[name] = _read_sequences(arc, fname, ckey, tkey, name, layout, allow_pickle, name, scan)
        if want is not None and not out:
            raise InputError(f"{fname} has no split {want!r}; it holds {', '.join(layout)}: choose one of those.")
        return out


def _split_layout(keys: list[str]) -> dict[str, tuple[str, str]]:
    """{split name: (context key, target key)}; "train" for unprefixed keys, "val" for ``val_`` keys."""
    keyset = set(keys)
    layout: dict[str, tuple[str, str]] = {}
    ckey = next((a for a in CONTEXT_ALIASES if a in keyset), None)
    tkey = next((a for a in TARGET_ALIASES if a in keyset), None)
    prefixed = {}
    for key in keys:
        for base_c, base_t in (("context_sequences", "target_vectors"), ("contexts", "targets")):
            if key.endswith("_" + base_c) and key != "train_" + base_c:
                prefix = key[: -len(base_c) - 1]
                if prefix + "_" + base_t in keyset:
                    prefixed[prefix] = (key, prefix + "_" + base_t)
    if ckey is not None and tkey is not None:
        layout["train"] = (ckey, tkey)
    elif (ckey is None) != (tkey is None) and not prefixed:
        return {"__partial__": (ckey or "", tkey or "")}
    layout.update(prefixed)
    return layout


# ---------------------------------------------------------------------------------------------
# sequence files


def _read_sequences(
    arc: NpzArchive,
    fname: str,
    ckey: str,
    tkey: str,
    name: str,
    layout: dict[str, tuple[str, str]],
    allow_pickle: bool,
    split: str | None,
    scan: str = "auto",
) -> SequenceSet:
    if name == "__partial__":
        present = ckey or tkey
        missing = "targets" if ckey else "contexts"
        raise InputError(
            f"{fname} has `{present}` but no {missing} array: keys found {', '.join(f'`{k}`' for k in arc.keys)}; "
            f"expected {missing} as one of {', '.join(TARGET_ALIASES if ckey else CONTEXT_ALIASES)}."
        )
    if allow_pickle and (arc.dtype(ckey).hasobject or arc.dtype(tkey).hasobject):
        contexts = _unbox(arc.read(ckey, allow_pickle=True), ckey, fname)
        targets = _unbox(arc.read(tkey, allow_pickle=True), tkey, fname)
        notes = [f"`{ckey}`/`{tkey}` were object arrays (read with allow_pickle)"]
    else:
        notes = [n for n in (require_float(arc.dtype(ckey), ckey, fname), require_float(arc.dtype(tkey), tkey, fname)) if n]
        check_sequence_shapes(arc.shape(ckey), arc.shape(tkey), fname, ckey, tkey)
        contexts = arc.read(ckey)
        targets = arc.read(tkey)
    notes += [n for n in (require_float(contexts.dtype, ckey, fname), require_float(targets.dtype, tkey, fname)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, fname, ckey, tkey)
    n = contexts.shape[0]
    two_split = len(layout) > 1
    other_prefixes = [p + "_" for p in layout if p not in ("train", name)]
    own_prefix = "" if name == "train" else name + "_"
    vector_keys = {c for c, _ in layout.values()} | {t for _, t in layout.values()}

    extras: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    file_arrays: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    article_ids: np.ndarray | None = None
    id_key: str | None = None
    manifest: Any = None
    for key in arc.keys:
        if key in vector_keys or any(key.startswith(p) for p in other_prefixes):
            continue
        if own_prefix and not key.startswith(own_prefix):
            continue  # unprefixed keys of a two-split file belong to train
        base = key[len(own_prefix) :] if own_prefix else key
        shape, dtype = arc.shape(key), arc.dtype(key)
        if dtype.hasobject and not allow_pickle:
            skipped.append(key)
            continue
        if base == "manifest":
            raw = np.asarray(arc.read(key, allow_pickle=allow_pickle, mmap=False))
            file_arrays[base] = raw
            manifest = _decode_manifest(raw)
            continue
        if len(shape) == 0:
            value = np.asarray(arc.read(key, allow_pickle=allow_pickle, mmap=False))
            file_arrays[base] = value
            scalars[base] = value.item() if value.dtype.kind in "biufcSU" else str(value)
            continue
        if base in ID_KEYS and article_ids is None and (len(shape) != 1 or shape[0] != n or dtype.kind not in "iu"):
            # ids that cannot be used must not be dropped silently: the analysis would fall back to
            # recovered articles or contiguous blocks without the user knowing why
            raise InputError(
                f"`{key}` in {fname} must be an integer array of shape ({n},), one id per window; got {dtype} "
                f"{tuple(shape)}. Re-save it as int64 (string ids: np.unique(ids, return_inverse=True)[1])."
            )
        if shape[0] != n:
            file_arrays[base] = np.asarray(arc.read(key, allow_pickle=allow_pickle, mmap=False))
            continue
        arr = arc.read(key, allow_pickle=allow_pickle, mmap=False)
        if base in ID_KEYS and article_ids is None and arr.ndim == 1 and arr.dtype.kind in "iu":
            article_ids, id_key = np.asarray(arr, dtype=np.int64), key
            continue
        extras[base] = np.asarray(arr)

    id_note = ""
    if article_ids is None and "metadata" in extras:
        article_ids = _ids_from_metadata(extras["metadata"], fname, own_prefix + "metadata")
        if article_ids is not None:
            id_key = own_prefix + "metadata"
    if skipped:
        lost_ids = any(k.endswith("metadata") for k in skipped) and article_ids is None
        id_note = " so article ids were not read (articles are recovered from shared chunk vectors where possible)" if lost_ids else ""
        warn(
            f"{fname}: skipped object arrays {', '.join(f'`{k}`' for k in skipped)}{id_note}; reading them needs "
            "unpickling, which can run code: pass --allow-pickle (allow_pickle=True) if you trust the file."
        )

    if two_split:
        fmt = "two_split"
    elif article_ids is not None and id_key in ID_KEYS and (
        manifest is not None or "target_indices" in extras or "context_indices" in extras
    ):
        fmt = "rebuilt"
    elif ckey == "context_sequences" or "metadata" in extras or any(k in skipped for k in TEXT_KEYS):
        fmt = "wikipedia"
    else:
        fmt = "arxiv"
    report = scan_sequences(contexts, targets, fname, ckey, tkey, notes, scan=scan)
    attrs: dict[str, Any] = {
        "keys": {"contexts": ckey, "targets": tkey, "article_ids": id_key},
        "key_order": [k[len(own_prefix) :] if own_prefix and k.startswith(own_prefix) else k for k in arc.keys],
        "scalars": scalars,
        "file_arrays": file_arrays,
        "skipped_keys": skipped,
        "validation": report.summary(),
        "dtype": str(contexts.dtype),
    }
    if manifest is not None:
        attrs["manifest"] = manifest
    valid = report.valid
    if "metadata" in extras:
        valid = _exclude_crossing_windows(extras["metadata"], valid, fname, own_prefix + "metadata", attrs)
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=fname,
        split=split,
        fmt=fmt,
        extras=extras,
        attrs=attrs,
        valid=valid,
    )


def _unbox(arr: np.ndarray, key: str, fname: str) -> np.ndarray:
    """An object array of equal-length float vectors (allowed to be unpickled) as one float array."""
    if not arr.dtype.hasobject:
        return arr
    try:
        out = np.stack([np.asarray(x) for x in arr.reshape(-1)]) if arr.size else np.empty((0,))
        out = out.reshape(arr.shape + out.shape[1:])
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"`{key}` in {fname} is an object array whose entries are not equal-length vectors ({exc}); "
            "re-save it as a float32 array."
        ) from exc
    if out.dtype.kind != "f":
        raise InputError(f"`{key}` in {fname} holds {out.dtype} values, not float vectors; re-save it as float32.")
    return out


def _decode_manifest(raw: np.ndarray) -> Any:
    """Manifest stored as JSON bytes (0-d bytes/str array or a uint8 buffer); raw text if not JSON."""
    try:
        if raw.dtype.kind == "S":
            text = raw.tobytes().rstrip(b"\0").decode("utf-8") if raw.ndim else raw.item().decode("utf-8")
        elif raw.dtype.kind == "U":
            text = str(raw.item()) if raw.ndim == 0 else "".join(raw.ravel().tolist())
        elif raw.dtype == np.uint8:
            text = raw.tobytes().decode("utf-8")
        else:
            return raw.tolist()
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


CROSSING_KEYS = ("crosses_article", "crosses_article_boundary")


def _exclude_crossing_windows(
    meta: np.ndarray, valid: np.ndarray | None, fname: str, key: str, attrs: dict[str, Any]
) -> np.ndarray | None:
    """Mark windows whose metadata says they cross an article boundary as invalid, with a warning.

    The Wikipedia form allows windows that span two articles; such a window is not a next-chunk
    example of one article, and its Δ and lags would mix two articles into one article's statistics.
    """
    crossing = np.array(
        [bool(m.get(CROSSING_KEYS[0], m.get(CROSSING_KEYS[1], False))) if isinstance(m, dict) else False for m in meta],
        dtype=bool,
    )
    n_cross = int(crossing.sum())
    attrs["n_crossing_windows"] = n_cross
    if n_cross == 0:
        return valid
    warn(
        f"{fname}: {n_cross} of {crossing.size} windows cross an article boundary (`{key}` "
        f"crosses_article); they are excluded from the analysis: a window spanning two articles is not a "
        "next-chunk example of one article."
    )
    base = np.ones(crossing.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    return base & ~crossing


def _ids_from_metadata(meta: np.ndarray, fname: str, key: str) -> np.ndarray | None:
    """Article ids from Wikipedia ``metadata`` dicts (``article_index``), or None when absent."""
    ids = np.empty(meta.shape[0], dtype=np.int64)
    for i, m in enumerate(meta):
        value = m.get("article_index") if isinstance(m, dict) else None
        if value is None:
            warn(f"{fname}: `{key}` entry {i} has no `article_index`; article ids were not read from it.")
            return None
        ids[i] = int(value)
    return ids


# ---------------------------------------------------------------------------------------------
# article stores and .npy directories


def _store_to_sequences(store: ArticleStore, k: int, fname: str, split: str | None, scan: str = "auto") -> SequenceSet:
    """Windows of an npz (or in-memory) store. float32 vectors: gathered lazily from the chunks (no
    (K + 1)-fold copy), validated from one read of each chunk, with the dot products the bias pass
    uses; other dtypes are materialised as float32 windows, as before."""
    ctx_rows, tgt_rows, codes = checked_window_rows(store, k, fname)
    if np.dtype(store.vectors.dtype) == np.float32:
        contexts, targets = GatherRows(store.vectors, ctx_rows), GatherRows(store.vectors, tgt_rows)
        report, gram = scan_store_windows(store.vectors, ctx_rows, tgt_rows, contexts, targets, fname, scan=scan)
        contexts.window_gram = targets.window_gram = gram
    else:
        contexts, targets = gather_windows(store, ctx_rows, tgt_rows)
        report = scan_sequences(contexts, targets, fname, "vectors", "vectors", scan=scan)
    return store_window_set(store, contexts, targets, ctx_rows, tgt_rows, codes, fname, split, k, report)


def store_window_set(store: ArticleStore, contexts: Any, targets: Any, ctx_rows: np.ndarray, tgt_rows: np.ndarray,
                     codes: np.ndarray, fname: str, split: str | None, k: int, report: Any,
                     extra_attrs: dict | None = None) -> SequenceSet:
    """The SequenceSet of a store's windows (every store reader, npz or columnar, builds it the same way)."""
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
            **(extra_attrs or {}),
        },
        valid=report.valid,
    )


def _load_npy_dir(p: Path, fname: str, allow_pickle: bool, scan: str = "auto") -> SequenceSet:
    missing = [f for f in NPY_DIR_FILES if not (p / f).is_file()]
    if missing:
        found = sorted(x.name for x in p.iterdir())[:12]
        raise InputError(
            f"directory {fname} has no {', '.join(missing)} (found {', '.join(found) or 'nothing'}); "
            "a directory is read as an .npy directory (contexts.npy (N, K, D) and targets.npy (N, D)), a folder "
            "of .parquet shards, a `datasets` save_to_disk folder (state.json) or a folder of shard directories."
        )
    arrays: dict[str, np.ndarray] = {}
    for f in sorted(p.glob("*.npy")):
        label = f"{fname}/{f.name}"
        if f.stat().st_size == 0:
            raise InputError(f"{label} is empty (0 bytes): regenerate it.")
        try:
            arr = np.load(f, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            if "pickle" in str(exc) or "object" in str(exc):
                if f.name in NPY_DIR_FILES:
                    require_float(np.dtype(object), f.stem, label)
                warn(f"{label}: skipped an object array (reading it needs unpickling, which can run code).")
                continue
            raise InputError(f"{label} cannot be read ({exc}); the file looks truncated or corrupt: regenerate it.") from exc
        except (OSError, EOFError) as exc:
            raise InputError(f"{label} cannot be read ({exc}); the file looks truncated or corrupt: regenerate it.") from exc
        arrays[f.stem] = arr
    contexts, targets = arrays.pop("contexts"), arrays.pop("targets")
    notes = [n for n in (require_float(contexts.dtype, "contexts", fname), require_float(targets.dtype, "targets", fname)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, fname, "contexts", "targets")
    n = contexts.shape[0]
    article_ids = None
    ids = arrays.pop("article_ids", None)
    if ids is not None:
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise InputError(
                f"`article_ids` in {fname} must be an integer array of shape ({n},); got {ids.dtype} {ids.shape}."
            )
        article_ids = np.asarray(ids, dtype=np.int64)
    extras = {key: arr for key, arr in arrays.items() if arr.ndim >= 1 and arr.shape[0] == n}
    report = scan_sequences(contexts, targets, fname, "contexts", "targets", notes, scan=scan)
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=fname,
        split=None,
        fmt="npy_dir",
        extras=extras,
        attrs={
            "keys": {"contexts": "contexts", "targets": "targets", "article_ids": "article_ids" if ids is not None else None},
            "validation": report.summary(),
            "dtype": str(contexts.dtype),
        },
        valid=report.valid,
    )


def _rename(seq: SequenceSet, split: str) -> SequenceSet:
    from dataclasses import replace

    return replace(seq, split=split)
