"""Export bundles: per-window latency on one core and bundle size, fp32 against int8.

For each student (``cnn1d`` and ``transformer`` with their default options, on 6-channel
5 s windows at 200 Hz: the synthetic default's input), a run is written as distill writes
one (the student's seeded initialisation, each weight moved by noise: latency and size do
not depend on the values, but layers that start equal would be stored once), then
``comodo export --quantize int8`` runs on a small synthetic dataset taken through ingest,
imu and windows. Reported per precision: the median wall time of one window through the
ONNX encoder with onnxruntime on one thread (``--windows`` windows, one at a time, after a
warm-up), the encoder's bytes and the bundle's (that encoder, the classifier, JSON and
card), the test-split Acc@1; and, for reference, the torch encoder's median per window on
one thread. Accuracy here is that of untrained students on a tiny set: the accuracy change
of int8 on a trained student is in its model card (``comodo export --quantize int8``).

Writes benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_result
from comodo.pipeline.datasets.synthetic import SynthConfig, generate
from comodo.pipeline.stages import imu, ingest, windows
from comodo.pipeline.stages.evaluate import EvaluateConfig
from comodo.pipeline.stages.export import ExportConfig, Source, run, source_of
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.training.export import cpu_latency_ms, export_encoder

STUDENTS = ("cnn1d", "transformer")
SYNTH = {"n_classes": 3, "recordings_per_class": 4, "duration_s": 16.0, "size": 32, "seed": 3}


def prepare_data(base: Path) -> tuple[Path, Source]:
    """The synthetic dataset through ingest, imu and windows (6 x 1000 windows)."""
    root, data = base / "raw", base / "data"
    generate(root, SynthConfig(**SYNTH))
    ingest.run(ingest.IngestConfig(), data, "bench", "ego4d", str(root), {})
    imu_cfg = imu.ImuConfig(workers=1)
    imu.run(imu_cfg, data, "bench", "ego4d", str(root), {})
    windows.run(windows.WindowsConfig(workers=1), data, "bench")
    return data, source_of("ego4d", {}, imu_cfg)


def bench_student(name: str, base: Path, data: Path, source: Source, n_windows: int) -> dict[str, Any]:
    spec = StudentSpec(name, 6, 1000)
    torch.manual_seed(0)
    encoder = build_student(spec).eval()
    with torch.no_grad():  # layers built as copies of one start equal: the exporter would store
        for p in encoder.parameters():  # them once, so no layer keeps its initial weights
            p.add_(0.02 * torch.randn_like(p))
    export_encoder(encoder, spec, base / "runs" / "bench" / name, {"objective": "none",
                                                                   "teacher": "none"})
    info = run(ExportConfig(run=name, quantize="int8", latency_windows=n_windows),
               EvaluateConfig(n_jobs=1, knn_k=3), source, data, "bench", base / "runs",
               base / "metrics", base / "exports")
    bundle = base / "exports" / "bench" / name
    other = sum(p.stat().st_size for p in bundle.iterdir() if not p.name.startswith("encoder"))
    out: dict[str, Any] = {"n_params": info["encoder"]["n_params"],
                           "torch_fp32_ms_per_window": cpu_latency_ms(encoder, spec, 1, n_windows),
                           "max_abs_diff_onnx_torch": info["parity"]["embedding"]["max_abs_diff"]}
    for precision in ("fp32", "int8"):
        m = info["metrics"][precision]
        out[precision] = {"ms_per_window": m["latency_ms_per_window"],
                          "encoder_bytes": m["size_bytes"], "bundle_bytes": m["size_bytes"] + other,
                          "acc@1_untrained": m["acc@1"]}
    out["int8_vs_fp32"] = {"latency_ratio": out["int8"]["ms_per_window"] / out["fp32"]["ms_per_window"],
                           "size_ratio": out["int8"]["bundle_bytes"] / out["fp32"]["bundle_bytes"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=1000, help="windows timed one by one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    os.environ.setdefault("COMODO_PROGRESS", "0")
    result: dict[str, Any] = {"windows": args.windows, "threads": 1, "input": "6 x 1000 float32",
                              "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        data, source = prepare_data(base)
        for name in STUDENTS:
            result[name] = bench_student(name, base, data, source, args.windows)
            fp32, int8 = result[name]["fp32"], result[name]["int8"]
            print(f"{name}: fp32 {fp32['ms_per_window']:.2f} ms, {fp32['bundle_bytes'] / 1e6:.2f} MB; "
                  f"int8 {int8['ms_per_window']:.2f} ms, {int8['bundle_bytes'] / 1e6:.2f} MB; "
                  f"torch {result[name]['torch_fp32_ms_per_window']:.2f} ms")
    write_result("export", result)


if __name__ == "__main__":
    main()
