"""CLI plumbing: library errors and OS errors become one line on stderr and exit 2, never a traceback."""

import json

import lvmdiag

import pytest
import typer
from typer.testing import CliRunner

from lvmdiag.errors import InputError
from lvmdiag_cli._common import emit, handle_errors, refuse_overwrite_input
from lvmdiag_cli.app import app as lvmdiag_app

runner = CliRunner()


def _app_raising(exc: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        with handle_errors():
            raise exc

    @app.command()
    def other() -> None:  # a second command keeps typer in multi-command mode
        pass

    return app


@pytest.mark.parametrize(
    "exc, needle",
    [
        (InputError("`contexts` in x.npz must have shape (N, K, D); got (3,)."), "must have shape"),
        (FileNotFoundError(2, "No such file or directory", "missing.npz"), "missing.npz"),
        (PermissionError(13, "Permission denied", "/root/locked.md"), "Permission denied: /root/locked.md"),
        (IsADirectoryError(21, "Is a directory", "outdir"), "Is a directory: outdir"),
    ],
)
def test_errors_exit_2_with_one_line(exc, needle):
    result = runner.invoke(_app_raising(exc), ["boom"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in result.output


def test_emit_json_to_stdout_is_pure_json(tmp_path, capsys):
    emit("# md", tmp_path / "r.md", {"x": 1}, json_path=__import__("pathlib").Path("-"))
    payload = json.loads(capsys.readouterr().out)
    assert payload == {"schema_version": 1, "lvmdiag_version": lvmdiag.__version__, "x": 1}
    assert list(payload)[:2] == ["schema_version", "lvmdiag_version"]
    assert (tmp_path / "r.md").read_text() == "# md"


def test_refuse_overwrite_input(tmp_path):
    src = tmp_path / "train.npz"
    src.write_bytes(b"")
    with pytest.raises(Exception, match="also an input"):
        refuse_overwrite_input(src, [src])
    refuse_overwrite_input(tmp_path / "other.md", [src])


def test_every_command_is_registered_and_help_works():
    result = runner.invoke(lvmdiag_app, ["--help"])
    assert result.exit_code == 0
    for name in ["bias", "data", "direction", "diverge", "leakage", "report", "resplit", "train", "evaluate"]:
        assert name in result.output


def test_every_command_takes_quiet_and_q():
    """-q/--quiet (no progress bar on stderr) is accepted by every command, sub-commands included."""
    from typer.main import get_command

    def walk(cmd, name=""):
        if hasattr(cmd, "commands"):
            for sub, c in cmd.commands.items():
                yield from walk(c, f"{name} {sub}".strip())
        else:
            yield name, cmd

    commands = dict(walk(get_command(lvmdiag_app)))
    assert {"control reverse", "evaluate", "embed", "bias"} <= set(commands)
    missing = [n for n, c in commands.items() if not {"-q", "--quiet"} <= {o for p in c.params for o in p.opts}]
    assert not missing, missing


def test_control_reverse_quiet_and_progress(tmp_path):
    import numpy as np

    from lvmdiag.embed import reverse_store

    rng = np.random.default_rng(0)
    src = tmp_path / "s.npz"
    np.savez(src, vectors=rng.standard_normal((12, 4)).astype(np.float32), article_ids=np.repeat([0, 1], 6))
    r = runner.invoke(lvmdiag_app, ["control", "reverse", str(src), "--out", str(tmp_path / "r.npz"), "-q",
                                    "--json", "-"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_chunks"] == 12 and r.stderr == ""
    calls = []
    reverse_store(src, tmp_path / "r2.npz", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 4) for i in range(5)]
