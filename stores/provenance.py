"""Provenance attributes carried by every store, and the check a reader makes against them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from comodo.stores import fs
from comodo.stores.errors import ProvenanceMismatchError

SCHEMA_VERSION = 1


def code_version() -> str:
    """The installed comodo version; part of every provenance record."""
    try:
        return version("comodo")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0+unknown"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(cfg: Any) -> str:
    """A short, stable hash of a config (a pydantic model, a dict or any JSON-able value)."""
    if hasattr(cfg, "model_dump"):
        cfg = cfg.model_dump(mode="json")
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()[:16]


def hash_bytes(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()[:16]


def hash_file(path: str, block: int = 1 << 20, **storage_options: Any) -> str:
    """sha256 (16 hex digits) of a file's bytes; ``path`` may be any fsspec URL."""
    digest = hashlib.sha256()
    filesystem, inner = fs.filesystem(path, **storage_options)
    with filesystem.open(inner, "rb") as fh:
        while data := fh.read(block):
            digest.update(data)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Provenance:
    """What produced a store: stage, config, inputs, code, plus stage-specific details."""

    stage: str
    config_hash: str
    input_hash: str
    code_version: str = field(default_factory=code_version)
    schema_version: int = SCHEMA_VERSION
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["details"] = json.loads(canonical_json(dict(self.details)))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        known = {"stage", "config_hash", "input_hash", "code_version", "schema_version", "details"}
        return cls(**{k: v for k, v in data.items() if k in known})

    def matches(self, expected: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Fields of ``expected`` (top level or under ``details``) that differ: name -> (found, wanted)."""
        found = self.to_dict()
        diffs: dict[str, tuple[Any, Any]] = {}
        for key, want in expected.items():
            have = found.get(key, found["details"].get(key))
            if json.loads(canonical_json(have)) != json.loads(canonical_json(want)):
                diffs[key] = (have, want)
        return diffs


def check_provenance(store: str, found: Provenance, expected: Mapping[str, Any] | None) -> None:
    """Refuse a store whose provenance differs from what the reader asked for."""
    if not expected:
        return
    if found.schema_version != SCHEMA_VERSION:
        expected = {**expected, "schema_version": SCHEMA_VERSION}
    diffs = found.matches(expected)
    if diffs:
        parts = "; ".join(f"{k}: store has {h!r}, asked for {w!r}" for k, (h, w) in diffs.items())
        raise ProvenanceMismatchError(
            f"store {store} was produced differently than requested ({parts}); "
            f"re-run its producing stage ('{found.stage}') or point to the matching store"
        )
