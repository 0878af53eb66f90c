"""The SVM protocol: ``fast_svm`` against the plain scikit-learn path of ``svm``, side by side.

Input: a seeded Gaussian mixture (``--classes`` classes, ``--dim`` features, class centres
scaled by ``--spread`` so that classes overlap and C matters), ``--n-train`` train and
``--n-test`` test windows. For each protocol of ``--protocols`` both sides run the whole
protocol (grid over C, 5 folds, final probability fit, Acc@1/3/5 on test) one after the
other in this process, on the same cores: the plain side (``svm.svm_protocol``: scikit-learn's
GridSearchCV of ``SVC(probability=True)``) with ``--plain-jobs`` processes (1: its default),
the fast side with ``--jobs`` threads, once with its default final fit on the precomputed
kernel (``refit="kernel"``) and once with scikit-learn's RBF refit (``refit="sklearn"``,
bit-identical probabilities). Reports median wall times, the ratios to the plain side and the
agreement (same C, same Acc@k, fraction of identical test predictions).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import numpy as np

from benchmarks.common import median_time, write_result
from comodo.pipeline.evaluation.fast_svm import fast_svm_protocol
from comodo.pipeline.evaluation.svm import svm_protocol


def mixture(n: int, dim: int, classes: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, dim))
    y = rng.integers(0, classes, n)
    return (centres[y] * spread + rng.normal(0, 1, (n, dim))).astype(np.float32), y


def agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        "best_C": [a["best_C"], b["best_C"]], "same_C": a["best_C"] == b["best_C"],
        **{f"acc@{k}": [a[f"acc@{k}"], b[f"acc@{k}"]] for k in (1, 3, 5)},
        "same_acc": all(a[f"acc@{k}"] == b[f"acc@{k}"] for k in (1, 3, 5)),
        "identical_predictions": float(np.mean(a["pred"] == b["pred"])),
    }


def compare(protocol: str, data: tuple[np.ndarray, ...], jobs: int, plain_jobs: int,
            repeats: int) -> dict[str, Any]:
    """Median times of the plain path and the two fast refits of ``protocol``, and answers."""
    runs = {
        "plain_sklearn": lambda: svm_protocol(*data, seed=0, protocol=protocol,
                                              n_jobs=plain_jobs),
        "fast_svm": lambda: fast_svm_protocol(*data, seed=0, n_jobs=jobs, protocol=protocol),
        "fast_svm_sklearn_refit": lambda: fast_svm_protocol(*data, seed=0, n_jobs=jobs,
                                                            protocol=protocol, refit="sklearn"),
    }
    out: dict[str, Any] = {}
    answers: dict[str, dict[str, Any]] = {}
    for name, fn in runs.items():
        median, times = median_time(lambda fn=fn, name=name: answers.__setitem__(name, fn()),
                                    repeats)
        out[name] = {"median_s": median, "runs_s": times}
    plain = out["plain_sklearn"]["median_s"]
    for name in ("fast_svm", "fast_svm_sklearn_refit"):
        out[name]["speedup"] = plain / out[name]["median_s"]
        out[name]["agreement"] = agreement(answers[name], answers["plain_sklearn"])
    out["speedup"] = out["fast_svm"]["speedup"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=0.3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--plain-jobs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocols", nargs="+", default=["reference", "comodo"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    x, y = mixture(args.n_train + args.n_test, args.dim, args.classes, args.spread, seed=0)
    n = args.n_train
    data = (x[:n], y[:n], x[n:], y[n:])
    result: dict[str, Any] = {
        "data": {"n_train": args.n_train, "n_test": args.n_test, "dim": args.dim,
                 "classes": args.classes, "spread": args.spread},
        "repeats": args.repeats, "fast_threads": args.jobs,
        "plain_processes": args.plain_jobs, "cpu_count": os.cpu_count(),
        "load_avg_1min_at_start": os.getloadavg()[0],
    }
    for protocol in args.protocols:
        side = compare(protocol, data, args.jobs, args.plain_jobs, args.repeats)
        result[protocol] = side
        for name in ("fast_svm", "fast_svm_sklearn_refit"):
            fast, agree = side[name], side[name]["agreement"]
            print(f"svm protocol {protocol}: plain {side['plain_sklearn']['median_s']:.1f} s, "
                  f"{name} {fast['median_s']:.2f} s, {fast['speedup']:.1f}x; "
                  f"same C {agree['same_C']}, same Acc@1/3/5 {agree['same_acc']}, "
                  f"identical predictions {agree['identical_predictions']:.3f}")
    write_result("svm", result)


if __name__ == "__main__":
    main()
