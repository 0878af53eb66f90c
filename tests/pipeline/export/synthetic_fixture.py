"""A tiny synthetic dataset through ingest, imu and windows, a student exported as distill
exports it, and evaluate's metrics on it: what ``comodo export`` starts from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from comodo.pipeline.datasets.synthetic import SynthConfig, generate
from comodo.pipeline.stages import evaluate, imu, ingest, windows
from comodo.pipeline.stages.distill import record_latest
from comodo.pipeline.stages.export import Source, source_of
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.training.export import export_encoder

SYNTH = {"n_classes": 3, "recordings_per_class": 4, "duration_s": 16.0, "size": 32, "seed": 3}
DATASET = "tiny"
STUDENT = {"widths": [8, 16, 16], "kernels": [7, 5, 3]}


@dataclass(frozen=True)
class Prepared:
    root: Path  # raw synthetic dataset (Ego4D layout)
    data: Path
    runs: Path
    metrics: Path
    source: Source


def prepare(base: Path, mode: str = "tile", channels: list[str] | None = None) -> Prepared:
    root, data, runs, metrics = base / "raw", base / "data", base / "runs", base / "metrics"
    generate(root, SynthConfig(**SYNTH))
    ingest.run(ingest.IngestConfig(), data, DATASET, "ego4d", str(root), {})
    imu_cfg = imu.ImuConfig(workers=1)
    imu.run(imu_cfg, data, DATASET, "ego4d", str(root), {})
    windows.run(windows.WindowsConfig(mode=mode, channels=channels, workers=1),
                data, DATASET)
    store = evaluate.open_windows(data, DATASET)[1]
    _n, n_channels, n_samples = store.array("imu").shape
    spec = StudentSpec("cnn1d", n_channels, n_samples, None, STUDENT)
    torch.manual_seed(0)
    encoder = build_student(spec)
    with torch.no_grad():  # "trained": moved away from its initial weights
        for p in encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    export_encoder(encoder.eval(), spec, runs / DATASET / "default",
                   {"objective": "comodo", "teacher": "tiny"})
    record_latest(runs / DATASET, "default")  # as `comodo distill` records its run
    evaluate.run(evaluate.EvaluateConfig(knn_k=3, n_jobs=1), data, DATASET, runs, metrics)
    source = source_of("ego4d", {}, imu_cfg)
    return Prepared(root, data, runs, metrics, source)
