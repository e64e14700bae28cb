"""The Typer application. Every module in ``lvmdiag_cli.commands`` registers its own command(s)."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import lvmdiag_cli.commands as _commands

app = typer.Typer(
    name="lvmdiag",
    help="Diagnostics for latent vector models: data bias, split divergence and leakage, resplitting, run reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"lvmdiag_cli.commands.{_info.name}").register(app)


def main() -> None:  # pragma: no cover - console entry alias
    app()
