"""Stage ``benchmark``: the paper's Table 1 for one dataset -> metrics/<ds>/benchmark.json.

Every method of ``methods`` (kinds in ``benchmark_methods``: random init, a given pretrained
encoder = zero-shot, distillation with an objective, label-trained students) is run once per
seed of ``seeds``; each row holds the mean Acc@1/3/5 over seeds and their population std
(``std@k``), plus the per-seed values. Distill runs start from the ``distill`` section,
change only the objective, the seed and the method's ``distill`` keys, and are written to
``runs/<ds>/benchmark/<objective>-seed<seed>/`` (an existing finished run is reused).

``folds: subject`` runs every method once per seed and per subject left out (leave one
subject out: the other subjects' labelled windows train, whatever their split, distill runs
included); a row is then the mean over folds of each fold's mean over seeds, its std the
population std across folds, and ``per_fold`` keeps each fold's row.

The file follows the report's results schema (``pipeline.report.inputs``) with
``"table": "benchmark"``, so ``comodo report`` renders it as its own table: rows methods,
columns dataset x Acc@1/3/5.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation.folds import Fold, make_folds
from comodo.pipeline.evaluation.probes import mean_std
from comodo.pipeline.evaluation.supervised import SupervisedSettings
from comodo.pipeline.stages.benchmark_methods import METHODS, Context, MethodSpec
from comodo.pipeline.stages.distill import DistillConfig, check_config
from comodo.pipeline.stages.evaluate import open_windows

log = logging.getLogger(__name__)

TOP_K = (1, 3, 5)


def default_methods() -> list[MethodSpec]:
    return [
        MethodSpec(name="random init", kind="random_init"),
        MethodSpec(name="supervised", kind="supervised", svm_on_features=True),
        MethodSpec(name="COMODO", kind="distill", objective="comodo"),
        MethodSpec(name="InfoNCE", kind="distill", objective="infonce"),
        MethodSpec(name="L2", kind="distill", objective="l2"),
    ]


class BenchmarkConfig(StageConfig):
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    methods: list[MethodSpec] = Field(default_factory=default_methods, min_length=1)
    supervised_epochs: int = Field(30, ge=1)
    supervised_batch_size: int = Field(32, ge=2)
    supervised_lr: float = Field(1e-3, gt=0)
    train_split: str = "train"
    test_split: str = "test"
    folds: Literal["split", "subject"] = "split"  # subject: leave one subject out
    n_jobs: int = Field(2, ge=1)
    protocol: Literal["reference", "comodo"] = "reference"  # SVM protocol (evaluation.svm)
    table: str = "benchmark"  # the report table the rows go to


def load_contexts(cfg: BenchmarkConfig, distill_cfg: DistillConfig, data_dir: str,
                  dataset: str, runs_dir: Path, storage_options: dict[str, Any] | None = None
                  ) -> tuple[list[Context], list[str]]:
    """One context per fold: its train and test windows in memory, with the method settings."""
    index, store, classes = open_windows(data_dir, dataset, storage_options)
    labels = index["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    n_valid = index["n_valid"].to_numpy().astype(np.int64)
    folds = make_folds(index, cfg.folds, cfg.train_split, cfg.test_split, store.url)
    used = np.unique(np.concatenate([np.concatenate([f.train, f.test]) for f in folds]))
    imu_all = np.asarray(store.read_span("imu", used.min(), used.max() + 1), np.float32)
    settings = SupervisedSettings(cfg.supervised_epochs, cfg.supervised_batch_size,
                                  cfg.supervised_lr, distill_cfg.weight_decay)
    tr, te = cfg.train_split, cfg.test_split

    def context(fold: Fold) -> Context:
        rows = {tr: fold.train, te: fold.test}
        return Context(str(data_dir), dataset, Path(runs_dir), distill_cfg,
                       x={k: imu_all[r - used.min()] for k, r in rows.items()},
                       y={k: labels[r] for k, r in rows.items()}, n_classes=len(classes),
                       supervised=settings, n_jobs=cfg.n_jobs, train=tr, test=te,
                       protocol=cfg.protocol, storage_options=storage_options or {},
                       n_valid={k: n_valid[r] for k, r in rows.items()}, rows=rows,
                       fold=fold.name, train_subjects=fold.train_subjects)

    return [context(f) for f in folds], classes


def load_context(cfg: BenchmarkConfig, distill_cfg: DistillConfig, data_dir: str,
                 dataset: str, runs_dir: Path, storage_options: dict[str, Any] | None = None
                 ) -> tuple[Context, list[str]]:
    """The dataset's own split (``train_split`` -> ``test_split``) as one context."""
    contexts, classes = load_contexts(cfg.model_copy(update={"folds": "split"}), distill_cfg,
                                      data_dir, dataset, runs_dir, storage_options)
    return contexts[0], classes


