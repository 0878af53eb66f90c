"""The classifier a bundle carries, fitted exactly as the evaluate stage fits it.

Each entry of ``CLASSIFIERS`` refits one of evaluate's classifiers on the encoder's features
of the train split (same function, features, seed and settings, so the same model) and
returns the fitted scikit-learn object with evaluate's test-split predictions:

- ``svm``: the paper's SVM protocol (``fast_svm.fast_svm_protocol``, evaluate's ``protocol``),
  evaluate's Acc@1/3/5;
- ``linear``: evaluate's linear probe (``probes.linear_model``), a linear head on the
  frozen features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from comodo.pipeline.evaluation import probes
from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.registry import Registry


@dataclass(frozen=True)
class Features:
    """Encoder features and labels of the train and test splits."""

    train_x: np.ndarray  # (N_train, D)
    train_y: np.ndarray  # (N_train,)
    test_x: np.ndarray  # (N_test, D)
    test_y: np.ndarray  # (N_test,)


@dataclass(frozen=True)
class Fitted:
    """A fitted classifier, evaluate's top-1 predictions on the test split, and its facts."""

    kind: str
    model: Any  # fitted scikit-learn estimator: predict, predict_proba, classes_
    pred: np.ndarray  # (N_test,) class ids as evaluate predicts them
    protocol: str  # one line saying how it was fitted and how it predicts
    facts: dict[str, Any] = field(default_factory=dict)


Fit = Callable[[Features, int, int, str], Fitted]  # (features, seed, n_jobs, SVM protocol)
CLASSIFIERS: Registry[Fit] = Registry("classifier")

PROTOCOLS = {  # how each SVM protocol fits and predicts, for the card
    "reference": "L2-normalise, standardise on all train rows, RBF SVC (gamma=scale) with C from "
                 "an unshuffled 5-fold grid search (C=1e5 below 5 windows a class or 50 rows), "
                 "Platt probabilities; top-1 = the most probable class",
    "comodo": "L2-normalise, standardise, RBF SVC (gamma=scale) with C from a seeded stratified "
              "grid search, refit with Platt probabilities; top-1 = the SVM's vote, top-3 by "
              "probability",
}


@CLASSIFIERS.register("svm")
def fit_svm(data: Features, seed: int, n_jobs: int, protocol: str) -> Fitted:
    """The SVM protocol of the evaluate stage (``evaluate.protocol``), refit by scikit-learn
    itself (evaluate's kernel refit gives the same predictions; this one converts to ONNX)."""
    out = fast_svm_protocol(data.train_x, data.train_y, data.test_x, data.test_y, seed, n_jobs,
                            protocol, refit="sklearn")
    model, pred = out.pop("model"), np.asarray(out.pop("pred"), np.int64)
    return Fitted("svm", model, pred, f"{protocol} protocol: {PROTOCOLS[protocol]}", out)


@CLASSIFIERS.register("linear")
def fit_linear(data: Features, seed: int, n_jobs: int, protocol: str) -> Fitted:
    """The linear probe of the evaluate stage (L2-normalise, standardise, logistic regression)."""
    model = probes.linear_model(data.train_x, data.train_y, seed=seed)
    pred = np.asarray(model.predict(data.test_x), np.int64)
    facts = {"acc@1": float(np.mean(pred == data.test_y)), "n_train": int(len(data.train_y)),
             "n_test": int(len(data.test_y))}
    return Fitted("linear", model, pred, "L2-normalise, standardise, multinomial logistic "
                  "regression (C=1); top-1 = argmax", facts)
