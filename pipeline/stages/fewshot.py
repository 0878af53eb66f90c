"""Stage ``fewshot``: k-shot curves for every encoder of a benchmark -> metrics/<ds>/fewshot.json.

For every method of the ``benchmark`` section (random init, each distilled objective,
supervised, zero-shot checkpoints, raw IMU statistics) and every benchmark seed, the encoder's
frozen features of the train and test windows are computed once; then for every ``k`` of
``shots`` the same ``draws`` labelled sets of ``k`` train windows per class
(``evaluation.fewshot.make_draws``: identical across encoders, recorded in the output) train a
classifier on the features and score the test windows (Acc@1/3/5, macro-F1). Each curve point
is the mean and 95% interval (Student t, clipped to [0, 1]) over seeds x draws, with each
seed's mean over its draws and the std of those means (the spread over encoder seeds); each
pair of methods gets a Wilcoxon signed-rank test over the same (seed, draw) pairs.

``supervised_on_draws`` adds, for every ``supervised`` method, the curve of that student and
head trained from scratch on each draw's labelled windows only (as many optimiser steps as on
every label: ``evaluation.supervised.same_steps``) and scored by its head: what the labels
alone give, next to the frozen encoders. Each training costs a supervised run, so
``supervised_draws`` can cap them at the first draws of each k (the others' first draws: the
tests pair on those).

``folds: subject`` repeats everything with one fold per subject (test = that subject's labelled
windows, train = every other subject's), so each point is also reported per subject; encoders
trained with labels (``supervised``) are retrained on each fold's train windows.

A ``k`` that some class cannot give is skipped for that fold, counted and named in
``skipped`` (and the log), never silently shortened.
"""

from __future__ import annotations

import json
import logging
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from comodo.pipeline.config import StageConfig
from comodo.pipeline.evaluation import fewshot as fs
from comodo.pipeline.evaluation.supervised import predict_logits, same_steps, train_supervised
from comodo.pipeline.stages.benchmark import BenchmarkConfig, load_contexts
from comodo.pipeline.stages.benchmark_methods import FEATURES, Context, MethodSpec, supervised_spec
from comodo.pipeline.stages.distill import DistillConfig, check_config
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

ALL_SUBJECTS = "all subjects"


class FewshotConfig(StageConfig):
    shots: list[int | str] = Field(default_factory=lambda: [1, 2, 5, 10, "all"], min_length=1)
    draws: int = Field(20, ge=1)  # labelled sets drawn per k (per fold and seed)
    classifier: str = "logreg"  # logreg | svm | knn
    methods: list[str] | None = None  # names of benchmark methods to include; None: every one
    folds: Literal["split", "subject"] = "split"  # the dataset's train/test split, or one per subject
    seed: int = 0  # seeds the draws (not the encoders: those use the benchmark seeds)
    table: str = "fewshot"
    supervised_on_draws: bool = False  # also train each supervised method on each draw's labels only
    supervised_draws: int | None = Field(None, ge=1)  # those trainings per k: the first n draws (None: all)

    @field_validator("shots")
    @classmethod
    def _shots(cls, value: list[int | str]) -> list[int | str]:
        return fs.parse_shots(value)


def selected(cfg: FewshotConfig, bench: BenchmarkConfig) -> list:
    """The benchmark methods named by ``methods`` (all when None); an unknown name is an error."""
    if cfg.methods is None:
        return list(bench.methods)
    by_name = {m.name: m for m in bench.methods}
    unknown = [n for n in cfg.methods if n not in by_name]
    if unknown:
        raise ConfigError(f"fewshot.methods names {unknown}, not methods of the benchmark "
                          f"section; its methods: {sorted(by_name)}")
    return [by_name[n] for n in cfg.methods]


# scores[method][k][seed] -> one score dict per draw, in draw order
Scores = dict[str, dict[str, dict[int, list[dict[str, float]]]]]


