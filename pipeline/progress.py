"""Logging set-up and progress bars (stderr only; stdout is for results)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def setup_logging(level: str | int = "INFO") -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """One progress bar on stderr with rate and ETA; silent when COMODO_PROGRESS=0."""
    disable = os.environ.get("COMODO_PROGRESS", "1") == "0"
    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, disable=disable,
                    dynamic_ncols=True, leave=False)
