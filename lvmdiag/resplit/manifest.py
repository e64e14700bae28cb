"""manifest.json of a resplit: parameters, input hashes, version, every article's split; no
timestamps, so the same seed gives a byte-identical file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import lvmdiag
from lvmdiag._hash import file_sha256
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.resplit.assign import Assignment
from lvmdiag.resplit.strata import ArticleStats, Strata
from lvmdiag.resplit.verify import Verification

MANIFEST_FORMAT = "lvmdiag-resplit/1"


def sha256_files(path: Path) -> list[dict[str, str]]:
    """sha256 of a file, or of every file in a directory (sorted), streamed in 4 MiB chunks."""
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    out = []
    for f in files:
        out.append({"file": str(f.relative_to(path)) if path.is_dir() else f.name, "sha256": file_sha256(f)})
    return out


def build_manifest(
    paths: list[Path], in_names: list[str], sets: list[SequenceSet], by: str, r: np.ndarray,
    names: tuple[str, ...], stratify: tuple[str, ...], seed: int, k: int, n_bins: int, min_articles: int,
    fmt: str, files: dict[str, str], group_method: str, group_note: str, strata: Strata,
    assignment: Assignment, verification: Verification, labels: list[np.ndarray], stats: ArticleStats,
) -> dict[str, Any]:
    """manifest.json: everything needed to reproduce and audit the split; no timestamps (byte-identical reruns)."""
    # Where each article can be found in the inputs: (input index, first row).
    first_in = np.full(assignment.sizes.size, -1, dtype=np.int64)
    first_row = np.full(assignment.sizes.size, -1, dtype=np.int64)
    for i, lab in enumerate(labels):
        uniq, first = np.unique(lab, return_index=True)
        new = first_in[uniq] < 0
        first_in[uniq[new]] = i
        first_row[uniq[new]] = first[new]
    split_names = np.asarray(names, dtype=object)[assignment.split_of_group]
    articles = [
        [int(g), str(split_names[g]), int(assignment.sizes[g]), int(strata.codes[g]), int(first_in[g]), int(first_row[g])]
        for g in range(assignment.sizes.size)
    ]
    return {
        "format": MANIFEST_FORMAT,
        "lvmdiag_version": lvmdiag.__version__,
        "parameters": {
            "by": by, "ratios": [float(x) for x in r], "names": list(names), "stratify": list(stratify),
            "seed": int(seed), "k": int(k), "n_bins": int(n_bins), "min_articles": int(min_articles),
        },
        "inputs": [
            {"path": str(p), "files": sha256_files(p)} for p in paths
        ],
        "input_splits": [{"name": nm, "source": s.source, "fmt": s.fmt, "n_windows": s.n} for nm, s in zip(in_names, sets)],
        "output_format": fmt,
        "outputs": {name: {"path": files[name], "n_windows": verification.n_windows[i], "share": verification.achieved[i]} for i, name in enumerate(names)},
        "grouping": {"method": group_method, "note": group_note, "n_articles": int(assignment.sizes.size)},
        "tolerance": assignment.tolerance,
        "achieved": list(verification.achieved),
        "strata": {"variables": list(strata.variables), "bins": list(strata.bins), "labels": list(strata.labels)},
        "verification": [c.to_dict() for c in verification.checks],
        "articles_columns": ["article", "split", "n_windows", "stratum", "input", "first_row"],
        "articles": articles,
    }


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Indented JSON with one line per article (10^5 articles stay a readable, diffable file)."""
    head = dict(manifest)
    articles = head.pop("articles")
    text = json.dumps(head, indent=1, allow_nan=False)
    body = ",\n".join("  " + json.dumps(a, allow_nan=False) for a in articles)
    return text[:-1].rstrip() + ',\n "articles": [\n' + body + "\n ]\n}\n"
