"""Assemble the report: results table, confusion matrices, embedding maps before/after
distillation, training curves and queue-size sweeps. Inputs are described in
``pipeline.report.inputs``; whatever is missing becomes a note, never an error."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from comodo.pipeline.config import StageConfig
from comodo.pipeline.report import plots
from comodo.pipeline.report.document import Document, Heading, Image, Notes, Table, Text, write
from comodo.pipeline.report.fewshot import add_fewshot
from comodo.pipeline.report.inputs import TOP_K, Inputs, collect, load_features
from comodo.pipeline.report.uma import add_uma

log = logging.getLogger(__name__)

MAP_VARIANTS = (("random_init", "before distillation (random init)"),
                ("distilled", "after distillation"))


TABLE_TITLES = {"benchmark": "Methods (paper Table 1)",
                "transfer": "Across datasets (paper Table 3): distilled on A, SVM on B"}
TABLE_TEXTS = {
    "results": "SVM protocol on frozen student features: Acc@1/3/5 in % "
               "(mean ± std over seeds where given).",
    "benchmark": "Acc@1/3/5 in %, mean ± std over seeds: the SVM protocol on frozen features, "
                 "except label-trained rows (their own linear head; '(SVM)': the SVM on "
                 "their penultimate features).",
    "transfer": "Rows: the dataset the student was distilled on; columns: the dataset whose "
                "train/test split and labels the SVM uses, its windows resampled to the "
                "source's rate and length. Acc in %, mean ± std over seeds.",
}


class ReportConfig(StageConfig):
    name: str = "report"
    title: str = "comodo results"
    metrics_dir: str = "metrics"
    runs_dir: str = "runs"
    out_dir: str = "reports"
    max_map_points: int = Field(500, ge=5)  # t-SNE cost grows with N^2
    seed: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _cell(row: dict[str, Any] | None, k: int) -> str:
    if row is None or row.get(f"acc@{k}") is None:
        return "–"
    value = f"{100 * row[f'acc@{k}']:.1f}"
    std = row.get(f"std@{k}")
    return f"{value} ± {100 * std:.1f}" if isinstance(std, (int, float)) else value


def results_table(rows: list[dict[str, Any]]) -> Table:
    """Rows = methods (first-seen order), columns = dataset x Acc@1/3/5, values in %."""
    datasets = sorted({r["dataset"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["method"], r["dataset"]): r for r in rows}  # a later file wins
    headers = ["method"] + [f"{ds} Acc@{k}" for ds in datasets for k in TOP_K]
    body = [[m] + [_cell(cell.get((m, ds)), k) for ds in datasets for k in TOP_K] for m in methods]
    return Table(headers, body)


def add_confusions(doc: Document, found: Inputs) -> None:
    doc.add(Heading("Confusion matrices"))
    drawn = 0
    for row in found.rows:
        matrix = row.get("confusion")
        if not isinstance(matrix, list) or not matrix or row.get("variant") == "random_init":
            continue
        names = found.classes.get(row["dataset"], [])
        title = f"{row['method']} on {row['dataset']} (SVM top-1, rows: true class)"
        png = plots.confusion_png(np.asarray(matrix), names, title)
        doc.add(Image(title, png, f"confusion_{_slug(row['dataset'])}_{_slug(row['method'])}.png"))
        drawn += 1
    if not drawn:
        doc.add(Notes(["no confusion matrix: no results row carries a 'confusion' entry "
                       "(run `comodo evaluate`)"]))


def _subsample(x: np.ndarray, y: np.ndarray, cap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= cap:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(x), cap, replace=False))
    return x[keep], y[keep]


def add_maps(doc: Document, found: Inputs, cfg: ReportConfig) -> None:
    doc.add(Heading("Student feature maps (t-SNE)"))
    if not found.features:
        doc.add(Notes([f"no feature arrays under {cfg.metrics_dir}/<ds>/features/*.npz "
                       "(written by `comodo evaluate`): embedding maps skipped"]))
    for dataset, variants in sorted(found.features.items()):
        panels, names = [], []
        for variant, label in MAP_VARIANTS:
            if variant not in variants:
                doc.add(Notes([f"{dataset}: no {variant}.npz, the '{label}' panel is left out"]))
                continue
            loaded = load_features(variants[variant], found.notes)
            if loaded is not None:
                x, y = _subsample(loaded[0], loaded[1], cfg.max_map_points, cfg.seed)
                panels.append((label, x, y))
                names = loaded[2] or names
        if panels:
            title = f"{dataset}: student features coloured by class"
            png = plots.embedding_png(panels, names, title, cfg.seed)
            doc.add(Image(title, png, f"embedding_{_slug(dataset)}.png"))


def add_curves(doc: Document, found: Inputs, cfg: ReportConfig) -> None:
    doc.add(Heading("Training curves"))
    if not found.histories:
        doc.add(Notes([f"no {cfg.runs_dir}/<ds>/<run>/history.csv: training curves skipped"]))
    for key, history in sorted(found.histories.items()):
        png = plots.curves_png(history, f"run {key}")
        if png is None:
            doc.add(Notes([f"{key}/history.csv has no numeric column to plot"]))
        else:
            doc.add(Image(f"run {key}", png, f"curves_{_slug(key)}.png"))


def add_sweeps(doc: Document, found: Inputs, cfg: ReportConfig) -> None:
    doc.add(Heading("Sweeps"))
    by_param: dict[str, list[dict[str, Any]]] = {}
    for sweep in found.sweeps:
        by_param.setdefault(str(sweep.get("param", "queue_size")), []).append(sweep)
    for param, sweeps in by_param.items():
        title = f"Acc@1 against {param}"
        png = plots.sweep_png(sweeps, title)
        if png is None:
            notes = [str(s["note"]) for s in sweeps if s.get("note")]
            doc.add(Notes([f"{param}: no points to draw" + (f" ({notes[0]})" if notes else "")]))
        else:
            doc.add(Image(title, png, f"sweep_{_slug(param)}.png"))
    if not by_param:
        doc.add(Notes([f"no sweep ({cfg.metrics_dir}/<ds>/sweep_<param>.json with points of "
                       "value and acc@1): sweep curve skipped"]))


def build(cfg: ReportConfig, root: Path = Path(".")) -> Document:
    found = collect(root / cfg.metrics_dir, root / cfg.runs_dir)
    doc = Document(cfg.title)
    doc.add(Heading("Results"))
    tables: dict[str, list[dict[str, Any]]] = {}
    for row in found.rows:  # rows without a "table" entry form the main table
        tables.setdefault(str(row.get("table") or "results"), []).append(row)
    for name, rows in tables.items():
        if name != "results":
            doc.add(Heading(TABLE_TITLES.get(name, name), level=3))
        doc.add(Text(TABLE_TEXTS.get(name, TABLE_TEXTS["results"])))
        doc.add(results_table(rows))
    if not found.rows:
        doc.add(Notes([f"no results rows found in {cfg.metrics_dir}/ "
                       "(run `comodo evaluate`): results table skipped"]))
    add_confusions(doc, found)
    add_maps(doc, found, cfg)
    add_curves(doc, found, cfg)
    add_sweeps(doc, found, cfg)
    add_uma(doc, root / cfg.metrics_dir)
    add_fewshot(doc, root / cfg.metrics_dir)
    if found.notes:
        doc.add(Heading("Skipped inputs"))
        doc.add(Notes(found.notes))
    return doc


def run(cfg: ReportConfig, root: Path = Path(".")) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.md`` and ``<out_dir>/<name>.html``; return their paths."""
    doc = build(cfg, Path(root))
    md_path, html_path = write(doc, Path(root) / cfg.out_dir, cfg.name)
    log.info("report: %d blocks written to %s and %s", len(doc.blocks), md_path, html_path)
    return md_path, html_path
