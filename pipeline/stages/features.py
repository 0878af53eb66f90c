"""Stage ``features``: windows.parquet + videos -> features/<key>.zarr (frozen teacher embeddings).

For every window, F frames are sampled from its video span (rule in ``video.sampling``),
resized/cropped/normalised for the teacher and embedded. The store holds ``pooled`` (N, D),
``frames`` (N, F', D) and ``valid`` (N,) uint8, rows aligned with windows.parquet. A window
whose video cannot be read is a counted reject: zeros, ``valid = 0``, a row in the rejects
table; the stage fails once rejects exceed ``max_reject_fraction`` of the windows it owns.

Decoding runs in ``num_workers`` DataLoader processes (or on a dask cluster with
``scheduler``), one task per run of windows of one video, while this process runs the
teacher on chunk-aligned batches (``teachers.runner``). ``--shard i/n`` owns a contiguous range
of chunks; complete chunks are skipped, so a killed run resumes with identical bytes (same
device, precision, batch size and threads). Rejects go to ``rejects/features.parquet``
(``rejects/features.shard-i-of-n.parquet`` per shard; the shard that completes the store
merges them into ``features.parquet``). The store and tables may live under any fsspec URL;
videos are read from local paths. A run holds the store's write lock (one per shard).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from os import PathLike
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.datasets.base import Reject
from comodo.pipeline.datasets.tables import rejects_frame
from comodo.pipeline.progress import progress
from comodo.pipeline.stages.common import DatasetPaths, StageSummary
from comodo.pipeline.teachers import Teacher, build_teacher
from comodo.pipeline.teachers.runner import ChunkAssembler, TeacherRunner
from comodo.pipeline.video.depth import DEPTH_RULE
from comodo.pipeline.video.loader import FrameSpec, iter_tasks, plan_tasks
from comodo.pipeline.video.preprocess import PREPROCESS_RULE
from comodo.pipeline.video.sampling import DEFAULT_SAMPLING, sampling_rule
from comodo.stores import fs
from comodo.stores.chunked import ArraySpec, ChunkedStore, shard_chunks
from comodo.stores.errors import ConfigError, InputDataError, RejectLimitError
from comodo.stores.index import read_table, write_table
from comodo.stores.lock import write_lock
from comodo.stores.provenance import Provenance, config_hash, hash_bytes

log = logging.getLogger(__name__)

WINDOW_COLUMNS = ("window_id", "recording_id", "video_path", "video_kind", "video_start_s", "video_end_s")
OUTPUT_FIELDS = ("teacher", "model", "frames", "pooling", "params", "dtype", "codec", "precision",
                 "frame_sampling")


class FeaturesConfig(StageConfig):
    teacher: str = "timesformer"
    key: str | None = None  # store name features/<key>.zarr; default: the teacher name
    model: str | None = None  # hub id or local path; default: the teacher's own
    frames: int | None = Field(None, ge=1)
    pooling: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)  # teacher-specific (revision, ...)
    batch_size: int = Field(8, ge=1)
    num_workers: int | None = Field(None, ge=0)  # decode processes; None: all cores; 0: inline
    scheduler: str | None = None  # None: DataLoader workers | "local-cluster" | "tcp://HOST:PORT" (dask)
    threads: int | None = Field(None, ge=1)  # CPU teacher threads; None: cores - local decoders, >= 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # autocast; auto: bf16 on CUDA
    dtype: Literal["float16", "float32"] = "float16"
    chunk_rows: int = Field(64, ge=1)
    codec: Literal["zstd", "blosc-lz4", "none"] = "zstd"
    decoder: Literal["auto", "pyav", "decord"] = "auto"
    frame_sampling: str = DEFAULT_SAMPLING  # video.sampling.SAMPLING_RULES: uniform (reference) | centre
    max_windows_per_task: int = Field(8, ge=1)  # windows per decode task (one video each)
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
    table = read_table(paths.windows_index, **paths.options)
    missing = [c for c in WINDOW_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{paths.windows_index} lacks columns {missing}; expected the "
                             f"windows contract in docs/CONTRACTS.md; re-run the windows stage")
    if not table["window_id"].equals(pl.Series("window_id", np.arange(len(table)), pl.Int64)):
        raise InputDataError(f"{paths.windows_index}: window_id must equal the row number "
                             f"0..{len(table) - 1}; re-run the windows stage")
    fps = pl.DataFrame({"recording_id": [], "fps": []}, schema={"recording_id": pl.String, "fps": pl.Float64})
    if paths.exists(paths.recordings):
        recs = read_table(paths.recordings, **paths.options)
        if "fps" in recs.columns:
            fps = recs.select("recording_id", pl.col("fps").cast(pl.Float64)).unique("recording_id")
    return table.select(WINDOW_COLUMNS).join(fps, on="recording_id", how="left", maintain_order="left")


EDGE_BYTES = 1 << 20  # a video's identity reads this many bytes from each end


def video_identity(path: str | None) -> tuple[int, int, str]:
    """(size, mtime in ns, digest of the first and last MiB) of a video; (-1, -1, "") when
    it is missing. A re-encoded video of the same size differs in its header or tail."""
    if not path or not os.path.isfile(path):
        return -1, -1, ""
    st = os.stat(path)
    with open(path, "rb") as fh:
        head = fh.read(EDGE_BYTES)
        fh.seek(max(len(head), st.st_size - EDGE_BYTES))
        tail = fh.read(EDGE_BYTES)
    return st.st_size, st.st_mtime_ns, hash_bytes([head, tail])


def input_hash(windows: pl.DataFrame) -> str:
    """Hash of the window spans and of each video's identity (``video_identity``)."""
    videos = sorted({str(p) for p in windows["video_path"].to_list()})
    identities = [(p, *video_identity(p)) for p in videos]
    table = windows.drop("recording_id").write_csv().encode()
    return hash_bytes([table, repr(identities).encode()])


