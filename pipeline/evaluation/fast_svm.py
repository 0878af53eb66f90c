"""The SVM protocols of ``svm.py`` with the same answers in a fraction of the time.

A plain ``GridSearchCV`` of ``SVC(probability=True)`` fits 9 C values x 5 folds, and every
``probability=True`` fit runs five more internal fits for Platt scaling. Three things make
the same search cheaper without changing its result:

1. The grid search scores accuracy, which comes from ``predict()``: libsvm trains the same
   machine with or without Platt scaling (the calibration is extra fits beside it), so the
   search runs with ``probability=False``. Only the final refit computes probabilities.
2. ``gamma="scale"`` depends only on the training fold, so the RBF kernel of a fold is the
   same for every C. It is computed once per fold, exactly as ``SVC`` does
   (``gamma = 1 / (n_features * X.var())`` on the fold's float64 rows, ``1.0`` when the
   variance is 0), and every C is fitted on it with ``kernel="precomputed"``.
3. Folds run in threads (libsvm releases the GIL), so the kernels are shared, not copied.

The best C is chosen like ``GridSearchCV``: highest mean fold accuracy, first C of the grid
on ties. The final model (``refit``) is by default fitted on the precomputed kernel of all
rows too, with ``probability=True`` and the same Platt seed as the slow path's; its kernel
values differ from libsvm's own RBF only by float rounding (~1e-16), so the probabilities
agree to ~1e-14 and C, predictions and Acc@k are the same (pinned by the tests). ``refit=
"sklearn"`` fits the plain RBF estimator itself (bit-identical probabilities), at 3-4x the
cost of the whole search on 128-d features and more on wider ones (``bench_svm`` measures
both).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC

from comodo.pipeline.evaluation.svm import (
    C_GRID,
    DIRECT_C,
    MAX_TRAIN,
    REFERENCE_MAX_ITER,
    ReferenceModel,
    comodo_facts,
    comodo_pipeline,
    l2_rows,
    n_folds_for,
    platt_allowed,
    rank_by_probability,
    rank_classes,
    reference_design,
    reference_facts,
    reference_svc,
    score_model,
    stratified_cap,
)
from comodo.pipeline.registry import Registry
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

REFITS = ("kernel", "sklearn")
FastProtocol = Callable[..., dict[str, Any]]
FAST_SVM_PROTOCOLS: Registry[FastProtocol] = Registry("svm protocol")
Folds = Iterator[tuple[np.ndarray, np.ndarray]]
Prepare = Callable[[np.ndarray], np.ndarray]  # raw features -> the rows the SVC sees


def scale_gamma(x_train: np.ndarray) -> float:
    """``SVC(gamma="scale")`` on ``x_train`` (n, d): 1 / (d * var), 1.0 for constant input."""
    var = np.asarray(x_train, dtype=np.float64).var()
    return 1.0 / (x_train.shape[1] * var) if var != 0 else 1.0


@dataclass(frozen=True)
class FoldKernels:
    """One fold's RBF kernels, shared by every C of the grid."""

    k_train: np.ndarray  # (n_tr, n_tr)
    y_train: np.ndarray
    k_val: np.ndarray  # (n_val, n_tr)
    y_val: np.ndarray


def fold_kernels(z: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                 squared: np.ndarray | None = None) -> FoldKernels:
    """The fold's kernels with ``gamma="scale"`` of its train rows. ``squared``: the (n, n)
    squared distances of all of ``z``'s rows, when the rows are the same for every fold (the
    reference protocol), so each fold only takes its blocks instead of recomputing them."""
    z = np.asarray(z, dtype=np.float64)  # (n, d), as SVC converts it
    if squared is None:
        return rbf_fold(z[train], y[train], z[val], y[val])
    gamma = scale_gamma(z[train])
    return FoldKernels(np.exp(-gamma * squared[np.ix_(train, train)]), y[train],
                       np.exp(-gamma * squared[np.ix_(val, train)]), y[val])


def rbf_fold(z_train: np.ndarray, y_train: np.ndarray, z_val: np.ndarray, y_val: np.ndarray
             ) -> FoldKernels:
    """A fold's kernels from its own rows, with ``gamma="scale"`` of ``z_train``."""
    z_train, z_val = np.asarray(z_train, dtype=np.float64), np.asarray(z_val, dtype=np.float64)
    gamma = scale_gamma(z_train)
    return FoldKernels(rbf_kernel(z_train, z_train, gamma=gamma), y_train,
                       rbf_kernel(z_val, z_train, gamma=gamma), y_val)


def fold_accuracy(fold: FoldKernels, c: float, max_iter: int = -1) -> float:
    """Accuracy on the fold's val rows of an RBF SVC with ``C=c`` on its precomputed kernel."""
    svc = SVC(kernel="precomputed", C=c, max_iter=max_iter).fit(fold.k_train, fold.y_train)
    return float(np.mean(svc.predict(fold.k_val) == fold.y_val))


def best_of_grid(scores: np.ndarray, grid: tuple[float, ...]) -> float:
    """GridSearchCV's choice from (n_candidates, n_folds) scores: best mean, first on ties."""
    means = np.average(scores, axis=1)
    rank = rankdata(-means, method="min")
    return float(grid[int(np.argmin(rank))])


def search_grid(make_fold: Callable[[np.ndarray, np.ndarray], FoldKernels], folds: Folds,
                n_jobs: int, grid: tuple[float, ...] = C_GRID, max_iter: int = -1
                ) -> tuple[float, dict[float, float]]:
    """Best C and the mean fold accuracy per C. The kernels are made per fold, then every
    (fold, C) fit is its own task, so the threads stay busy to the end (a fold's fits take
    from 9 ms at C = 1e-4 to 60 ms near the best C on 800 rows)."""
    with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
        kernels = parallel(delayed(make_fold)(tr, va) for tr, va in folds)
        flat = parallel(delayed(fold_accuracy)(fold, c, max_iter) for c in grid for fold in kernels)
    scores = np.asarray(flat).reshape(len(grid), len(kernels))  # (n_candidates, n_folds)
    cv = {float(c): float(m) for c, m in zip(grid, np.average(scores, axis=1), strict=True)}
    return best_of_grid(scores, grid), cv


