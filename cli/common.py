"""Shared CLI plumbing: error handling, logging, the --params option."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from comodo.pipeline.progress import setup_logging
from comodo.stores.errors import ComodoError

F = TypeVar("F", bound=Callable[..., Any])

PARAMS_OPTION = typer.Option("params.yaml", "--params", help="params file with one section per stage")
DATASET_OPTION = typer.Option(..., "--dataset", "-d", help="dataset name from the 'datasets:' map")
RUNS_DIR_OPTION = typer.Option(Path("runs"), "--runs-dir", help="distill runs: <runs-dir>/<dataset>/<run>")
METRICS_DIR_OPTION = typer.Option(Path("metrics"), "--metrics-dir",
                                  help="metrics JSON: <metrics-dir>/<dataset>/<table>.json")


def one_line(err: ComodoError) -> str:
    """The error's message; for one raised in a torch DataLoader worker, which re-raises it
    with the worker's traceback in the message, the original message (its last line)."""
    text = str(err).strip()
    if "Original Traceback" in text:
        return text.splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.splitlines())


def cli_command(fn: F) -> F:
    """Turn a ComodoError into one line on stderr and exit code 1; bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging(logging.INFO)
        try:
            return fn(*args, **kwargs)
        except ComodoError as err:
            typer.echo(f"error: {one_line(err)}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
