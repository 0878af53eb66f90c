"""The rows of the benchmark table, one registered kind each.

A method kind maps (method, context, seed) to one or more named score dicts (``acc@1/3/5``
fractions). Kinds:

- ``random_init``: the student as a distill run with ``seed`` starts it, SVM protocol;
- ``zero_shot``: an exported encoder (``checkpoint``: ``<dir>/encoder``), SVM protocol;
- ``distill``: a distill run with the method's ``objective`` and ``seed``, SVM protocol;
- ``supervised``: the student (or ``student``) + a linear head trained with cross-entropy
  on the train split; the head's Acc@1/3/5 and, with ``svm_on_features``, a second row of
  the SVM protocol on the encoder's (pre-head) features;
- ``imu_statistics``: no network, the per-channel statistics of each window's valid IMU
  (``evaluation.imu_statistics``), SVM protocol;
- ``teacher_features``: the teacher's own accuracy, the SVM protocol on the stored pooled
  video features (``features/<teacher>.zarr``): the ceiling a distilled student aims at.

Every encoder is given each window's ``n_valid``, so padding never reaches it as data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.evaluation.imu_statistics import imu_statistics
from comodo.pipeline.evaluation.supervised import (
    SupervisedSettings,
    head_topk,
    predict_logits,
    train_supervised,
)
from comodo.pipeline.registry import Registry
from comodo.pipeline.stages import distill
from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.students import StudentSpec, load_encoder
from comodo.pipeline.students.base import encode
from comodo.pipeline.training.model import build_initial_encoder
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

Scores = dict[str, float | None]
Features = tuple[np.ndarray, np.ndarray]  # (train (N_train, D), test (N_test, D))
MethodFn = Callable[["MethodSpec", "Context", int], dict[str, Scores]]
FeaturesFn = Callable[["MethodSpec", "Context", int], dict[str, Features]]
METHODS: Registry = Registry("benchmark method kind")
FEATURES: Registry = Registry("benchmark method kind")  # the same kinds: frozen features


class MethodSpec(StageConfig):
    """One row (or two, for supervised + SVM) of the table."""

    name: str
    kind: str
    objective: str | None = None  # distill
    distill: dict[str, Any] = Field(default_factory=dict)  # distill: extra DistillConfig keys
    checkpoint: str | None = None  # zero_shot: exported encoder stem
    student: str | None = None  # supervised: registry name (default: the distill student)
    student_options: dict[str, Any] = Field(default_factory=dict)
    input_norm: Literal["instance", "none"] | None = None  # supervised: default the distill one
    svm_on_features: bool = False  # supervised: add "<name> (SVM)"
    teacher: str | None = None  # teacher_features: features/<teacher>.zarr (default: distill's)


@dataclass(frozen=True)
class Context:
    """Everything a method needs: the dataset in memory and where runs go."""

    data_dir: str  # a folder or an fsspec URL
    dataset: str
    runs_dir: Path
    distill_cfg: distill.DistillConfig
    x: dict[str, np.ndarray]  # split -> imu (N, C, T)
    y: dict[str, np.ndarray]  # split -> label ids (N,)
    n_classes: int
    supervised: SupervisedSettings
    n_jobs: int = 2
    train: str = "train"
    test: str = "test"
    protocol: str = "reference"  # SVM protocol
    storage_options: dict[str, Any] = field(default_factory=dict)  # for data_dir
    n_valid: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (N,) real samples
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # split -> rows of windows.parquet
    fold: str = "split"  # "split", or "subject=<S>" leaving subject S out
    train_subjects: tuple[str, ...] | None = None  # leave-one-subject-out: who trains

    @property
    def spec(self) -> StudentSpec:
        _n, channels, samples = self.x[self.train].shape
        cfg = self.distill_cfg
        return StudentSpec(cfg.student, channels, samples, cfg.reduction, cfg.student_options,
                           cfg.input_norm)


@torch.inference_mode()
def encode_array(encoder: nn.Module, imu: np.ndarray, n_valid: np.ndarray | None = None,
                 batch_size: int = 256) -> np.ndarray:
    """(N, D) features of in-memory windows (N, C, T), each read up to its ``n_valid``."""
    encoder = encoder.eval()
    parts = []
    for s in range(0, len(imu), batch_size):
        valid = None if n_valid is None else torch.as_tensor(n_valid[s : s + batch_size])
        parts.append(encode(encoder, torch.as_tensor(np.asarray(imu[s : s + batch_size],
                                                                np.float32)), valid).numpy())
    return np.concatenate(parts)


def svm_on(train_x: np.ndarray, test_x: np.ndarray, ctx: Context, seed: int) -> Scores:
    out = fast_svm_protocol(train_x, ctx.y[ctx.train], test_x, ctx.y[ctx.test], seed, ctx.n_jobs,
                            ctx.protocol)
    return {k: None if out[k] is None else float(out[k])  # cv_acc: None without a grid
            for k in ("acc@1", "acc@3", "acc@5", "cv_acc", "best_C")}


def encoder_features(encoder: nn.Module, ctx: Context) -> Features:
    """(train, test) features of the context's windows, each read up to its ``n_valid``."""
    tr, te = ctx.train, ctx.test
    return (encode_array(encoder, ctx.x[tr], ctx.n_valid.get(tr)),
            encode_array(encoder, ctx.x[te], ctx.n_valid.get(te)))


