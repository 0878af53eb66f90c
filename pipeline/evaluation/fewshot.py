"""k-shot evaluation on frozen features: seeded draws, classifiers, intervals, paired tests.

A *draw* is a set of train rows holding exactly ``k`` windows of every class, chosen by a
generator seeded with ``(seed, k, draw)`` only: the same labels give the same draws whatever
encoder the features come from, so encoders are compared on identical labelled sets
(paired). ``k = "all"`` is one draw of every train row.

Classifiers (registry ``CLASSIFIERS``), each ``fit_predict(train_x, train_y, test_x, seed)
-> (N_test, K) class scores`` over the sorted train classes:

- ``logreg``: L2-normalise + StandardScaler + multinomial logistic regression (C = 1);
- ``svm``: the reference SVM protocol's Platt probabilities (``evaluation.fast_svm``; few shots
  take its small-data branch, C = 1e5 without a grid);
- ``knn``: cosine k-NN (k = min(5, windows of the smallest class)), scores = neighbour votes.

Scores: Acc@1/3/5 (the true class among the k best-scored classes; a test class absent from
train counts as a miss) and macro-F1 of the top-1 class. ``interval``: the mean and the
Student-t 95% interval of the mean, clipped to [0, 1] (a score's range).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from comodo.pipeline.registry import Registry
from comodo.stores.errors import ConfigError

TOP_K = (1, 3, 5)
ALL = "all"

Shot = int | str
ClassifierFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
CLASSIFIERS: Registry = Registry("few-shot classifier")


@dataclass(frozen=True)
class Draw:
    """One labelled train set: ``k`` shots per class (or every row), identified by its seeds."""

    k: Shot
    index: int
    rows: np.ndarray  # (n,) train row indices, sorted


def parse_shots(shots: Sequence[Shot]) -> list[Shot]:
    """Validated shot list: positive ints and at most one ``"all"``, in the given order."""
    out: list[Shot] = []
    for k in shots:
        if isinstance(k, str) and k.lower() == ALL:
            out.append(ALL)
        elif isinstance(k, int) and not isinstance(k, bool) and k >= 1:
            out.append(int(k))
        else:
            raise ConfigError(f"fewshot.shots: {k!r} is not a positive number of windows per "
                              f"class or 'all'")
    if len(set(out)) != len(out):
        raise ConfigError(f"fewshot.shots lists a value twice: {list(shots)}")
    return out


def draw_seed(seed: int, k: Shot, index: int) -> np.random.SeedSequence:
    """The seed of one draw: depends on (seed, k, draw index) only, never on an encoder."""
    return np.random.SeedSequence([seed, 0 if k == ALL else int(k), index])


def make_draws(labels: np.ndarray, k: Shot, n_draws: int, seed: int) -> list[Draw]:
    """``n_draws`` draws of ``k`` train rows per class (one draw for ``"all"``).

    Raises ``ConfigError`` naming the classes with fewer than ``k`` windows.
    """
    labels = np.asarray(labels)
    if k == ALL:
        return [Draw(ALL, 0, np.arange(len(labels)))]
    classes, counts = np.unique(labels, return_counts=True)
    short = {int(c): int(n) for c, n in zip(classes, counts) if n < k}
    if short:
        raise ConfigError(f"{k} shots per class, but classes {sorted(short)} have only "
                          f"{sorted(set(short.values()))} train windows; drop k={k} from "
                          f"fewshot.shots or use 'all'")
    members = [np.flatnonzero(labels == c) for c in classes]
    draws = []
    for i in range(n_draws):
        rng = np.random.default_rng(draw_seed(seed, k, i))
        rows = np.concatenate([rng.choice(m, size=int(k), replace=False) for m in members])
        draws.append(Draw(k, i, np.sort(rows)))
    return draws


def max_shots(labels: np.ndarray) -> int:
    """The largest k every class can give."""
    return int(np.unique(labels, return_counts=True)[1].min()) if len(labels) else 0


@CLASSIFIERS.register("logreg")
def logreg(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    model = make_pipeline(Normalizer(), StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    with warnings.catch_warnings():  # one shot per class is as many classes as samples: expected
        warnings.filterwarnings("ignore", message="The number of unique classes is greater")
        model.fit(train_x, train_y)
    return model.predict_proba(test_x)


@CLASSIFIERS.register("svm")
def svm(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol

    unlabelled = np.zeros(len(test_x), dtype=np.int64)  # scored by the caller, not here
    fitted = fast_svm_protocol(train_x, train_y, test_x, unlabelled, seed, n_jobs=1)
    return fitted["model"].predict_proba(test_x)


@CLASSIFIERS.register("knn")
def knn(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    model = KNeighborsClassifier(n_neighbors=min(5, max_shots(train_y)), metric="cosine")
    model.fit(train_x, train_y)
    return model.predict_proba(test_x)


def score(class_scores: np.ndarray, train_classes: np.ndarray, test_y: np.ndarray,
          n_classes: int) -> dict[str, float]:
    """Acc@1/3/5 and macro-F1 (over all ``n_classes``) of class scores (N, K_train)."""
    order = train_classes[np.argsort(-class_scores, axis=1, kind="stable")]  # (N, K_train)
    out = {}
    for k in TOP_K:
        out[f"acc@{k}"] = float((order[:, :k] == test_y[:, None]).any(axis=1).mean())
    present = np.unique(test_y)
    out["macro_f1"] = float(f1_score(test_y, order[:, 0], labels=present, average="macro",
                                     zero_division=0))
    return out


def evaluate_draws(classifier: str, train_x: np.ndarray, train_y: np.ndarray,
                   test_x: np.ndarray, test_y: np.ndarray, draws: Sequence[Draw],
                   seed: int) -> list[dict[str, float]]:
    """One score dict per draw: fit ``classifier`` on the draw's rows, score the test rows."""
    fit_predict: ClassifierFn = CLASSIFIERS.get(classifier)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    out = []
    for draw in draws:
        y = train_y[draw.rows]
        scores = fit_predict(train_x[draw.rows], y, test_x, seed)
        out.append(score(scores, np.unique(y), test_y, n_classes))
    return out


def interval(values: Sequence[float], level: float = 0.95,
             bounds: tuple[float, float] = (0.0, 1.0)) -> dict[str, float]:
    """Mean and Student-t confidence interval of the mean, clipped to ``bounds``.

    Scores are fractions, so the interval is clipped to [0, 1]: near 0 or 1 the t interval
    of a few draws reaches past the range a score can take. A single value gives a
    zero-width interval.
    """
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return {"mean": mean, "low": mean, "high": mean, "n": int(len(x))}
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    low, high = bounds
    return {"mean": mean, "low": max(low, mean - half), "high": min(high, mean + half),
            "n": int(len(x))}


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float | int | None]:
    """Wilcoxon signed-rank test of paired scores a vs b (two-sided), with the mean difference.

    ``p`` is None when every pair is tied (no evidence either way).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal lengths, got {a.shape} and {b.shape}")
    diff = a - b
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    p = None
    if wins + losses:
        p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    ties = int(len(diff) - wins - losses)
    return {"diff": float(diff.mean()), "wins": wins, "losses": losses, "ties": ties, "p": p,
            "n": int(len(diff))}
