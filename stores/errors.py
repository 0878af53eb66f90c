"""One error hierarchy for the whole toolkit.

Every error says what failed, where (store, file, recording, window), what was expected
versus found, and how to fix it. The CLI prints ``str(error)`` as one line on stderr and
exits with code 1; anything that is not a ``ComodoError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class ComodoError(Exception):
    """Base class of every user-facing error."""


class ConfigError(ComodoError):
    """A params.yaml section or a command-line value is invalid."""


class UnknownNameError(ComodoError, KeyError):
    """A registry was asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputDataError(ComodoError):
    """A raw input file (video, IMU table, label list) is missing or malformed."""


class LayoutError(InputDataError):
    """A dataset folder does not have the layout its adapter expects."""


class UnitsError(ComodoError):
    """A recording's accelerometer does not read 1 g at rest: its units or scale are wrong."""


class RejectLimitError(ComodoError):
    """A stage skipped more inputs than its ``max_reject_fraction`` allows."""


class StoreError(ComodoError):
    """A feature-store operation failed."""


class StoreNotFoundError(StoreError):
    """No store exists at the given path."""


class ProvenanceMismatchError(StoreError):
    """A store was produced by a different config, input or code than the reader asked for."""


class StoreIntegrityError(StoreError):
    """A store has missing or incomplete chunks, non-finite values or an index mismatch."""


class ModelLoadError(ComodoError):
    """Model weights could not be found or did not match the architecture."""


class StoreCorruptError(StoreIntegrityError):
    """A chunk's bytes fail their checksum or do not decode: the file is damaged."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock."""
