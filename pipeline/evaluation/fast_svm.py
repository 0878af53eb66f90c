"""The SVM protocol of ``svm.py`` with the same answers in a fraction of the time.

A plain ``GridSearchCV(make_pipeline(Normalizer(), StandardScaler(), SVC(probability=True)))``
fits 9 C values x 5 folds, and every ``probability=True`` fit runs five more internal fits for
Platt scaling. Three things make the same search cheaper without changing its result:

1. The grid search scores accuracy, which comes from the decision function: Platt scaling
   cannot change it (libsvm trains the same machine and then calibrates), so the search runs
   with ``probability=False``. Only the final refit computes probabilities.
2. ``gamma="scale"`` depends only on the training fold, so the RBF kernel of a fold is the
   same for every C. It is computed once per fold, exactly as ``SVC`` does
   (``gamma = 1 / (n_features * X.var())`` on the standardised fold, ``1.0`` when the variance
   is 0), and every C is fitted on it with ``kernel="precomputed"``.
3. Folds run in threads (libsvm releases the GIL), so the kernels are shared, not copied.

The best C is chosen like ``GridSearchCV``: highest mean fold accuracy, first C of the grid
on ties. The final model is the plain ``rbf`` pipeline with ``probability=True`` and the
same ``random_state``, i.e. the very model ``GridSearchCV(refit=True)`` would fit.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC

from comodo.pipeline.evaluation.svm import C_GRID, MAX_TRAIN, TOP_K, rank_classes, stratified_cap
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SvmFit:
    """The fitted protocol: final pipeline, chosen C and the grid's mean fold accuracies."""

    model: Pipeline
    best_c: float
    cv_scores: dict[float, float]
    n_folds: int
    n_train: int

    @property
    def cv_acc(self) -> float:
        return self.cv_scores[self.best_c]


def scale_gamma(x_train: np.ndarray) -> float:
    """``SVC(gamma="scale")`` on ``x_train`` (n, d): 1 / (d * var), 1.0 for constant input."""
    var = np.asarray(x_train, dtype=np.float64).var()
    return 1.0 / (x_train.shape[1] * var) if var != 0 else 1.0


@contextmanager
def platt_allowed() -> Iterator[None]:
    """Silence scikit-learn's deprecation of ``SVC(probability=True)``: it is the protocol."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
        yield


def protocol_pipeline(c: float, seed: int, probability: bool = True) -> Pipeline:
    """L2-normalise, standardise, RBF SVC(gamma="scale") with ``C=c``."""
    return make_pipeline(Normalizer(), StandardScaler(),
                         SVC(kernel="rbf", gamma="scale", C=c, probability=probability,
                             random_state=seed))


def n_folds_for(labels: np.ndarray) -> int:
    """At most 5 stratified folds, fewer when the smallest class has fewer windows."""
    counts = np.unique(labels, return_counts=True)[1]
    n_folds = int(min(5, counts.min()))
    if len(counts) < 2 or n_folds < 2:
        raise ConfigError(
            f"the SVM protocol needs >= 2 classes with >= 2 train windows each; got class "
            f"counts {counts.tolist()}; add labelled train windows or drop the rare classes"
        )
    return n_folds


def _fold_scores(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                 grid: tuple[float, ...]) -> list[float]:
    """Accuracy on ``val`` of an RBF SVC per C, all sharing one precomputed kernel."""
    prep = make_pipeline(Normalizer(), StandardScaler()).fit(x[train])
    z_train = prep.transform(x[train]).astype(np.float64)  # (n_tr, d)
    z_val = prep.transform(x[val]).astype(np.float64)  # (n_val, d)
    gamma = scale_gamma(z_train)
    k_train = rbf_kernel(z_train, z_train, gamma=gamma)  # (n_tr, n_tr)
    k_val = rbf_kernel(z_val, z_train, gamma=gamma)  # (n_val, n_tr)
    scores = []
    for c in grid:
        svc = SVC(kernel="precomputed", C=c).fit(k_train, y[train])
        scores.append(float(np.mean(svc.predict(k_val) == y[val])))
    return scores


def best_of_grid(scores: np.ndarray, grid: tuple[float, ...]) -> float:
    """GridSearchCV's choice from (n_candidates, n_folds) scores: best mean, first on ties."""
    means = np.average(scores, axis=1)
    rank = rankdata(-means, method="min")
    return float(grid[int(np.argmin(rank))])


