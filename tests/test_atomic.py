"""Atomic writes leave either the old file or the new one, never a partial file or a temp file."""

import json

import pytest

from lvmdiag._atomic import append_jsonl_atomic, atomic_path, write_json_atomic, write_text_atomic


def test_write_and_append(tmp_path):
    write_text_atomic(tmp_path / "a.md", "hello")
    assert (tmp_path / "a.md").read_text() == "hello"
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    append_jsonl_atomic(tmp_path / "m.jsonl", {"epoch": 1})
    append_jsonl_atomic(tmp_path / "m.jsonl", {"epoch": 2})
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_failure_keeps_old_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.md"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


def test_nan_is_refused(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "x.json", {"x": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_outputs_get_normal_permissions(tmp_path):
    import os
    import stat

    write_text_atomic(tmp_path / "p.md", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "p.md").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
