"""Report figures as PNG bytes (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

SKIP_CURVES = {"epoch", "lr", "seconds", "samples_per_s"}


def to_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def confusion_png(matrix: np.ndarray, names: Sequence[str], title: str) -> bytes:
    """Row-normalised confusion matrix (rows true class) with the counts written in."""
    matrix = np.asarray(matrix, dtype=np.float64)  # (K, K)
    n = len(matrix)
    names = list(names) if len(names) == n else [str(i) for i in range(n)]
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(3.5, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if share[i, j] > 0.5 else "black")
    return to_png(fig)


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) t-SNE of L2-normalised features; perplexity fits small N.

    Exact gradients up to 200 points, Barnes-Hut above; one OpenMP thread, because on a
    shared 2-core machine more threads made Barnes-Hut ~8x slower, not faster.
    """
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    method = "exact" if len(x) <= 200 else "barnes_hut"
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    method=method, max_iter=500).fit_transform(x.astype(np.float64))


def embedding_png(maps: Sequence[tuple[str, np.ndarray, np.ndarray]], names: Sequence[str],
                  title: str, seed: int = 0) -> bytes:
    """One t-SNE panel per (label, x (N, D), y (N,)), points coloured by class."""
    fig, axes = plt.subplots(1, len(maps), figsize=(4.5 * len(maps), 4.2), squeeze=False)
    classes = np.unique(np.concatenate([y for _, _, y in maps]))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    for ax, (label, x, y) in zip(axes[0], maps):
        xy = tsne_2d(x, seed)
        for k, c in enumerate(classes):
            pick = y == c
            name = names[int(c)] if len(names) > int(c) >= 0 else str(c)
            ax.scatter(xy[pick, 0], xy[pick, 1], s=6, color=cmap(k % cmap.N), label=name)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        axes[0][-1].legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def curves_png(history: pl.DataFrame, title: str) -> bytes | None:
    """Loss columns on the left panel, every other numeric column on the right; None if empty."""
    x = history["epoch"].to_numpy() if "epoch" in history.columns else np.arange(history.height)
    numeric = [c for c, t in history.schema.items() if t.is_numeric() and c not in SKIP_CURVES]
    groups = [[c for c in numeric if "loss" in c], [c for c in numeric if "loss" not in c]]
    groups = [g for g in groups if g]
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.4), squeeze=False)
    for ax, cols in zip(axes[0], groups):
        for col in cols:
            ax.plot(x, history[col].cast(pl.Float64).to_numpy(), marker="o", ms=3, label=col)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return to_png(fig)


def sweep_png(sweeps: Sequence[dict[str, Any]], title: str) -> bytes | None:
    """Acc@1 (+- std@1) against the swept value, one line per dataset.

    Numeric values go on a log-2 x axis; any other values (``concat``/``mean``, objective
    names) are categories in the order they were swept.
    """
    fig, ax = plt.subplots(figsize=(5, 3.4))
    drawn = 0
    values = [p.get("value") for s in sweeps for p in s["points"] if isinstance(p, dict)]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    categories = list(dict.fromkeys(str(v) for v in values))
    for sweep in sweeps:
        points = [p for p in sweep["points"] if isinstance(p, dict) and "value" in p
                  and isinstance(p.get("acc@1"), (int, float))]
        if not points:
            continue
        if numeric:
            points = sorted(points, key=lambda p: p["value"])
        xs = np.array([p["value"] if numeric else categories.index(str(p["value"]))
                       for p in points], dtype=np.float64)
        ys = 100 * np.array([p["acc@1"] for p in points])
        err = 100 * np.array([p.get("std@1") or 0.0 for p in points])
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=str(sweep.get("dataset", "?")))
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    elif ax.get_xlim()[0] > 0:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(str(sweeps[0].get("param", "queue_size")))
    ax.set_ylabel("Acc@1 (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return to_png(fig)


def fewshot_png(curves: Sequence[dict[str, Any]], title: str, key: str = "acc@1") -> bytes | None:
    """``key`` against k, one line per method with its 95% interval as a band.

    Numeric k go on a log-2 axis in order; "all" is drawn one step past the largest k.
    """
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ks = [p["k"] for c in curves for p in c["points"]]
    numeric = sorted({int(k) for k in ks if str(k).isdigit()})
    position = {str(k): float(k) for k in numeric}
    position["all"] = 2.0 * (numeric[-1] if numeric else 1)
    drawn = 0
    for curve in curves:
        points = sorted(curve["points"], key=lambda p: position[str(p["k"])])
        if not points:
            continue
        xs = np.array([position[str(p["k"])] for p in points])
        mean = 100 * np.array([p[key]["mean"] for p in points])
        low = 100 * np.array([p[key]["low"] for p in points])
        high = 100 * np.array([p[key]["high"] for p in points])
        (line,) = ax.plot(xs, mean, marker="o", label=curve["method"])
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.15)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log", base=2)
    ticks = sorted(position.values())
    ax.set_xticks(ticks, [next(k for k, v in position.items() if v == t) for t in ticks])
    ax.set_xlabel("labelled windows per class (k)")
    ax.set_ylabel(f"{key.capitalize()} (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return to_png(fig)
