"""Stage ``uma``: features + windows -> metrics/<ds>/uma/ (ST, CA, C3T under the noise suite).

For every seed: splits (D_HAR, D_Align, validation, test; ``split: random`` draws trials,
``subject`` whole subjects), normalisation from the training view, every method fitted on that
view with its own settings (``settings`` + ``method_settings.<method>``; every candidate of
``search.<method>``), the epoch and candidate with the best IMU-only validation accuracy kept
(``select: val``), then evaluated on the test split with IMU only, video only and both, clean
and under each noise. A supervised-IMU reference (labelled IMU of D_HAR + D_Align, an upper
bound that UMA does not have) and the random-guess accuracy are reported beside them.
``preset: paper`` stands for the C3T paper's protocol (``comodo.pipeline.uma.presets``).
Outputs: ``metrics.json`` (mean +- std over seeds, the selected epoch and setting of every
method and seed), ``results.csv`` (one row per method x split x modality x noise x seed),
``latent_map.csv/png``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from comodo.pipeline.config import StageConfig
from comodo.pipeline.progress import progress
from comodo.pipeline.uma.data import (
    EvalView,
    Normalizer,
    TrainView,
    UmaData,
    eval_view,
    load_uma_data,
    normalized,
    train_view,
    with_time_base,
)
from comodo.pipeline.uma.evaluate import MODALITIES, accuracy, evaluate
from comodo.pipeline.uma.heads import SEQUENCE_HEADS
from comodo.pipeline.uma.methods import METHODS, SupervisedImu, UmaMethod, build_method
from comodo.pipeline.uma.noise import NOISES
from comodo.pipeline.uma.presets import expand_preset
from comodo.pipeline.uma.report import aggregate, latent_map, plot_latent_map, write_results
from comodo.pipeline.uma.selection import BestEpoch, candidates
from comodo.pipeline.uma.splits import SPLITS, UmaSplits, make_splits
from comodo.pipeline.uma.training import ORDERS, EpochHook, UmaSettings, no_hook, resolve_device
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

REFERENCE = "supervised_imu"
TEACHER = "teacher_svm"


class UmaConfig(StageConfig):
    preset: str | None = None  # a named protocol (presets.PRESETS, e.g. paper); keys here win
    teacher_key: str = "mobilenetv2_imagenet"  # features/<key>.zarr
    methods: tuple[str, ...] = ("st", "ca", "c3t", "early_fusion", "feature_fusion", "late_fusion")
    seeds: tuple[int, ...] = (0, 1, 2)
    split: str = "subject"  # SPLITS: random (trials) or subject (whole subjects)
    stratify: bool = True  # random split: every class spread over the four splits in proportion
    fractions: tuple[float, float, float, float] = (0.4, 0.4, 0.1, 0.1)
    time_base: Literal["stretch", "pad"] = "stretch"  # valid IMU stretched to the trial span, or padded
    select: Literal["val", "last"] = "val"  # the epoch tested: best IMU-only D_Val accuracy, or the last
    modalities: tuple[str, ...] = MODALITIES
    noises: tuple[str, ...] = ("clean", "shift", "misalign", "dilation", "crop")
    supervised_reference: bool = True
    teacher_reference: bool = True  # the ceiling: the paper's SVM on D_HAR's frame-mean video features
    teacher_svm_protocol: str = "reference"  # SVM protocol of that row (evaluation.svm SVM_PROTOCOLS)
    map_method: str | None = "c3t"  # method whose latents are mapped (first seed); None: no map
    map_classes: int = Field(4, ge=1)
    settings: UmaSettings = UmaSettings()
    method_settings: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per method: keys of settings
    search: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)  # per method: key -> candidates

    @model_validator(mode="before")
    @classmethod
    def _spell_out_preset(cls, values: Any) -> Any:
        return expand_preset(values) if isinstance(values, dict) else values

    def settings_for(self, method: str) -> UmaSettings:
        """``settings`` with ``method_settings.<method>`` on top."""
        return UmaSettings.model_validate(self.settings.model_dump() | self.method_settings.get(method, {}))


def check_names(cfg: UmaConfig) -> None:
    """Fail before any training on an unknown method, noise, order, head or modality."""
    for name in cfg.methods:
        METHODS.get(name)
    for name in cfg.noises:
        NOISES.get(name)
    SPLITS.get(cfg.split)
    for name in {*cfg.method_settings, *cfg.search}:
        if name not in METHODS and name != REFERENCE:
            METHODS.get(name)  # unknown: fails with the known list
    for name in (*cfg.methods, REFERENCE):
        for _changed, s in candidates(cfg.settings_for(name), cfg.search.get(name, {})):
            if s.order is not None:
                ORDERS.get(s.order)
            SEQUENCE_HEADS.get(s.head)
    bad = [m for m in cfg.modalities if m not in MODALITIES]
    if bad:
        raise ConfigError(f"uma.modalities: unknown {bad}; valid: {', '.join(MODALITIES)}")
    if cfg.map_method is not None and cfg.map_method not in cfg.methods:
        raise ConfigError(f"uma.map_method {cfg.map_method!r} is not among uma.methods "
                          f"{list(cfg.methods)}; pick one of them or set it to null")


FitFn = Callable[[Any, UmaSettings, EpochHook], None]  # (fresh model, settings, epoch hook)


def fit_selected(cfg: UmaConfig, fit: FitFn, build: Callable[[], Any], name: str,
                 val: EvalView) -> tuple[Any, dict]:
    """Fit every candidate of ``search.<name>``; keep the best on D_Val (epoch, then candidate).

    ``build()`` makes a fresh model, ``fit(model, settings, hook)`` trains it. The returned
    record names the kept candidate and epoch and lists every candidate's D_Val score.
    """
    best, scores = None, []
    for changed, settings in candidates(cfg.settings_for(name), cfg.search.get(name, {})):
        model = build()
        hook = BestEpoch(model, val) if cfg.select == "val" else None
        fit(model, settings, hook or no_hook)
        info = {"setting": changed}
        if hook is not None:
            info |= hook.restore().as_dict()
        else:
            info["val_accuracy"] = accuracy(model.logits(val.imu, None), val.labels)
        if not scores or info["val_accuracy"] > max(s["val_accuracy"] for s in scores):
            best = (model, info)
        scores.append(info)
    model, info = best
    return model, info | ({"candidates": scores} if len(scores) > 1 else {})


def fit_method(cfg: UmaConfig, name: str, view: TrainView, val: EvalView, seed: int,
               device: torch.device) -> tuple[UmaMethod, dict]:
    return fit_selected(cfg, lambda m, s, hook: m.fit(view, s, seed, device, hook),
                        lambda: build_method(name), name, val)


def fit_reference(cfg: UmaConfig, data: UmaData, rows: np.ndarray, norm: Normalizer, val: EvalView,
                  seed: int, device: torch.device) -> tuple[SupervisedImu, dict]:
    n_valid = None if data.n_valid is None else data.n_valid[rows]
    imu, labels = norm.imu(data.imu[rows], n_valid), data.labels[rows]
    return fit_selected(cfg, lambda m, s, hook: m.fit(imu, labels, data.n_classes, s, seed, device, hook),
                        SupervisedImu, REFERENCE, val)


def teacher_rows(data: UmaData, splits: UmaSplits, seed: int, protocol: str = "reference") -> list[dict]:
    """The video teacher's own accuracy: SVM protocol on frame-mean features, D_HAR -> test."""
    from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol

    pooled = data.video.mean(axis=1)  # (N, D)
    scores = fast_svm_protocol(pooled[splits.har], data.labels[splits.har], pooled[splits.test],
                               data.labels[splits.test], seed=seed, n_jobs=1, protocol=protocol)
    return [{"method": TEACHER, "split": "test", "seed": seed, "modality": "video", "noise": "clean",
             "accuracy": scores["acc@1"]}]


