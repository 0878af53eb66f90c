"""Report blocks for k-shot results (``metrics/<ds>/fewshot.json``, the fewshot stage).

Per dataset: the k-shot curves (Acc@1 against k, one line per encoder, a band for the 95%
interval over seeds x draws) and their table (mean [95% interval] ± the std of the seeds'
means), the paired tests of each method against the first one (mean
difference, wins/losses over the same draws, Wilcoxon p), and with ``folds: subject`` the
per-subject table (Acc@1 at the largest k per subject, and mean ± std over subjects).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from comodo.pipeline.report import plots
from comodo.pipeline.report.document import Document, Heading, Image, Notes, Table, Text


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def curve_table(result: dict[str, Any], key: str = "acc@1") -> Table:
    """Rows: methods; columns: k; cells: mean [95% interval], and ± the std over seeds."""
    ks = list(dict.fromkeys(p["k"] for c in result["curves"] for p in c["points"]))
    rows = []
    for curve in result["curves"]:
        by_k = {p["k"]: p for p in curve["points"]}
        rows.append([curve["method"]] + [_cell(by_k.get(k), key) for k in ks])
    return Table(["method"] + [f"k={k}" for k in ks], rows)


def _cell(point: dict[str, Any] | None, key: str) -> str:
    if point is None:
        return "–"
    value = point[key]
    text = f"{_pct(value['mean'])} [{_pct(value['low'])}, {_pct(value['high'])}]"
    spread = point.get("seed_std", {}).get(key)
    return text if spread is None or len(point.get("per_seed", {})) < 2 else (
        f"{text} ± {_pct(spread)}")


def tests_table(result: dict[str, Any]) -> Table:
    """Each method against the first curve's method, at every k (Acc@1)."""
    first = result["curves"][0]["method"]
    rows = []
    for t in result["tests"]:
        if t["a"] != first and t["b"] != first:
            continue
        other, sign = (t["b"], -1) if t["a"] == first else (t["a"], 1)
        p = "–" if t["p"] is None else f"{t['p']:.3g}"
        wins, losses = (t["wins"], t["losses"]) if sign > 0 else (t["losses"], t["wins"])
        rows.append([other, str(t["k"]), f"{100 * sign * t['diff']:+.1f}",
                     f"{wins}/{losses}/{t['ties']}", p])
    return Table([f"method vs {first}", "k", "Δ Acc@1 (points)", "wins/losses/ties", "Wilcoxon p"],
                 rows)


def subject_table(results: list[dict[str, Any]]) -> Table:
    """Rows: methods; columns: subjects then mean ± std; cells: Acc@1 at the largest k."""
    folds = [r["fold"] for r in results]
    methods = list(dict.fromkeys(c["method"] for r in results for c in r["curves"]))
    rows = []
    for method in methods:
        cells = []
        for r in results:
            curve = next((c for c in r["curves"] if c["method"] == method), None)
            cells.append(curve["points"][-1]["acc@1"]["mean"] if curve and curve["points"] else None)
        valid = [c for c in cells if c is not None]
        summary = (f"{100 * np.mean(valid):.1f} ± {100 * np.std(valid):.1f}" if valid else "–")
        rows.append([method] + [_pct(c) for c in cells] + [summary])
    return Table(["method"] + folds + ["mean ± std"], rows)


def add_fewshot(doc: Document, metrics_dir: Path) -> None:
    files = sorted(Path(metrics_dir).glob("*/fewshot.json"))
    doc.add(Heading("Label efficiency (k-shot)"))
    if not files:
        doc.add(Notes([f"no {metrics_dir}/<ds>/fewshot.json (run `comodo fewshot`): k-shot "
                       "curves skipped"]))
        return
    for path in files:
        record = json.loads(path.read_text())
        dataset = record.get("dataset", path.parent.name)
        results = record.get("results") or []
        doc.add(Text(f"{dataset}: {record.get('classifier')} on frozen features, k labelled "
                     f"train windows per class, {record.get('n_draws')} draws per k (the same "
                     f"for every encoder) x seeds {record.get('seeds')}; Acc@1 mean [95% interval, "
                     f"clipped to [0, 100]] ± std of the seeds' means."))
        for result in results[:1]:  # the split, or every subject's folds pooled
            title = f"{dataset} ({result['fold']}): Acc@1 against labelled windows per class"
            png = plots.fewshot_png(result["curves"], title)
            if png is not None:
                doc.add(Image(title, png, f"fewshot_{dataset}.png"))
            doc.add(curve_table(result))
            if len(result["curves"]) > 1:
                doc.add(tests_table(result))
        if record.get("folds") == "subject" and len(results) > 1:
            doc.add(Heading(f"{dataset}: leave one subject out", level=3))
            doc.add(subject_table(results[1:]))
        if record.get("skipped"):
            doc.add(Notes([f"{s['fold']} k={s['k']}: {s['reason']}" for s in record["skipped"]]))
