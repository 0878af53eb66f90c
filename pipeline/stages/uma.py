"""Stage ``uma``: features + windows -> metrics/<ds>/uma/ (ST, CA, C3T under the noise suite).

For every seed: subject-disjoint splits (D_HAR, D_Align, validation, test), normalisation from
the training view, every method fitted on that view and evaluated on the test split with IMU
only, video only and both, clean and under each noise. A supervised-IMU reference (labelled
IMU of D_HAR + D_Align, an upper bound that UMA does not have) and the random-guess accuracy
are reported beside them. Outputs: ``metrics.json`` (mean +- std over seeds), ``results.csv``
(one row per method x split x modality x noise x seed), ``latent_map.csv/png``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.progress import progress
from comodo.pipeline.uma.data import Normalizer, UmaData, eval_view, load_uma_data, normalized, train_view
from comodo.pipeline.uma.evaluate import MODALITIES, evaluate
from comodo.pipeline.uma.heads import SEQUENCE_HEADS
from comodo.pipeline.uma.methods import METHODS, SupervisedImu, UmaMethod, build_method
from comodo.pipeline.uma.noise import NOISES
from comodo.pipeline.uma.report import aggregate, latent_map, plot_latent_map, write_results
from comodo.pipeline.uma.splits import make_splits
from comodo.pipeline.uma.training import ORDERS, UmaSettings, resolve_device
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

REFERENCE = "supervised_imu"


class UmaConfig(StageConfig):
    teacher_key: str = "mobilenetv2_imagenet"  # features/<key>.zarr
    methods: tuple[str, ...] = ("st", "ca", "c3t", "early_fusion", "feature_fusion", "late_fusion")
    seeds: tuple[int, ...] = (0, 1, 2)
    fractions: tuple[float, float, float, float] = (0.4, 0.4, 0.1, 0.1)
    modalities: tuple[str, ...] = MODALITIES
    noises: tuple[str, ...] = ("clean", "shift", "misalign", "dilation", "crop")
    supervised_reference: bool = True
    map_method: str | None = "c3t"  # method whose latents are mapped (first seed); None: no map
    map_classes: int = Field(4, ge=1)
    settings: UmaSettings = UmaSettings()


def check_names(cfg: UmaConfig) -> None:
    """Fail before any training on an unknown method, noise, order, head or modality."""
    for name in cfg.methods:
        METHODS.get(name)
    for name in cfg.noises:
        NOISES.get(name)
    ORDERS.get(cfg.settings.order)
    SEQUENCE_HEADS.get(cfg.settings.head)
    bad = [m for m in cfg.modalities if m not in MODALITIES]
    if bad:
        raise ConfigError(f"uma.modalities: unknown {bad}; valid: {', '.join(MODALITIES)}")
    if cfg.map_method is not None and cfg.map_method not in cfg.methods:
        raise ConfigError(f"uma.map_method {cfg.map_method!r} is not among uma.methods "
                          f"{list(cfg.methods)}; pick one of them or set it to null")


def run_seed(cfg: UmaConfig, data: UmaData, seed: int,
             device: torch.device) -> tuple[list[dict], dict[str, UmaMethod], dict]:
    """Fit and evaluate every method for one seed; rows of results and the fitted methods."""
    splits = make_splits(data.labels.size, data.subjects, seed, cfg.fractions)
    raw_view = train_view(data, splits)
    norm = Normalizer.fit(raw_view)
    view = normalized(raw_view, norm)
    test, val = eval_view(data, splits.test, norm), eval_view(data, splits.val, norm)
    rows: list[dict] = []
    fitted: dict[str, UmaMethod] = {}
    for name in cfg.methods:
        method = build_method(name)
        method.fit(view, cfg.settings, seed, device)
        fitted[name] = method
        rows += [r | {"method": name, "split": "test", "seed": seed}
                 for r in evaluate(method, test, cfg.modalities, cfg.noises, seed)]
        rows += [r | {"method": name, "split": "val", "seed": seed}
                 for r in evaluate(method, val, cfg.modalities, ("clean",), seed)]
        log.info("uma seed %d %s: IMU-only clean test accuracy %.3f", seed, name,
                 next(r["accuracy"] for r in rows if r["method"] == name and r["split"] == "test"
                      and r["modality"] == "imu" and r["noise"] == "clean"))
    if cfg.supervised_reference:
        labelled = np.concatenate([splits.har, splits.align])
        ref = SupervisedImu()
        ref.fit(norm.imu(data.imu[labelled]), data.labels[labelled], data.n_classes, cfg.settings,
                seed, device)
        rows += [r | {"method": REFERENCE, "split": "test", "seed": seed}
                 for r in evaluate(ref, test, ("imu",), cfg.noises, seed)]
    return rows, fitted, {"sizes": splits.sizes(), "by_subject": splits.by_subject, "test": test}


def run(cfg: UmaConfig, data_dir: str | Path, dataset: str, out_dir: Path,
        storage_options: dict[str, Any] | None = None) -> dict:
    """Run every method x seed and write ``<out_dir>/<dataset>/uma/``; returns the summary."""
    check_names(cfg)
    device = resolve_device(cfg.settings.device)
    data = load_uma_data(data_dir, dataset, cfg.teacher_key, storage_options)
    out = Path(out_dir) / dataset / "uma"
    rows: list[dict] = []
    split_info: dict[str, dict] = {}
    for seed in progress(cfg.seeds, desc=f"uma {dataset}", unit="seed"):
        seed_rows, fitted, info = run_seed(cfg, data, seed, device)
        rows += seed_rows
        split_info[str(seed)] = {"sizes": info["sizes"], "by_subject": info["by_subject"]}
        if cfg.map_method is not None and seed == cfg.seeds[0]:
            frame = latent_map(fitted[cfg.map_method], info["test"], data.classes, cfg.map_classes)
            out.mkdir(parents=True, exist_ok=True)
            frame.write_csv(out / "latent_map.csv")
            plot_latent_map(frame, f"{cfg.map_method} latents, {dataset} test (seed {seed})",
                            out / "latent_map.png")
    summary = {
        "dataset": dataset, "teacher_key": cfg.teacher_key, "n_windows": int(data.labels.size),
        "n_classes": data.n_classes, "random_guess": 1.0 / data.n_classes, "seeds": list(cfg.seeds),
        "splits": split_info, "settings": cfg.settings.model_dump(mode="json"),
        "test": aggregate(rows, "test"), "val": aggregate(rows, "val"),
    }
    write_results(rows, summary, out)
    log.info("uma %s: wrote %s", dataset, out)
    return summary
