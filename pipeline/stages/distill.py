"""Stage ``distill``: windows.zarr + features/<teacher>.zarr -> runs/<ds>/<run>/.

Trains a student IMU encoder to match a frozen video teacher's stored features (COMODO by
default) and writes into the run folder:

    encoder.safetensors  the student encoder, projector removed
    encoder.json         its StudentSpec, parameter count, CPU latency and lineage
    checkpoint.pt        everything needed to resume (also written during training)
    metrics.json         the last epoch's numbers, best val anchor accuracy, facts of the run
    history.csv          one row per epoch: train_loss, val_loss, val_anchor_acc, lr, seconds

Heads: COMODO trains the student through an MLP projector against teacher features passed
through a frozen random MLP (``teacher_projector``). The baselines (``BASELINE_OBJECTIVES``:
InfoNCE, L2) use, with ``baseline_heads: reference`` (default), the reference's heads instead:
one Linear layer from the student to the teacher's own dimension, teacher features as
stored (L2-normalised); ``baseline_heads: comodo`` gives them COMODO's heads.

Defaults follow the paper's code: AdamW lr 3e-4, weight decay 0.01, batch 128, 20 epochs,
10% linear warm-up then linear decay; small datasets set their own in params.yaml.

Re-running with the same config and inputs resumes from checkpoint.pt (``num_workers`` and
``checkpoint_every`` may differ: they do not change the result); a different config or
different input stores start the run over.
"""

from __future__ import annotations

import json
import logging
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.objectives import objective_params
from comodo.pipeline.registry import OBJECTIVES, STUDENTS
from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.students import StudentSpec
from comodo.pipeline.training.export import export_encoder
from comodo.pipeline.training.loader import PairSource, load_rows
from comodo.pipeline.training.model import HeadSettings, build_model
from comodo.pipeline.training.trainer import BatchHook, TrainData, Trainer, TrainSettings
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, StoreIntegrityError, StoreNotFoundError
from comodo.stores.index import read_table
from comodo.stores.provenance import config_hash

log = logging.getLogger(__name__)

BASELINE_OBJECTIVES = frozenset({"infonce", "infonce_asymmetric", "l2"})  # take baseline_heads
LEARNED_TEMPERATURE_BY_DEFAULT = frozenset({"infonce"})  # IMU2CLIP learns its temperature