def provenance(cfg: FeaturesConfig, teacher: Teacher, runner: TeacherRunner,
               windows: pl.DataFrame) -> Provenance:
    details = {**teacher.info.details(), "transformers_version": version("transformers"),
               "torch_version": torch.__version__.split("+")[0],
               "frame_sampling": sampling_rule(cfg.frame_sampling).description,
               "preprocessing": PREPROCESS_RULE, "depth_rendering": DEPTH_RULE,
               "dtype": cfg.dtype, "compute": runner.compute}
    return Provenance("features", config_hash({k: getattr(cfg, k) for k in OUTPUT_FIELDS}),
                      input_hash(windows), details=details)


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """An exclusive lock beside a local store, so concurrent shards agree on one store.

    Object storage has no such lock: there, start one shard first (it creates the store),
    then the others."""
    if not fs.is_local(url):
        yield
        return
    local = os.path.abspath(fs.strip_file_scheme(url))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    lock_path = os.path.join(os.path.dirname(local), f".{os.path.basename(local)}.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def open_store(paths: DatasetPaths, key: str, n_rows: int, cfg: FeaturesConfig, teacher: Teacher,
               prov: Provenance) -> ChunkedStore:
    """Resume the store written with this provenance and layout, else start it (locked)."""
    arrays = {"pooled": ArraySpec((teacher.dim,), cfg.dtype, cfg.codec),
              "frames": ArraySpec((teacher.frames_out, teacher.dim), cfg.dtype, cfg.codec),
              "valid": ArraySpec((), "uint8", cfg.codec)}
    url = paths.features(key)
    with creation_lock(url):
        return ChunkedStore.open_or_create(
            url, n_rows, cfg.chunk_rows, arrays, prov, index="../../windows.parquet",
            attrs={"teacher": teacher.info.name, "dim": teacher.dim, "frames_out": teacher.frames_out},
            storage_options=paths.options)


