"""Shared CLI plumbing: error handling, logging, the --params option."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from comodo.pipeline.progress import setup_logging
from comodo.stores.errors import ComodoError

F = TypeVar("F", bound=Callable[..., Any])

PARAMS_OPTION = typer.Option("params.yaml", "--params", help="params file with one section per stage")
DATASET_OPTION = typer.Option(..., "--dataset", "-d", help="dataset name from the 'datasets:' map")


def cli_command(fn: F) -> F:
    """Turn a ComodoError into one line on stderr and exit code 1; bugs keep their traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging(logging.INFO)
        try:
            return fn(*args, **kwargs)
        except ComodoError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