def svm_scores(encoder: nn.Module, ctx: Context, seed: int) -> Scores:
    return svm_on(*encoder_features(encoder, ctx), ctx, seed)


def scored(features_fn: FeaturesFn) -> MethodFn:
    """The method kind that scores every features row of ``features_fn`` by the SVM protocol."""
    def method(spec: MethodSpec, ctx: Context, seed: int) -> dict[str, Scores]:
        return {name: svm_on(*f, ctx, seed) for name, f in features_fn(spec, ctx, seed).items()}
    method.__doc__ = features_fn.__doc__
    return method


@FEATURES.register("random_init")
def random_init(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Features]:
    """The student at its seeded initialisation."""
    return {method.name: encoder_features(build_initial_encoder(ctx.spec, seed), ctx)}


@FEATURES.register("zero_shot")
def zero_shot(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Features]:
    """A given pretrained encoder without distillation."""
    if not method.checkpoint:
        raise ConfigError(f"benchmark method {method.name!r} (zero_shot) needs checkpoint: "
                          f"the stem of an exported encoder (<dir>/encoder)")
    encoder, _meta = load_encoder(method.checkpoint)
    return {method.name: encoder_features(encoder, ctx)}


def distill_run_dir(ctx: Context, method: MethodSpec, seed: int) -> Path:
    fold = "" if ctx.fold == "split" else f"-{ctx.fold.replace('=', '')}"
    return ctx.runs_dir / ctx.dataset / "benchmark" / f"{method.objective}-seed{seed}{fold}"


@FEATURES.register("distill")
def distilled(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Features]:
    """A distill run with the method's objective and the seed (a finished run is reused)."""
    if not method.objective:
        raise ConfigError(f"benchmark method {method.name!r} (distill) needs objective")
    values = {**ctx.distill_cfg.model_dump(), **method.distill,
              "objective": method.objective, "seed": seed}
    if ctx.train_subjects is not None:  # leave one subject out: distil on the others only
        values["train_subjects"] = list(ctx.train_subjects)
    cfg = distill.DistillConfig.model_validate(values)
    out_dir = distill_run_dir(ctx, method, seed)
    distill.run(cfg, ctx.data_dir, ctx.dataset, out_dir, storage_options=ctx.storage_options)
    encoder, _meta = load_encoder(out_dir / "encoder")
    return {method.name: encoder_features(encoder, ctx)}


def supervised_spec(method: MethodSpec, ctx: Context) -> StudentSpec:
    base = ctx.spec
    norm = method.input_norm or base.input_norm
    if method.student:
        return StudentSpec(method.student, base.n_channels, base.n_samples, None,
                           method.student_options, norm)
    return StudentSpec(base.name, base.n_channels, base.n_samples, base.reduction, base.options, norm)


@METHODS.register("supervised")
def supervised(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Scores]:
    """Student + linear head trained with labels: head Acc@k (+ SVM on its features)."""
    tr, te = ctx.train, ctx.test
    model = train_supervised(supervised_spec(method, ctx), ctx.x[tr], ctx.y[tr], ctx.n_classes,
                             ctx.supervised, seed, ctx.n_valid.get(tr))
    rows = {method.name: head_topk(predict_logits(model, ctx.x[te], ctx.n_valid.get(te)),
                                   ctx.y[te])}
    if method.svm_on_features:
        rows[f"{method.name} (SVM)"] = svm_scores(model.encoder, ctx, seed)
    return rows


@FEATURES.register("supervised")
def supervised_features(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Features]:
    """The label-trained student's encoder (trained on the fold's whole train split)."""
    tr = ctx.train
    model = train_supervised(supervised_spec(method, ctx), ctx.x[tr], ctx.y[tr], ctx.n_classes,
                             ctx.supervised, seed, ctx.n_valid.get(tr))
    return {method.name: encoder_features(model.encoder, ctx)}


@FEATURES.register("imu_statistics")
def statistics(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Features]:
    """Per-channel statistics of the valid IMU samples (no network)."""
    tr, te = ctx.train, ctx.test
    return {method.name: (imu_statistics(ctx.x[tr], ctx.n_valid.get(tr)),
                          imu_statistics(ctx.x[te], ctx.n_valid.get(te)))}


for _kind in ("random_init", "zero_shot", "distill", "imu_statistics"):
    METHODS.register(_kind)(scored(FEATURES.get(_kind)))


@METHODS.register("teacher_features")
def teacher_features(method: MethodSpec, ctx: Context, seed: int) -> dict[str, Scores]:
    """The teacher's own accuracy: SVM protocol on the stored pooled video features."""
    key = method.teacher or ctx.distill_cfg.teacher
    paths = DatasetPaths(ctx.data_dir, ctx.dataset, ctx.storage_options)
    store = ChunkedStore.open(paths.features(key), expect={"stage": "features"},
                              storage_options=ctx.storage_options)
    store.require_complete()
    pooled = np.asarray(store.array("pooled")[:], np.float32)  # (N_all, D)
    tr, te = ctx.train, ctx.test
    return {method.name: svm_on(pooled[ctx.rows[tr]], pooled[ctx.rows[te]], ctx, seed)}
