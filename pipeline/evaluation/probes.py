"""Probes and scores beside the SVM protocol: linear probe, k-NN, macro-F1, per-class
accuracy, confusion matrix, and mean +- std over seeds.

Every probe standardises features with statistics of the train split only (after an L2
normalisation, as the SVM protocol does) and returns test-split predictions, so all scores
below come from the same predictions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from comodo.stores.errors import ConfigError


@dataclass(frozen=True)
class ProbeResult:
    """Test predictions of one probe and the scores computed from them."""

    name: str
    pred: np.ndarray
    accuracy: float
    macro_f1: float

    def to_dict(self) -> dict[str, Any]:
        return {"probe": self.name, "accuracy": self.accuracy, "macro_f1": self.macro_f1}


def _check(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> None:
    if len(train_x) != len(train_y):
        raise ConfigError(f"probe: {len(train_x)} train features but {len(train_y)} labels")
    if len(np.unique(train_y)) < 2:
        raise ConfigError("probe: the train split needs at least 2 classes; "
                          f"found {np.unique(train_y).tolist()}")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ConfigError(f"probe: features must be (N, D) with the same D; got train "
                          f"{train_x.shape}, test {test_x.shape}")


def _result(name: str, pred: np.ndarray, test_y: np.ndarray) -> ProbeResult:
    return ProbeResult(name, pred, accuracy(test_y, pred), macro_f1(test_y, pred))


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, c: float = 1.0, max_iter: int = 1000,
                 seed: int = 0) -> ProbeResult:
    """Multinomial logistic regression (L2, ``C=c``) on normalised, standardised features."""
    _check(train_x, train_y, test_x)
    model = linear_model(train_x, train_y, c, max_iter, seed)
    return _result("linear", model.predict(test_x), test_y)


def linear_model(train_x: np.ndarray, train_y: np.ndarray, c: float = 1.0, max_iter: int = 1000,
                 seed: int = 0) -> Pipeline:
    """The linear probe's fitted pipeline: L2-normalise, standardise, logistic regression."""
    model = make_pipeline(Normalizer(), StandardScaler(),
                          LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_x, train_y)
    return model


def knn_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
              test_y: np.ndarray, k: int = 20) -> ProbeResult:
    """k-NN with cosine distance, distance-weighted votes; ``k`` capped at the train size."""
    _check(train_x, train_y, test_x)
    k = max(1, min(k, len(train_x)))
    model = make_pipeline(StandardScaler(), Normalizer(),
                          KNeighborsClassifier(n_neighbors=k, weights="distance"))
    model.fit(train_x, train_y)
    return _result(f"knn{k}", model.predict(test_x), test_y)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] | None = None) -> float:
    """F1 averaged over classes with equal weight (classes of ``labels`` or of y_true)."""
    labels = np.unique(y_true) if labels is None else np.asarray(labels)
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,) recall of every class; NaN for classes without test windows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        mask = y_true == c
        if mask.any():
            out[c] = float(np.mean(y_pred[mask] == c))
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: rows true class, columns predicted class."""
    return sk_confusion(y_true, y_pred, labels=np.arange(n_classes)).astype(np.int64)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population std of finite values; (nan, nan) when there are none."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if not len(arr):
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std())


def over_seeds(fn: Callable[[int], dict[str, float]], seeds: Sequence[int]) -> dict[str, float]:
    """Run ``fn(seed)`` per seed; each numeric key ``k`` becomes ``k`` (mean) and ``std:k``."""
    runs = [fn(int(s)) for s in seeds]
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))] if runs else []
    out: dict[str, float] = {"n_seeds": float(len(runs))}
    for key in keys:
        out[key], out[f"std:{key}"] = mean_std([r[key] for r in runs])
    return out