def fit_fast_svm(train_x: np.ndarray, train_y: np.ndarray, seed: int = 0, n_jobs: int = 2,
                 grid: tuple[float, ...] = C_GRID, cap: int = MAX_TRAIN) -> SvmFit:
    """Grid-search C on a stratified cap of the train windows, then refit with probabilities."""
    keep = stratified_cap(train_y, cap, seed)
    x = np.asarray(train_x, dtype=np.float64)[keep]
    y = np.asarray(train_y)[keep]
    n_folds = n_folds_for(y)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y)
    per_fold = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fold_scores)(x, y, tr, va, grid) for tr, va in folds
    )
    scores = np.asarray(per_fold).T  # (n_candidates, n_folds)
    best_c = best_of_grid(scores, grid)
    with platt_allowed():
        model = protocol_pipeline(best_c, seed).fit(x, y)
    cv = {float(c): float(m) for c, m in zip(grid, np.average(scores, axis=1))}
    log.info("fast svm: C=%g, cv acc %.3f over %d folds of %d windows", best_c, cv[best_c],
             n_folds, len(y))
    return SvmFit(model, best_c, cv, n_folds, int(len(y)))


def plain_svm_fit(train_x: np.ndarray, train_y: np.ndarray, seed: int = 0, n_jobs: int = 1,
                  grid: tuple[float, ...] = C_GRID, cap: int = MAX_TRAIN) -> SvmFit:
    """The reference: scikit-learn's GridSearchCV over the probability=True pipeline."""
    keep = stratified_cap(train_y, cap, seed)
    x, y = np.asarray(train_x, dtype=np.float64)[keep], np.asarray(train_y)[keep]
    n_folds = n_folds_for(y)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(protocol_pipeline(1.0, seed), {"svc__C": list(grid)}, cv=folds,
                          n_jobs=n_jobs)
    with platt_allowed():
        search.fit(x, y)
    cv = {float(c): float(m) for c, m in zip(grid, search.cv_results_["mean_test_score"])}
    best_c = float(search.best_params_["svc__C"])
    return SvmFit(search.best_estimator_, best_c, cv, n_folds, int(len(y)))


def topk_accuracy(ranked: np.ndarray, labels: np.ndarray,
                  ks: tuple[int, ...] = TOP_K) -> dict[str, float | None]:
    """``acc@k`` from (N, K) classes ranked best first (None without items)."""
    out: dict[str, float | None] = {}
    for k in ks:
        hit = (ranked[:, :k] == np.asarray(labels)[:, None]).any(axis=1)
        out[f"acc@{k}"] = float(hit.mean()) if len(hit) else None
    return out


def score_fit(fit: SvmFit, test_x: np.ndarray, test_y: np.ndarray) -> dict[str, Any]:
    """Acc@1/3/5 and the run's facts, keyed like ``svm.svm_protocol``; adds ``pred``.

    Classes are ranked as ``svm.rank_classes`` does: the SVM's own prediction first, the
    other classes by Platt probability.
    """
    x = np.asarray(test_x, dtype=np.float64)
    ranked = rank_classes(fit.model, x) if len(x) else np.zeros((0, 1), np.int64)  # (N, K)
    out: dict[str, Any] = {"best_C": fit.best_c, "cv_acc": fit.cv_acc, "n_train": fit.n_train,
                           "n_test": int(len(test_y)), "n_folds": fit.n_folds}
    out.update(topk_accuracy(ranked, test_y))
    out["pred"] = ranked[:, 0]
    return out


def fast_svm_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                      test_y: np.ndarray, seed: int = 0, n_jobs: int = 2) -> dict[str, Any]:
    """Drop-in for ``svm.svm_protocol``: same keys and answers, plus ``pred`` (top-1 class)."""
    return score_fit(fit_fast_svm(train_x, train_y, seed, n_jobs), test_x, test_y)
