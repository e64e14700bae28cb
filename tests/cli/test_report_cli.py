"""`lvmdiag report`: markdown to stdout, --out with the PNG beside it, --json, exit 2 on a bad run dir."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from lvmdiag_cli.app import app

RUNS = Path(__file__).resolve().parents[2] / "fixtures" / "runs"
runner = CliRunner()


def test_markdown_to_stdout():
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "# Run report: p7_baseline" in result.stdout and "Collapse at epoch 3" in result.stdout


def test_json_to_stdout():
    result = runner.invoke(app, ["report", str(RUNS / "p7_crashed"), "--json", "-", "--quiet"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["n_epochs"] == 4 and payload["complete"] is False


def test_out_writes_markdown_png_and_json(tmp_path):
    out = tmp_path / "rep" / "P7.md"
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--out", str(out), "--json", str(tmp_path / "p7.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.exists() and (out.parent / "P7_curves.png").exists() and (tmp_path / "p7.json").exists()
    assert "P7_curves.png" in out.read_text()


def test_in_run_dir(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "lvmdiag_healthy", run)
    result = runner.invoke(app, ["report", str(run), "--in-run-dir", "--quiet"])
    assert result.exit_code == 0
    assert {"REPORT.md", "report.json", "REPORT_curves.png"} <= {p.name for p in run.iterdir()}


def test_format_override():
    result = runner.invoke(app, ["report", str(RUNS / "p7_crashed"), "--format", "p7-log", "--quiet"])
    assert result.exit_code == 0 and "p7-log" in result.stdout


def test_bad_run_dir_exits_2_with_one_line(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_missing_data_path_exits_2(tmp_path):
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--val", str(tmp_path / "nope.npz"), "--quiet"])
    assert result.exit_code == 2 and "--val" in result.output


def test_refuses_to_overwrite_an_input(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "p7_baseline", run)
    result = runner.invoke(app, ["report", str(run), "--out", str(run / "config.json"), "--quiet"])
    assert result.exit_code == 2 and "input" in result.output
    assert json.loads((run / "config.json").read_text())["epochs"] == 10


def test_malformed_history_exits_2_with_one_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": [1, 2]}\n')
    result = runner.invoke(app, ["report", str(tmp_path), "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1


def test_negative_seed_exits_2_not_a_numpy_traceback():
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--seed", "-1", "--quiet"])
    assert result.exit_code == 2 and "--seed" in result.output and "must be an integer >= 0" in result.output


def test_unknown_analysis_exits_2():
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--analyses", "bias,bogus", "--quiet"])
    assert result.exit_code == 2 and "bogus" in result.output


def test_output_paths_that_cannot_work_exit_2_before_any_work(tmp_path):
    (tmp_path / "adir").mkdir()
    for args, message in (
        (["--out", str(tmp_path / "adir")], "is a directory"),
        (["--json", str(tmp_path / "adir")], "is a directory"),
        (["--out", str(tmp_path / "r.md"), "--json", str(tmp_path / "r.md")], "two different files"),
    ):
        result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), *args, "--quiet"])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["adir"] and not list((tmp_path / "adir").iterdir())


def test_every_next_step_of_every_example_parses_as_an_lvmdiag_command():
    """Next steps are meant to be pasted into a shell: each must name a real command with real options and
    values of the right type (parsed by the CLI itself, not run)."""
    import shlex

    import typer

    from lvmdiag.report import build_run_report

    group = typer.main.get_command(app)
    checked = 0
    for run in sorted(p for p in RUNS.iterdir() if p.is_dir()):
        for step in build_run_report(run).next_steps:
            argv = shlex.split(step)
            assert argv[0] == "lvmdiag" and argv[1] in group.commands, step
            group.commands[argv[1]].make_context(argv[1], argv[2:])  # raises on an unknown option or a bad value
            checked += 1
    assert checked >= 20


def test_outputs_to_pipes_are_written_into_and_stay_pipes(tmp_path):
    """`--out`/`--json` naming a device or a pipe (like /dev/null): the bytes go in, the pipe stays a pipe,
    and no figure file is made beside it (it used to be replaced by a regular file)."""
    import os
    import stat
    import threading

    pipes = {name: tmp_path / name for name in ("md", "js")}
    got = {}
    for name, p in pipes.items():
        os.mkfifo(p)

        def read(name=name, p=p):
            with open(p, "rb") as fh:
                got[name] = fh.read()

        threading.Thread(target=read, daemon=True).start()
    result = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--out", str(pipes["md"]),
                                 "--json", str(pipes["js"]), "--quiet"])
    assert result.exit_code == 0, result.output
    for p in pipes.values():
        assert stat.S_ISFIFO(os.stat(p).st_mode)
    import time

    for _ in range(200):
        if len(got) == 2:
            break
        time.sleep(0.05)
    assert b"# Run report: p7_baseline" in got["md"] and json.loads(got["js"])["n_epochs"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["js", "md"]  # no PNG, no stage left


def test_no_file_the_reader_reads_can_be_an_output(tmp_path):
    """hparams.yaml of a Lightning CSV run, training_args.json of an HF run: outputs there are refused
    (they were overwritten; only the history file, config.json and baselines.json were protected)."""
    for name, victim, option in (("lightning_csv", "hparams.yaml", "--out"),
                                 ("hf_trainer_state", "training_args.json", "--json"),
                                 ("lightning_csv", "hparams.yaml", "--html")):
        run = tmp_path / name
        if not run.exists():
            shutil.copytree(RUNS / name, run)
        before = (run / victim).read_bytes()
        result = runner.invoke(app, ["report", str(run), option, str(run / victim), "--quiet"])
        assert result.exit_code == 2 and "is also an input" in result.output, result.output
        assert (run / victim).read_bytes() == before


def test_fail_on_gates_ci_on_the_runs_status_after_writing_the_outputs(tmp_path):
    """--fail-on critical: exit 1 for the collapsed P7 run (outputs still written), 0 for a healthy one;
    --fail-on warning also fails a run with warnings only; a bad value is one line, exit 2."""
    out = tmp_path / "p7.md"
    failed = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--out", str(out), "--fail-on", "critical", "-q"])
    assert failed.exit_code == 1 and "failing: the run's status is failed" in failed.output and out.exists()
    healthy = runner.invoke(app, ["report", str(RUNS / "lvmdiag_healthy"), "--fail-on", "critical", "-q"])
    assert healthy.exit_code == 0, healthy.output
    bad = runner.invoke(app, ["report", str(RUNS / "p7_baseline"), "--fail-on", "sometimes", "-q"])
    assert bad.exit_code == 2 and "choose critical or warning" in bad.output
    status = json.loads(runner.invoke(app, ["report", str(RUNS / "legacy_overfit"), "--json", "-", "-q"]).stdout)["status"]
    assert status == "problems"  # warnings only: passes --fail-on critical, fails --fail-on warning
    for level, code in (("critical", 0), ("warning", 1)):
        assert runner.invoke(app, ["report", str(RUNS / "legacy_overfit"), "--fail-on", level, "-q"]).exit_code == code
