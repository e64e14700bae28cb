"""Build one synthetic dataset in every supported on-disk format with the real libraries.

Imported as a plain module by the columnar-format tests (tests/ is not a package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lvmdiag.data import save_sequences
from lvmdiag.data.sequences import SequenceSet


def vector_array(pa, arr: np.ndarray, fixed: bool = True):
    """(n, *dims) floats as nested fixed_size_list (or variable list) Arrow arrays, built by pyarrow."""
    arr = np.ascontiguousarray(arr)
    out = pa.array(arr.reshape(-1))
    for size in reversed(arr.shape[1:]):
        if fixed:
            out = pa.FixedSizeListArray.from_arrays(out, int(size))
        else:
            n_lists = len(out) // int(size)
            out = pa.ListArray.from_arrays(pa.array(np.arange(n_lists + 1, dtype=np.int32) * int(size)), out)
    return out


def window_table(pa, s: SequenceSet, fixed: bool = True, text: bool = True):
    cols = {
        "contexts": vector_array(pa, np.asarray(s.contexts), fixed),
        "targets": vector_array(pa, np.asarray(s.targets), fixed),
        "article_id": pa.array(np.asarray(s.article_ids, dtype=np.int64)),
    }
    if text:
        cols["text"] = pa.array([f"chunk {i}" for i in range(s.n)])
    return pa.table(cols)


def write_all_formats(splits: dict[str, SequenceSet], root: Path) -> dict[str, dict[str, Path]]:
    """{format: {split: path}} for npz, npy dir, Parquet (one file, 8 shards), Arrow IPC, HF dataset, safetensors."""
    import datasets
    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq
    from safetensors.numpy import save_file

    datasets.disable_progress_bars()

    out: dict[str, dict[str, Path]] = {f: {} for f in ("npz", "npy", "parquet", "parquet8", "arrow", "hf", "safetensors")}
    for name, s in splits.items():
        out["npz"][name] = save_sequences(s, root / "npz" / f"{name}.npz")
        out["npy"][name] = save_sequences(s, root / "npy" / name, fmt="npy_dir")
        table = window_table(pa, s)
        (root / "parquet").mkdir(exist_ok=True)
        pq.write_table(table, root / "parquet" / f"{name}.parquet", row_group_size=7)
        out["parquet"][name] = root / "parquet" / f"{name}.parquet"
        shard_dir = root / "parquet8" / name
        shard_dir.mkdir(parents=True)
        bounds = np.linspace(0, s.n, 9).astype(int)
        for i in range(8):
            pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), shard_dir / f"part-{i:05d}.parquet", row_group_size=5)
        out["parquet8"][name] = shard_dir
        (root / "arrow").mkdir(exist_ok=True)
        with pa.ipc.new_file(str(root / "arrow" / f"{name}.arrow"), table.schema) as writer:
            for batch in table.to_batches(max_chunksize=9):
                writer.write_batch(batch)
        out["arrow"][name] = root / "arrow" / f"{name}.arrow"
        ds = datasets.Dataset.from_dict(
            {"contexts": np.asarray(s.contexts), "targets": np.asarray(s.targets),
             "article_id": np.asarray(s.article_ids, dtype=np.int64), "text": [f"chunk {i}" for i in range(s.n)]}
        )
        ds.save_to_disk(str(root / "hf" / name))
        out["hf"][name] = root / "hf" / name
        (root / "safetensors").mkdir(exist_ok=True)
        save_file({"contexts": np.ascontiguousarray(s.contexts), "targets": np.ascontiguousarray(s.targets),
                   "article_ids": np.asarray(s.article_ids, dtype=np.int64)}, str(root / "safetensors" / f"{name}.safetensors"))
        out["safetensors"][name] = root / "safetensors" / f"{name}.safetensors"
    return out


_HOW = {"stream_seconds", "state_bytes"}


def normalise(obj, paths: dict[str, Path]):
    """A result dict with each split's input path replaced by ``<split>`` (results name their sources)."""
    if isinstance(obj, dict):  # how long the pass took and how big its states were are not findings
        return {k: normalise(v, paths) for k, v in obj.items() if k not in _HOW}
    if isinstance(obj, (list, tuple)):
        return [normalise(v, paths) for v in obj]
    if isinstance(obj, str):
        for name, p in sorted(paths.items(), key=lambda kv: len(str(kv[1])), reverse=True):
            obj = obj.replace(str(p), f"<{name}>")
        return obj
    return obj
