"""Stage ``evaluate``: runs/<ds>/<run>/encoder.* + windows.zarr -> metrics/<ds>/evaluate.json.

Judges the distilled encoder of a distill run and, beside it, the same architecture at its
random initialisation (the student exactly as a run with ``seed`` starts it), on frozen
features of the train and test splits:

- the paper's SVM protocol (``evaluation.fast_svm``, variant ``protocol``): Acc@1/3/5,
  chosen C, CV accuracy;
- a linear probe and a k-NN probe (accuracy);
- macro-F1, per-class accuracy and the confusion matrix of the SVM's top-1 predictions.

``folds: subject`` judges by leave-one-subject-out instead of the dataset's split: one fold
per subject (``evaluation.folds``), the scores are the mean over folds (``std@k`` across
folds, ``per_fold`` each fold's), the confusion and per-class accuracy pool every fold's
test predictions (each labelled window is tested once). The encoder itself is not retrained
per fold: a run distilled on the train split saw the other subjects' IMU without labels.

Writes ``metrics/<ds>/evaluate.json`` in the report schema (``pipeline.report.schema``: one
row per encoder) and ``metrics/<ds>/features/<variant>.npz`` (``x`` test features (N, D),
``y`` labels, ``pred`` SVM predictions, ``classes`` names) for the embedding maps, with
variants ``distilled`` and ``random_init``.
"""

from __future__ import annotations

import json
import logging
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field
from torch import nn

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation import probes
from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.evaluation.folds import Fold, make_folds
from comodo.pipeline.evaluation.svm import encode_windows
from comodo.pipeline.stages.common import DatasetPaths
from comodo.pipeline.stages.distill import latest_run
from comodo.pipeline.students import StudentSpec, load_encoder
from comodo.pipeline.training.model import build_initial_encoder
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError, StoreIntegrityError
from comodo.stores.index import read_table

log = logging.getLogger(__name__)

VARIANTS = ("distilled", "random_init")


class EvaluateConfig(StageConfig):
    run: str | None = None  # runs/<ds>/<run>/; None: the run distill wrote last (runs/<ds>/latest)
    method: str | None = None  # table row name; default "<student> <objective>"
    train_split: str = "train"
    test_split: str = "test"
    folds: Literal["split", "subject"] = "split"  # subject: leave one subject out
    seed: int = 0  # the distill run's seed: random-init baseline, SVM Platt seed and folds
    protocol: Literal["reference", "comodo"] = "reference"  # SVM protocol (evaluation.svm)
    random_init_baseline: bool = True
    knn_k: int = Field(20, ge=1)
    n_jobs: int = Field(2, ge=1)
    batch_size: int = Field(256, ge=1)


def split_rows(index: pl.DataFrame, split_name: str, where: str) -> np.ndarray:
    """Rows of labelled windows in ``split_name``; an empty split is an error."""
    split = index["split"].to_numpy()
    labels = index["label_id"].fill_null(-1).to_numpy()
    rows = np.flatnonzero((split == split_name) & (labels >= 0))
    if not len(rows):
        raise ConfigError(f"no labelled window has split {split_name!r} in {where}; "
                          f"splits present: {sorted(set(split.tolist()))}; set "
                          f"evaluate.train_split / test_split")
    return rows


def open_windows(data_dir: str | PathLike[str], dataset: str,
                 storage_options: dict[str, Any] | None = None
                 ) -> tuple[pl.DataFrame, ChunkedStore, list[str]]:
    paths = DatasetPaths(data_dir, dataset, storage_options or {})
    index = read_table(paths.windows_index, **paths.options)
    store = ChunkedStore.open(paths.windows_store, expect={"stage": "windows"},
                              storage_options=paths.options)
    store.require_complete()
    if store.n_rows != len(index):
        raise StoreIntegrityError(f"{store.url} has {store.n_rows} rows but {paths.windows_index} "
                                  f"has {len(index)}; re-run the windows stage")
    n_classes = int(index["label_id"].max()) + 1 if index["label_id"].max() is not None else 0
    classes = list(store.attrs.get("classes") or [str(i) for i in range(n_classes)])
    return index, store, classes


def fold_scores(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                cfg: EvaluateConfig) -> dict[str, Any]:
    """SVM protocol, linear and k-NN probes of one fold."""
    svm = fast_svm_protocol(x_tr, y_tr, x_te, y_te, cfg.seed, cfg.n_jobs, cfg.protocol)
    linear = probes.linear_probe(x_tr, y_tr, x_te, y_te, seed=cfg.seed)
    knn = probes.knn_probe(x_tr, y_tr, x_te, y_te, k=cfg.knn_k)
    return {"acc@1": svm["acc@1"], "acc@3": svm["acc@3"], "acc@5": svm["acc@5"],
            "best_C": svm["best_C"], "cv_acc": svm["cv_acc"], "linear_acc": linear.accuracy,
            "linear_macro_f1": linear.macro_f1, "knn_acc": knn.accuracy,
            "n_train": svm["n_train"], "n_test": svm["n_test"], "pred": svm["pred"]}


