"""Store fixtures: one ``backend`` per fsspec target (local folder, memory://, s3:// on moto).

The layout and data of the test stores live in ``store_writer.py``, which the tests also run
as a child process; ``layout`` hands that module to tests.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import fsspec
import pytest

from comodo.stores.chunked import ChunkedStore

WRITER_SCRIPT = Path(__file__).with_name("store_writer.py")


def _load_layout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("comodo_test_store_writer", WRITER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYOUT = _load_layout()


@dataclass
class Backend:
    """Where a test's stores live: a root URL plus the fsspec options to reach it."""

    name: str
    root: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def url(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def filesystem(self) -> fsspec.AbstractFileSystem:
        fs, _ = fsspec.core.url_to_fs(self.root, **self.storage_options)
        fs.invalidate_cache()
        return fs

    def fs_path(self, *parts: str) -> str:
        return fsspec.core.url_to_fs(self.url(*parts), **self.storage_options)[1]

    def create(self, name: str = "s.zarr", config_hash: str = "cfg-a", **kw: Any) -> ChunkedStore:
        return ChunkedStore.create(
            self.url(name), LAYOUT.N_ROWS, LAYOUT.CHUNK_ROWS, LAYOUT.SPECS,
            LAYOUT.provenance(config_hash), storage_options=self.storage_options, **kw,
        )

    def open(self, name: str = "s.zarr", **kw: Any) -> ChunkedStore:
        return ChunkedStore.open(self.url(name), storage_options=self.storage_options, **kw)

    def fill(self, store: ChunkedStore, chunks: list[int] | None = None) -> ChunkedStore:
        LAYOUT.write(store, store.pending_chunks() if chunks is None else chunks)
        return store


@pytest.fixture
def layout() -> ModuleType:
    """store_writer.py: SPECS, N_ROWS, CHUNK_ROWS, chunk_data, expected_arrays, provenance."""
    return LAYOUT


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Every contract test runs on a local folder, memory:// and s3:// (a moto server)."""
    if request.param == "local":
        yield Backend("local", str(tmp_path))
    elif request.param == "memory":
        root = f"memory://comodo-tests/{uuid.uuid4().hex[:12]}"
        yield Backend("memory", root)
        fs, path = fsspec.core.url_to_fs(root)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    else:
        server = request.getfixturevalue("s3_server")
        yield Backend("s3", server.fresh_prefix(), dict(server.storage_options))


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    return Backend("local", str(tmp_path))


@pytest.fixture
def tree_bytes() -> Callable[..., dict[str, bytes]]:
    """Read every file under a store URL: relative path -> bytes (a fresh listing)."""

    def read(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, bytes]:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        fs.invalidate_cache()
        root = root.rstrip("/")
        return {p[len(root) + 1 :]: fs.cat_file(p) for p in fs.find(root)}

    return read
