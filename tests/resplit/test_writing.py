"""Streaming .npy writer (same bytes as np.save), run-wise gathering, and temp-dir recovery."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.resplit.writing import _gather, move_into_place, remove_stale_tmp, write_npy_dir


def test_gather_equals_fancy_indexing():
    arr = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    rng = np.random.default_rng(0)
    runs = np.sort(np.concatenate([np.arange(10, 40), np.arange(90, 95), np.arange(150, 199)]))
    scattered = np.sort(rng.choice(200, 60, replace=False))
    for sel in (runs, scattered, np.array([], np.int64), np.array([5])):
        np.testing.assert_array_equal(_gather(arr, sel), arr[sel])


def test_streamed_npy_files_are_byte_identical_to_np_save(tmp_path):
    rng = np.random.default_rng(1)
    sets = [
        SequenceSet(rng.normal(size=(30, 3, 4)).astype(np.float32), rng.normal(size=(30, 4)).astype(np.float32),
                    np.arange(30) // 5, "given", extras={"src": np.arange(30) % 3}),
        SequenceSet(rng.normal(size=(20, 3, 4)).astype(np.float32), rng.normal(size=(20, 4)).astype(np.float32),
                    100 + np.arange(20) // 4, "given", extras={"src": np.arange(20) % 2}),
    ]
    rows = [np.array([0, 1, 2, 10, 11, 29]), np.arange(0, 20, 3)]
    ticks = []
    write_npy_dir(tmp_path / "out", sets, rows, True, ["src"], 4, ticks.append)
    assert sum(ticks) == 13
    expect = {
        "contexts": np.concatenate([s.contexts[r] for s, r in zip(sets, rows)]),
        "targets": np.concatenate([s.targets[r] for s, r in zip(sets, rows)]),
        "article_ids": np.concatenate([s.article_ids[r] for s, r in zip(sets, rows)]).astype(np.int64),
        "src": np.concatenate([s.extras["src"][r] for s, r in zip(sets, rows)]),
    }
    for key, arr in expect.items():
        np.save(tmp_path / f"ref_{key}.npy", arr)
        assert (tmp_path / "out" / f"{key}.npy").read_bytes() == (tmp_path / f"ref_{key}.npy").read_bytes(), key


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_dirs_of_dead_runs_are_removed_and_an_old_output_is_restored(tmp_path):
    out = tmp_path / "out"
    pid = _dead_pid()
    (tmp_path / f".out.resplit-{pid}.tmp").mkdir()
    old = tmp_path / f".out.resplit-{pid}.old"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    live = tmp_path / f".out.resplit-{os.getpid() + 0}.tmp"  # our own pid: never touched
    live.mkdir()
    remove_stale_tmp(out)
    assert not (tmp_path / f".out.resplit-{pid}.tmp").exists()
    assert (out / "manifest.json").read_text() == "{}"  # killed between the two renames: restored
    assert live.exists()


def test_move_into_place_replaces_an_existing_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    tmp = tmp_path / ".new"
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    move_into_place(tmp, out)
    assert sorted(os.listdir(out)) == ["new.txt"] and not tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
