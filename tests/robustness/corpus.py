"""The bad-input corpus: one small directory of good and bad inputs shared by every case.

Every case runs a command in-process on these files and must leave the directory byte-identical
(``snapshot``): no output, no temp file, no input touched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lvmdiag.synthetic import make_splits, make_store

K, D = 3, 8
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256 of a file, or "dir"} for everything under ``root`` (hidden files included)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class World:
    root: Path
    good: dict[str, Path]  # train, val, npydir, two_split, run, config
    bad: dict[str, Path]  # name -> a bad sequence file (or directory)
    checkpoint: Path | None = None


def _save(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def build_world(root: Path) -> World:
    store = make_store(n_articles=12, d=D, rho=0.8, length=(6, 9), rng=4)
    sp = make_splits(store, K, by="article", ratios=(0.6, 0.4), names=("train", "val"), rng=1)
    tr, va = sp["train"], sp["val"]
    good = {
        "train": _save(root / "train.npz", contexts=tr.contexts, targets=tr.targets, article_ids=tr.article_ids),
        "val": _save(root / "val.npz", contexts=va.contexts, targets=va.targets, article_ids=va.article_ids),
        "two_split": _save(root / "two_split.npz", contexts=tr.contexts, targets=tr.targets,
                           val_contexts=va.contexts, val_targets=va.targets),
    }
    npydir = root / "npydir"
    npydir.mkdir()
    np.save(npydir / "contexts.npy", va.contexts)
    np.save(npydir / "targets.npy", va.targets)
    good["npydir"] = npydir
    run = root / "run"
    shutil.copytree(FIXTURES / "runs" / "lvmdiag_healthy", run)
    good["run"] = run
    good["config"] = root / "config.json"
    good["config"].write_text(json.dumps({"epochs": 1, "d_model": 8, "nhead": 1, "num_layers": 1,
                                                "context_length": K}))
    good["plain_file"] = root / "notes.txt"
    good["plain_file"].write_text("a regular file\n")
    good["outdir"] = root / "outdir"
    good["outdir"].mkdir()

    c, t = tr.contexts, tr.targets
    bad: dict[str, Path] = {}
    bad["missing.npz"] = root / "missing.npz"  # never created
    (root / "zero_bytes.npz").write_bytes(b"")
    bad["zero_bytes.npz"] = root / "zero_bytes.npz"
    full = good["train"].read_bytes()
    (root / "truncated.npz").write_bytes(full[: len(full) // 2])
    bad["truncated.npz"] = root / "truncated.npz"
    (root / "text.npz").write_text("contexts,targets\n1,2\n")
    bad["text.npz"] = root / "text.npz"
    bad["no_keys.npz"] = _save(root / "no_keys.npz", foo=np.zeros(3))
    bad["only_contexts.npz"] = _save(root / "only_contexts.npz", contexts=c)
    bad["int32.npz"] = _save(root / "int32.npz", contexts=c.astype(np.int32), targets=t.astype(np.int32))
    bad["complex.npz"] = _save(root / "complex.npz", contexts=c.astype(np.complex64), targets=t.astype(np.complex64))
    obj = np.empty(len(c), dtype=object)
    obj[:] = [row for row in c]
    bad["object.npz"] = _save(root / "object.npz", contexts=obj, targets=t)
    bad["n0.npz"] = _save(root / "n0.npz", contexts=c[:0], targets=t[:0])
    c4, t4 = c[:, :, :4], t[:, :4]
    bad["d_mismatch.npz"] = _save(root / "d_mismatch.npz", contexts=c4 / np.linalg.norm(c4, axis=-1, keepdims=True),
                                  targets=t4 / np.linalg.norm(t4, axis=-1, keepdims=True))
    bad["kd_mismatch.npz"] = _save(root / "kd_mismatch.npz", contexts=c, targets=t[:, :4])
    bad["ids_length.npz"] = _save(root / "ids_length.npz", contexts=c, targets=t, article_ids=tr.article_ids[:-3])
    bad["nan.npz"] = _save(root / "nan.npz", contexts=np.full_like(c, np.nan), targets=np.full_like(t, np.nan))
    bad["zeros.npz"] = _save(root / "zeros.npz", contexts=np.zeros_like(c), targets=np.zeros_like(t))
    bad["flat.npz"] = _save(root / "flat.npz", contexts=c.reshape(len(c), -1), targets=t)
    (root / "empty_dir").mkdir()
    bad["empty_dir"] = root / "empty_dir"
    with zipfile.ZipFile(root / "zip_of_text.npz", "w") as z:
        z.writestr("contexts.npy", "not an array")
        z.writestr("targets.npy", "not an array")
    bad["zip_of_text.npz"] = root / "zip_of_text.npz"
    # a folder of .npy shards whose second shard has another D (another encoder); read by the engine
    for i, d in enumerate((D, D + 1)):
        shard = root / "shards_d_mismatch" / f"shard-00{i}"
        shard.mkdir(parents=True)
        np.save(shard / "contexts.npy", c[:4, :, :1].repeat(d, axis=2))
        np.save(shard / "targets.npy", t[:4, :1].repeat(d, axis=1))
    bad["shards_d_mismatch"] = root / "shards_d_mismatch"
    return World(root, good, bad)
