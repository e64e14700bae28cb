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
