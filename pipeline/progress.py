"""Logging set-up and progress bars (stderr only; stdout is for results)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be swapped, e.g. by test runners)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


def setup_logging(level: str | int = "INFO") -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def progress(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """One progress bar on stderr with rate and ETA; silent when COMODO_PROGRESS=0."""
    from tqdm.auto import tqdm  # here: pool workers import this module and draw no bars

    disable = os.environ.get("COMODO_PROGRESS", "1") == "0"
    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, disable=disable,
                    dynamic_ncols=True, leave=False)
