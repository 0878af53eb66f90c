"""Export the trained encoder (projector removed): safetensors weights + a JSON record."""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from comodo.pipeline.students import StudentSpec, count_parameters

LATENCY_BATCH = 32


@torch.inference_mode()
def cpu_latency_ms(encoder: nn.Module, spec: StudentSpec, batch: int, repeats: int = 5) -> float:
    """Median CPU wall time per window (ms) of a forward pass on ``batch`` random windows."""
    model = copy.deepcopy(encoder).to("cpu").eval()
    imu = torch.randn(batch, spec.n_channels, spec.n_samples)
    model(imu)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(imu)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times) / batch


def export_encoder(encoder: nn.Module, spec: StudentSpec, out_dir: Path,
                   extra: dict[str, Any] | None = None, name: str = "encoder") -> dict[str, Any]:
    """Write ``<name>.safetensors`` and ``<name>.json``; return the JSON record."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(out_dir / f"{name}.safetensors"))
    record = {
        "spec": spec.to_dict(),
        "out_dim": int(encoder.out_dim),
        "n_params": count_parameters(encoder),
        "latency_ms_per_window": {
            "batch_1": round(cpu_latency_ms(encoder, spec, 1), 4),
            f"batch_{LATENCY_BATCH}": round(cpu_latency_ms(encoder, spec, LATENCY_BATCH), 4),
            "threads": torch.get_num_threads(),
        },
        **(extra or {}),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2))
    return record
