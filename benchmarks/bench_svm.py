"""The SVM protocol: ``fast_svm`` vs scikit-learn's plain GridSearchCV(SVC(probability=True)).

Input: a seeded Gaussian mixture (``--classes`` classes, ``--dim`` features, class centres
scaled by ``--spread`` so that classes overlap and C matters), ``--n-train`` train and
``--n-test`` test windows. Both sides run the whole protocol (grid over C, 5 folds, final
probability fit, Acc@1/3/5 on test); the plain side uses one process (its default), the fast
side ``--jobs`` threads. Reports median wall times, their ratio and the agreement (same C,
Acc@k differences, fraction of identical test predictions).
"""

from __future__ import annotations

import argparse
import logging
import os

import numpy as np

from benchmarks.common import median_time, write_result
from comodo.pipeline.evaluation.fast_svm import fit_fast_svm, plain_svm_fit, score_fit


def mixture(n: int, dim: int, classes: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, dim))
    y = rng.integers(0, classes, n)
    return (centres[y] * spread + rng.normal(0, 1, (n, dim))).astype(np.float32), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=0.3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    x, y = mixture(args.n_train + args.n_test, args.dim, args.classes, args.spread, seed=0)
    n = args.n_train
    train_x, train_y, test_x, test_y = x[:n], y[:n], x[n:], y[n:]
    out: dict = {}

    def fast() -> None:
        out["fast"] = score_fit(fit_fast_svm(train_x, train_y, n_jobs=args.jobs), test_x, test_y)

    def plain() -> None:
        out["plain"] = score_fit(plain_svm_fit(train_x, train_y, n_jobs=1), test_x, test_y)

    t_fast, runs_fast = median_time(fast, args.repeats)
    t_plain, runs_plain = median_time(plain, args.repeats)
    a, b = out["fast"], out["plain"]
    result = {
        "data": {"n_train": args.n_train, "n_test": args.n_test, "dim": args.dim,
                 "classes": args.classes, "spread": args.spread},
        "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "plain_gridsearch_probability_1proc": {"median_s": t_plain, "runs_s": runs_plain},
        f"fast_svm_{args.jobs}threads": {"median_s": t_fast, "runs_s": runs_fast},
        "speedup": t_plain / t_fast,
        "agreement": {
            "best_C": [a["best_C"], b["best_C"]], "same_C": a["best_C"] == b["best_C"],
            **{f"acc@{k}": [a[f"acc@{k}"], b[f"acc@{k}"]] for k in (1, 3, 5)},
            "max_abs_acc_diff_points": 100 * max(abs(a[f"acc@{k}"] - b[f"acc@{k}"]) for k in (1, 3, 5)),
            "identical_predictions": float(np.mean(a["pred"] == b["pred"])),
        },
    }
    write_result("svm", result)
    print(f"svm protocol: plain {t_plain:.1f} s, fast {t_fast:.1f} s, {t_plain / t_fast:.1f}x; "
          f"same C {result['agreement']['same_C']}, "
          f"identical predictions {result['agreement']['identical_predictions']:.3f}")


if __name__ == "__main__":
    main()
