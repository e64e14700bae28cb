"""`lvmdiag leakage` end to end on files: JSON/markdown output, exit codes, no overwrite of inputs."""

import json

import numpy as np
from typer.testing import CliRunner

from lvmdiag import synthetic as syn
from lvmdiag_cli.app import app

runner = CliRunner()


def _write(path, seq):
    np.savez(path, contexts=seq.contexts, targets=seq.targets)  # arXiv form: no article ids
    return path


def _files(tmp_path, by, **kw):
    st = syn.make_store(n_articles=40, d=16, rng=1)
    sp = syn.make_splits(st, k=5, by=by, keep_ids=False, rng=2, **kw)
    return _write(tmp_path / "train.npz", sp["train"]), _write(tmp_path / "val.npz", sp["val"])


def test_window_split_files_leak_json_to_stdout(tmp_path):
    tr, va = _files(tmp_path, "window")
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--json", "-", "--no-progress"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    (val,) = payload["splits"]
    assert val["split"] == "val" and val["share_shared_chunk"] >= 0.98
    assert payload["group_method"] == "recovered"


def test_article_split_markdown_report_and_ood(tmp_path):
    st = syn.make_store(n_articles=40, d=16, rng=1)
    sp = syn.make_splits(st, k=5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), n_duplicated=2,
                         keep_ids=False, rng=3)
    paths = {n: _write(tmp_path / f"{n}.npz", s) for n, s in sp.items()}
    out = tmp_path / "leak.md"
    res = runner.invoke(app, ["leakage", "--train", str(paths["train"]), "--val", str(paths["val"]),
                              "--ood", str(paths["ood"]), "--out", str(out), "--json", str(tmp_path / "l.json"),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    assert "## Leakage" in md and "LEAKAGE" in md and "### ood" in md
    png = tmp_path / "leak_leakage.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.name in md
    payload = json.loads((tmp_path / "l.json").read_text())
    by = {s["split"]: s for s in payload["splits"]}
    assert by["val"]["n_shared_windows"] > 0 and by["ood"]["windows_affected"] == 0


def test_two_split_file_serves_train_and_val(tmp_path):
    st = syn.make_store(n_articles=30, d=16, rng=4)
    sp = syn.make_splits(st, k=5, by="window", keep_ids=False, rng=5)
    both = tmp_path / "both.npz"
    np.savez(both, context_sequences=sp["train"].contexts, target_vectors=sp["train"].targets,
             val_context_sequences=sp["val"].contexts, val_target_vectors=sp["val"].targets)
    res = runner.invoke(app, ["leakage", "--train", str(both), "--val", str(both), "--json", "-", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["splits"][0]["share_shared_chunk"] > 0.9


def test_bad_input_exits_2_with_one_line(tmp_path):
    tr, va = _files(tmp_path, "article")
    res = runner.invoke(app, ["leakage", "--train", str(tmp_path / "missing.npz"), "--val", str(va), "--no-progress"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--threshold", "2", "--no-progress"])
    assert res.exit_code == 2 and "threshold" in res.output
    before = tr.read_bytes()
    res = runner.invoke(app, ["leakage", "--train", str(tr), "--val", str(va), "--out", str(tr), "--no-progress"])
    assert res.exit_code == 2 and tr.read_bytes() == before


def _per_file_ids(tmp_path, duplicate=False):
    """Two article stores whose ids each start at 0 (the audit's repro); ``duplicate`` copies train's article 0 into val."""
    rng = np.random.default_rng(0)
    v = rng.standard_normal((200, 16)).astype("f4")
    ids = np.repeat(np.arange(20), 10)
    val_v, val_ids = v[100:], ids[100:] - 10
    if duplicate:  # val article 0 becomes a copy of train article 0 (same id, same content)
        val_v = np.concatenate([v[:10], val_v[10:]])
    a, b = tmp_path / "idc_a.npz", tmp_path / "idc_b.npz"
    np.savez(a, vectors=v[:100], article_ids=ids[:100])
    np.savez(b, vectors=val_v, article_ids=val_ids)
    return a, b


def test_ids_numbered_per_file_warn_without_a_leakage_verdict(tmp_path):
    a, b = _per_file_ids(tmp_path)
    res = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress", "--json", "-"])
    assert res.exit_code == 0, res.output
    (val,) = json.loads(res.stdout)["splits"]
    assert val["n_shared_articles"] == 10 and val["n_id_only_articles"] == 10 and val["n_content_articles"] == 0
    assert val["windows_affected"] == 0 and val["n_shared_chunks"] == val["n_near_chunks"] == 0
    # the article-level test ran, did not reject, and flagged nothing
    assert val["id_only_permutations"] == 1999 and val["id_only_pool"] == 10 and val["id_only_pvalue"] > 1e-3
    assert val["n_same_articles"] == 0 and val["windows_same_article"] == 0 and val["same_article_ids"] == []
    md = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress"]).stdout
    assert "LEAKAGE" not in md and "no content leakage" in md
    assert "share 10 article ids but no chunk content" in md and "numbered per file" in md
    for fail_on, code in (("leakage", 0), ("any", None)):
        out = runner.invoke(app, ["data", "--train", str(a), "--val", str(b), "--quiet", "--n-permutations", "20",
                                  "--n-bootstrap", "20", "--fail-on", fail_on, "--json", str(tmp_path / "d.json")])
        findings = json.loads((tmp_path / "d.json").read_text())["findings"]
        assert not [f for f in findings if f["kind"] == "leakage"]
        if code is not None:
            assert out.exit_code == code, out.output


def test_ids_numbered_per_file_with_a_real_duplicate_still_fail(tmp_path):
    a, b = _per_file_ids(tmp_path, duplicate=True)
    res = runner.invoke(app, ["data", "--train", str(a), "--val", str(b), "--quiet", "--n-permutations", "20",
                              "--n-bootstrap", "20", "--fail-on", "leakage", "--json", str(tmp_path / "d.json")])
    assert res.exit_code == 1, res.output
    leak = json.loads((tmp_path / "d.json").read_text())["leakage"]["splits"][0]
    assert leak["n_content_articles"] == 1 and leak["n_id_only_articles"] == 9
    windows_of_article_0 = 10 - 5  # 10 chunks, K=5: 5 windows
    assert leak["windows_affected"] == windows_of_article_0 == leak["n_shared_windows"]


def _cut_files(tmp_path, n_articles):
    """Store files of articles cut by position: each article's first 10 chunks in one file, the rest in the
    other, both keeping the article's id (no chunk in both files)."""
    st = syn.make_store(n_articles=n_articles, d=32, rho=0.9, length=(20, 30), rng=12)
    paths = []
    for name, keep in (("cut_a.npz", st.chunk_index < 10), ("cut_b.npz", st.chunk_index >= 10)):
        pos = st.chunk_index[keep] - (0 if name == "cut_a.npz" else 10)
        np.savez(tmp_path / name, vectors=st.vectors[keep], article_ids=st.article_ids[keep], chunk_index=pos)
        paths.append(tmp_path / name)
    return paths


def test_articles_cut_by_position_are_a_shared_ids_finding_not_content_leakage(tmp_path):
    """The nearest-chunk test links the cut articles' ids; as it assumes ids numbered independently of content
    (files sorted by topic break it), the link is a warning and a `shared-ids` finding that `--fail-on shared-ids`
    gates on, never content leakage (`--fail-on leakage` passes)."""
    a, b = _cut_files(tmp_path, 40)
    res = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress", "--json", "-"])
    assert res.exit_code == 0, res.output
    (val,) = json.loads(res.stdout)["splits"]
    assert val["n_shared_chunks"] == val["n_near_chunks"] == val["n_content_articles"] == 0
    assert val["id_only_pvalue"] <= 1e-3 and val["n_same_articles"] >= 30
    assert val["windows_same_article"] > 0 and val["windows_affected"] == 0
    md = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress"]).stdout
    assert "LEAKAGE" not in md and "suggests some name the same articles" in md and "may not be article-disjoint" in md
    for fail_on, code in (("leakage", 0), ("shared-ids", 1)):
        out = runner.invoke(app, ["data", "--train", str(a), "--val", str(b), "--quiet", "--n-permutations", "20",
                                  "--n-bootstrap", "20", "--fail-on", fail_on, "--json", str(tmp_path / "d.json")])
        assert out.exit_code == code, (fail_on, out.output)
    kinds = [f["kind"] for f in json.loads((tmp_path / "d.json").read_text())["findings"]]
    assert "shared-ids" in kinds and "leakage" not in kinds


def test_too_few_train_articles_to_single_one_out_warn_without_counting(tmp_path):
    """8 cut articles: the global test rejects (p at its floor), but an article's exact p is >= 1/8, so BH
    at 0.05 flags none: the warning says so and no window is counted (never more than the test shows)."""
    a, b = _cut_files(tmp_path, 8)
    res = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress", "--json", "-"])
    assert res.exit_code == 0, res.output
    (val,) = json.loads(res.stdout)["splits"]
    assert val["id_only_pool"] == 8 and val["id_only_pvalue"] == 1 / 2000
    assert val["n_same_articles"] == 0 and val["windows_affected"] == 0
    md = runner.invoke(app, ["leakage", "--train", str(a), "--val", str(b), "--no-progress"]).stdout
    assert "LEAKAGE" not in md and "none singled out" in md
    assert "no article can be singled out with 8 train articles (an article's p is at least 1/8)" in md
