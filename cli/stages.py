"""Stage commands: thin wrappers that load a config and call the stage's run()."""

from __future__ import annotations
