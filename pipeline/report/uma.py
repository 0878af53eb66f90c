"""Report blocks for Unsupervised Modality Adaptation results (``metrics/<ds>/uma/``).

Reads ``metrics.json`` written by the uma stage: ``test[method][modality][noise]`` holds
``mean``/``std`` accuracy over seeds, ``random_guess`` the chance level,
``splits[seed].selected[method]`` the epoch (and setting) kept on D_Val; ``latent_map.png``
is the 2-D map of video and IMU latents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from comodo.pipeline.report.document import Document, Heading, Image, Notes, Table, Text

MODALITIES = ("imu", "video", "both")


def _pct(cell: dict[str, Any] | None) -> str:
    if not cell or cell.get("mean") is None:
        return "–"
    std = cell.get("std")
    return f"{100 * cell['mean']:.1f} ± {100 * std:.1f}" if std is not None else f"{100 * cell['mean']:.1f}"


def modality_table(test: dict[str, Any], chance: float) -> Table:
    """Table 2 analog: clean accuracy of each method with IMU only, video only and both."""
    rows = [[m] + [_pct(test[m].get(mod, {}).get("clean")) for mod in MODALITIES] for m in test]
    rows.append(["random guess"] + [f"{100 * chance:.1f}"] * len(MODALITIES))
    return Table(["method"] + [f"{m} (clean)" for m in MODALITIES], rows)


def noise_table(test: dict[str, Any], chance: float) -> Table:
    """Table 3 analog: IMU-only accuracy of each method under each perturbation."""
    noises = list(dict.fromkeys(n for m in test.values() for n in m.get("imu", {})))
    rows = [[m] + [_pct(test[m].get("imu", {}).get(n)) for n in noises] for m in test]
    rows.append(["random guess"] + [f"{100 * chance:.1f}"] * len(noises))
    return Table(["method (IMU only)"] + noises, rows)


def selection_table(splits: dict[str, Any]) -> Table | None:
    """Per method and seed: the kept setting, phase and epoch, and its IMU-only D_Val accuracy."""
    rows = []
    for seed, info in splits.items():
        for method, kept in (info.get("selected") or {}).items():
            setting = ", ".join(f"{k}={v}" for k, v in (kept.get("setting") or {}).items()) or "–"
            rows.append([method, seed, setting, kept.get("phase", "–"), str(kept.get("epoch", "–")),
                         f"{100 * kept['val_accuracy']:.1f}"])
    if not rows:
        return None
    return Table(["method", "seed", "setting", "phase", "epoch", "D_Val IMU acc"], sorted(rows))


def add_uma(doc: Document, metrics_dir: Path) -> None:
    files = sorted(Path(metrics_dir).glob("*/uma/metrics.json"))
    doc.add(Heading("Unsupervised Modality Adaptation"))
    if not files:
        doc.add(Notes([f"no {metrics_dir}/<ds>/uma/metrics.json (run `comodo uma`): UMA skipped"]))
        return
    for path in files:
        result = json.loads(path.read_text())
        test, chance = result.get("test") or {}, float(result.get("random_guess") or 0.0)
        dataset = result.get("dataset", path.parent.parent.name)
        doc.add(Heading(f"{dataset}: accuracy by inference modality", level=3))
        doc.add(Text(f"Test accuracy in %, mean ± std over seeds {result.get('seeds')}; labels "
                     "only on video (D_HAR), IMU only paired and unlabelled (D_Align)."))
        doc.add(modality_table(test, chance))
        doc.add(Heading(f"{dataset}: IMU-only accuracy under perturbations", level=3))
        doc.add(noise_table(test, chance))
        selected = selection_table(result.get("splits") or {})
        if selected is not None:
            doc.add(Heading(f"{dataset}: models selected on the validation split", level=3))
            doc.add(selected)
        png = path.parent / "latent_map.png"
        if png.is_file():
            doc.add(Image(f"{dataset}: video and IMU latents", png.read_bytes(),
                          f"uma_latents_{dataset}.png"))
