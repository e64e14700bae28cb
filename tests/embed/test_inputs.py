"""Input readers: JSONL (whole or pre-chunked, plain or gzip), a directory of .txt/.md, Parquet; bad input is one line."""

from __future__ import annotations

import gzip
import json

import pytest

from lvmdiag.embed.inputs import TextRecord, input_sha256, read_records
from lvmdiag.errors import InputError


def test_jsonl_whole_and_prechunked(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"article_id": "x", "text": "one"}\n\n{"article_id": 7, "text": "two"}\n')
    assert list(read_records(p)) == [TextRecord("x", "one"), TextRecord(7, "two")]
    g = tmp_path / "b.jsonl.gz"
    with gzip.open(g, "wt") as fh:
        fh.write(json.dumps({"doc": "x", "body": "t", "chunk_index": 3}) + "\n")
    assert list(read_records(g, id_column="doc", text_column="body")) == [TextRecord("x", "t", 3)]


@pytest.mark.parametrize("line, match", [
    ("{not json", "line 2 is not valid JSON"),
    ('{"article_id": "x"}', "line 2 has no `text`"),
    ('{"article_id": "x", "text": 5}', "must be a string"),
    ('{"article_id": "x", "text": "t", "chunk_index": -1}', "non-negative integer"),
    ("[1, 2]", "not a JSON object"),
])
def test_bad_jsonl_lines_are_named(tmp_path, line, match):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"article_id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(InputError, match=match):
        list(read_records(p))


def test_directory_of_text_files_in_sorted_path_order(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.md").write_text("# B")
    (tmp_path / "d" / "a.txt").write_text("A")
    (tmp_path / "d" / "sub" / "c.txt").write_text("C")
    (tmp_path / "d" / "ignored.csv").write_text("x")
    recs = list(read_records(tmp_path / "d"))
    assert recs == [TextRecord("a.txt", "A"), TextRecord("b.md", "# B"), TextRecord("sub/c.txt", "C")]
    h1 = input_sha256(tmp_path / "d")
    (tmp_path / "d" / "a.txt").write_text("A changed")
    assert input_sha256(tmp_path / "d") != h1
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .txt or .md"):
        list(read_records(tmp_path / "empty"))


def test_parquet_text_column(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "body": ["first text", "second text"]}), p)
    assert list(read_records(p, id_column="id", text_column="body")) == [TextRecord("a", "first text"),
                                                                         TextRecord("b", "second text")]
    with pytest.raises(InputError, match="no column `text`"):
        list(read_records(p, id_column="id"))
    pre = tmp_path / "pre.parquet"
    pq.write_table(pa.table({"article_id": [3, 3], "chunk_index": [1, 0], "text": ["b", "a"]}), pre)
    assert list(read_records(pre)) == [TextRecord(3, "b", 1), TextRecord(3, "a", 0)]


def test_unknown_input_kinds(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_records(tmp_path / "missing.jsonl"))
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(InputError, match="neither .jsonl"):
        list(read_records(tmp_path / "x.csv"))