def rejects_url(paths: DatasetPaths, shard: tuple[int, int]) -> str:
    i, n = shard
    return paths.rejects("features" if n == 1 else f"features.shard-{i}-of-{n}")


def previous_rejects(paths: DatasetPaths, url: str, redo: set[int]) -> list[Reject]:
    """Rejects of an earlier run for rows this run does not recompute."""
    if not paths.exists(url):
        return []
    old = read_table(url, **paths.options)
    return [Reject(**r) for r in old.iter_rows(named=True) if int(r["item"]) not in redo]


def write_rejects(paths: DatasetPaths, url: str, rejects: list[Reject] | pl.DataFrame) -> None:
    frame = rejects if isinstance(rejects, pl.DataFrame) else rejects_frame(rejects)
    write_table(frame.sort(pl.col("item").cast(pl.Int64)), url, **paths.options)


def merge_shard_rejects(paths: DatasetPaths, n: int) -> None:
    """Once the store is complete: every shard's rejects into rejects/features.parquet."""
    filesystem, folder = fs.filesystem(fs.join(paths.root, "rejects"), **paths.options)
    shards = sorted(filesystem.glob(f"{folder}/features.shard-*-of-{n}.parquet"))
    frames = [read_table(fs.join(paths.root, "rejects", p.rsplit("/", 1)[-1]), **paths.options)
              for p in shards]
    merged = pl.concat(frames) if frames else rejects_frame([])
    target = paths.rejects("features")
    if not fs.is_local(target):
        write_rejects(paths, target, merged.unique("item", keep="first"))
        return
    local = os.path.abspath(fs.strip_file_scheme(target))
    tmp = f"{local}.{os.getpid()}.tmp"  # shards may finish together: each writes its own tmp
    merged.unique("item", keep="first").sort(pl.col("item").cast(pl.Int64)).write_parquet(tmp)
    os.replace(tmp, local)


def run(cfg: FeaturesConfig, data_dir: str | PathLike[str], dataset: str, shard: tuple[int, int] = (0, 1),
        storage_options: dict[str, Any] | None = None) -> StageSummary:
    if not 0 <= shard[0] < shard[1]:
        raise ConfigError(f"features: shard {shard[0]}/{shard[1]} is out of range; "
                          f"use --shard i/n with 0 <= i < n")
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    windows = read_windows(paths)
    if windows.is_empty():
        raise InputDataError(f"{paths.windows_index} has no windows; check the windows stage's rejects")
    teacher = build_teacher(cfg.teacher, cfg.model, cfg.frames, cfg.pooling, cfg.params)
    runner = TeacherRunner(teacher, resolve_device(cfg.device), cfg.precision)
    with write_lock(paths.features(cfg.key or cfg.teacher), paths.options, shard):
        return _run_locked(cfg, paths, dataset, shard, windows, teacher, runner)


def _run_locked(cfg: FeaturesConfig, paths: DatasetPaths, dataset: str, shard: tuple[int, int],
                windows: pl.DataFrame, teacher: Teacher, runner: TeacherRunner) -> StageSummary:
    """``run`` while holding the write lock of the store (or of this shard)."""
    store = open_store(paths, cfg.key or cfg.teacher, len(windows), cfg, teacher,
                       provenance(cfg, teacher, runner, windows))
    all_rows = range(store.n_rows)
    n_owned = sum(len(all_rows[store.chunk_slice(c)]) for c in shard_chunks(store.n_chunks, *shard))
    rows = [r for c in store.pending_chunks(*shard) for r in all_rows[store.chunk_slice(c)]]
    redo = set(rows)
    out_url = rejects_url(paths, shard)
    rejects = previous_rejects(paths, out_url, redo)
    allowed = int(cfg.max_reject_fraction * n_owned)
    log.info("features %s: teacher %s on %s, %d of %d windows to extract (shard %d/%d)",
             dataset, teacher.info.name, runner.compute, len(rows), n_owned, *shard)
    start = time.perf_counter()
    try:
        _extract(cfg, store, runner, windows, rows, rejects, allowed)
    finally:
        write_rejects(paths, out_url, rejects)
    _log_rates(dataset, len(rows), time.perf_counter() - start, runner.busy_s)
    if shard[1] > 1 and store.is_complete():
        merge_shard_rejects(paths, shard[1])
    if len(rejects) > allowed:
        raise RejectLimitError(
            f"features {dataset}: rejected {len(rejects)} of {n_owned} windows "
            f"({len(rejects) / max(1, n_owned):.1%}) > max_reject_fraction={cfg.max_reject_fraction}; "
            f"see {out_url} for the reasons; fix the videos or raise the limit")
    new = sum(int(r.item) in redo for r in rejects)
    return StageSummary("features", dataset, "windows", len(rows), len(rows) - new, new)


