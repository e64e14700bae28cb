"""The Typer application. Every module in ``lvmdiag_cli.commands`` registers its own command(s)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

from typing import Optional

import typer
from typer import _click
from typer.core import TyperArgument, TyperGroup, TyperOption

import lvmdiag_cli.commands as _commands

EXIT_USAGE = 2


def conventional_metavar(param: Any) -> str | None:
    """The Click look for a parameter's value: ``PATH``, ``TEXT``, ``INTEGER``, ``FLOAT``, ``[a|b]``;
    flags get none (``None`` keeps Typer's own)."""
    if isinstance(param, TyperOption) and (param.is_flag or param.count):
        return ""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    inner = annotation
    while getattr(inner, "__args__", None):  # Optional[X], list[X]
        args = [a for a in inner.__args__ if a is not type(None)]
        if len(args) != 1:
            break
        inner = args[0]
    if isinstance(inner, type) and issubclass(inner, Enum):
        word = "[" + "|".join(str(m.value) for m in inner) + "]"
    else:
        word = {Path: "PATH", str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}.get(inner)
    if word is None:
        return None
    return word + ("..." if param.nargs != 1 else "")


def _argument_look(param: TyperArgument, word: str) -> None:
    """An argument shows its name (``INPUTS...``) in usage and the name column, its type (``PATH...``) beside it."""
    name = (param.name or "arg").upper()
    dots = "..." if param.nargs != 1 else ""
    param.metavar = name
    param.display_type_rich = lambda ctx: word  # type: ignore[method-assign]
    param._usage_display_name = lambda: (name if param.required else f"[{name}]") + dots  # type: ignore[method-assign]


class LvmdiagGroup(TyperGroup):
    """Typer's group with two house rules: a usage error is one line on stderr (exit 2), not a box,
    while ``--help`` stays rich; and the help shows conventional metavars (``PATH...``, ``INTEGER``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in [self, *self.commands.values()]:
            help_option = command.get_help_option(_click.Context(command))
            if help_option is not None:
                help_option.metavar = ""
            for param in command.params:
                if param.metavar is None:
                    word = conventional_metavar(param)
                    if word is not None and isinstance(param, TyperArgument):
                        _argument_look(param, word)
                    elif word is not None:
                        param.metavar = word

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except _click.exceptions.NoArgsIsHelpError as exc:  # `lvmdiag` alone: the help, exit 2
            if not standalone_mode:
                raise
            if exc.format_message().strip():  # rich help is printed while it is built
                exc.show()
            sys.exit(exc.exit_code)
        except _click.exceptions.ClickException as exc:
            if not standalone_mode:
                raise
            message = " ".join(exc.format_message().split())
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if isinstance(exc, _click.exceptions.UsageError) and ctx else ""
            typer.echo(f"error: {message}{where}", err=True)
            sys.exit(EXIT_USAGE if isinstance(exc, _click.exceptions.UsageError) else exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("aborted", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


app = typer.Typer(
    name="lvmdiag",
    cls=LvmdiagGroup,
    help="Diagnostics for latent vector models: data bias, split divergence and leakage, resplitting, run reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _global_options(
    ctx: typer.Context,
    columns: Optional[str] = typer.Option(
        None, "--columns",
        help="Column names of Parquet / Arrow / datasets / safetensors inputs where the common names are not used: "
             "role=name pairs for vector, id, position, contexts, targets (e.g. vector=emb,id=doc_id).",
    ),
) -> None:
    """Diagnostics for latent vector models."""
    if columns:
        from lvmdiag.data.arrow_formats import parse_columns, set_default_columns
        from lvmdiag.errors import InputError

        try:
            set_default_columns(parse_columns(columns))
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        ctx.call_on_close(lambda: set_default_columns(None))  # one invocation only (matters in-process)


for _info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"lvmdiag_cli.commands.{_info.name}").register(app)


def main() -> None:  # pragma: no cover - console entry alias
    app()
