"""The bad-input corpus over every command (issue 17): exit 2, one stderr line naming the culprit,
no traceback, and nothing written, created or changed anywhere.

Cases are (command, arguments, needle): the needle is the file name or option the line must name.
Everything runs in-process on a few-kB directory, so the ~400 cases take seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corpus import K, snapshot
from lvmdiag_cli.app import app

runner = CliRunner()


COMMANDS = ("bias", "direction", "diverge", "leakage", "data", "resplit", "report", "train", "evaluate")
# files that are bad on their own (read by any command); d_mismatch.npz is only bad beside train.npz
SOLO_BAD = ("missing.npz", "zero_bytes.npz", "truncated.npz", "text.npz", "no_keys.npz", "only_contexts.npz",
            "int32.npz", "complex.npz", "object.npz", "n0.npz", "kd_mismatch.npz", "ids_length.npz", "nan.npz",
            "zeros.npz", "flat.npz", "empty_dir", "zip_of_text.npz")
NOT_COUNTS = ("0", "-1", "abc", "1.5", "nan", "")
NOT_SEEDS = ("-1", "-5", "abc", "0.5", "nan")


def _split_opts(w, train_arg="--train", val_arg="--val"):
    return [train_arg, str(w.good["train"]), val_arg, str(w.good["val"])]


def _file_cases(w, cmd, prefix, val_required, extra=()):
    """Each bad file as --train (with a good --val where one is needed) and as --val."""
    cases = []
    for name in SOLO_BAD:
        bad = str(w.bad[name])
        val = ["--val", str(w.good["val"])] if val_required else []
        cases.append((cmd, [*prefix, "--train", bad, *val, *extra], name))
        cases.append((cmd, [*prefix, "--train", str(w.good["train"]), "--val", bad, *extra], name))
    cases.append((cmd, [*prefix, "--train", str(w.good["train"]), "--val", str(w.bad["d_mismatch.npz"]), *extra],
                  "d_mismatch.npz"))
    return cases


def _range_cases(cmd, base, option, values):
    return [(cmd, [*base, option, v], option) for v in values]


def _output_cases(w, cmd, base, outs=("--out", "--json"), inputs=("train",)):
    """Output paths: a directory, under a regular file, an input, and two outputs naming one file."""
    cases = []
    for opt in outs:
        cases.append((cmd, [*base, opt, str(w.good["outdir"])], "outdir"))
        cases.append((cmd, [*base, opt, str(w.good["plain_file"] / "r.out")], "notes.txt"))
        for name in inputs:
            cases.append((cmd, [*base, opt, str(w.good[name])], w.good[name].name))
    if len(outs) == 2:
        same = str(w.root / "same.md")
        cases.append((cmd, [*base, outs[0], same, outs[1], same], "same.md"))
    return cases


def _common_cases(w, cmd, val_required, options):
    base = [cmd, *_split_opts(w), "--k", str(K), "--quiet"]
    cases = _file_cases(w, cmd, [cmd], val_required, extra=["--k", str(K), "--quiet"])
    cases += _range_cases(cmd, base, "--k", ("0", "-3", "x"))
    cases.append((cmd, [*base, "--k", str(K + 1)], f"--k {K + 1}"))  # window files with K: another K is refused
    for option, values in options.items():
        cases += _range_cases(cmd, base, option, values)
    cases += _output_cases(w, cmd, base)
    cases += [(cmd, [*base, "--no-such-option"], "--no-such-option"),
              (cmd, [cmd, "--val", str(w.good["val"])], "--train")]
    return cases


UNREACHABLE = "tcp://127.0.0.1:9"  # nothing listens on the discard port; the connect timeout is cut to 1 s below


def _engine_cases(w, cmd):
    """--engine / --scheduler (issue 9) and a shard folder with another D, for every data command."""
    base = [cmd, *_split_opts(w), "--k", str(K), "--quiet"]
    try:
        import distributed  # noqa: F401

        dask_needle = "--scheduler"
    except ImportError:  # without the extra the dask cases must say what to install, in one line
        dask_needle = "lvmdiag[dask]"
    return [(cmd, [*base, "--scheduler", UNREACHABLE], "--scheduler"),
            (cmd, [*base, "--engine", "spark"], "--engine"),
            (cmd, [*base, "--engine", "dask", "--scheduler", UNREACHABLE], dask_needle),
            (cmd, [*base, "--engine", "dask", "--scheduler", "no address"], dask_needle),
            (cmd, [cmd, "--train", str(w.bad["shards_d_mismatch"]), "--val", str(w.good["val"]), "--quiet"],
             "shard-001"),
            (cmd, [cmd, "--train", str(w.good["train"]), "--val", str(w.bad["shards_d_mismatch"]), "--quiet",
                   "--engine", "local"], "shard-001")]


def bias_cases(w):
    return _common_cases(w, "bias", False, {"--k": ("1",), "--seed": NOT_SEEDS, "--n-resamples": NOT_COUNTS,
                                            "--block-rows": NOT_COUNTS}) + _engine_cases(w, "bias") + [
        ("bias", ["bias", *_split_opts(w), "--k", str(K), "--plot", str(w.good["val"])], "val.npz"),
        ("bias", ["bias", *_split_opts(w), "--k", str(K), "--plot", str(w.good["outdir"])], "outdir"),
    ]


def direction_cases(w):
    return _common_cases(w, "direction", False, {"--seed": NOT_SEEDS, "--n-permutations": NOT_COUNTS,
                                                 "--max-windows": ("9", "0", "-1", "x")}) + _engine_cases(w, "direction")


def diverge_cases(w):
    return _common_cases(w, "diverge", True, {"--seed": NOT_SEEDS, "--n-permutations": NOT_COUNTS,
                                              "--n-bootstrap": NOT_COUNTS, "--block-rows": NOT_COUNTS,
                                              "--rff-features": ("0", "-1", "x")}) + _engine_cases(w, "diverge")


def leakage_cases(w):
    return _common_cases(w, "leakage", True, {"--threshold": ("5", "-1", "1.01", "nan", "inf", "x"),
                                              "--max-examples": ("-1", "x"), "--block-rows": NOT_COUNTS}) + \
        _engine_cases(w, "leakage")


def data_cases(w):
    base = ["data", *_split_opts(w), "--k", str(K), "--quiet"]
    return _common_cases(w, "data", True, {
        "--k": ("1",), "--seed": NOT_SEEDS, "--n-permutations": NOT_COUNTS, "--n-bootstrap": NOT_COUNTS,
        "--threshold": ("5", "-1", "2", "nan", "x"), "--alpha": ("2", "-0.1", "0", "1", "nan", "x"),
    }) + [("data", [*base, "--fail-on", "bogus"], "--fail-on"),
          ("data", [*base, "--fail-on", "leakage", "--threshold", "5"], "--threshold")] + _engine_cases(w, "data")


def resplit_cases(w):
    out = str(w.root / "new_out")
    base = ["resplit", str(w.good["train"]), str(w.good["val"]), "--out", out, "--no-progress", "--k", str(K)]
    cases = [("resplit", ["resplit", str(w.bad[n]), "--out", out, "--k", str(K)], n) for n in SOLO_BAD]
    cases += [("resplit", [*base, str(w.bad["d_mismatch.npz"])], "d_mismatch.npz"),
              ("resplit", [*base, str(w.good["train"])], "train.npz"),  # an input given twice
              ("resplit", [*base[:3], "--out", str(w.good["plain_file"]), "--k", str(K)], "notes.txt"),
              ("resplit", [*base[:3], "--out", str(w.good["plain_file"] / "sub"), "--k", str(K)], "notes.txt"),
              ("resplit", [*base[:3], "--out", str(w.good["run"]), "--k", str(K)], "run"),  # not empty
              ("resplit", [*base[:3], "--out", str(w.good["run"]), "--force", "--k", str(K)], "run"),
              ("resplit", [*base[:3], "--out", str(w.good["npydir"]), "--k", str(K)], "npydir"),
              ("resplit", ["resplit", "--out", out], "INPUTS"),
              ("resplit", [*base, "--ratios", "a,b"], "--ratios"),
              ("resplit", [*base, "--ratios", "0.5,0.6"], "1"),
              ("resplit", [*base, "--ratios", "-0.5,1.5"], "ratio"),
              ("resplit", [*base, "--ratios", "0.5,0.5", "--names", "a,b,c"], "names"),
              ("resplit", [*base, "--names", "a,a,b"], "distinct"),
              ("resplit", [*base, "--names", "../x,val,ood"], "../x"),
              ("resplit", [*base, "--by", "no_such_key"], "no_such_key"),
              ("resplit", [*base, "--stratify", "no_such_key"], "no_such_key"),
              ("resplit", [*base, "--no-such-option"], "--no-such-option")]
    cases += _range_cases("resplit", base, "--seed", NOT_SEEDS)
    cases += _range_cases("resplit", base, "--bins", ("0", "-1", "x"))
    cases += _range_cases("resplit", base[:-2], "--k", ("0", "-1", "x"))
    cases += _output_cases(w, "resplit", base, outs=("--json",), inputs=("train", "val"))
    return cases


def report_cases(w):
    run = str(w.good["run"])
    base = ["report", run, "--quiet"]
    cases = [("report", ["report", str(w.root / "no_such_run")], "no_such_run"),
             ("report", ["report", str(w.bad["empty_dir"])], "empty_dir"),
             ("report", ["report", str(w.good["plain_file"])], "notes.txt"),
             ("report", ["report", str(w.bad["zero_bytes.npz"])], "zero_bytes.npz"),
             ("report", ["report"], "RUN_DIR"),
             ("report", [*base, "--format", "bogus"], "bogus"),
             ("report", [*base, "--analyses", "bogus"], "bogus"),
             ("report", [*base, "--out", str(w.good["run"] / "metrics.jsonl")], "metrics.jsonl"),
             ("report", [*base, "--json", str(w.good["run"] / "config.json")], "config.json"),
             ("report", [*base, "--train", str(w.good["train"]), "--out", str(w.good["train"])], "train.npz"),
             ("report", [*base, "--val", str(w.good["val"]), "--json", str(w.good["val"])], "val.npz"),
             ("report", [*base, "--no-such-option"], "--no-such-option")]
    cases += _range_cases("report", base, "--seed", NOT_SEEDS)
    cases += _range_cases("report", base, "--k", ("0", "-1", "x"))
    cases += _output_cases(w, "report", base, inputs=())
    for name in ("missing.npz", "zero_bytes.npz", "text.npz", "int32.npz", "n0.npz", "flat.npz"):
        cases.append(("report", [*base, "--train", str(w.bad[name]), "--val", str(w.good["val"]), "--k", str(K)], name))
    return cases


TRAIN_RANGES = {
    "--epochs": ("0", "-1", "x"), "--batch-size": ("0", "-2"), "--lr": ("0", "-1e-3", "nan", "inf"),
    "--d-model": ("0", "-8"), "--layers": ("0",), "--nhead": ("0",), "--seed": ("-1",),
    "--w-rank": ("-1",), "--temperature": ("0", "-0.1"), "--anchor-lambda": ("1.5", "-0.1"),
    "--warmup-epochs": ("-1",), "--weight-decay": ("-1",), "--grad-clip": ("-1",), "--random-negatives": ("-1",),
    "--gate-weak-weight": ("-1",), "--margin": ("nan",), "--threads": ("0",),
}


def train_cases(w):
    out = str(w.root / "new_run")
    base = ["train", *_split_opts(w), "--out", out, "--no-progress", "--threads", "1"]
    cases = [("train", [*base, "--train", str(w.bad[n])], n) for n in SOLO_BAD]
    cases += [("train", [*base, "--val", str(w.bad[n])], n) for n in ("missing.npz", "text.npz", "n0.npz", "flat.npz")]
    for option, values in TRAIN_RANGES.items():
        cases += _range_cases("train", base, option, values)
    cases += [("train", [*base, "--model", "gru"], "--model"),
              ("train", [*base, "--lr-schedule", "bogus"], "lr_schedule"),
              ("train", [*base, "--hard-negatives", "bogus"], "hard_negatives"),
              ("train", [*base, "--config", str(w.root / "no_config.json")], "no_config.json"),
              ("train", [*base, "--config", str(w.good["plain_file"])], "notes.txt"),
              ("train", [*base, "--resume", "--force"], "--resume"),
              ("train", [*base, "--resume"], "new_run"),
              ("train", [*base[:5], "--out", str(w.good["run"]), "--no-progress"], "run"),  # not empty
              ("train", [*base[:5], "--out", str(w.good["plain_file"]), "--no-progress"], "notes.txt"),
              ("train", [*base[:5], "--out", str(w.good["plain_file"] / "sub"), "--no-progress"], "notes.txt"),
              ("train", [*base, "--config", str(w.good["config"]), "--json", str(w.good["config"])], "config.json"),
              ("train", [*base, "--json", str(w.good["outdir"])], "outdir"),
              ("train", [*base, "--no-such-option"], "--no-such-option")]
    return cases


def evaluate_cases(w):
    ck = str(w.checkpoint)
    base = ["evaluate", ck, "--data", str(w.good["val"]), "--threads", "1"]
    cases = [("evaluate", [*base[:2], "--data", str(w.bad[n]), "--threads", "1"], n) for n in SOLO_BAD]
    cases += [("evaluate", ["evaluate", str(w.root / "no.pt"), "--data", str(w.good["val"])], "no.pt"),
              ("evaluate", ["evaluate", str(w.bad["zero_bytes.npz"]), "--data", str(w.good["val"])], "zero_bytes.npz"),
              ("evaluate", ["evaluate", str(w.good["plain_file"]), "--data", str(w.good["val"])], "notes.txt"),
              ("evaluate", ["evaluate", str(w.good["train"]), "--data", str(w.good["val"])], "train.npz"),
              ("evaluate", [*base[:2], "--data", str(w.bad["d_mismatch.npz"])], "d_mismatch.npz"),
              ("evaluate", [*base, "--split", "bogus"], "--split"),
              ("evaluate", [*base, "--split", "val"], "--split"),  # a one-split file has no split to choose
              ("evaluate", [*base[:2], "--data", str(w.good["two_split"]), "--split", "bogus"], "--split"),
              ("evaluate", [*base, "--device", "tpu"], "device"),
              ("evaluate", ["evaluate", ck], "--data"),
              ("evaluate", [*base, "--no-such-option"], "--no-such-option")]
    cases += _range_cases("evaluate", base, "--pool-size", ("0", "1", "-5", "x"))
    cases += _range_cases("evaluate", base, "--threads", ("0", "-1"))
    cases += _output_cases(w, "evaluate", base, inputs=("val",))
    cases.append(("evaluate", [*base, "--out", ck], "best.pt"))
    return cases


BUILDERS = {"bias": bias_cases, "direction": direction_cases, "diverge": diverge_cases, "leakage": leakage_cases,
            "data": data_cases, "resplit": resplit_cases, "report": report_cases, "train": train_cases,
            "evaluate": evaluate_cases}


def _check(w, before, cmd, args, needle):
    res = runner.invoke(app, args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    problems = []
    if res.exit_code != 2:
        problems.append(f"exit {res.exit_code} (exception {res.exception!r})")
    if "Traceback" in res.output or (res.exception is not None and not isinstance(res.exception, SystemExit)):
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    elif needle not in lines[0]:
        problems.append(f"line does not name {needle!r}")
    after = snapshot(w.root)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        problems.append(f"files changed: {changed[:4]}")
    return problems, lines


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bad_input_is_one_line_exit_2_and_leaves_no_file(request, command, monkeypatch):
    if command in ("train", "evaluate"):
        pytest.importorskip("torch")  # the train extra
    world = request.getfixturevalue("checkpoint" if command == "evaluate" else "world")
    monkeypatch.chdir(world.root)  # a stray relative output would show up in the snapshot
    monkeypatch.setattr("lvmdiag.engine.dask_runner.CONNECT_TIMEOUT_S", 1)  # the unreachable --scheduler cases
    cases = BUILDERS[command](world)
    assert len(cases) >= 30, f"{command}: only {len(cases)} bad inputs"
    before = snapshot(world.root)
    failures = []
    for cmd, args, needle in cases:
        problems, lines = _check(world, before, cmd, args, needle)
        if problems:
            failures.append(f"{' '.join(os.path.relpath(a, world.root) if a.startswith('/') else a for a in args)}"
                            f" -> {'; '.join(problems)}: {lines[:3]}")
            before = snapshot(world.root)  # report each case's own damage
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


def test_every_numeric_option_has_a_checked_range():
    """A numeric option without a range is how `--seed -1` and `--alpha 2` got through (issue 17.1, 17.3)."""
    from typer.main import get_command

    group = get_command(app)
    unchecked = []
    for name, command in group.commands.items():
        for param in command.params:
            annotation = param.type_descriptor.annotation
            inner = getattr(annotation, "__args__", (annotation,))
            if any(t in (int, float) for t in inner) and not getattr(param.callback, "lvmdiag_range", None):
                unchecked.append(f"{name} {param.opts[0]}")
    assert not unchecked, unchecked


def _text_world(w):
    """Text inputs for `lvmdiag embed` beside the corpus (created once, before the snapshot)."""
    root = w.root / "text"
    if not root.exists():
        root.mkdir()
        long_text = " ".join(f"word{i}." for i in range(400))
        (root / "good.jsonl").write_text('{"article_id": 1, "text": "%s"}\n' % long_text)
        (root / "empty.jsonl").write_text("")
        (root / "not_json.jsonl").write_text("this is not json\n")
        (root / "no_id.jsonl").write_text('{"text": "%s"}\n' % long_text)
        (root / "no_text.jsonl").write_text('{"article_id": 1}\n')
        (root / "short.jsonl").write_text('{"article_id": 1, "text": "only a few words here"}\n')
        (root / "list.jsonl").write_text('[1, 2, 3]\n')
        (root / "no_files").mkdir()
    return root


def embed_cases(w):
    t = _text_world(w)
    good = str(t / "good.jsonl")
    out = str(w.root / "emb.npz")
    base = ["embed", good, "--out", out, "--quiet"]
    cases = [("embed", ["embed", str(t / name), "--out", out, "--quiet"], name)
             for name in ("missing.jsonl", "empty.jsonl", "not_json.jsonl", "no_id.jsonl", "no_text.jsonl",
                          "short.jsonl", "list.jsonl", "no_files")]
    cases += _range_cases("embed", base, "--min-chunks", NOT_COUNTS)
    cases += _range_cases("embed", base, "--batch-size", NOT_COUNTS)
    cases += _range_cases("embed", base, "--checkpoint-every", NOT_COUNTS)
    cases += _range_cases("embed", base, "--chunk-words", ("abc", "10", "50,20", "0,10", "-5,10", ""))
    cases += [("embed", ["embed", good, "--out", str(w.good["outdir"]), "--quiet"], "outdir"),
              ("embed", ["embed", good, "--out", str(w.good["plain_file"] / "e.npz"), "--quiet"], "notes.txt"),
              ("embed", ["embed", good, "--out", good, "--quiet"], "good.jsonl"),
              ("embed", [*base, "--json", str(w.good["outdir"])], "outdir"),
              ("embed", [*base, "--json", good], "good.jsonl"),
              ("embed", [*base, "--no-such-option"], "--no-such-option"),
              ("embed", ["embed", "--out", out], "INPUT"),
              ("embed", ["embed", good], "--out")]
    return cases


def test_embed_bad_inputs_are_one_line_exit_2_and_leave_no_file(world, monkeypatch):
    """`lvmdiag embed` joined the commands after the corpus was written: its inputs and options too."""
    monkeypatch.chdir(world.root)
    cases = embed_cases(world)
    assert len(cases) >= 30
    before = snapshot(world.root)
    failures = []
    for cmd, args, needle in cases:
        problems, lines = _check(world, before, cmd, args, needle)
        if problems:
            failures.append(f"{' '.join(args)} -> {'; '.join(problems)}: {lines[:3]}")
            before = snapshot(world.root)
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)
