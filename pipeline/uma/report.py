"""Aggregation over seeds, metrics.json / results.csv, and the 2-D latent-space map."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

from comodo.pipeline.uma.data import EvalView

RESULT_COLUMNS = ("method", "split", "modality", "noise", "seed", "accuracy")


def aggregate(rows: list[dict], split: str = "test") -> dict[str, dict[str, dict[str, dict]]]:
    """method -> modality -> noise -> {mean, std, n_seeds, per_seed} over the rows of ``split``."""
    groups: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        if r["split"] == split:
            groups[(r["method"], r["modality"], r["noise"])].append((r["seed"], r["accuracy"]))
    out: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for (method, modality, noise), values in sorted(groups.items()):
        acc = np.asarray([a for _, a in values])
        out[method][modality][noise] = {
            "mean": float(acc.mean()), "std": float(acc.std()), "n_seeds": int(acc.size),
            "per_seed": {str(s): float(a) for s, a in values},
        }
    return json.loads(json.dumps(out))


def write_results(rows: list[dict], summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    pl.DataFrame(rows, schema={c: (pl.Int64 if c == "seed" else pl.Float64 if c == "accuracy"
                                   else pl.String) for c in RESULT_COLUMNS}).write_csv(out / "results.csv")


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components of the rows of ``x`` (N, L) -> (N, 2)."""
    centred = x - x.mean(axis=0)
    _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def latent_map(method: object, view: EvalView, classes: list[str], n_classes: int) -> pl.DataFrame:
    """Video and IMU latents of the first ``n_classes`` classes in one shared 2-D PCA."""
    keep = np.isin(view.labels, np.unique(view.labels)[:n_classes])
    z_video = method.latents(None, view.video[keep])  # (M, L)
    z_imu = method.latents(view.imu[keep], None)  # (M, L)
    xy = pca_2d(np.concatenate([z_video, z_imu]))  # (2M, 2)
    labels = np.tile(view.labels[keep], 2)
    return pl.DataFrame({
        "modality": ["video"] * int(keep.sum()) + ["imu"] * int(keep.sum()),
        "label": [classes[i] for i in labels], "x": xy[:, 0], "y": xy[:, 1],
    })


def plot_latent_map(frame: pl.DataFrame, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    labels = sorted(set(frame["label"].to_list()))
    colours = plt.get_cmap("tab10")
    for modality, marker in (("video", "o"), ("imu", "x")):
        for k, label in enumerate(labels):
            part = frame.filter((pl.col("modality") == modality) & (pl.col("label") == label))
            ax.scatter(part["x"], part["y"], marker=marker, color=colours(k % 10), s=18,
                       label=f"{label} ({modality})")
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