def score_encoder(encoder: nn.Module, store: ChunkedStore, labels: np.ndarray,
                  n_valid: np.ndarray | None, folds: list[Fold], cfg: EvaluateConfig,
                  n_classes: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every score of one encoder over ``folds``, and its test features/predictions."""
    rows = np.unique(np.concatenate([np.concatenate([f.train, f.test]) for f in folds]))
    x_all = encode_windows(encoder, store, rows, cfg.batch_size, n_valid=n_valid)  # (N, D)

    def at(fold_rows: np.ndarray) -> np.ndarray:  # rows of windows.parquet -> rows of x_all
        return np.searchsorted(rows, fold_rows)

    per_fold = [fold_scores(x_all[at(f.train)], labels[f.train], x_all[at(f.test)],
                            labels[f.test], cfg) for f in folds]
    y_te = np.concatenate([labels[f.test] for f in folds])
    x_te = np.concatenate([x_all[at(f.test)] for f in folds])
    pred = np.concatenate([np.asarray(s.pop("pred"), dtype=np.int64) for s in per_fold])
    scores: dict[str, Any] = {  # None (cv_acc without a grid) stays None
        k: None if any(s[k] is None for s in per_fold) else float(np.mean([s[k] for s in per_fold]))
        for k in per_fold[0]}
    for k in (1, 3, 5):
        scores[f"std@{k}"] = float(np.std([s[f"acc@{k}"] for s in per_fold])) if len(folds) > 1 else None
    if len(folds) > 1:
        scores["per_fold"] = [{"fold": f.name, **s} for f, s in zip(folds, per_fold, strict=True)]
        scores["n_folds"] = len(folds)
    per_class = probes.per_class_accuracy(y_te, pred, n_classes)
    scores.update({
        "macro_f1": probes.macro_f1(y_te, pred), "knn_k": cfg.knn_k,
        "per_class_acc": [None if np.isnan(v) else float(v) for v in per_class],
        "confusion": probes.confusion(y_te, pred, n_classes).tolist(),
        "n_train": int(sum(len(f.train) for f in folds)) // len(folds),
        "n_test": int(len(y_te)), "feature_dim": int(x_te.shape[1]),
        "svm_protocol": cfg.protocol,
    })
    return scores, {"x": x_te.astype(np.float32), "y": y_te, "pred": pred}


def run(cfg: EvaluateConfig, data_dir: str | PathLike[str], dataset: str,
        runs_dir: Path = Path("runs"), metrics_dir: Path = Path("metrics"),
        storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``runs_dir/<ds>/<run>``; returns the JSON written to ``evaluate.json``."""
    run_name = cfg.run or latest_run(Path(runs_dir) / dataset)
    run_dir = Path(runs_dir) / dataset / run_name
    log.info("evaluate %s: run %s%s", dataset, run_dir, "" if cfg.run else " (runs/<ds>/latest)")
    encoder, meta = load_encoder(run_dir / "encoder")
    index, store, classes = open_windows(data_dir, dataset, storage_options)
    labels = index["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    folds = make_folds(index, cfg.folds, cfg.train_split, cfg.test_split, store.url)
    n_valid = index["n_valid"].to_numpy() if "n_valid" in index.columns else None
    spec = StudentSpec.from_dict(meta["spec"])
    method = cfg.method or f"{spec.name} {meta.get('objective', 'distilled')}"
    encoders: dict[str, nn.Module] = {"distilled": encoder}
    if cfg.random_init_baseline:
        encoders["random_init"] = build_initial_encoder(spec, cfg.seed)
    out_dir = Path(metrics_dir) / dataset
    (out_dir / "features").mkdir(parents=True, exist_ok=True)
    result_rows = []
    for variant, model in encoders.items():
        scores, arrays = score_encoder(model, store, labels, n_valid, folds, cfg, len(classes))
        np.savez_compressed(out_dir / "features" / f"{variant}.npz", classes=np.asarray(classes),
                            **arrays)
        name = method if variant == "distilled" else f"{spec.name} random init"
        result_rows.append({"method": name, "dataset": dataset, "variant": variant,
                            "run": run_name, "folds": cfg.folds, **scores})
        log.info("evaluate %s %s: acc@1 %.3f, linear %.3f, knn %.3f", dataset, variant,
                 scores["acc@1"], scores["linear_acc"], scores["knn_acc"])
    record = {"dataset": dataset, "run": str(run_dir), "classes": classes,
              "teacher": meta.get("teacher"), "objective": meta.get("objective"),
              "student": spec.name, "rows": result_rows}
    (out_dir / "evaluate.json").write_text(json.dumps(record, indent=2))
    return record
