"""Stage ``features``: windows.parquet + videos -> features/<key>.zarr (frozen teacher embeddings).

For every window, F frames are sampled from its video span (rule in ``video.sampling``),
resized/cropped/normalised for the teacher and embedded. The store holds ``pooled`` (N, D),
``frames`` (N, F', D) and ``valid`` (N,) uint8, rows aligned with windows.parquet. A window
whose video cannot be read is a counted reject: zeros, ``valid = 0``, a row in the rejects
table; the stage fails once rejects exceed ``max_reject_fraction`` of the windows it owns.

Decoding runs in ``num_workers`` DataLoader processes, one task per run of windows of one
video, while this process runs the teacher; ``--shard i/n`` owns a contiguous range of
chunks; complete chunks are skipped, so a killed run resumes with identical bytes. Rejects go
to ``rejects/features.parquet`` (``rejects/features.shard-i-of-n.parquet`` per shard; the
shard that completes the store merges them into ``features.parquet``).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject, rejects_frame
from comodo.pipeline.progress import progress
from comodo.pipeline.stages.common import DatasetPaths, StageSummary
from comodo.pipeline.teachers import Teacher, build_teacher
from comodo.pipeline.teachers.runner import ChunkAssembler, TeacherRunner
from comodo.pipeline.video.depth import DEPTH_RULE
from comodo.pipeline.video.loader import FrameSpec, iter_tasks, plan_tasks
from comodo.pipeline.video.preprocess import PREPROCESS_RULE
from comodo.pipeline.video.sampling import SAMPLING_RULE
from comodo.stores.chunked import ArraySpec, ChunkedStore, shard_chunks
from comodo.stores.errors import ConfigError, InputDataError, RejectLimitError
from comodo.stores.index import read_table, write_table
from comodo.stores.provenance import Provenance, config_hash, hash_bytes

log = logging.getLogger(__name__)

WINDOW_COLUMNS = ("window_id", "recording_id", "video_path", "video_kind", "video_start_s", "video_end_s")
OUTPUT_FIELDS = ("teacher", "model", "frames", "pooling", "params", "dtype", "codec")


class FeaturesConfig(StageConfig):
    teacher: str = "timesformer"
    key: str | None = None  # store name features/<key>.zarr; default: the teacher name
    model: str | None = None  # hub id or local path; default: the teacher's own
    frames: int | None = Field(None, ge=1)
    pooling: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)  # teacher-specific (revision, ...)
    batch_size: int = Field(8, ge=1)
    num_workers: int | None = Field(None, ge=0)  # decode processes; None: all cores; 0: inline
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["float16", "float32"] = "float16"
    chunk_rows: int = Field(64, ge=1)
    codec: Literal["zstd", "blosc-lz4", "none"] = "zstd"
    decoder: Literal["auto", "pyav", "decord"] = "auto"
    max_windows_per_task: int = Field(16, ge=1)
    max_reject_fraction: float = Field(0.05, ge=0.0, le=1.0)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("features: device 'cuda' was asked but torch sees no CUDA device; "
                          "use --device cpu or auto")
    return torch.device(device)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_windows(paths: DatasetPaths) -> pl.DataFrame:
    """windows.parquet with an ``fps`` column (from recordings.parquet when it has one)."""
    table = read_table(str(paths.windows_index))
    missing = [c for c in WINDOW_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{paths.windows_index} lacks columns {missing}; expected the "
                             f"windows contract in docs/CONTRACTS.md; re-run the windows stage")
    if not table["window_id"].equals(pl.Series("window_id", np.arange(len(table)), pl.Int64)):
        raise InputDataError(f"{paths.windows_index}: window_id must equal the row number "
                             f"0..{len(table) - 1}; re-run the windows stage")
    fps = pl.DataFrame({"recording_id": [], "fps": []}, schema={"recording_id": pl.String, "fps": pl.Float64})
    if paths.recordings.exists():
        recs = read_table(str(paths.recordings))
        if "fps" in recs.columns:
            fps = recs.select("recording_id", pl.col("fps").cast(pl.Float64)).unique("recording_id")
    return table.select(WINDOW_COLUMNS).join(fps, on="recording_id", how="left", maintain_order="left")


def input_hash(windows: pl.DataFrame) -> str:
    """Hash of the window spans and of each video file's size (cheap; no video bytes read)."""
    sizes = sorted({p: os.path.getsize(p) if p and os.path.exists(p) else -1
                    for p in windows["video_path"].to_list()}.items(), key=lambda kv: str(kv[0]))
    table = windows.drop("recording_id").write_csv().encode()
    return hash_bytes([table, repr(sizes).encode()])


def provenance(cfg: FeaturesConfig, teacher: Teacher, runner: TeacherRunner,
               windows: pl.DataFrame) -> Provenance:
    import transformers

    details = {**teacher.info.details(), "transformers_version": transformers.__version__,
               "torch_version": torch.__version__.split("+")[0], "frame_sampling": SAMPLING_RULE,
               "preprocessing": PREPROCESS_RULE, "depth_rendering": DEPTH_RULE,
               "dtype": cfg.dtype, "compute": runner.compute}
    return Provenance("features", config_hash({k: getattr(cfg, k) for k in OUTPUT_FIELDS}),
                      input_hash(windows), details=details)


def open_store(url: Path, n_rows: int, cfg: FeaturesConfig, teacher: Teacher,
               prov: Provenance) -> ChunkedStore:
    """Open or create the store under a file lock, so concurrent shards agree on one store."""
    arrays = {"pooled": ArraySpec((teacher.dim,), cfg.dtype, cfg.codec),
              "frames": ArraySpec((teacher.frames_out, teacher.dim), cfg.dtype, cfg.codec),
              "valid": ArraySpec((), "uint8", cfg.codec)}
    url.parent.mkdir(parents=True, exist_ok=True)
    with open(url.parent / f".{url.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ChunkedStore.open_or_create(
            str(url), n_rows, cfg.chunk_rows, arrays, prov, index="../../windows.parquet",
            attrs={"teacher": teacher.info.name, "dim": teacher.dim, "frames_out": teacher.frames_out})


