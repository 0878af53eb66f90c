"""The `comodo` command: one sub-command per pipeline stage, plus `list`."""

from __future__ import annotations

import json

import typer

from comodo.cli.common import cli_command
from comodo.pipeline.registry import REGISTRIES, load_plugins

app = typer.Typer(
    name="comodo",
    help="Distil frozen video teachers into IMU students from a versioned feature store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """Distil frozen video teachers into IMU students from a versioned feature store."""


@app.command("list")
@cli_command
def list_cmd(
    kind: str = typer.Argument(..., help=f"one of: {', '.join(REGISTRIES)}"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List the registered datasets, teachers, students or objectives."""
    from comodo.stores.errors import UnknownNameError

    load_plugins()
    if kind not in REGISTRIES:
        raise UnknownNameError(f"unknown kind {kind!r}; known kinds: {', '.join(REGISTRIES)}")
    entries = REGISTRIES[kind].describe()
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    for name, doc in entries.items():
        typer.echo(f"{name:24s} {doc}")


def _register_stage_commands() -> None:
    """Each stage's CLI module adds its commands to ``app`` on import."""
    import importlib

    for module in ("stages", "features", "distill", "uma", "evaluate", "report", "benchmark",
                   "transfer", "sweep", "export", "fewshot"):
        importlib.import_module(f"comodo.cli.{module}")


_register_stage_commands()
