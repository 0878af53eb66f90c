"""Streams (IMU window, teacher feature) pairs from the two row-aligned stores.

Reading single windows at random decompresses a whole chunk per window, so the trainer
never does that. An epoch is planned instead (``plan_epoch``): the chunks holding kept rows
are shuffled (seeded by seed and epoch) and cut into groups of ``buffer_chunks`` chunks. A
group is read whole, its rows are permuted (seeded by seed, epoch and group) and the
epoch's row stream is the concatenation of the permuted groups; batch ``j`` is rows
``[j * B, (j + 1) * B)`` of that stream. The last partial batch is kept when it holds at
least half a batch.

DataLoader workers split the groups round-robin (worker ``w`` reads groups ``w, w + k, ...``)
and the DataLoader returns them in group order, so the stream does not depend on the number
of workers, and resuming at batch ``j`` only has to start at the group holding row ``j * B``.
Memory is bounded by ``(2 * workers + 2) * buffer_chunks * chunk_rows`` rows whatever the
store size. Every read goes through ``ChunkedStore``, so a damaged chunk is a named error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from comodo.pipeline.lifetime import die_with_parent
from comodo.stores.chunked import ChunkedStore


def load_rows(store: ChunkedStore, array: str) -> int:
    """Rows the loader reads as one piece of ``store``: a whole chunk (its checksum covers
    the whole chunk, so fewer rows would still read and check all of it)."""
    return store.chunk_rows


@dataclass(frozen=True)
class PairSource:
    """The windows store and the teacher-feature store, rows aligned."""

    windows_url: str
    features_url: str
    imu_array: str = "imu"
    teacher_array: str = "pooled"
    storage_options: dict[str, Any] = field(default_factory=dict)  # for both URLs (fsspec)

    def open(self) -> tuple[ChunkedStore, ChunkedStore]:
        """(windows store, feature store)."""
        return (ChunkedStore.open(self.windows_url, storage_options=self.storage_options),
                ChunkedStore.open(self.features_url, storage_options=self.storage_options))


@dataclass(frozen=True)
class EpochPlan:
    """Chunk groups in reading order and how many kept rows each group holds."""

    groups: tuple[tuple[int, ...], ...]
    group_rows: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return sum(self.group_rows)

    def n_batches(self, batch_size: int) -> int:
        full, rest = divmod(self.n_rows, batch_size)
        return full + int(2 * rest >= batch_size and rest > 0)

    def locate(self, row: int) -> tuple[int, int]:
        """(group, offset in group) of position ``row`` of the epoch's stream."""
        ends = np.cumsum(self.group_rows)
        group = int(np.searchsorted(ends, row, side="right"))
        start = int(ends[group - 1]) if group else 0
        return group, row - start


@dataclass
class Batch:
    """One batch: ``imu`` (B, C, T), ``feat_teacher`` (B, D_teacher), store ``rows`` (B,)."""

    imu: torch.Tensor
    feat_teacher: torch.Tensor
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def plan_epoch(keep: np.ndarray, chunk_rows: int, seed: int, epoch: int, buffer_chunks: int,
               shuffle: bool = True) -> EpochPlan:
    """Plan the chunk groups of one epoch over the rows where ``keep`` is true."""
    n_chunks = -(-len(keep) // chunk_rows)
    counts = np.add.reduceat(keep.astype(np.int64), np.arange(n_chunks) * chunk_rows)
    chunks = np.flatnonzero(counts)
    if shuffle:
        chunks = np.random.default_rng([seed, epoch]).permutation(chunks)
    groups = tuple(
        tuple(int(c) for c in chunks[i : i + buffer_chunks])
        for i in range(0, len(chunks), buffer_chunks)
    )
    return EpochPlan(groups, tuple(int(counts[list(g)].sum()) for g in groups))


class ChunkGroups(IterableDataset):
    """Yields each planned group as one permuted block of rows; workers split the groups."""

    def __init__(self, source: PairSource, keep: np.ndarray, plan: EpochPlan, chunk_rows: int,
                 seed: int, epoch: int, first_group: int = 0, shuffle: bool = True):
        super().__init__()
        self.source, self.keep, self.plan = source, keep, plan
        self.chunk_rows, self.seed, self.epoch = chunk_rows, seed, epoch
        self.first_group, self.shuffle = first_group, shuffle

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        windows, feat = self.source.open()
        for g in range(self.first_group + worker, len(self.plan.groups), n_workers):
            yield self._read_group(g, windows, feat)

    def _read_group(self, g: int, windows: ChunkedStore, feat: ChunkedStore) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {"imu": [], "feat": [], "row": []}
        for chunk in self.plan.groups[g]:
            sl = slice(chunk * self.chunk_rows, min((chunk + 1) * self.chunk_rows, len(self.keep)))
            mask = self.keep[sl]
            imu = windows.read_span(self.source.imu_array, sl.start, sl.stop)  # just these rows' bytes
            parts["imu"].append(np.asarray(imu, dtype=np.float32)[mask])  # (n, C, T)
            teacher = feat.read_span(self.source.teacher_array, sl.start, sl.stop)
            parts["feat"].append(np.asarray(teacher, dtype=np.float32)[mask])  # (n, D)
            parts["row"].append(np.arange(sl.start, sl.stop)[mask])
        block = {k: np.concatenate(v) for k, v in parts.items()}
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, g]).permutation(len(block["row"]))
            block = {k: v[order] for k, v in block.items()}
        return block


def stream_batches(groups: Iterable[dict[str, np.ndarray]], batch_size: int, n_batches: int,
                   skip_rows: int = 0) -> Iterator[Batch]:
    """Cut a stream of row blocks into ``n_batches`` consecutive batches of ``batch_size``.

    The first ``skip_rows`` rows of the first block are skipped (resuming mid-epoch).
    """
    buf: dict[str, np.ndarray] | None = None
    pos, made = 0, 0
    for block in groups:
        block = {k: np.asarray(v)[skip_rows:] for k, v in block.items()}
        skip_rows = 0
        buf = block if buf is None else {k: np.concatenate([buf[k][pos:], block[k]]) for k in buf}
        pos = 0
        while len(buf["row"]) - pos >= batch_size and made < n_batches:
            yield _batch(buf, pos, pos + batch_size)
            pos += batch_size
            made += 1
    if buf is not None and made < n_batches and len(buf["row"]) > pos:
        yield _batch(buf, pos, len(buf["row"]))


def _batch(buf: dict[str, np.ndarray], start: int, stop: int) -> Batch:
    return Batch(torch.as_tensor(buf["imu"][start:stop]),
                 torch.as_tensor(buf["feat"][start:stop]), buf["row"][start:stop])


def epoch_batches(source: PairSource, keep: np.ndarray, chunk_rows: int, batch_size: int,
                  seed: int, epoch: int, buffer_chunks: int, num_workers: int = 0,
                  start_batch: int = 0, shuffle: bool = True) -> Iterator[Batch]:
    """The batches of one epoch from batch ``start_batch`` on."""
    plan = plan_epoch(keep, chunk_rows, seed, epoch, buffer_chunks, shuffle)
    n_batches = plan.n_batches(batch_size)
    if start_batch >= n_batches:
        return iter(())
    first_group, offset = plan.locate(start_batch * batch_size)
    dataset = ChunkGroups(source, keep, plan, chunk_rows, seed, epoch, first_group, shuffle)
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers,
                        generator=torch.Generator(),  # leaves the global RNG untouched
                        worker_init_fn=die_with_parent)
    return stream_batches(loader, batch_size, n_batches - start_batch, offset)
