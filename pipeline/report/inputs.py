"""What the report reads, and the schema of each input. Every reader skips what is missing
or malformed and says why in a note; none raises on a bad file.

Results (``metrics/**/*.json``; a file counts when it has ``rows``)::

    {"dataset": "<ds>",                  # optional, default for rows without one
     "run": "runs/<ds>/<run>",           # optional, the run judged (its curves are drawn)
     "classes": ["walk", ...],           # optional, class names for the confusion matrix
     "rows": [{"method": "cnn1d comodo", "dataset": "<ds>",
               "acc@1": 0.71, "acc@3": 0.90, "acc@5": 0.97,     # fractions in [0, 1]
               "std@1": 0.01, "std@3": null, "std@5": null,      # optional, over seeds
               "variant": "distilled",                          # optional
               "run": "<run>",                                  # optional, under runs/<ds>/
               "confusion": [[...], ...]}]}                     # optional, rows = true class

``metrics/<ds>/evaluate.json`` written by the evaluate stage follows it.

Embedding features: ``metrics/<ds>/features/<variant>.npz`` with ``x`` (N, D), ``y`` (N,)
and optionally ``classes``; variants ``random_init`` (before) and ``distilled`` (after).

Training curves: ``runs/<ds>/<run>/history.csv`` of the runs a results file names (nothing
else under ``runs/``: test and abandoned runs stay out), one row per epoch; every numeric column
is plotted against ``epoch`` (or the row number): ``*loss*`` columns on one panel, the
others (``val_acc``, ``val_anchor_acc``, ...) on a second; ``lr`` and ``seconds`` are left out.

Queue-size sweeps: ``metrics/<ds>/sweep_queue_size.json``::

    {"param": "queue_size", "dataset": "<ds>",
     "points": [{"value": 1024, "acc@1": 0.60, "std@1": 0.01}, ...]}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

TOP_K = (1, 3, 5)


@dataclass
class Inputs:
    """Everything found, plus one note per input that was skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    classes: dict[str, list[str]] = field(default_factory=dict)  # dataset -> names
    features: dict[str, dict[str, Path]] = field(default_factory=dict)  # ds -> variant -> npz
    histories: dict[str, pl.DataFrame] = field(default_factory=dict)  # "<ds>/<run>" -> table
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    runs: set[tuple[str, str]] = field(default_factory=set)  # (dataset, run) named by results
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        notes.append(f"skipped {path}: not readable JSON ({err})")
        return None


def _valid_row(row: Any) -> bool:
    return (isinstance(row, dict) and isinstance(row.get("method"), str)
            and isinstance(row.get("dataset"), str)
            and all(row.get(f"acc@{k}") is None or isinstance(row.get(f"acc@{k}"), (int, float))
                    for k in TOP_K))


def read_results(path: Path, found: Inputs) -> None:
    data = _read_json(path, found.notes)
    if not isinstance(data, dict):
        return
    if "sweep" in path.stem and isinstance(data.get("points"), list):
        found.sweeps.append({**data, "path": str(path)})
        return
    if not isinstance(data.get("rows"), list):
        return  # another kind of JSON (a run's metrics.json): not a results file
    named = data.get("run")
    if isinstance(named, str) and data.get("dataset"):
        found.runs.add((str(data["dataset"]), Path(named).name))
    for row in data["rows"]:
        row = {"dataset": data.get("dataset"), **row} if isinstance(row, dict) else row
        if _valid_row(row):
            found.rows.append(row)
            if isinstance(row.get("run"), str):
                found.runs.add((row["dataset"], Path(row["run"]).name))
        else:
            found.notes.append(f"skipped a row of {path}: needs method, dataset and numeric "
                               f"acc@1/3/5, got {str(row)[:120]}")
    if isinstance(data.get("classes"), list) and data.get("dataset"):
        found.classes[str(data["dataset"])] = [str(c) for c in data["classes"]]


def read_history(path: Path, found: Inputs) -> None:
    try:
        table = pl.read_csv(path)
    except (OSError, pl.exceptions.PolarsError) as err:
        found.notes.append(f"skipped {path}: not a readable CSV ({err})")
        return
    if table.height == 0:
        found.notes.append(f"skipped {path}: no rows")
        return
    found.histories[f"{path.parent.parent.name}/{path.parent.name}"] = table


def collect(metrics_dir: Path, runs_dir: Path) -> Inputs:
    """Results from ``metrics_dir``, and the curves of the runs they name from ``runs_dir``;
    a missing folder or a named run without a history becomes a note."""
    found = Inputs()
    metrics_dir, runs_dir = Path(metrics_dir), Path(runs_dir)
    if not metrics_dir.is_dir():
        found.notes.append(f"{metrics_dir} does not exist: nothing read from it")
        return found
    for path in sorted(metrics_dir.rglob("*.json")):
        read_results(path, found)
    for dataset, name in sorted(found.runs):
        history = runs_dir / dataset / name / "history.csv"
        if history.is_file():
            read_history(history, found)
        else:
            found.notes.append(f"no {history}: the curves of run {dataset}/{name} are skipped")
    for npz in sorted(metrics_dir.glob("*/features/*.npz")):
        found.features.setdefault(npz.parent.parent.name, {})[npz.stem] = npz
    return found


def load_features(path: Path, notes: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(x (N, D), y (N,), class names) of a features .npz, or None with a note."""
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = np.asarray(data["x"], np.float32), np.asarray(data["y"])
            names = [str(c) for c in data["classes"]] if "classes" in data else []
    except (OSError, KeyError, ValueError) as err:
        notes.append(f"skipped {path}: needs arrays x (N, D) and y (N,) ({err})")
        return None
    if x.ndim != 2 or len(x) != len(y) or len(x) < 5:
        notes.append(f"skipped {path}: x {x.shape} and y {y.shape} do not form >= 5 points")
        return None
    return x, y, names