def aggregate(name: str, dataset: str, per_seed: list[dict[str, float]], seeds: list[int],
              table: str) -> dict[str, Any]:
    """One results row: mean and std over seeds of every score."""
    row: dict[str, Any] = {"method": name, "dataset": dataset, "table": table,
                           "n_seeds": len(per_seed), "seeds": list(seeds)}
    for key in per_seed[0]:
        mean, std = mean_std([s[key] for s in per_seed])
        row[key] = mean
        row[key.replace("acc@", "std@") if key.startswith("acc@") else f"std:{key}"] = std
    row["per_seed"] = per_seed
    return row


def aggregate_folds(name: str, dataset: str, per_fold: dict[str, list[dict[str, float]]],
                    seeds: list[int], table: str) -> dict[str, Any]:
    """One row from each fold's per-seed scores: over seeds for one fold (the dataset's
    split), else mean and population std across the folds' means over seeds."""
    rows = {fold: aggregate(name, dataset, s, seeds, table) for fold, s in per_fold.items()}
    if list(rows) == ["split"]:
        return rows["split"]
    means = [{k: r[k] for k in per_fold[f][0]} for f, r in rows.items()]
    row = aggregate(name, dataset, means, seeds, table)
    del row["per_seed"]
    row.update(folds="subject", n_folds=len(rows), per_fold=[
        {"fold": f, **{k: v for k, v in r.items() if k not in ("method", "dataset", "table")}}
        for f, r in rows.items()])
    return row


def run(cfg: BenchmarkConfig, distill_cfg: DistillConfig, data_dir: str, dataset: str,
        runs_dir: Path = Path("runs"), metrics_dir: Path = Path("metrics"),
        storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every method for every seed; write and return ``metrics/<ds>/benchmark.json``."""
    for method in cfg.methods:  # unknown names fail before any training
        METHODS.get(method.kind)
    check_config(distill_cfg)
    contexts, classes = load_contexts(cfg, distill_cfg, data_dir, dataset, runs_dir,
                                      storage_options)
    rows = []
    for method in cfg.methods:
        per_row: dict[str, dict[str, list[dict[str, float]]]] = {}
        for ctx in contexts:
            for seed in cfg.seeds:
                for name, scores in METHODS.get(method.kind)(method, ctx, seed).items():
                    per_row.setdefault(name, {}).setdefault(ctx.fold, []).append(scores)
                    log.info("benchmark %s %s %s seed %d: acc@1 %.3f", dataset, name,
                             ctx.fold, seed, scores["acc@1"])
        rows += [aggregate_folds(n, dataset, f, cfg.seeds, cfg.table) for n, f in per_row.items()]
    ctx = contexts[0]
    record = {"dataset": dataset, "table": cfg.table, "classes": classes,
              "student": ctx.spec.to_dict(), "teacher": distill_cfg.teacher, "folds": cfg.folds,
              "n_train": [int(len(c.y[c.train])) for c in contexts] if len(contexts) > 1
              else int(len(ctx.y[cfg.train_split])),
              "n_test": [int(len(c.y[c.test])) for c in contexts] if len(contexts) > 1
              else int(len(ctx.y[cfg.test_split])), "svm_protocol": cfg.protocol,
              "rows": rows}
    out = Path(metrics_dir) / dataset / f"{cfg.table}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    return record
