"""One streamed SHA-256 of a file (manifests, provenance records, resume fingerprints)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike[str], chunk: int = 4 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk``-byte blocks (memory does not grow with the file)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