def run_seed(cfg: UmaConfig, data: UmaData, seed: int,
             device: torch.device) -> tuple[list[dict], dict[str, UmaMethod], dict]:
    """Fit, select and evaluate every method for one seed; rows of results and the fitted methods."""
    splits = make_splits(data.labels.size, data.subjects, seed, cfg.fractions, kind=cfg.split,
                         labels=data.labels, stratify=cfg.stratify)
    raw_view = train_view(data, splits)
    norm = Normalizer.fit(raw_view)
    view = normalized(raw_view, norm)
    test, val = eval_view(data, splits.test, norm), eval_view(data, splits.val, norm)
    rows: list[dict] = []
    fitted: dict[str, UmaMethod] = {}
    selected: dict[str, dict] = {}
    for name in cfg.methods:
        method, selected[name] = fit_method(cfg, name, view, val, seed, device)
        fitted[name] = method
        rows += [r | {"method": name, "split": "test", "seed": seed}
                 for r in evaluate(method, test, cfg.modalities, cfg.noises, seed)]
        rows += [r | {"method": name, "split": "val", "seed": seed}
                 for r in evaluate(method, val, cfg.modalities, ("clean",), seed)]
        log.info("uma seed %d %s: selected %s; IMU-only clean test accuracy %.3f", seed, name, selected[name],
                 next(r["accuracy"] for r in rows if r["method"] == name and r["split"] == "test"
                      and r["modality"] == "imu" and r["noise"] == "clean"))
    if cfg.supervised_reference:
        ref, selected[REFERENCE] = fit_reference(cfg, data, np.concatenate([splits.har, splits.align]),
                                                 norm, val, seed, device)
        rows += [r | {"method": REFERENCE, "split": "test", "seed": seed}
                 for r in evaluate(ref, test, ("imu",), cfg.noises, seed)]
        rows += [r | {"method": REFERENCE, "split": "val", "seed": seed}
                 for r in evaluate(ref, val, ("imu",), ("clean",), seed)]
    if cfg.teacher_reference:
        rows += teacher_rows(data, splits, seed, cfg.teacher_svm_protocol)
    info = {"sizes": splits.sizes(), "by_subject": splits.by_subject, "test": test, "selected": selected}
    return rows, fitted, info