def rejects_path(paths: DatasetPaths, shard: tuple[int, int]) -> Path:
    i, n = shard
    return paths.rejects("features" if n == 1 else f"features.shard-{i}-of-{n}")


def previous_rejects(path: Path, redo: set[int]) -> list[Reject]:
    """Rejects of an earlier run for rows this run does not recompute."""
    if not path.exists():
        return []
    old = read_table(str(path))
    return [Reject(**r) for r in old.iter_rows(named=True) if int(r["item"]) not in redo]


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    frame = rejects_frame(rejects).sort(pl.col("item").cast(pl.Int64))
    write_table(frame, str(path))


def merge_shard_rejects(paths: DatasetPaths, n: int) -> None:
    """Once the store is complete: every shard's rejects into rejects/features.parquet."""
    folder = paths.rejects("features").parent
    frames = [read_table(str(p)) for p in sorted(folder.glob(f"features.shard-*-of-{n}.parquet"))]
    merged = pl.concat(frames) if frames else rejects_frame([])
    merged = merged.unique("item", keep="first").sort(pl.col("item").cast(pl.Int64))
    tmp = paths.rejects("features").with_suffix(f".{os.getpid()}.tmp")
    merged.write_parquet(tmp)
    os.replace(tmp, paths.rejects("features"))


def run(cfg: FeaturesConfig, data_dir: Path, dataset: str, shard: tuple[int, int] = (0, 1)) -> StageSummary:
    if not 0 <= shard[0] < shard[1]:
        raise ConfigError(f"features: shard {shard[0]}/{shard[1]} is out of range; "
                          f"use --shard i/n with 0 <= i < n")
    paths = DatasetPaths(Path(data_dir), dataset)
    windows = read_windows(paths)
    if windows.is_empty():
        raise InputDataError(f"{paths.windows_index} has no windows; check the windows stage's rejects")
    teacher = build_teacher(cfg.teacher, cfg.model, cfg.frames, cfg.pooling, cfg.params)
    runner = TeacherRunner(teacher, resolve_device(cfg.device))
    store = open_store(paths.features(cfg.key or cfg.teacher), len(windows), cfg, teacher,
                       provenance(cfg, teacher, runner, windows))
    all_rows = range(store.n_rows)
    n_owned = sum(len(all_rows[store.chunk_slice(c)]) for c in shard_chunks(store.n_chunks, *shard))
    rows = [r for c in store.pending_chunks(*shard) for r in all_rows[store.chunk_slice(c)]]
    redo = set(rows)
    out_path = rejects_path(paths, shard)
    rejects = previous_rejects(out_path, redo)
    allowed = int(cfg.max_reject_fraction * n_owned)
    log.info("features %s: teacher %s on %s, %d of %d windows to extract (shard %d/%d)",
             dataset, teacher.info.name, runner.compute, len(rows), n_owned, *shard)
    try:
        _extract(cfg, store, runner, windows, rows, rejects, allowed)
    finally:
        write_rejects(out_path, rejects)
    if shard[1] > 1 and store.is_complete():
        merge_shard_rejects(paths, shard[1])
    if len(rejects) > allowed:
        raise RejectLimitError(
            f"features {dataset}: rejected {len(rejects)} of {n_owned} windows "
            f"({len(rejects) / max(1, n_owned):.1%}) > max_reject_fraction={cfg.max_reject_fraction}; "
            f"see {out_path} for the reasons; fix the videos or raise the limit")
    new = sum(int(r.item) in redo for r in rejects)
    return StageSummary("features", dataset, "windows", len(rows), len(rows) - new, new)


def _extract(cfg: FeaturesConfig, store: ChunkedStore, runner: TeacherRunner, windows: pl.DataFrame,
             rows: list[int], rejects: list[Reject], allowed: int) -> None:
    """Decode (workers) and embed (here) ``rows``, writing each chunk once it is complete."""
    teacher = runner.teacher
    spec = FrameSpec(teacher.num_frames, teacher.info.preprocessing.resize_short, teacher.image_size,
                     cfg.decoder)
    todo = windows.with_row_index("row").filter(pl.col("row").is_in(rows)).to_dicts()
    tasks, early = plan_tasks(todo, cfg.max_windows_per_task)
    assembler = ChunkAssembler(rows, store.chunk_rows, store.n_rows, cfg.batch_size, runner,
                               store.write_chunk, ((teacher.dim,), (teacher.frames_out, teacher.dim)),
                               cfg.dtype)
    workers = default_workers() if cfg.num_workers is None else cfg.num_workers
    results = iter_tasks(tasks, spec, workers, pin_memory=runner.device.type == "cuda")

    def resolved():
        yield from ((row, None, reason) for row, reason in early)
        for result in results:
            yield from ((row, None, reason) for row, reason in result.rejected)
            for k, row in enumerate(result.rows):
                yield row, result.frames[k], None  # type: ignore[index]

    for row, frames, reason in progress(resolved(), desc="features", total=len(rows), unit="win"):
        if reason is not None:
            log.warning("features: rejected window %d: %s", row, reason)
            rejects.append(Reject("features", str(row), "window", reason))
            if len(rejects) > allowed:
                log.error("features: %d rejects exceed the allowed %d; stopping", len(rejects), allowed)
                return
        assembler.add(row, frames)
    if assembler.pending():
        raise RuntimeError(f"features: {assembler.pending()} windows were never resolved")  # a bug

