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


def _drain(fifo):
    """Read a FIFO to its end in a thread (a writer blocks until someone reads); returns a getter."""
    import threading

    got = {}

    def read():
        with open(fifo, "rb") as fh:
            got["bytes"] = fh.read()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return lambda: (t.join(20), got.get("bytes"))[1]


def test_a_special_target_is_written_into_not_replaced(tmp_path):
    """A pipe (like /dev/null or /dev/stdout) gets the bytes; renaming over it would turn it into a regular file."""
    import os
    import stat

    from lvmdiag._atomic import is_special_file, write_text_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert is_special_file(fifo) and not is_special_file(tmp_path) and not is_special_file(tmp_path / "absent")
    result = _drain(fifo)
    write_text_atomic(fifo, "hello\n")
    assert result() == b"hello\n"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary left beside it
