"""The bundle's model card (Markdown): data, teacher, objective, metrics with their protocol,
parameter count, size, latency, and the parity measured at export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from comodo.pipeline.export.bundle import Preprocessing


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 1e5 else f"{n_bytes / 1e3:.1f} KB"


def _data_section(info: dict[str, Any], prep: Preprocessing) -> list[str]:
    facts = info["classifier"]["facts"]
    rate = "native rate" if prep.rate_hz is None else f"{prep.rate_hz:g} Hz"
    return [
        "## Data", "",
        f"- dataset `{info['dataset']}` (layout `{prep.layout}`), {len(info['classes'])} classes: "
        f"{', '.join(info['classes'])}",
        f"- windows: {prep.window_mode}, {prep.window_samples} samples ({prep.window_s:g} s) at {rate}, "
        f"channels {', '.join(f'{c} [{u}]' for c, u in zip(prep.channels, prep.units))}",
        f"- classifier fitted on {facts.get('n_train', '?')} train windows, "
        f"judged on {facts.get('n_test', '?')} test windows", "",
    ]


def _model_section(info: dict[str, Any], distill: dict[str, Any] | None) -> list[str]:
    enc = info["encoder"]
    spec = enc["spec"]
    lines = [
        "## Model", "",
        f"- student `{spec['name']}` (reduction {spec.get('reduction')}, options "
        f"{spec.get('options') or {}}), {enc['n_params']:,} parameters, {enc['out_dim']}-d features",
        f"- teacher `{enc.get('teacher')}`, objective `{enc.get('objective')}` (run `{info['run']}`)",
        f"- classifier `{info['classifier']['kind']}`: {info['classifier']['protocol']}",
    ]
    if distill:
        lines.append(f"- distillation: {distill.get('epochs')} epochs on "
                     f"{distill.get('n_train_windows')} windows, final train loss "
                     f"{distill.get('train_loss', float('nan')):.4f}")
    return [*lines, ""]


def _metrics_section(info: dict[str, Any], evaluated: dict[str, Any] | None) -> list[str]:
    rows = ["## Metrics (test split)", "",
            "| encoder | Acc@1 | Acc@3 | Acc@5 | encoder size | latency / window (1 thread) |",
            "|---|---|---|---|---|---|"]
    for precision in ("fp32", "int8"):
        m = info["metrics"].get(precision)
        if m:
            rows.append(f"| {precision} | {_pct(m['acc@1'])} | {_pct(m['acc@3'])} | "
                        f"{_pct(m['acc@5'])} | {_size(m['size_bytes'])} | "
                        f"{m['latency_ms_per_window']:.2f} ms |")
    fp32, int8 = info["metrics"].get("fp32"), info["metrics"].get("int8")
    notes = [f"Latency: median of {fp32['latency_windows']} windows one at a time through "
             f"onnxruntime on one CPU thread. Classifier {_size(info['metrics']['classifier_size_bytes'])}."]
    if int8:
        notes.append(
            f"int8 (dynamic quantisation) against fp32: Acc@1 {100 * (int8['acc@1'] - fp32['acc@1']):+.1f} "
            f"points, size x{int8['size_bytes'] / fp32['size_bytes']:.2f}, latency "
            f"x{int8['latency_ms_per_window'] / fp32['latency_ms_per_window']:.2f}.")
    if evaluated:
        notes.append(f"`comodo evaluate` reported Acc@1/3/5 {_pct(evaluated.get('acc@1'))} / "
                     f"{_pct(evaluated.get('acc@3'))} / {_pct(evaluated.get('acc@5'))} for this run.")
    return [*rows, "", *notes, ""]


def _parity_section(info: dict[str, Any]) -> list[str]:
    p = info["parity"]
    emb, clf = p["embedding"], p["classifier"]
    return [
        "## Parity with the pipeline", "",
        f"- encoder: max |ONNX - torch| {emb['max_abs_diff']:.2e} over {emb['n_windows']} test "
        f"windows (features up to {emb['max_abs_torch']:.3g}), {emb['max_abs_diff_batch_1']:.2e} "
        f"for one window alone",
        f"- classifier: ONNX labels equal scikit-learn's on {_pct(clf['label_agreement'])}% of "
        f"{clf['n']} feature rows, probabilities within {clf['probability_max_abs_diff']:.1e}",
        f"- bundle top-1 equals `comodo evaluate`'s prediction on {_pct(p['top1_agreement'])}% "
        f"of {p['n_test']} test windows", "",
    ]


def write(path: Path, info: dict[str, Any], prep: Preprocessing, evaluated: dict[str, Any] | None,
          distill: dict[str, Any] | None) -> None:
    """Write the Markdown card for bundle.json's ``info``."""
    lines = [f"# {info['encoder']['spec']['name']} student for `{info['dataset']}` ({info['run']})", "",
             "IMU activity recogniser distilled from a frozen video teacher (COMODO); run it with "
             "`comodo predict <bundle> <imu file>`.", ""]
    lines += _data_section(info, prep)
    lines += _model_section(info, distill)
    lines += _metrics_section(info, evaluated)
    lines += _parity_section(info)
    path.write_text("\n".join(lines))
