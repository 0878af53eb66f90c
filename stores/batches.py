"""Batches streamed from a ChunkedStore: whole chunks read, rows shuffled within a buffer.

Reading single rows at random decompresses a whole chunk per row (see PERF-NOTES), so a
trainer reads whole chunks in random order, keeps ``buffer_chunks`` of them in memory and
shuffles rows inside that buffer. Memory stays bounded by ``buffer_chunks * chunk_rows +
batch_size`` rows whatever the store size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from comodo.stores.errors import StoreError

if TYPE_CHECKING:
    from comodo.stores.chunked import ChunkedStore


def _read_group(
    store: ChunkedStore, chunks: Sequence[int], names: Sequence[str], keep: np.ndarray,
    pending: dict[str, list[np.ndarray]],
) -> dict[str, np.ndarray]:
    """Append the kept rows of ``chunks`` to ``pending`` and concatenate it into a buffer."""
    for chunk in chunks:
        sl = store.chunk_slice(chunk)
        mask = keep[sl]
        data = store.read_chunk(chunk, names)
        for n in names:
            pending[n].append(data[n][mask])
        pending["row"].append(np.arange(sl.start, sl.stop)[mask])
    return {n: np.concatenate(v) for n, v in pending.items()}


def iter_batches(
    store: ChunkedStore,
    names: Sequence[str],
    batch_size: int,
    rows: np.ndarray | None = None,
    shuffle: bool = True,
    seed: int = 0,
    buffer_chunks: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield dicts of ``names`` (plus ``row``, the global row numbers) of ``batch_size`` rows."""
    if batch_size < 1 or buffer_chunks < 1:
        raise StoreError(
            f"iter_batches on {store.url}: batch_size and buffer_chunks must be >= 1, "
            f"got {batch_size} and {buffer_chunks}"
        )
    rng = np.random.default_rng(seed)
    keep = np.ones(store.n_rows, dtype=bool)
    if rows is not None:
        keep = np.isin(np.arange(store.n_rows), rows)
    chunks = [c for c in range(store.n_chunks) if keep[store.chunk_slice(c)].any()]
    store.require_complete(chunks)
    if shuffle:
        rng.shuffle(chunks)
    pending: dict[str, list[np.ndarray]] = {n: [] for n in (*names, "row")}
    for start in range(0, len(chunks), buffer_chunks):
        buf = _read_group(store, chunks[start : start + buffer_chunks], names, keep, pending)
        n = len(buf["row"])
        order = rng.permutation(n) if shuffle else np.arange(n)
        last_group = start + buffer_chunks >= len(chunks)
        end = n if last_group else n // batch_size * batch_size
        for b in range(0, end, batch_size):
            idx = order[b : b + batch_size]
            yield {k: v[idx] for k, v in buf.items()}
        pending = {k: [v[order[end:]]] for k, v in buf.items()}
