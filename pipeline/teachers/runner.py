"""Running a frozen teacher over decoded windows and assembling store chunks.

``TeacherRunner`` moves uint8 frames to the device, normalises them there and runs the
teacher. ``precision="auto"``: bf16 autocast on CUDA (fp16 where bf16 is unsupported), fp32
on CPU; ``bfloat16`` / ``float16`` force autocast (bf16 on a CPU with AVX512-BF16/AMX is
~3x faster than fp32 for the MobileNetV2 teacher), ``float32`` disables it.

``ChunkAssembler`` receives windows in any order and runs the teacher on *chunk-aligned*
batches: the valid windows of one store chunk, in row order, ``batch_size`` at a time,
starting at the chunk's first row. A batch never mixes chunks, so a resumed or sharded run
computes every chunk from exactly the same batches as an uninterrupted run and writes the
same bytes. A chunk is written (and marked complete) as soon as its last row is resolved;
rejected rows are zeros with ``valid = 0``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from comodo.pipeline.teachers.base import Teacher
from comodo.pipeline.video.preprocess import normalise
from comodo.stores.errors import StoreIntegrityError

WriteChunk = Callable[[int, dict[str, np.ndarray]], None]
# precision -> autocast dtype (None: plain float32); "auto" is resolved per device
AUTOCAST: dict[str, torch.dtype | None] = {"auto": None, "float32": None, "bfloat16": torch.bfloat16,
                                           "float16": torch.float16}


class TeacherRunner:
    """A teacher on a device: (B, F, 3, S, S) uint8 -> float32 numpy embeddings."""

    def __init__(self, teacher: Teacher, device: torch.device, precision: str = "auto"):
        self.device = device
        self.teacher = teacher.to(device).eval()
        self.busy_s = 0.0  # wall time spent in teacher calls (transfer + forward + copy back)
        self.autocast: torch.dtype | None = AUTOCAST[precision]
        if precision == "auto" and device.type == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
            self.autocast = torch.bfloat16 if bf16 else torch.float16

    @property
    def compute(self) -> str:
        """Device type and compute precision, part of the store's provenance."""
        return f"{self.device.type}/{str(self.autocast or torch.float32).replace('torch.', '')}"

    @torch.inference_mode()
    def __call__(self, frames_u8: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        frames = normalise(frames_u8.to(self.device, non_blocking=True),
                           self.teacher.mean, self.teacher.std)  # (B, F, 3, S, S) float32
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32,
                            enabled=self.autocast is not None):
            z_pooled, z_frames = self.teacher(frames)  # (B, D), (B, F', D)
        out = z_pooled.float().cpu().numpy(), z_frames.float().cpu().numpy()
        self.busy_s += time.perf_counter() - start
        return out


class ChunkAssembler:
    """Chunk-aligned batching of windows that arrive in any order (see the module doc)."""

    def __init__(self, rows: Sequence[int], chunk_rows: int, n_rows: int, batch_size: int,
                 run: Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]],
                 write: WriteChunk, shapes: tuple[tuple[int, ...], tuple[int, ...]], dtype: str):
        self.order = sorted(rows)
        self.chunk_rows, self.n_rows, self.batch_size = chunk_rows, n_rows, batch_size
        self.run, self.write, self.shapes, self.dtype = run, write, shapes, dtype
        self.ready: dict[int, torch.Tensor | None] = {}
        self.cursor = 0
        self.batch: list[tuple[int, torch.Tensor]] = []
        self.out: dict[str, np.ndarray] | None = None
        self.chunks_written = 0

    def add(self, row: int, frames: torch.Tensor | None) -> None:
        """Resolve one row: its (F, 3, S, S) uint8 frames, or None when rejected."""
        self.ready[row] = frames
        self._advance()

    def pending(self) -> int:
        return len(self.order) - self.cursor

    def _advance(self) -> None:
        while self.cursor < len(self.order) and self.order[self.cursor] in self.ready:
            row = self.order[self.cursor]
            chunk = row // self.chunk_rows
            if self.out is None:
                self.out = self._empty(chunk)
            frames = self.ready.pop(row)
            if frames is not None:
                self.batch.append((row, frames))
            self.cursor += 1
            last = self.cursor == len(self.order) or self.order[self.cursor] // self.chunk_rows != chunk
            if len(self.batch) == self.batch_size or (last and self.batch):
                self._run_batch(chunk)
            if last:
                self._write(chunk)

    def _empty(self, chunk: int) -> dict[str, np.ndarray]:
        n = min(self.chunk_rows, self.n_rows - chunk * self.chunk_rows)
        pooled_shape, frames_shape = self.shapes
        return {"pooled": np.zeros((n, *pooled_shape), np.float32),
                "frames": np.zeros((n, *frames_shape), np.float32),
                "valid": np.zeros(n, np.uint8)}

    def _run_batch(self, chunk: int) -> None:
        assert self.out is not None  # set when the chunk's first row was taken
        rows = np.array([r for r, _ in self.batch]) - chunk * self.chunk_rows
        z_pooled, z_frames = self.run(torch.stack([f for _, f in self.batch]))  # (B, D), (B, F', D)
        self.out["pooled"][rows] = z_pooled
        self.out["frames"][rows] = z_frames
        self.out["valid"][rows] = 1
        self.batch = []

    def _write(self, chunk: int) -> None:
        assert self.out is not None
        data = {"valid": self.out["valid"]}
        for name in ("pooled", "frames"):
            values = self.out[name].astype(self.dtype)
            if not np.isfinite(values).all():
                first = chunk * self.chunk_rows + int(np.flatnonzero(~np.isfinite(values).reshape(
                    len(values), -1).all(1))[0])
                raise StoreIntegrityError(
                    f"teacher output '{name}' for window {first} is not finite in {self.dtype} "
                    f"(found NaN/inf; max |value| {np.nanmax(np.abs(self.out[name])):.3g}); "
                    f"use dtype float32 or check the teacher's weights")
            data[name] = values
        self.write(chunk, data)
        self.out = None
        self.chunks_written += 1