def run(cfg: UmaConfig, data_dir: str | Path, dataset: str, out_dir: Path,
        storage_options: dict[str, Any] | None = None) -> dict:
    """Run every method x seed and write ``<out_dir>/<dataset>/uma/``; returns the summary."""
    check_names(cfg)
    device = resolve_device(cfg.settings.device)
    data = with_time_base(load_uma_data(data_dir, dataset, cfg.teacher_key, storage_options), cfg.time_base)
    out = Path(out_dir) / dataset / "uma"
    rows: list[dict] = []
    split_info: dict[str, dict] = {}
    for seed in progress(cfg.seeds, desc=f"uma {dataset}", unit="seed"):
        seed_rows, fitted, info = run_seed(cfg, data, seed, device)
        rows += seed_rows
        split_info[str(seed)] = {k: info[k] for k in ("sizes", "by_subject", "selected")}
        if cfg.map_method is not None and seed == cfg.seeds[0]:
            frame = latent_map(fitted[cfg.map_method], info["test"], data.classes, cfg.map_classes)
            out.mkdir(parents=True, exist_ok=True)
            frame.write_csv(out / "latent_map.csv")
            plot_latent_map(frame, f"{cfg.map_method} latents, {dataset} test (seed {seed})",
                            out / "latent_map.png")
    summary = {
        "dataset": dataset, "teacher_key": cfg.teacher_key, "n_windows": int(data.labels.size),
        "n_classes": data.n_classes, "random_guess": 1.0 / data.n_classes, "seeds": list(cfg.seeds),
        "split": cfg.split, "time_base": cfg.time_base, "select": cfg.select, "splits": split_info,
        "settings": {name: cfg.settings_for(name).model_dump(mode="json")
                     for name in (*cfg.methods, REFERENCE)},
        "search": cfg.search,
        "test": aggregate(rows, "test"), "val": aggregate(rows, "val"),
    }
    write_results(rows, summary, out)
    log.info("uma %s: wrote %s", dataset, out)
    return summary