def fold_scores(cfg: FewshotConfig, bench: BenchmarkConfig, ctx: Context, fold: str,
                skipped: list[dict[str, Any]]) -> tuple[Scores, dict]:
    """scores[method][k][seed] -> score dicts over the draws, and the draws used."""
    train_y = ctx.y[ctx.train]
    draws: dict[str, list[fs.Draw]] = {}
    for k in cfg.shots:
        try:
            draws[str(k)] = fs.make_draws(train_y, k, cfg.draws, cfg.seed)
        except ConfigError as err:
            skipped.append({"fold": fold, "k": k, "reason": str(err)})
            log.warning("fewshot %s %s: k=%s skipped: %s", ctx.dataset, fold, k, err)
    scores: Scores = {}
    for seed in bench.seeds:
        for method in selected(cfg, bench):
            for name, (train_x, test_x) in FEATURES.get(method.kind)(method, ctx, seed).items():
                per_k = scores.setdefault(name, {})
                for k, k_draws in draws.items():
                    per_k.setdefault(k, {})[seed] = fs.evaluate_draws(
                        cfg.classifier, train_x, train_y, test_x, ctx.y[ctx.test], k_draws, seed)
                log.info("fewshot %s %s %s seed %d done", ctx.dataset, fold, name, seed)
            if cfg.supervised_on_draws and method.kind == "supervised":
                per_k = scores.setdefault(on_draws_name(method), {})
                for k, k_draws in draws.items():
                    per_k.setdefault(k, {})[seed] = [trained_on_draw(method, ctx, d, seed)
                                                     for d in k_draws[: cfg.supervised_draws]]
                log.info("fewshot %s %s %s seed %d done", ctx.dataset, fold, on_draws_name(method),
                         seed)
    used = {k: [d.rows.tolist() for d in v] for k, v in draws.items()}
    return scores, used


def on_draws_name(method: MethodSpec) -> str:
    return f"{method.name}, trained on the k labels only"


def trained_on_draw(method: MethodSpec, ctx: Context, draw: fs.Draw, seed: int) -> dict[str, float]:
    """The supervised student and head trained from scratch on ``draw``'s train windows only,
    for the steps of a training on every label, scored by the head on the test windows."""
    tr, te = ctx.train, ctx.test
    valid = ctx.n_valid.get(tr)
    settings = same_steps(ctx.supervised, len(ctx.y[tr]), len(draw.rows))
    model = train_supervised(supervised_spec(method, ctx), ctx.x[tr][draw.rows], ctx.y[tr][draw.rows],
                             ctx.n_classes, settings, seed, None if valid is None else valid[draw.rows])
    logits = predict_logits(model, ctx.x[te], ctx.n_valid.get(te))  # (N_test, n_classes)
    return fs.score(logits, np.arange(ctx.n_classes), ctx.y[te], ctx.n_classes)


def pooled_values(per_seed: dict[int, list[dict[str, float]]]) -> list[dict[str, float]]:
    """Every (seed, draw) score dict, seed after seed: the pairing order of the tests."""
    return [v for seed in sorted(per_seed) for v in per_seed[seed]]


def point(k: str, per_seed: dict[int, list[dict[str, float]]]) -> dict[str, Any]:
    """Mean and 95% interval over seeds x draws of every score, each seed's mean over its
    draws (``per_seed``) and the population std of those means (``seed_std``)."""
    values = pooled_values(per_seed)
    out: dict[str, Any] = {"k": k, "n": len(values)}
    for key in values[0]:
        out[key] = fs.interval([v[key] for v in values])
    seed_means = {str(seed): {key: float(np.mean([v[key] for v in vals])) for key in vals[0]}
                  for seed, vals in sorted(per_seed.items())}
    out["per_seed"] = seed_means
    out["seed_std"] = {key: float(np.std([m[key] for m in seed_means.values()]))
                       for key in values[0]}
    return out


