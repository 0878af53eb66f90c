"""The test stores' layout and data, and a writer run as a child process by the tests.

    python tests/stores/store_writer.py URL [--shard I --n-shards N] [--delay S]
                                            [--storage-options JSON] [--create-only]

The writer holds the store's (or its shard's) write lock, exits 1 with the lock message
when another writer has it, resumes (``open_or_create`` + ``pending_chunks``) and prints ``pending N``, one
``wrote C`` per chunk, and ``start T`` / ``end T`` (time.time()) so tests can follow it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import StoreLockedError
from comodo.stores.lock import write_lock
from comodo.stores.provenance import Provenance

SPECS = {
    "pooled": ArraySpec((6,), "float16"),
    "frames": ArraySpec((3, 4), "float32", codec="blosc-lz4"),
    "label_id": ArraySpec((), "int64", codec="none"),
}
N_ROWS, CHUNK_ROWS = 22, 5  # 5 chunks, the last one partial
N_CHUNKS = 5
ZERO_CHUNK = 2  # written as all zeros: its chunk files must exist anyway


def chunk_data(chunk: int, n: int) -> dict[str, np.ndarray]:
    """Deterministic rows of ``chunk`` (``n`` rows); chunk ZERO_CHUNK is all zeros."""
    rng = np.random.default_rng(chunk)
    scale = 0.0 if chunk == ZERO_CHUNK else 1.0
    return {
        "pooled": scale * rng.standard_normal((n, 6)),
        "frames": scale * rng.standard_normal((n, 3, 4)),
        "label_id": (scale * rng.integers(1, 9, n)).astype(np.int64),
    }


def expected_arrays() -> dict[str, np.ndarray]:
    """What the whole store holds once every chunk is written, in each array's dtype."""
    parts = [chunk_data(c, min(CHUNK_ROWS, N_ROWS - c * CHUNK_ROWS)) for c in range(N_CHUNKS)]
    return {
        name: np.concatenate([p[name] for p in parts]).astype(spec.dtype)
        for name, spec in SPECS.items()
    }


def provenance(config_hash: str = "cfg-a") -> Provenance:
    details = {"model": "tiny", "dtype": "float16"}
    return Provenance("features", config_hash, "inputs-1", code_version="test", details=details)


def write(store: ChunkedStore, chunks: list[int], delay: float = 0.0) -> None:
    for chunk in chunks:
        rows = store.chunk_slice(chunk)
        store.write_chunk(chunk, chunk_data(chunk, rows.stop - rows.start))
        print(f"wrote {chunk}", flush=True)
        time.sleep(delay)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--n-shards", type=int, default=1)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--storage-options", default="{}")
    parser.add_argument("--create-only", action="store_true")
    args = parser.parse_args(argv)
    options = json.loads(args.storage_options)
    if args.create_only:
        ChunkedStore.create(args.url, N_ROWS, CHUNK_ROWS, SPECS, provenance(), storage_options=options)
        return
    try:
        with write_lock(args.url, options, (args.shard, args.n_shards)):
            store = ChunkedStore.open_or_create(
                args.url, N_ROWS, CHUNK_ROWS, SPECS, provenance(), storage_options=options
            )
            pending = store.pending_chunks(args.shard, args.n_shards)
            print(f"pending {len(pending)}", flush=True)
            print(f"start {time.time()}", flush=True)
            write(store, pending, args.delay)
            print(f"end {time.time()}", flush=True)
    except StoreLockedError as err:
        print(err, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
