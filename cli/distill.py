"""The ``distill`` command: train a student IMU encoder from a teacher's stored features.

Multi-GPU (or multi-process CPU) training runs the same command under torchrun:
``torchrun --nproc_per_node 4 --no-python comodo distill --dataset ego4d``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from comodo.cli.common import DATASET_OPTION, PARAMS_OPTION, cli_command
from comodo.cli.main import app
from comodo.cli.stages import data_dir, storage_options
from comodo.pipeline.config import load_section, read_params


@app.command()
@cli_command
def distill(
    dataset: str = DATASET_OPTION,
    params: str = PARAMS_OPTION,
    run_name: str = typer.Option(
        None, "--run-name", help="folder under runs/<dataset>/ (default: <teacher>-<student>-<objective>)"
    ),
    device: str = typer.Option(None, "--device", help="auto | cpu | cuda (overrides params)"),
) -> None:
    """Distil the teacher's features into a student IMU encoder: runs/<dataset>/<run>/."""
    from comodo.pipeline.stages.distill import DistillConfig, record_latest, run

    cfg = load_section(DistillConfig, "distill", params, dataset=dataset,
                       overrides={"device": device})
    values = read_params(params)
    name = run_name or f"{cfg.teacher}-{cfg.student}-{cfg.objective}"
    out_dir = Path(values.get("runs_dir", "runs")) / dataset / name
    metrics = run(cfg, data_dir(params), dataset, out_dir, storage_options=storage_options(params))
    if metrics:  # only the main process of a torchrun job reports
        record_latest(out_dir.parent, name)
        acc = metrics["val_anchor_acc"]
        typer.echo(
            f"distill {dataset}: {metrics['epochs']} epochs, train_loss "
            f"{metrics['train_loss']:.4f}, val_anchor_acc "
            f"{'n/a' if acc is None else f'{acc:.3f}'} -> {out_dir}"
        )
