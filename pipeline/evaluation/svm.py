"""The paper's SVM protocol on frozen encoder features.

1. Encode every window of the train and test splits with the encoder (eval mode).
2. L2-normalise each feature vector, then standardise (StandardScaler fit on train).
3. RBF SVC with ``gamma="scale"``; C chosen by GridSearchCV over 1e-4 ... 1e4 (9 values),
   stratified 5-fold, on a stratified sample of at most 10,000 training windows.
4. Refit with the best C and ``probability=True`` on that sample; Acc@k on the test split:
   the true class is among the k first of the ranking "predicted class, then the other
   classes by predicted probability" (so Acc@1 is the SVM's accuracy; see ``rank_classes``).

The grid search itself runs without Platt scaling (it only compares C by accuracy); only
the final model computes probabilities, which is the expensive part.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import polars as pl
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC
from torch import nn

from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

C_GRID = tuple(10.0**k for k in range(-4, 5))
MAX_TRAIN = 10_000
TOP_K = (1, 3, 5)


@torch.inference_mode()
def encode_windows(encoder: nn.Module, store: ChunkedStore, rows: np.ndarray,
                   batch_size: int = 256, array: str = "imu") -> np.ndarray:
    """Features (len(rows), D) of the given rows, read chunk by chunk in row order."""
    encoder = encoder.eval()
    device = next(encoder.parameters()).device
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    chunk_of = rows // store.chunk_rows
    parts = []
    for chunk in np.unique(chunk_of):
        sl = store.chunk_slice(int(chunk))
        block = store.read_chunk(int(chunk), [array])[array]
        picked = block[rows[chunk_of == chunk] - sl.start]
        for start in range(0, len(picked), batch_size):
            imu = torch.as_tensor(np.asarray(picked[start : start + batch_size], np.float32))
            parts.append(encoder(imu.to(device)).float().cpu().numpy())
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


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


def svm_protocol(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, seed: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """Fit the protocol on train features and score Acc@1/3/5 on test features."""
    keep = stratified_cap(train_y, MAX_TRAIN, seed)
    train_x, train_y = train_x[keep], train_y[keep]
    n_folds = int(min(5, np.bincount(np.unique(train_y, return_inverse=True)[1]).min()))
    if len(np.unique(train_y)) < 2 or n_folds < 2:
        raise ConfigError(
            f"the SVM protocol needs >= 2 classes with >= 2 train windows each; got class "
            f"counts {np.unique(train_y, return_counts=True)[1].tolist()}"
        )
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    pipe = make_pipeline(Normalizer(), StandardScaler(), SVC(kernel="rbf", gamma="scale"))
    search = GridSearchCV(pipe, {"svc__C": list(C_GRID)}, cv=folds, n_jobs=n_jobs)
    search.fit(train_x, train_y)
    best_c = float(search.best_params_["svc__C"])
    final = make_pipeline(Normalizer(), StandardScaler(),
                          SVC(kernel="rbf", gamma="scale", C=best_c, probability=True,
                              random_state=seed))
    with warnings.catch_warnings():
        # scikit-learn 1.9 deprecates probability=True; its suggested replacement calibrates
        # one-vs-rest instead of libsvm's pairwise coupling, so the paper's numbers need this
        warnings.filterwarnings("ignore", message=".*probability.*", category=FutureWarning)
        final.fit(train_x, train_y)
    ranked = rank_classes(final, test_x)  # (N_test, K) classes, best first
    out: dict[str, Any] = {"best_C": best_c, "cv_acc": float(search.best_score_),
                           "n_train": int(len(train_y)), "n_test": int(len(test_y)),
                           "n_folds": n_folds}
    for k in TOP_K:
        hit = (ranked[:, :k] == test_y[:, None]).any(axis=1)
        out[f"acc@{k}"] = float(hit.mean()) if len(hit) else None
    return out


def rank_classes(model: Any, x: np.ndarray) -> np.ndarray:
    """(N, K) classes per row: the SVM's predicted class first, the rest by probability.

    Platt scaling can disagree with the decision function (badly so when the grid picks a
    tiny C among tied folds), so the top-1 class is the SVM's own prediction and the
    probabilities only order the remaining classes for Acc@3/5.
    """
    pred = model.predict(x)  # (N,)
    by_proba = model.classes_[np.argsort(-model.predict_proba(x), axis=1)]  # (N, K)
    rest = by_proba[by_proba != pred[:, None]].reshape(len(x), -1)  # (N, K - 1)
    return np.concatenate([pred[:, None], rest], axis=1)


def evaluate_encoder(encoder: nn.Module, windows_store: ChunkedStore, index_df: pl.DataFrame,
                     train_split: str = "train", test_split: str = "test",
                     seed: int = 0) -> dict[str, Any]:
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
    train_x = encode_windows(encoder, windows_store, rows[train_split])
    test_x = encode_windows(encoder, windows_store, rows[test_split])
    result = svm_protocol(train_x, labels[rows[train_split]], test_x, labels[rows[test_split]],
                          seed)
    log.info("svm: acc@1 %.3f (C=%g, %d train / %d test windows)", result["acc@1"],
             result["best_C"], result["n_train"], result["n_test"])
    return result
