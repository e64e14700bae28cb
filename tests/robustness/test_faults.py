"""kill -9 during `data` and `resplit` (issue 17): no partial file at any target, no temp left after the
next run, and the rerun is byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus import K
from lvmdiag.resplit.writing import SLEEP_ENV
from lvmdiag_cli._common import COMMIT_SLEEP_ENV

CLI = [sys.executable, "-c", "from lvmdiag_cli.app import app; app()"]
FAST = ["--k", str(K), "--quiet", "--n-permutations", "9", "--n-bootstrap", "9"]
PNG_END = b"IEND\xaeB`\x82"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(args, env=None):
    return subprocess.run([*CLI, *args], env={**os.environ, **(env or {})}, capture_output=True, timeout=300)


def _kill_when(args, ready, env=None, timeout=120.0):
    """Start the command, SIGKILL it once ``ready()`` holds (or it has run ``ready`` seconds)."""
    proc = subprocess.Popen([*CLI, *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        while time.monotonic() - start < timeout:
            if (ready() if callable(ready) else time.monotonic() - start >= ready):
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the kill point was never reached")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _complete(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix == ".png":
        return data.startswith(b"\x89PNG") and data.endswith(PNG_END)
    if path.suffix == ".json":
        json.loads(data)
        return True
    return path.suffix == ".md" and data.endswith(b"\n") and len(data) > 100


def _stages(root: Path) -> list[Path]:
    return list(root.glob(".lvmdiag-*.tmp"))


def _reference(args) -> None:
    """The uninterrupted run, in-process (no interpreter start-up)."""
    from typer.testing import CliRunner

    from lvmdiag_cli.app import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code in (0, 1), res.output


def test_data_killed_at_any_point_leaves_complete_files_and_reruns_identically(world, tmp_path):
    args = lambda d: ["data", "--train", str(world.good["train"]), "--val", str(world.good["val"]), *FAST,  # noqa: E731
                      "--out", str(d / "report.md"), "--json", str(d / "report.json")]
    ref = tmp_path / "ref"
    ref.mkdir()
    _reference(args(ref))
    expected = _tree(ref)
    assert len(expected) == 6

    out = tmp_path / "out"
    out.mkdir()
    staged = lambda: any(len(list(s.iterdir())) >= 6 for s in _stages(out))  # noqa: E731
    kill_points = [
        (0.3, None),  # while starting / analysing: nothing staged yet
        (staged, {COMMIT_SLEEP_ENV: "20"}),  # every file staged, none moved
        (lambda: (out / "report_bias.png").exists(), {COMMIT_SLEEP_ENV: "1"}),  # some moved, not the markdown
    ]
    for ready, env in kill_points:  # killed runs one after another: stages of dead runs pile up
        _kill_when(args(out), ready, env)
        for f in out.iterdir():  # whatever reached a target is a complete file
            if not f.name.startswith("."):
                assert _complete(f), f
        assert not (out / "report.md").exists()  # the markdown, which links the rest, is moved last
    assert _run(args(out)).returncode in (0, 1)
    assert _tree(out) == expected  # byte-identical rerun
    assert not _stages(out) and not [p for p in out.iterdir() if p.name.startswith(".")]  # stale stages removed


def test_resplit_killed_mid_write_leaves_no_out_and_reruns_identically(world, tmp_path):
    args = lambda d: ["resplit", str(world.good["train"]), str(world.good["val"]), "--out", str(d),  # noqa: E731
                      "--k", str(K), "--no-progress", "--no-analyses"]
    ref = tmp_path / "ref"
    _reference(args(ref))
    expected = _tree(ref)

    out = tmp_path / "out"
    mid_write = lambda: any(p.suffix == ".npz" for t in tmp_path.glob(".out.resplit-*.tmp")  # noqa: E731
                            for p in t.iterdir())
    for ready, env in [(0.3, None), (mid_write, {SLEEP_ENV: "20"})]:
        _kill_when(args(out), ready, env)
        assert not out.exists()  # absent until complete: never an empty or half-written --out
    assert _run(args(out)).returncode == 0
    got = _tree(out)
    assert got.keys() == expected.keys()
    for name, data in expected.items():  # the manifest and the report name the output directory
        if name in ("manifest.json", "resplit_report.md"):
            data = data.replace(str(ref).encode(), str(out).encode())
        assert got[name] == data, name
    assert not list(tmp_path.glob(".out.resplit-*"))
