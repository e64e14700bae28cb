"""manifest.json helpers: streamed sha256 and the one-line-per-article JSON layout."""

from __future__ import annotations

import hashlib
import json

from lvmdiag.resplit.manifest import dump_manifest, sha256_files


def test_sha256_of_file_and_directory(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * (5 << 20))  # more than one 4 MiB chunk
    assert sha256_files(f) == [{"file": "a.bin", "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}]
    d = tmp_path / "dir"
    d.mkdir()
    (d / "b.npy").write_bytes(b"b")
    (d / "a.npy").write_bytes(b"a")
    assert [e["file"] for e in sha256_files(d)] == ["a.npy", "b.npy"]


def test_dump_manifest_is_valid_json_with_one_line_per_article():
    m = {"format": "lvmdiag-resplit/1", "parameters": {"seed": 3}, "articles": [[0, "train", 5, 0, 0, 0], [1, "val", 2, 1, 0, 5]]}
    text = dump_manifest(m)
    assert json.loads(text) == m
    lines = text.splitlines()
    assert '  [0, "train", 5, 0, 0, 0],' in lines and '  [1, "val", 2, 1, 0, 5]' in lines
    assert dump_manifest(m) == text
