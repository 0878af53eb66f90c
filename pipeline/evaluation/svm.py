"""The paper's SVM protocol on frozen encoder features, in two named variants.

``svm_protocol(train_x, train_y, test_x, test_y, seed, protocol=...)`` is the entry point; it
returns ``best_C`` and ``acc@1/3/5`` (plus the run's facts). Both variants L2-normalise each
feature row, standardise, and fit an RBF SVC (``gamma="scale"``) with C from the grid
1e-4 ... 1e4; they differ in how:

``reference`` (default), as the reference implementation's ``train_svm_on_embeddings`` /
``evaluate_svm``:

1. rows L2-normalised (float32, ``F.normalize``); one StandardScaler fit on all train rows;
2. small data (``n_train // n_classes < 5`` or ``n_train < 50``): one SVC with C = 1e5, no
   search; otherwise at most 10,000 rows (stratified ``train_test_split(random_state=0)``),
   5-fold unshuffled stratified GridSearchCV of ``SVC(probability=True)`` (ties: smallest C),
   refit on those rows;
3. Platt scaling seeded as ``np.random.seed(seed)`` right before the fit would seed it;
   top-1 = argmax of ``predict_proba``; Acc@3/5 as ``top_k_accuracy_score``.

``comodo``: the cap is a seeded stratified sample, the scaler is fit per fold inside the
pipeline, the folds are shuffled with ``seed`` (fewer than 5 when a class is smaller), and
top-1 is the SVM's own ``predict()`` (Platt probabilities only order the other classes, see
``rank_classes``): Platt scaling can disagree with the decision function, badly so when the
grid picks a tiny C among tied folds.

This module holds the plain scikit-learn implementations; ``fast_svm`` gives the same answers
faster and is what the stages run.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC
from torch import nn

from comodo.pipeline.registry import Registry
from comodo.pipeline.students.base import encode
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

C_GRID = tuple(10.0**k for k in range(-4, 5))
MAX_TRAIN = 10_000
TOP_K = (1, 3, 5)
DIRECT_C = 1e5  # the reference's C when the data is too small for a grid search
REFERENCE_MAX_ITER = 10_000_000  # the reference grid's max_iter (its direct fit has none)

Protocol = Callable[..., dict[str, Any]]
SVM_PROTOCOLS: Registry[Protocol] = Registry("svm protocol")


@torch.inference_mode()
def encode_windows(encoder: nn.Module, store: ChunkedStore, rows: np.ndarray,
                   batch_size: int = 256, array: str = "imu", n_valid: np.ndarray | None = None
                   ) -> np.ndarray:
    """Features (len(rows), D) of the given rows, read chunk by chunk in row order;
    ``n_valid`` (one per window of the store, or None: all samples) is passed on, so the
    encoder reads each window up to its real samples."""
    encoder = encoder.eval()
    device = next(encoder.parameters()).device
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    valid_rows = None if n_valid is None else np.asarray(n_valid, np.int64)[rows]
    chunk_of = rows // store.chunk_rows
    parts = []
    for chunk in np.unique(chunk_of):
        sl = store.chunk_slice(int(chunk))
        block = store.read_chunk(int(chunk), [array])[array]
        picked = block[rows[chunk_of == chunk] - sl.start]
        valid = None if valid_rows is None else valid_rows[chunk_of == chunk]
        for start in range(0, len(picked), batch_size):
            imu = torch.as_tensor(np.asarray(picked[start : start + batch_size], np.float32))
            n = None if valid is None else torch.as_tensor(valid[start : start + batch_size])
            parts.append(encode(encoder, imu.to(device), n).float().cpu().numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


@contextmanager
def platt_allowed() -> Iterator[None]:
    """Silence scikit-learn's deprecation of ``SVC(probability=True)``: it is the protocol.

    (Its suggested replacement calibrates one-vs-rest instead of libsvm's pairwise coupling.)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
        yield


def require_two_classes(labels: np.ndarray, min_count: int = 1) -> np.ndarray:
    """Class counts of ``labels``; < 2 classes (or a class under ``min_count``) is an error."""
    counts = np.unique(labels, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < min_count:
        raise ConfigError(
            f"the SVM protocol needs >= 2 classes with >= {max(min_count, 1)} train windows "
            f"each; got class counts {counts.tolist()}; add labelled train windows or drop "
            f"the rare classes"
        )
    return counts


# ------------------------------------------------------------------ protocol: reference
def l2_rows(x: np.ndarray) -> np.ndarray:
    """Float32 rows divided by max(|row|, 1e-12), exactly as ``F.normalize``."""
    return F.normalize(torch.as_tensor(np.asarray(x, dtype=np.float32)), dim=1).numpy()


@dataclass(frozen=True)
class ReferenceDesign:
    """The reference's train side before any SVC: scaler, branch and (capped) rows."""

    scaler: StandardScaler
    z: np.ndarray  # (n, D) float32 standardised rows the SVC is fitted on
    y: np.ndarray  # (n,)
    grid: bool  # False: the small-data branch (C = 1e5, no search)


def reference_design(train_x: np.ndarray, train_y: np.ndarray, cap: int = MAX_TRAIN
                     ) -> ReferenceDesign:
    """L2-normalise, fit the scaler on all rows, pick the branch, cap the grid's rows."""
    y = np.asarray(train_y)
    counts = require_two_classes(y)
    scaler = StandardScaler()
    z = scaler.fit_transform(l2_rows(train_x))  # (n, D) float32
    grid = not (len(y) // len(counts) < 5 or len(y) < 50)
    if grid and len(y) > cap:
        z, _, y, _ = train_test_split(z, y, train_size=cap, random_state=0, stratify=y)
    return ReferenceDesign(scaler, z, y, grid)


def reference_svc(c: float, seed: int, grid: bool) -> SVC:
    """The reference's SVC; Platt scaling draws its seed as after ``np.random.seed(seed)``.

    A fresh ``RandomState(seed)`` gives the first draw of the global RNG seeded with
    ``seed`` without touching it (scikit-learn clones copy it unused, so a refit draws the
    same first value as the reference's refit in the parent process).
    """
    return SVC(C=c, kernel="rbf", gamma="scale", probability=True,
               max_iter=REFERENCE_MAX_ITER if grid else -1,
               random_state=np.random.RandomState(seed))


@dataclass(frozen=True)
class ReferenceModel:
    """A fitted reference SVC with its scaler: raw features in, probabilities out."""

    scaler: StandardScaler
    svc: SVC

    @property
    def classes_(self) -> np.ndarray:
        return self.svc.classes_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.svc.predict_proba(self.scaler.transform(l2_rows(x)))  # (N, K)


def rank_by_probability(model: Any, x: np.ndarray) -> np.ndarray:
    """(N, K) classes: argmax of ``predict_proba`` first, then as ``top_k_accuracy_score``.

    ``top_k_accuracy_score`` ranks by a stable ascending sort read backwards; ``argmax``
    takes the first maximum. The two differ only on exactly tied probabilities.
    """
    proba = model.predict_proba(x)  # (N, K)
    top = np.argmax(proba, axis=1)  # (N,)
    order = np.argsort(proba, axis=1, kind="mergesort")[:, ::-1]  # (N, K) best first
    rest = order[order != top[:, None]].reshape(len(x), -1)  # (N, K - 1)
    return model.classes_[np.concatenate([top[:, None], rest], axis=1)]


def topk_accuracy(ranked: np.ndarray, labels: np.ndarray,
                  ks: tuple[int, ...] = TOP_K) -> dict[str, float | None]:
    """``acc@k`` from (N, K) classes ranked best first (None without items)."""
    out: dict[str, float | None] = {}
    for k in ks:
        hit = (ranked[:, :k] == np.asarray(labels)[:, None]).any(axis=1)
        out[f"acc@{k}"] = float(hit.mean()) if len(hit) else None
    return out


def score_model(model: Any, ranking: Callable[[Any, np.ndarray], np.ndarray],
                test_x: np.ndarray, test_y: np.ndarray, facts: dict[str, Any]
                ) -> dict[str, Any]:
    """``facts`` + ``n_test`` + Acc@1/3/5 + ``pred`` (top-1 class) from ``ranking``, and
    ``model`` (the fitted model, for ``comodo export``)."""
    ranked = (ranking(model, test_x) if len(test_x)
              else np.zeros((0, 1), np.int64))  # (N, K)
    out = {**facts, "n_test": int(len(test_y))}
    out.update(topk_accuracy(ranked, test_y))
    out["pred"] = ranked[:, 0]
    out["model"] = model
    return out


def reference_facts(design: ReferenceDesign, best_c: float, cv_acc: float | None
                    ) -> dict[str, Any]:
    return {"protocol": "reference", "best_C": float(best_c), "cv_acc": cv_acc,
            "n_train": int(len(design.y)), "n_folds": 5 if design.grid else 0,
            "grid_branch": design.grid}


@SVM_PROTOCOLS.register("reference")
def reference_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                       test_y: np.ndarray, seed: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """The reference implementation's protocol with scikit-learn's GridSearchCV."""
    design = reference_design(train_x, train_y)
    with platt_allowed():
        if design.grid:
            search = GridSearchCV(reference_svc(1.0, seed, grid=True), {"C": list(C_GRID)},
                                  cv=5, n_jobs=n_jobs)
            search.fit(design.z, design.y)
            svc, cv_acc = search.best_estimator_, float(search.best_score_)
        else:
            svc, cv_acc = reference_svc(DIRECT_C, seed, grid=False).fit(design.z, design.y), None
    facts = reference_facts(design, svc.C, cv_acc)
    return score_model(ReferenceModel(design.scaler, svc), rank_by_probability, test_x, test_y,
                       facts)


# ------------------------------------------------------------------ protocol: comodo
def stratified_cap(labels: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``cap`` items keeping class proportions (every class keeps >= 1)."""
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts * cap / len(labels)).astype(int))
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
              for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def comodo_pipeline(c: float, seed: int) -> Any:
    """L2-normalise, standardise, RBF SVC(gamma="scale", probability=True) with ``C=c``."""
    return make_pipeline(Normalizer(), StandardScaler(),
                         SVC(kernel="rbf", gamma="scale", C=c, probability=True,
                             random_state=seed))


def n_folds_for(labels: np.ndarray) -> int:
    """At most 5 stratified folds, fewer when the smallest class has fewer windows."""
    return int(min(5, require_two_classes(labels, min_count=2).min()))


def rank_classes(model: Any, x: np.ndarray) -> np.ndarray:
    """(N, K) classes per row: the SVM's predicted class first, the rest by probability."""
    pred = model.predict(x)  # (N,)
    by_proba = model.classes_[np.argsort(-model.predict_proba(x), axis=1)]  # (N, K)
    rest = by_proba[by_proba != pred[:, None]].reshape(len(x), -1)  # (N, K - 1)
    return np.concatenate([pred[:, None], rest], axis=1)


def comodo_facts(best_c: float, cv_acc: float, n_folds: int, n_train: int) -> dict[str, Any]:
    return {"protocol": "comodo", "best_C": float(best_c), "cv_acc": float(cv_acc),
            "n_train": int(n_train), "n_folds": n_folds, "grid_branch": True}


@SVM_PROTOCOLS.register("comodo")
def comodo_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                    test_y: np.ndarray, seed: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """Seeded cap and shuffled folds, per-fold scaling, top-1 from ``predict()``.

    A plain GridSearchCV of the whole ``probability=True`` pipeline, refit on the capped rows.
    """
    keep = stratified_cap(train_y, MAX_TRAIN, seed)
    x, y = np.asarray(train_x, dtype=np.float64)[keep], np.asarray(train_y)[keep]
    n_folds = n_folds_for(y)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(comodo_pipeline(1.0, seed), {"svc__C": list(C_GRID)}, cv=folds,
                          n_jobs=n_jobs)
    with platt_allowed():
        search.fit(x, y)
    best_c = float(search.best_params_["svc__C"])
    facts = comodo_facts(best_c, search.best_score_, n_folds, len(y))
    return score_model(search.best_estimator_, rank_classes,
                       np.asarray(test_x, dtype=np.float64), test_y, facts)


def svm_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, seed: int = 0, protocol: str = "reference",
                 n_jobs: int = 1) -> dict[str, Any]:
    """Fit ``protocol`` on train features and score Acc@1/3/5 on test features.

    Returns ``best_C``, ``acc@1``/``acc@3``/``acc@5``, ``cv_acc`` (None without a grid),
    ``n_train`` (rows fitted), ``n_test``, ``n_folds``, ``grid_branch`` and ``pred``.
    """
    return SVM_PROTOCOLS.get(protocol)(train_x, train_y, test_x, test_y, seed, n_jobs)


def evaluate_encoder(encoder: nn.Module, windows_store: ChunkedStore, index_df: pl.DataFrame,
                     train_split: str = "train", test_split: str = "test",
                     seed: int = 0, protocol: str = "reference") -> dict[str, Any]:
    """Acc@1/3/5 of the SVM protocol on ``encoder``'s features of windows_store's windows.

    ``index_df`` is windows.parquet (rows aligned with the store; ``label_id`` and ``split``).
    """
    split = index_df["split"].to_numpy()
    labels = index_df["label_id"].fill_null(-1).to_numpy().astype(np.int64)
    rows = {}
    for name in (train_split, test_split):
        rows[name] = np.flatnonzero((split == name) & (labels >= 0))
        if not len(rows[name]):
            raise ConfigError(f"no labelled window has split {name!r} in {windows_store.url}; "
                              f"splits present: {sorted(set(split.tolist()))}")
    n_valid = index_df["n_valid"].to_numpy() if "n_valid" in index_df.columns else None
    train_x = encode_windows(encoder, windows_store, rows[train_split], n_valid=n_valid)
    test_x = encode_windows(encoder, windows_store, rows[test_split], n_valid=n_valid)
    result = svm_protocol(train_x, labels[rows[train_split]], test_x, labels[rows[test_split]],
                          seed, protocol)
    log.info("svm (%s): acc@1 %.3f (C=%g, %d train / %d test windows)", protocol,
             result["acc@1"], result["best_C"], result["n_train"], result["n_test"])
    return result