def merge_into(pooled: Scores, scores: Scores) -> None:
    """Append a fold's draws to ``pooled``, per method, k and seed (subjects pooled)."""
    for method, per_k in scores.items():
        for k, per_seed in per_k.items():
            for seed, values in per_seed.items():
                pooled.setdefault(method, {}).setdefault(k, {}).setdefault(seed, []).extend(values)


def summarise(scores: Scores) -> list[dict[str, Any]]:
    """One curve per method: a point per k (``point``)."""
    return [{"method": method, "points": [point(k, per_seed) for k, per_seed in per_k.items()]}
            for method, per_k in scores.items()]


def paired(folds: list[Scores], a: str, b: str, k: str, key: str) -> tuple[list[float], list[float]]:
    """``key`` of methods ``a`` and ``b`` on the same (fold, seed, draw)s: in each fold and
    seed, the draws both were scored on (the first ones, where one has fewer)."""
    xa: list[float] = []
    xb: list[float] = []
    for scores in folds:
        for seed, values in sorted(scores[a].get(k, {}).items()):  # fold skipped k: none
            other = scores[b].get(k, {}).get(seed, [])
            n = min(len(values), len(other))
            xa += [v[key] for v in values[:n]]
            xb += [v[key] for v in other[:n]]
    return xa, xb


def compare(folds: list[Scores], key: str = "acc@1") -> list[dict[str, Any]]:
    """Paired Wilcoxon tests of every pair of methods at every k, over the same (fold, seed,
    draw)s of ``folds`` (one fold's scores, or every fold's for the pooled subjects)."""
    out = []
    for a, b in combinations(folds[0], 2):
        for k in dict.fromkeys(k for scores in folds for k in scores[a]):  # a fold may skip a k
            test = fs.paired_test(*paired(folds, a, b, k, key))
            out.append({"a": a, "b": b, "k": k, "score": key, **test})
    return out


def run(cfg: FewshotConfig, bench: BenchmarkConfig, distill_cfg: DistillConfig, data_dir: str,
        dataset: str, runs_dir: Path = Path("runs"), metrics_dir: Path = Path("metrics"),
        storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every encoder x k x draw (x subject); writes and returns ``metrics/<ds>/fewshot.json``."""
    fs.CLASSIFIERS.get(cfg.classifier)  # unknown names fail before any training
    for method in selected(cfg, bench):
        FEATURES.get(method.kind)
    check_config(distill_cfg)
    contexts, classes = load_contexts(bench.model_copy(update={"folds": cfg.folds}), distill_cfg,
                                      data_dir, dataset, runs_dir, storage_options)
    skipped: list[dict[str, Any]] = []
    results = []
    pooled: Scores = {}
    every_fold: list[Scores] = []
    for fold_ctx in contexts:
        fold = fold_ctx.fold
        scores, used = fold_scores(cfg, bench, fold_ctx, fold, skipped)
        merge_into(pooled, scores)
        every_fold.append(scores)
        results.append({"fold": fold, "n_train": int(len(fold_ctx.y[fold_ctx.train])),
                        "n_test": int(len(fold_ctx.y[fold_ctx.test])), "curves": summarise(scores),
                        "tests": compare([scores]), "draws": used})
    if cfg.folds == "subject":  # every subject's draws together: curves and paired tests
        results.insert(0, {"fold": ALL_SUBJECTS, "curves": summarise(pooled),
                           "tests": compare(every_fold)})
    record = {"dataset": dataset, "table": cfg.table, "classes": classes,
              "classifier": cfg.classifier, "folds": cfg.folds, "shots": [str(k) for k in cfg.shots],
              "n_draws": cfg.draws, "draw_seed": cfg.seed,
              "supervised_on_draws": cfg.supervised_on_draws, "supervised_draws": cfg.supervised_draws,
              "seeds": list(bench.seeds),
              "skipped": skipped, "results": results}
    out = Path(metrics_dir) / dataset / f"{cfg.table}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    return record