def _log_rates(dataset: str, n_windows: int, wall_s: float, teacher_s: float) -> None:
    stats = {"windows": n_windows, "wall_s": wall_s, "teacher_s": teacher_s}
    log.info("features %s: %d windows in %.1f s (%.1f windows/s); teacher busy %.1f s (%.0f%%)",
             dataset, n_windows, wall_s, n_windows / max(wall_s, 1e-9), teacher_s,
             100 * teacher_s / max(wall_s, 1e-9), extra={"features_stats": stats})


def _extract(cfg: FeaturesConfig, store: ChunkedStore, runner: TeacherRunner, windows: pl.DataFrame,
             rows: list[int], rejects: list[Reject], allowed: int) -> None:
    """Decode (workers) and embed (here) ``rows``, writing each chunk once it is complete."""
    teacher = runner.teacher
    spec = FrameSpec(teacher.num_frames, teacher.info.preprocessing.resize_short, teacher.image_size,
                     cfg.decoder, cfg.frame_sampling)
    todo = windows.with_row_index("row").filter(pl.col("row").is_in(rows)).to_dicts()
    tasks, early = plan_tasks(todo, cfg.max_windows_per_task)
    assembler = ChunkAssembler(rows, store.chunk_rows, store.n_rows, cfg.batch_size, runner,
                               store.write_chunk, ((teacher.dim,), (teacher.frames_out, teacher.dim)),
                               cfg.dtype)
    workers = default_workers() if cfg.num_workers is None else cfg.num_workers
    results = iter_tasks(tasks, spec, workers, pin_memory=runner.device.type == "cuda",
                         scheduler=cfg.scheduler)
    local_decoders = 0 if (cfg.scheduler or "local-cluster") != "local-cluster" else workers

    def resolved():
        yield from ((row, None, reason) for row, reason in early)
        for result in results:
            yield from ((row, None, reason) for row, reason in result.rejected)
            for k, row in enumerate(result.rows):
                yield row, result.frames[k], None  # type: ignore[index]

    with cpu_threads(runner.device, cfg.threads or max(1, default_workers() - local_decoders)):
        _consume(progress(resolved(), desc="features", total=len(rows), unit="win"), assembler,
                 rejects, allowed)
    if assembler.pending() and len(rejects) <= allowed:
        raise RuntimeError(f"features: {assembler.pending()} windows were never resolved")  # a bug


@contextmanager
def cpu_threads(device: torch.device, n: int) -> Iterator[None]:
    """Teacher threads on CPU: decode workers and the teacher share the cores, so
    oversubscribing them (workers + all-core OpenMP) costs throughput; restored afterwards."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _consume(stream: Iterable[tuple[int, torch.Tensor | None, str | None]], assembler: ChunkAssembler,
             rejects: list[Reject], allowed: int) -> None:
    """Feed resolved windows to the assembler; stop once rejects pass the allowed count."""
    for row, frames, reason in stream:
        if reason is not None:
            log.warning("features: rejected window %d: %s", row, reason)
            rejects.append(Reject("features", str(row), "window", reason))
            if len(rejects) > allowed:
                log.error("features: %d rejects exceed the allowed %d; stopping", len(rejects), allowed)
                return
        assembler.add(row, frames)