class DistillConfig(StageConfig):
    student: str = "cnn1d"
    student_options: dict[str, Any] = Field(default_factory=dict)
    reduction: Literal["concat", "mean"] | None = None  # None: the student's own default
    # what the student reads: each window standardised per channel ("instance") or as stored
    input_norm: Literal["instance", "none"] = "instance"
    objective: str = "comodo"
    teacher: str = "timesformer"  # features/<teacher>.zarr
    teacher_array: str = "pooled"
    teacher_projector: Literal["random_mlp", "identity"] = "random_mlp"
    baseline_heads: Literal["reference", "comodo"] = "reference"  # heads of InfoNCE / L2
    projector_hidden: int = Field(2048, ge=1)
    projector_dim: int = Field(128, ge=1)
    queue_size: int = Field(4096, ge=0)
    queue_init: Literal["train_sample", "empty"] = "train_sample"
    teacher_temperature: float = Field(0.1, gt=0)
    student_temperature: float = Field(0.05, gt=0)
    temperature: float = Field(0.1, gt=0)  # infonce (initial value when learned)
    learn_temperature: bool | None = None  # None: learned for infonce only, as IMU2CLIP
    temperature_parametrisation: Literal["direct", "log"] = "direct"  # learn tau or log tau
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, le=1)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    seed: int = 0
    num_workers: int = Field(0, ge=0)
    buffer_chunks: int = Field(4, ge=1)
    checkpoint_every: int = Field(200, ge=0)  # batches; 0: at epoch ends only
    device: Literal["auto", "cpu", "cuda"] = "auto"
    train_split: str = "train"
    val_split: str = "val"
    # set (leave-one-subject-out): train on these subjects' windows, whatever their split
    train_subjects: list[str] | None = None


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; under torchrun each process takes its LOCAL_RANK GPU."""
    import os

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA device is visible; "
                          "use device: auto or cpu")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(device)
    return device


def open_inputs(cfg: DistillConfig, data_dir: str | PathLike[str], dataset: str,
                storage_options: dict[str, Any] | None = None
                ) -> tuple[pl.DataFrame, ChunkedStore, ChunkedStore]:
    """windows.parquet and the two stores, checked complete and row-aligned."""
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    index = read_table(paths.windows_index, **paths.options)
    windows = ChunkedStore.open(paths.windows_store, expect={"stage": "windows"},
                                storage_options=paths.options)
    features = ChunkedStore.open(paths.features(cfg.teacher), expect={"stage": "features"},
                                 storage_options=paths.options)
    for store in (windows, features):
        store.require_complete()
        if store.n_rows != len(index):
            raise StoreIntegrityError(
                f"{store.url} has {store.n_rows} rows but {paths.windows_index} has {len(index)}; "
                f"rows must align: re-run the stage that wrote {store.url}"
            )
    if not np.array_equal(index["window_id"].to_numpy(), np.arange(len(index))):
        raise StoreIntegrityError(f"{paths.windows_index}: window_id must equal the row number")
    return index, windows, features


def train_data(cfg: DistillConfig, index: pl.DataFrame, windows: ChunkedStore,
               features: ChunkedStore, storage_options: dict[str, Any] | None = None) -> TrainData:
    split = index["split"].to_numpy()
    usable = np.ones(len(index), dtype=bool)
    if "valid" in features.names:  # rejected windows of the features stage
        usable = np.asarray(features.read("valid"), dtype=bool)
    train_keep = usable & (split == cfg.train_split)
    if cfg.train_subjects is not None:
        subject = index["subject"].cast(pl.String).to_numpy()
        train_keep = usable & np.isin(subject, [str(s) for s in cfg.train_subjects])
    if not train_keep.any():
        raise ConfigError(f"no usable window has split {cfg.train_split!r} in {windows.url}; "
                          f"splits present: {sorted(set(split.tolist()))}")
    labels = index["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    source = PairSource(windows.url, features.url, "imu", cfg.teacher_array, storage_options or {})
    n_valid = index["n_valid"].to_numpy().astype(np.int64) if "n_valid" in index.columns else None
    return TrainData(source, load_rows(windows, "imu"), train_keep,
                     usable & (split == cfg.val_split), labels, n_valid)


def check_config(cfg: DistillConfig) -> None:
    """Fail on unknown names before any data is read."""
    STUDENTS.get(cfg.student)
    OBJECTIVES.get(cfg.objective)
    if cfg.learn_temperature and "temperature" not in objective_params(cfg.objective):
        raise ConfigError(f"learn_temperature needs an objective with a temperature "
                          f"(infonce); objective {cfg.objective!r} has none")


def run(cfg: DistillConfig, data_dir: str | PathLike[str], dataset: str, out_dir: Path,
        on_batch_end: BatchHook | None = None, storage_options: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    """Train (or resume) the run in ``out_dir`` (a local folder) from the stores under
    ``data_dir`` (a folder or an fsspec URL); returns the metrics written to metrics.json."""
    check_config(cfg)
    index, windows, features = open_inputs(cfg, data_dir, dataset, storage_options)
    data = train_data(cfg, index, windows, features, storage_options)
    _rows, n_channels, n_samples = windows.array("imu").shape
    spec = StudentSpec(cfg.student, n_channels, n_samples, cfg.reduction, cfg.student_options,
                       cfg.input_norm)
    heads = head_settings(cfg, int(features.array(cfg.teacher_array).shape[1]))
    model = build_model(spec, heads, cfg.seed)
    lineage = {"windows": windows.provenance.to_dict(), "features": features.provenance.to_dict()}
    # settings that do not change the result may differ between a run and its resumption
    result_cfg = cfg.model_dump(mode="json", exclude={"num_workers", "checkpoint_every"})
    run_hash = config_hash({"config": result_cfg, "inputs": lineage})
    out_dir = Path(out_dir)
    finished = finished_metrics(out_dir, run_hash)
    if finished is not None:  # the same config on the same inputs: nothing to train or rewrite
        log.info("distill %s: %s is finished with this config and inputs; reused", dataset, out_dir)
        return finished
    trainer = Trainer(model, data, _settings(cfg), resolve_device(cfg.device),
                      out_dir / "checkpoint.pt", run_hash, on_batch_end)
    history = trainer.run(on_epoch_end=lambda h: write_history(out_dir, h))
    if history and trainer.env.is_main:  # a resumed finished run trains no epoch: rewrite it here
        write_history(out_dir, history)
    if not trainer.env.is_main:
        return {}
    record = export_encoder(model.student, spec, out_dir, {
        "teacher": cfg.teacher, "objective": cfg.objective, "dataset": dataset,
        "config_hash": run_hash, "inputs": lineage,
    })
    metrics = _metrics(cfg, dataset, history, record, data, trainer)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info("distill %s: %d epochs, val_anchor_acc %s; encoder in %s", dataset,
             len(history), metrics["val_anchor_acc"], out_dir)
    return metrics


def finished_metrics(out_dir: Path, run_hash: str) -> dict[str, Any] | None:
    """metrics.json of a run in ``out_dir`` that finished with ``run_hash``, else None."""
    try:
        meta = json.loads((out_dir / "encoder.json").read_text())
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    outputs = ("encoder.safetensors", "history.csv")  # DVC removes what it does not persist
    ready = meta.get("config_hash") == run_hash and all((out_dir / f).is_file() for f in outputs)
    return metrics if ready else None


def learns_temperature(cfg: DistillConfig) -> bool:
    """``learn_temperature``, or when unset the objective's reference (IMU2CLIP: learned)."""
    if cfg.learn_temperature is None:
        return cfg.objective in LEARNED_TEMPERATURE_BY_DEFAULT
    return cfg.learn_temperature