@dataclass(frozen=True)
class KernelModel:
    """An SVC fitted on a precomputed RBF kernel, used like the RBF one on raw features."""

    prepare: Prepare
    z_train: np.ndarray  # (n, D) float64 rows the kernel was computed from
    gamma: float
    svc: SVC  # kernel="precomputed"

    @property
    def classes_(self) -> np.ndarray:
        return self.svc.classes_

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(self.prepare(x), dtype=np.float64)  # (N, D)
        return rbf_kernel(z, self.z_train, gamma=self.gamma)  # (N, n)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.svc.predict(self._kernel(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.svc.predict_proba(self._kernel(x))


def kernel_refit(svc: SVC, z: np.ndarray, y: np.ndarray, prepare: Prepare,
                 squared: np.ndarray | None = None) -> KernelModel:
    """``svc`` (its C, Platt seed, max_iter) fitted on the precomputed RBF kernel of ``z``
    (from ``squared``, the rows' squared distances, when the search computed them)."""
    z = np.asarray(z, dtype=np.float64)  # (n, D)
    gamma = scale_gamma(z)
    svc = svc.set_params(kernel="precomputed")
    kernel = rbf_kernel(z, z, gamma=gamma) if squared is None else np.exp(-gamma * squared)
    with platt_allowed():
        svc.fit(kernel, y)
    return KernelModel(prepare, z, gamma, svc)


@FAST_SVM_PROTOCOLS.register("reference")
def fast_reference(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                   test_y: np.ndarray, seed: int = 0, n_jobs: int = 2, refit: str = "kernel"
                   ) -> dict[str, Any]:
    """``svm.reference_protocol`` with the search (and the refit) on precomputed kernels."""
    design = reference_design(train_x, train_y)
    z, y = design.z, design.y
    best_c, cv_acc, squared = DIRECT_C, None, None
    if design.grid:
        folds = StratifiedKFold(n_splits=5).split(z, y)  # GridSearchCV's cv=5 for a classifier
        squared = euclidean_distances(np.asarray(z, dtype=np.float64), squared=True)  # (n, n)
        best_c, cv = search_grid(lambda tr, va: fold_kernels(z, y, tr, va, squared), folds, n_jobs,
                                 max_iter=REFERENCE_MAX_ITER)
        cv_acc = cv[best_c]
    svc = reference_svc(best_c, seed, design.grid)
    if refit == "kernel":
        model: Any = kernel_refit(svc, z, y, lambda x: design.scaler.transform(l2_rows(x)), squared)
    else:
        with platt_allowed():
            model = ReferenceModel(design.scaler, svc.fit(z, y))
    log.info("fast svm (reference): C=%g, %s, %d windows", best_c,
             "grid" if design.grid else "small-data branch", len(y))
    return score_model(model, rank_by_probability, test_x, test_y,
                       reference_facts(design, best_c, cv_acc))


def _comodo_fold(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray
                 ) -> FoldKernels:
    """Scaling fitted on the fold's train rows, as the comodo pipeline does inside the search."""
    prep = make_pipeline(Normalizer(), StandardScaler()).fit(x[train])
    return rbf_fold(prep.transform(x[train]), y[train], prep.transform(x[val]), y[val])


@FAST_SVM_PROTOCOLS.register("comodo")
def fast_comodo(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, seed: int = 0, n_jobs: int = 2, refit: str = "kernel"
                ) -> dict[str, Any]:
    """``svm.comodo_protocol``: seeded cap, shuffled folds, top-1 from ``predict()``."""
    keep = stratified_cap(train_y, MAX_TRAIN, seed)
    x = np.asarray(train_x, dtype=np.float64)[keep]
    y = np.asarray(train_y)[keep]
    n_folds = n_folds_for(y)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y)
    best_c, cv = search_grid(lambda tr, va: _comodo_fold(x, y, tr, va), folds, n_jobs)
    if refit == "kernel":
        prep = make_pipeline(Normalizer(), StandardScaler()).fit(x)
        model: Any = kernel_refit(comodo_pipeline(best_c, seed)[-1], prep.transform(x), y,
                                  prep.transform)
    else:
        with platt_allowed():
            model = comodo_pipeline(best_c, seed).fit(x, y)
    log.info("fast svm (comodo): C=%g, cv acc %.3f over %d folds of %d windows", best_c,
             cv[best_c], n_folds, len(y))
    return score_model(model, rank_classes, np.asarray(test_x, dtype=np.float64), test_y,
                       comodo_facts(best_c, cv[best_c], n_folds, len(y)))


def fast_svm_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                      test_y: np.ndarray, seed: int = 0, n_jobs: int = 2,
                      protocol: str = "reference", refit: str = "kernel") -> dict[str, Any]:
    """Drop-in for ``svm.svm_protocol``: the same keys and answers for each ``protocol``.

    ``refit``: ``kernel`` (the final fit on the precomputed kernel) or ``sklearn`` (the plain
    RBF estimator, bit-identical probabilities, slower).
    """
    if refit not in REFITS:
        raise ConfigError(f"unknown refit {refit!r}; valid: {', '.join(REFITS)}")
    return FAST_SVM_PROTOCOLS.get(protocol)(train_x, train_y, test_x, test_y, seed, n_jobs,
                                            refit)
