"""The Typer application. Every module in ``lvmdiag_cli.commands`` registers its own command(s)."""

from __future__ import annotations

import importlib
import pkgutil

from typing import Optional

import typer

import lvmdiag_cli.commands as _commands

app = typer.Typer(
    name="lvmdiag",
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