def head_settings(cfg: DistillConfig, teacher_dim: int) -> HeadSettings:
    """COMODO's heads, or for a baseline with ``baseline_heads: reference`` the reference's:
    a Linear student head to the teacher's dimension and the stored teacher features."""
    reference = cfg.baseline_heads == "reference" and cfg.objective in BASELINE_OBJECTIVES
    return HeadSettings(
        teacher_dim=teacher_dim, projector_hidden=cfg.projector_hidden,
        projector_dim=cfg.projector_dim,
        teacher_projector="identity" if reference else cfg.teacher_projector,
        student_projector="linear" if reference else "mlp", queue_size=cfg.queue_size,
        learned_temperature=cfg.temperature if learns_temperature(cfg) else None,
        temperature_parametrisation=cfg.temperature_parametrisation,
    )


LATEST = "latest"  # runs/<ds>/latest: the name of the run `comodo distill` wrote last


def record_latest(dataset_runs: Path, name: str) -> None:
    """Write ``<runs>/<ds>/latest`` (the run's folder name), atomically."""
    tmp = Path(dataset_runs) / f".{LATEST}.tmp"
    tmp.write_text(name + "\n")
    tmp.replace(Path(dataset_runs) / LATEST)


def latest_run(dataset_runs: Path) -> str:
    """The run ``record_latest`` named under ``<runs>/<ds>``."""
    path = Path(dataset_runs) / LATEST
    if not path.is_file():
        raise StoreNotFoundError(f"no run named and no {path}: run `comodo distill -d "
                                 f"{Path(dataset_runs).name}` first, or pass --run <folder>")
    return path.read_text().strip()


def _settings(cfg: DistillConfig) -> TrainSettings:
    values = {"teacher_temperature": cfg.teacher_temperature,
              "student_temperature": cfg.student_temperature, "temperature": cfg.temperature}
    return TrainSettings(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        warmup_fraction=cfg.warmup_fraction, schedule=cfg.schedule, seed=cfg.seed,
        num_workers=cfg.num_workers, buffer_chunks=cfg.buffer_chunks,
        checkpoint_every=cfg.checkpoint_every, objective=cfg.objective,
        objective_values=values, queue_init=cfg.queue_init,
    )


def write_history(out_dir: Path, history: list[dict[str, Any]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(history).write_csv(out_dir / "history.csv")


def _metrics(cfg: DistillConfig, dataset: str, history: list[dict[str, Any]],
             record: dict[str, Any], data: TrainData, trainer: Trainer) -> dict[str, Any]:
    last = history[-1]
    accs = [h["val_anchor_acc"] for h in history if h.get("val_anchor_acc") is not None]
    return {
        "dataset": dataset, "student": cfg.student, "objective": cfg.objective,
        "teacher": cfg.teacher, "epochs": len(history),
        "train_loss": last["train_loss"], "val_loss": last.get("val_loss"),
        "val_anchor_acc": last.get("val_anchor_acc"),
        "best_val_anchor_acc": max(accs) if accs else None,
        "n_train_windows": int(data.train_keep.sum()), "n_val_windows": int(data.val_keep.sum()),
        "n_params": record["n_params"], "latency_ms_per_window": record["latency_ms_per_window"],
        "samples_per_s": last.get("samples_per_s"), "device": str(trainer.device),
        "world_size": trainer.env.world_size,
    }
